"""PassRunner: queued runs, joining, one pass at a time per tenant, leases and recovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from service_helpers import service_settings
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from costwarden.pipeline import RunResult, run_pass
from costwarden.service.runner import PassRunner
from costwarden.service.state import RefreshScope
from costwarden.store import Store
from costwarden.store.tables import PassLease, RecommendationReportRecord, Run, StoredBudget

WAIT_SECONDS = 30.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def run_row(store: Store, run_id: str) -> Run:
    with store.transaction() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


class RecordingPass:
    """A pass function that runs the real pass on stored data and records overlapping passes.

    The pass waits at its first progress report for ``hold_seconds`` and until ``release``.
    """

    def __init__(self, hold_seconds: float = 0.0) -> None:
        self.hold_seconds = hold_seconds
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.active = 0
        self.max_active = 0
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, store: Store, settings: Any, budgets: Any, as_of: datetime,
                 **options: Any) -> RunResult:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(options)
        held = threading.Event()

        def hold(description: str, completed: int, total: int) -> None:
            # The first progress report comes after the run row is marked running.
            if held.is_set():
                return
            held.set()
            self.started.set()
            time.sleep(self.hold_seconds)
            self.release.wait(WAIT_SECONDS)

        try:
            return run_pass(store, settings, budgets, as_of, ingest=False, progress=hold,
                            **options)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def make_runner(store: Store, database_url: str) -> Iterator[Callable[..., PassRunner]]:
    runners: list[PassRunner] = []

    def make(pass_function: Any, holder: str | None = None, **service: Any) -> PassRunner:
        settings = service_settings(database_url, service=service)
        runner = PassRunner(settings, store, holder, pass_function=pass_function, poll_seconds=0.1)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop(10)


def test_request_queues_run_before_returning(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    runner = make_runner(RecordingPass())
    run_id = runner.request("api")
    run = run_row(store, run_id)
    assert run.status == "queued"
    assert run.trigger == "api"
    assert run.tenant == "default"


def test_request_joins_queued_run(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    runner = make_runner(RecordingPass())
    first = runner.request("webhook", RefreshScope(cluster_uids=("a",), days=2))
    second = runner.request("webhook", RefreshScope(cluster_names=("b",), days=5))
    assert second == first
    scope = run_row(store, first).scope
    assert scope == {"cluster_uids": ["a"], "cluster_names": ["b"], "days": 5}

    third = runner.request("api")
    assert third == first
    assert run_row(store, first).scope is None


def test_run_succeeds_and_stores_report(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    passes = RecordingPass()
    runner = make_runner(passes)
    runner.start()
    run_id = runner.request("api", RefreshScope(cluster_uids=("c1",), days=2))
    wait_for(lambda: run_row(store, run_id).status == "succeeded", "the run to succeed")

    assert passes.calls[0]["run_id"] == run_id
    assert passes.calls[0]["scope"] == RefreshScope(cluster_uids=("c1",), days=2)
    with store.transaction() as session:
        report = session.get(RecommendationReportRecord, run_id)
    assert report is not None
    wait_for(lambda: runner.leases.current() is None, "the lease to be released")


def test_new_request_while_running_queues_second(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    passes = RecordingPass()
    passes.release.clear()
    runner = make_runner(passes)
    runner.start()
    first = runner.request("api")
    assert passes.started.wait(WAIT_SECONDS)
    second = runner.request("api")
    assert second != first
    assert run_row(store, second).status == "queued"

    passes.release.set()
    wait_for(lambda: run_row(store, second).status == "succeeded", "the second run")
    assert run_row(store, first).status == "succeeded"


def test_two_runners_never_overlap(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    passes = RecordingPass(hold_seconds=0.3)
    one = make_runner(passes, holder="replica-one")
    two = make_runner(passes, holder="replica-two")
    one.start()
    two.start()

    run_ids = []
    for runner in (one, two, one, two):
        run_ids.append(runner.request("api"))
        time.sleep(0.15)

    wait_for(
        lambda: all(run_row(store, run_id).status == "succeeded" for run_id in set(run_ids)),
        "every run to succeed",
    )
    assert passes.max_active == 1
    assert len(passes.calls) >= 2


def test_live_lease_elsewhere_blocks(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(PassLease(tenant="default", holder="other-host:1:abc", run_id=None,
                              acquired_at=now, renewed_at=now,
                              expires_at=now + timedelta(minutes=5)))
    runner = make_runner(RecordingPass())
    runner.start()
    run_id = runner.request("api")
    time.sleep(0.5)
    assert run_row(store, run_id).status == "queued"


def test_expired_lease_taken_over(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    past = datetime.now(UTC) - timedelta(minutes=10)
    with store.transaction() as session:
        session.add(Run(id="old-run", as_of=past, started_at=past, status="running",
                        trigger="schedule", tenant="default"))
        session.add(PassLease(tenant="default", holder="other-host:1:abc", run_id="old-run",
                              acquired_at=past, renewed_at=past,
                              expires_at=past + timedelta(minutes=2)))
    runner = make_runner(RecordingPass())
    runner.start()
    run_id = runner.request("api")
    wait_for(lambda: run_row(store, run_id).status == "succeeded", "the run to succeed")
    old = run_row(store, "old-run")
    assert old.status == "abandoned"
    assert old.finished_at is not None
    assert old.error == "its holder other-host:1:abc let the lease expire"


def test_stopped_holder_named_in_error(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    runner = make_runner(RecordingPass())
    host = runner.holder.split(":")[0]
    dead = f"{host}:{_dead_pid()}:abc"
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(Run(id="old-run", as_of=now, started_at=now, status="running",
                        trigger="schedule", tenant="default"))
        session.add(PassLease(tenant="default", holder=dead, run_id="old-run",
                              acquired_at=now, renewed_at=now,
                              expires_at=now + timedelta(minutes=5)))
    runner.start()
    run_id = runner.request("api")
    wait_for(lambda: run_row(store, run_id).status == "succeeded", "the run to succeed")
    assert run_row(store, "old-run").error == f"its holder {dead} was found stopped"


def _dead_pid() -> int:
    """Return the id of a process that has exited."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def _race(calls: list[Callable[[], str]]) -> list[str]:
    """Run ``calls`` on threads released together; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[str] = [""] * len(calls)
    errors: list[BaseException] = []

    def call(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
    assert not errors, errors
    return results


@pytest.fixture
def two_replicas(store: Store, database_url: str) -> Iterator[tuple[PassRunner, PassRunner]]:
    """Two runners of one tenant with their own connection pools, workers not started."""
    other = Store.open(database_url)
    settings = service_settings(database_url)
    yield (PassRunner(settings, store, "replica-one"), PassRunner(settings, other, "replica-two"))
    other.close()


def _runs(store: Store) -> list[Run]:
    with store.transaction() as session:
        return list(session.scalars(select(Run).where(Run.tenant == "default")))


def test_racing_replicas_queue_one_run(store: Store, two_replicas) -> None:  # type: ignore[no-untyped-def]
    one, two = two_replicas
    for _ in range(5):
        ids = _race([lambda: one.request("api"), lambda: two.request("api")] * 3)
        assert len(set(ids)) == 1
        assert [run.status for run in _runs(store) if run.id == ids[0]] == ["queued"]
        with store.transaction() as session:
            session.get(Run, ids[0]).status = "succeeded"  # type: ignore[union-attr]
    assert len(_runs(store)) == 5


def test_database_rejects_second_queued_run(store: Store) -> None:
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(Run(id="one", as_of=now, started_at=now, status="queued", tenant="default"))
    with pytest.raises(IntegrityError), store.transaction() as session:
        session.add(Run(id="two", as_of=now, started_at=now, status="queued", tenant="default"))


def test_replica_ticks_share_one_run(store: Store, two_replicas) -> None:  # type: ignore[no-untyped-def]
    one, two = two_replicas
    fire = "2026-03-15T06:00:00+00:00"
    ids = _race([
        lambda: one.request("schedule", key=fire), lambda: two.request("schedule", key=fire)
    ])
    assert ids[0] == ids[1]
    with store.transaction() as session:
        session.get(Run, ids[0]).status = "succeeded"  # type: ignore[union-attr]

    # A replica whose tick comes after the pass finished finds the run instead of adding one.
    assert two.request("schedule", key=fire) == ids[0]
    assert one.request("schedule", key="2026-03-16T06:00:00+00:00") != ids[0]
    assert len(_runs(store)) == 2


def test_start_joins_running_run(store: Store, two_replicas) -> None:  # type: ignore[no-untyped-def]
    one, two = two_replicas
    started = one.request("start")
    with store.transaction() as session:
        session.get(Run, started).status = "running"  # type: ignore[union-attr]
    assert two.request("start") == started
    assert two.request("api") != started


def test_recover_abandons_dead_holder_run(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    runner = make_runner(RecordingPass())
    now = datetime.now(UTC)
    host = runner.holder.split(":")[0]
    dead = f"{host}:999999999:dead"
    with store.transaction() as session:
        session.add(Run(id="killed-run", as_of=now, started_at=now, status="running",
                        trigger="start", tenant="default"))
        session.add(Run(id="queued-run", as_of=now, started_at=now, status="queued",
                        trigger="api", tenant="default"))
        session.add(PassLease(tenant="default", holder=dead, run_id="killed-run",
                              acquired_at=now, renewed_at=now,
                              expires_at=now + timedelta(minutes=5)))

    assert runner.recover() == ["killed-run"]
    assert run_row(store, "killed-run").status == "abandoned"
    assert run_row(store, "queued-run").status == "queued"
    assert runner.leases.current() is None


def test_recover_keeps_live_holder_run(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    runner = make_runner(RecordingPass())
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(Run(id="live-run", as_of=now, started_at=now, status="running",
                        trigger="start", tenant="default"))
        session.add(PassLease(tenant="default", holder="other-host:1:abc", run_id="live-run",
                              acquired_at=now, renewed_at=now,
                              expires_at=now + timedelta(minutes=5)))
    assert runner.recover() == []
    assert run_row(store, "live-run").status == "running"


def test_stop_abandons_pass_after_grace(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    passes = RecordingPass()
    passes.release.clear()
    runner = make_runner(passes)
    runner.start()
    run_id = runner.request("api")
    assert passes.started.wait(WAIT_SECONDS)

    assert runner.stop(0.2) is False
    assert run_row(store, run_id).status == "abandoned"
    assert runner.leases.current() is None

    passes.release.set()
    time.sleep(0.5)
    assert run_row(store, run_id).status == "abandoned"


def test_failed_pass_marks_run_failed(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    def failing(store: Store, settings: Any, budgets: Any, as_of: datetime,
                **options: Any) -> RunResult:
        return run_pass(store, settings, budgets, as_of, ingest=False,
                        progress=_explode, **options)

    runner = make_runner(failing)
    runner.start()
    run_id = runner.request("api")
    wait_for(lambda: run_row(store, run_id).status == "failed", "the run to fail")
    assert "planted failure" in (run_row(store, run_id).error or "")
    wait_for(lambda: runner.leases.current() is None, "the lease to be released")


def _explode(description: str, completed: int, total: int) -> None:
    raise RuntimeError("planted failure")


def test_invalid_stored_budget_fails_run(store: Store, make_runner) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(StoredBudget(name="broken", spec={"name": "broken", "amount": -1},
                                 origin="api", version=1, created_at=now, updated_at=now))
    runner = make_runner(RecordingPass())
    runner.start()
    run_id = runner.request("api")
    wait_for(lambda: run_row(store, run_id).status == "failed", "the run to fail")
    assert "broken" in (run_row(store, run_id).error or "")
    wait_for(lambda: runner.leases.current() is None, "the lease to be released")
