"""A receiver asking for a huge Retry-After cannot freeze a channel; old failed rows go dead."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from delivery_helpers import START, FakeClock, Receiver, Reply, add_rows, outbox_rows
from delivery_helpers import webhook_channel as hook
from sqlalchemy import update

from costwarden.config import DeliverySettings, NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.worker import DeliveryWorker
from costwarden.store import Store
from costwarden.store.tables import OutboxRecord

OPENED: list[DeliveryWorker] = []


@pytest.fixture(autouse=True)
def close_workers() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def worker_for(store: Store, url: str, clock: FakeClock, **delivery: Any) -> DeliveryWorker:
    settings = NotifySettings(
        channels={"hook": hook(url, burst=5)}, delivery=DeliverySettings(**delivery)
    )
    worker = DeliveryWorker(store, settings, build_channels(settings), clock=clock,
                            sleep=clock.sleep, rng=random.Random(3))
    OPENED.append(worker)
    return worker


@pytest.mark.parametrize(
    "retry_after",
    ["999999999", format_datetime(START.replace(year=2099), usegmt=True)],
    ids=["seconds", "http-date"],
)
def test_huge_retry_after_is_capped(store: Store, receiver: Receiver, retry_after: str) -> None:
    clock = FakeClock()
    receiver.script("hook", Reply(429, {"Retry-After": retry_after}, b"slow down"))
    add_rows(store, "hook", 3)
    worker = worker_for(store, receiver.url("hook"), clock, retry_after_max_seconds=600)

    report = worker.run_once()

    assert report.retried == 1
    assert report.deferred == 2
    cap = START + timedelta(seconds=600)
    rows = outbox_rows(store)
    assert all(row.next_attempt_at <= cap for row in rows)
    assert max(row.next_attempt_at for row in rows) == cap

    clock.now = cap
    assert worker.drain().sent == 3
    assert {row.status for row in outbox_rows(store)} == {"sent"}


def test_default_cap_is_one_hour(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.script("hook", Reply(503, {"Retry-After": "86400"}, b"down"))
    add_rows(store, "hook")
    worker = worker_for(store, receiver.url("hook"), clock)

    worker.run_once()

    [row] = outbox_rows(store)
    assert row.next_attempt_at == START + timedelta(hours=1)


def test_old_failed_row_dies_without_another_failure(store: Store, receiver: Receiver) -> None:
    clock = FakeClock(START + timedelta(hours=5))
    failed, never_tried = add_rows(store, "hook", 2)
    with store.transaction() as session:
        session.execute(
            update(OutboxRecord).where(OutboxRecord.id == failed).values(
                attempts=3, last_status=429, last_error="429 slow down",
                next_attempt_at=START.replace(year=2099),
            )
        )
        session.execute(
            update(OutboxRecord).where(OutboxRecord.id == never_tried).values(
                next_attempt_at=START + timedelta(hours=6),
            )
        )
    worker = worker_for(store, receiver.url("hook"), clock, max_age_hours=4)

    report = worker.run_once()

    assert report.dead == 1
    assert report.claimed == 0
    dead, waiting = outbox_rows(store)
    assert (dead.id, dead.status, dead.attempts) == (failed, "dead", 3)
    assert "max_age_hours (4 h)" in (dead.last_error or "")
    assert "429 slow down" in (dead.last_error or "")
    assert (waiting.id, waiting.status) == (never_tried, "pending")
    assert "/hook" not in receiver.received
