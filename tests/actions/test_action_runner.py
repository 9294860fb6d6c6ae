"""The action runner: guard before every write, one apply per change, audit entries, rollback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from action_helpers import (
    NOW,
    action_settings,
    approval,
    current_pool,
    decision_for,
    pick_pool,
    pool_request,
    writes,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.actions import runner
from costwarden.actions.context import ActionContext
from costwarden.audit.verify import verify
from costwarden.errors import ActionNotAllowedError, StaleStateError
from costwarden.simulator.server import SimulatorServer
from costwarden.store import Store
from costwarden.store.tables import ActionRunRecord, AuditEntryRecord


@pytest.fixture
def session(store: Store) -> Iterator[Session]:
    with Session(store.engine, expire_on_commit=False) as opened:
        yield opened


def resize_request(sim: SimulatorServer, *, production: bool = False):  # type: ignore[no-untyped-def]
    cluster, pool = pick_pool(sim, autoscaling=True)
    labels = {"env": "production" if production else "dev"}
    request = pool_request(
        cluster,
        pool,
        "palette.resize_pool",
        {"size": pool.min_size},
        {"size": pool.size},
        labels=labels,
    )
    return cluster, pool, request


def audit_entries(session: Session, tenant: str) -> list[AuditEntryRecord]:
    query = select(AuditEntryRecord).where(AuditEntryRecord.tenant == tenant)
    return list(session.scalars(query.order_by(AuditEntryRecord.seq)))


def test_apply_runs_once(sim: SimulatorServer, context: ActionContext, session: Session) -> None:
    cluster, pool, request = resize_request(sim)
    decision = decision_for(request)
    votes = [approval(request)]

    first = runner.run(session, request, decision, votes, mode="apply", context=context, now=NOW)
    second = runner.run(session, request, decision, votes, mode="apply", context=context, now=NOW)

    assert first.status == "succeeded"
    assert second.id == first.id
    assert first.run_key == f"{request.digest}:apply"
    assert first.result["undo"]["before"] == {"size": pool.size}
    assert first.result["undo"]["after"] == {"size": pool.min_size}
    assert len(writes(sim, "PUT")) == 1
    assert current_pool(sim, cluster.uid, pool.name).size == pool.min_size
    entries = audit_entries(session, context.tenant)
    assert [entry.kind for entry in entries] == ["action"]
    assert entries[0].detail["run_id"] == first.id
    assert entries[0].detail["digest"] == request.digest
    assert verify(session, context.tenant).problems == ()


def test_production_without_votes_sends_nothing(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    cluster, pool, request = resize_request(sim, production=True)
    decision = decision_for(request, mode="auto", production=False, approvals=0)

    with pytest.raises(ActionNotAllowedError, match="production"):
        runner.run(session, request, decision, [], mode="apply", context=context, now=NOW)

    assert writes(sim) == []
    assert sim.state.stats.requests == 0
    rows = session.scalars(select(ActionRunRecord)).all()
    assert [row.status for row in rows] == ["refused"]
    assert rows[0].run_key.startswith(f"{request.digest}:apply:refused:")
    assert [entry.kind for entry in audit_entries(session, context.tenant)] == ["action"]


def test_refusal_leaves_key_free(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    cluster, pool, request = resize_request(sim, production=True)
    decision = decision_for(request)

    with pytest.raises(ActionNotAllowedError):
        runner.run(session, request, decision, [], mode="apply", context=context, now=NOW)
    record = runner.run(
        session, request, decision, [approval(request)], mode="apply", context=context, now=NOW
    )

    assert record.status == "succeeded"
    assert len(writes(sim, "PUT")) == 1


def test_dry_run_needs_no_approval(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    cluster, pool, request = resize_request(sim, production=True)
    decision = decision_for(request, mode="monitor")

    first = runner.run(session, request, decision, [], mode="dry_run", context=context, now=NOW)
    second = runner.run(session, request, decision, [], mode="dry_run", context=context, now=NOW)

    assert first.status == second.status == "succeeded"
    assert first.id != second.id
    assert first.result["after"]["size"] == pool.min_size
    assert writes(sim) == []


def test_failed_apply_is_recorded(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    cluster, pool = pick_pool(sim, autoscaling=True)
    request = pool_request(
        cluster, pool, "palette.resize_pool", {"size": pool.min_size}, {"size": pool.size + 1}
    )
    decision = decision_for(request)

    with pytest.raises(StaleStateError):
        runner.run(
            session, request, decision, [approval(request)], mode="apply", context=context, now=NOW
        )

    row = session.scalars(select(ActionRunRecord)).one()
    assert row.status == "failed"
    assert row.error.startswith("StaleStateError: ")
    assert row.run_key == f"{request.digest}:apply:failed:{row.id}"
    assert runner.find_by_key(session, runner.run_key(request, "apply")) is None
    assert writes(sim) == []


def test_rollback_after_apply(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    cluster, pool, request = resize_request(sim)
    decision = decision_for(request)
    votes = [approval(request)]
    applied = runner.run(
        session, request, decision, votes, mode="apply", context=context, now=NOW
    )
    rollback = replace(runner.applied_request(session, applied), rollback_of=applied.id)

    record = runner.run(
        session, rollback, decision_for(rollback), [approval(rollback)], mode="rollback",
        context=context, now=NOW,
    )

    assert rollback.digest != request.digest
    assert record.status == "succeeded"
    assert current_pool(sim, cluster.uid, pool.name).size == pool.size
    kinds = [entry.kind for entry in audit_entries(session, context.tenant)]
    assert kinds == ["action", "rollback"]


def test_apply_votes_do_not_roll_back(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    cluster, pool, request = resize_request(sim)
    votes = [approval(request)]
    applied = runner.run(
        session, request, decision_for(request), votes, mode="apply", context=context, now=NOW
    )
    rollback = replace(request, rollback_of=applied.id)

    with pytest.raises(ActionNotAllowedError, match="0 valid"):
        runner.run(
            session, rollback, decision_for(rollback), votes, mode="rollback", context=context,
            now=NOW,
        )
    assert current_pool(sim, cluster.uid, pool.name).size != pool.size


def test_rollback_needs_rollback_request(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    _, _, request = resize_request(sim)

    with pytest.raises(ValueError, match="rollback_of"):
        runner.run(
            session, request, decision_for(request), [approval(request)], mode="rollback",
            context=context, now=NOW,
        )


def test_rollback_without_apply_is_refused(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    cluster, pool, request = resize_request(sim)
    rollback = replace(request, rollback_of="00000000-0000-0000-0000-000000000000")

    with pytest.raises(ActionNotAllowedError, match="is not recorded"):
        runner.run(
            session,
            rollback,
            decision_for(rollback),
            [approval(rollback)],
            mode="rollback",
            context=context,
            now=NOW,
        )
    assert writes(sim) == []


def test_disabled_actions_are_refused(
    sim: SimulatorServer, tmp_path: Path, session: Session
) -> None:
    cluster, pool, request = resize_request(sim)
    settings = action_settings(sim, tmp_path, actions={"enabled": False})

    with (
        ActionContext.from_settings(settings) as context,
        pytest.raises(ActionNotAllowedError, match="actions.enabled"),
    ):
        runner.run(
            session,
            request,
            decision_for(request),
            [approval(request)],
            mode="apply",
            context=context,
            now=NOW,
        )
    assert writes(sim) == []


def test_resolve_stuck_run(sim: SimulatorServer, context: ActionContext, session: Session) -> None:
    cluster, pool, request = resize_request(sim)
    record, claimed = runner._claim(session, request, "apply", context, NOW, None)
    assert claimed

    stuck = runner.list_runs(session, context.tenant, status="running")
    resolved = runner.resolve_stuck(
        session,
        context.tenant,
        record.id[:8],
        status="failed",
        note="pool unchanged in Palette",
        actor="ops@example.com",
        now=NOW,
    )

    assert [row.id for row in stuck] == [record.id]
    assert resolved.status == "failed"
    assert runner.find_by_key(session, runner.run_key(request, "apply")) is None
    assert audit_entries(session, context.tenant)[-1].actor == "ops@example.com"


@pytest.mark.postgres
def test_concurrent_approvals_apply_once(
    sim: SimulatorServer, context: ActionContext, postgres_url: str
) -> None:
    cluster, pool, request = resize_request(sim)
    decision = decision_for(request)
    votes = [approval(request)]
    store = Store.open(postgres_url)
    barrier = threading.Barrier(2)
    results: list[ActionRunRecord] = []
    errors: list[BaseException] = []

    def approve_click() -> None:
        try:
            with Session(store.engine, expire_on_commit=False) as own:
                barrier.wait(timeout=10)
                results.append(
                    runner.run(
                        own, request, decision, votes, mode="apply", context=context, now=NOW
                    )
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=approve_click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    store.close()

    assert errors == []
    assert len({record.id for record in results}) == 1
    assert len(writes(sim, "PUT")) == 1
    assert current_pool(sim, cluster.uid, pool.name).size == pool.min_size


def test_duplicate_of_running_apply_returns_it(
    sim: SimulatorServer, context: ActionContext, session: Session
) -> None:
    _, _, request = resize_request(sim)
    decision = decision_for(request)
    claimed_record, claimed = runner._claim(session, request, "apply", context, NOW, None)
    assert claimed

    duplicate = runner.run(
        session, request, decision, [approval(request)], mode="apply", context=context, now=NOW
    )

    assert duplicate.id == claimed_record.id
    assert duplicate.status == "running"
    assert runner.in_progress(duplicate)
    assert writes(sim, "PUT") == []
    assert audit_entries(session, context.tenant) == []
