"""Concurrent appends on a real PostgreSQL server keep one linear chain."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from audit_helpers import TENANT
from sqlalchemy import func, select, text

from costwarden.audit import append, verify
from costwarden.store import Store
from costwarden.store.tables import AuditEntryRecord, Run

pytestmark = pytest.mark.postgres

WRITERS = 4
ROUNDS = 15


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    opened = Store.open(postgres_url, pool_size=WRITERS + 2)
    yield opened
    opened.close()


def _append(session, writer: str, index: int):  # type: ignore[no-untyped-def]
    return append(
        session, tenant=TENANT, kind="action", subject=f"{writer}:{index}", actor=writer,
        summary=f"{writer} step {index}", detail={"index": index},
    )


def test_racing_writers_stay_linear(pg_store: Store) -> None:
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def write(writer: str) -> None:
        try:
            for index in range(ROUNDS):
                barrier.wait(timeout=30)
                with pg_store.transaction() as session:
                    _append(session, writer, index)
                    _append(session, writer, index + 1000)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    with pg_store.transaction() as session:
        count = session.scalar(select(func.count()).select_from(AuditEntryRecord))
        prevs = session.scalars(select(AuditEntryRecord.prev_hash)).all()
        report = verify(session, TENANT)
    assert count == WRITERS * ROUNDS * 2
    assert len(set(prevs)) == count
    assert report.ok, report.problems[:3]
    assert report.entries == count


def test_lost_race_keeps_caller_work(
    pg_store: Store, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The second writer blocks on the first one's uncommitted entry, then appends after it."""
    caplog.set_level(logging.DEBUG, logger="costwarden.audit.trail")
    first_appended = threading.Event()
    release_first = threading.Event()
    results: dict[str, str] = {}

    def first() -> None:
        with pg_store.transaction() as session:
            results["first"] = _append(session, "first", 0).entry_hash
            first_appended.set()
            release_first.wait(30)

    def second() -> None:
        first_appended.wait(30)
        with pg_store.transaction() as session:
            now = datetime.now(UTC)
            session.add(Run(id="run-kept", trigger="cli", status="queued", as_of=now,
                            started_at=now))
            session.flush()
            results["second_prev"] = _append(session, "second", 0).prev_hash

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    _wait_for_lock_wait(pg_store)
    release_first.set()
    for thread in threads:
        thread.join(30)

    assert results["second_prev"] == results["first"]
    assert any("lost the race" in record.getMessage() for record in caplog.records)
    with pg_store.transaction() as session:
        assert session.get(Run, "run-kept") is not None
        assert verify(session, TENANT).ok


def _wait_for_lock_wait(store: Store, timeout: float = 20.0) -> None:
    """Wait until a session of this database waits for a lock (the second writer's insert)."""
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        with store.engine.connect() as connection:
            if connection.execute(query).scalar():
                return
        time.sleep(0.02)
    raise AssertionError("the second writer never waited for the first one's entry")
