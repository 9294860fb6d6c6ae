"""Rolling back an applied pool resize: under the policies, with its own approvals, through the
CLI, the API and the channels, against the Palette simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from approval_helpers import (
    LINK_SECRET,
    approval_settings,
    open_request,
    pool_recommendation,
    pool_size,
    puts,
    relabel_in_palette,
    request_status,
    resize_directly,
    running_service,
    seed_cluster,
    stored_request,
    write_policy,
)
from sqlalchemy import select
from typer.testing import CliRunner

from costwarden.approvals import decide, govern_recommendations
from costwarden.approvals.decisions import DecisionOutcome
from costwarden.approvals.rollback import request_rollback
from costwarden.approvals.tokens import ApprovalTokenSigner
from costwarden.audit import verify
from costwarden.cli import app
from costwarden.config import Settings
from costwarden.errors import ActionNotAllowedError, CostwardenError, StaleStateError
from costwarden.simulator import SimulatorServer
from costwarden.store import Store
from costwarden.store.tables import (
    ActionRunRecord,
    ApprovalDecisionRecord,
    ApprovalRequestRecord,
    AuditEntryRecord,
    OutboxRecord,
)

CLUSTER = "ml-training-eks"
POOL = "gpu-training"
API_KEY = "rollback-admin-key-5b1e0c7d9a"


def production_settings(tmp_path: Path, sim: SimulatorServer, **overrides: Any) -> Settings:
    policy_file = write_policy(tmp_path / "policy.yaml")
    return approval_settings(
        f"sqlite:///{tmp_path / 'rollback.db'}", sim, policy_file,
        policy={"production_min_approvals": 2}, **overrides,
    )


def approve_by(store: Store, settings: Settings, request_id: str,
               people: tuple[str, ...] = ("alice", "bob")) -> DecisionOutcome:
    """Approve ``request_id`` as each of ``people`` and return the last outcome."""
    outcomes = [
        decide(store, settings, request_id=request_id, vote="approve", actor=person,
               channel="cli")
        for person in people
    ]
    return outcomes[-1]


def applied_run(store: Store, settings: Settings, sim: SimulatorServer, new_size: int) -> str:
    """Open the resize request of the stage, approve it with enough people, return the run id."""
    item = pool_recommendation(sim, CLUSTER, POOL, new_size)
    request_id, _ = open_request(store, settings, item)
    outcome = approve_by(store, settings, request_id)
    assert outcome.status == "executed", outcome.message
    assert outcome.run_id is not None
    return outcome.run_id


def requested_rollback(store: Store, settings: Settings, sim: SimulatorServer) -> tuple[str, str]:
    """Apply a resize, ask for its rollback as carol, and return the run and request ids."""
    run_id = applied_run(store, settings, sim, pool_size(sim, CLUSTER, POOL) - 1)
    outcome = request_rollback(store, settings, run_id=run_id, actor="carol")
    assert outcome.request_id is not None
    return run_id, outcome.request_id


@contextmanager
def opened_store(settings: Settings) -> Iterator[Store]:
    store = Store.open(settings.database_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def production(tmp_path: Path, sim: SimulatorServer) -> Iterator[tuple[Settings, Store]]:
    settings = production_settings(tmp_path, sim)
    store = Store.open(settings.database_url)
    seed_cluster(store, sim, CLUSTER, {"env": "production"})
    yield settings, store
    store.close()


def test_production_rollback_needs_own_approvals(
    production: tuple[Settings, Store], sim: SimulatorServer
) -> None:
    settings, store = production
    original = pool_size(sim, CLUSTER, POOL)
    run_id = applied_run(store, settings, sim, original - 1)
    assert pool_size(sim, CLUSTER, POOL) == original - 1

    outcome = request_rollback(store, settings, run_id=run_id[:8], actor="carol",
                               reason="training jobs queue up")

    assert outcome.status == "requested"
    assert outcome.request_id is not None
    record = stored_request(store, outcome.request_id)
    assert record.rollback_of == run_id
    assert record.status == "pending"
    assert record.production is True
    assert record.required_approvals == 2
    assert record.evidence["requested_by"] == "carol"
    assert record.evidence["reason"] == "training jobs queue up"
    with store.transaction() as session:
        votes = session.scalars(
            select(ApprovalDecisionRecord)
            .where(ApprovalDecisionRecord.request_id == outcome.request_id)
        ).all()
    assert votes == []

    first = decide(store, settings, request_id=outcome.request_id, vote="approve",
                   actor="alice", channel="cli")
    assert first.status == "recorded"
    assert pool_size(sim, CLUSTER, POOL) == original - 1

    second = decide(store, settings, request_id=outcome.request_id, vote="approve",
                    actor="bob", channel="cli")
    assert second.status == "executed", second.message
    assert pool_size(sim, CLUSTER, POOL) == original
    assert request_status(store, outcome.request_id) == "executed"
    with store.transaction() as session:
        run = session.get(ActionRunRecord, second.run_id)
        assert run is not None
        assert run.mode == "rollback"
        kinds = session.scalars(select(AuditEntryRecord.kind)).all()
        report = verify(session, settings.service.tenant)
    assert "rollback" in kinds
    assert report.ok


def test_second_rollback_is_refused(
    production: tuple[Settings, Store], sim: SimulatorServer
) -> None:
    settings, store = production
    run_id, request_id = requested_rollback(store, settings, sim)

    again = request_rollback(store, settings, run_id=run_id, actor="dave")
    assert again.request_id == request_id
    assert "already requested" in again.message

    approve_by(store, settings, request_id)
    with pytest.raises(ActionNotAllowedError, match="already rolled back"):
        request_rollback(store, settings, run_id=run_id, actor="carol")


def test_rollback_after_relabel_is_refused(
    production: tuple[Settings, Store], sim: SimulatorServer
) -> None:
    settings, store = production
    run_id = applied_run(store, settings, sim, pool_size(sim, CLUSTER, POOL) - 1)
    seed_cluster(store, sim, CLUSTER, {"env": "production", "team": "ml"})
    outcome = request_rollback(store, settings, run_id=run_id, actor="carol")
    assert outcome.request_id is not None
    assert approve_by(store, settings, outcome.request_id).status == "executed"

    with pytest.raises(ActionNotAllowedError, match="already rolled back"):
        request_rollback(store, settings, run_id=run_id, actor="carol")


def test_palette_relabel_stops_rollback(
    production: tuple[Settings, Store], sim: SimulatorServer
) -> None:
    settings, store = production
    original = pool_size(sim, CLUSTER, POOL)
    run_id = applied_run(store, settings, sim, original - 1)
    relabel_in_palette(sim, CLUSTER, {"env": "production", "tier": "gold"})

    with pytest.raises(ActionNotAllowedError, match="differ from the labels"):
        request_rollback(store, settings, run_id=run_id, actor="carol")
    with store.transaction() as session:
        requests = session.scalars(select(ApprovalRequestRecord.rollback_of)).all()
    assert requests == [None]
    assert pool_size(sim, CLUSTER, POOL) == original - 1


def test_only_succeeded_applies_roll_back(
    production: tuple[Settings, Store], sim: SimulatorServer
) -> None:
    settings, store = production
    _, request_id = requested_rollback(store, settings, sim)
    rolled = approve_by(store, settings, request_id)
    assert rolled.run_id is not None

    with pytest.raises(ActionNotAllowedError, match="only a succeeded apply"):
        request_rollback(store, settings, run_id=rolled.run_id, actor="carol")
    with pytest.raises(CostwardenError, match="not found"):
        request_rollback(store, settings, run_id="ffffffff-none", actor="carol")


def test_rollback_after_pool_moved_fails(
    production: tuple[Settings, Store], sim: SimulatorServer
) -> None:
    settings, store = production
    original = pool_size(sim, CLUSTER, POOL)
    _, request_id = requested_rollback(store, settings, sim)
    resize_directly(sim, CLUSTER, POOL, original - 3)
    writes_before = len(puts(sim))

    failed = approve_by(store, settings, request_id)

    assert failed.status == "failed"
    assert isinstance(failed.error, StaleStateError)
    assert request_status(store, request_id) == "failed"
    assert pool_size(sim, CLUSTER, POOL) == original - 3
    assert len(puts(sim)) == writes_before


def test_pass_keeps_pending_rollback(
    production: tuple[Settings, Store], sim: SimulatorServer
) -> None:
    settings, store = production
    _, request_id = requested_rollback(store, settings, sim)

    other = pool_recommendation(sim, CLUSTER, "worker-pool", 1)
    govern_recommendations(store, settings, [other], run_id="run-later",
                           tenant=settings.service.tenant, now=datetime.now(UTC))

    assert request_status(store, request_id) == "pending"


def test_auto_mode_rolls_back_at_once(tmp_path: Path, sim: SimulatorServer) -> None:
    policy_file = write_policy(tmp_path / "policy.yaml", mode="approve")
    settings = approval_settings(f"sqlite:///{tmp_path / 'auto.db'}", sim, policy_file,
                                 policy={"mode": "auto"})
    with opened_store(settings) as store:
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        original = pool_size(sim, CLUSTER, POOL)
        item = pool_recommendation(sim, CLUSTER, POOL, original - 1)
        request_id, _ = open_request(store, settings, item)
        applied = decide(store, settings, request_id=request_id, vote="approve", actor="alice",
                         channel="cli")
        assert applied.run_id is not None

        write_policy(policy_file, mode="auto")
        outcome = request_rollback(store, settings, run_id=applied.run_id, actor="carol")

        assert outcome.status == "executed", outcome.message
        assert outcome.request_id is None
        assert pool_size(sim, CLUSTER, POOL) == original
        with store.transaction() as session:
            rows = session.scalars(select(ApprovalRequestRecord.id)).all()
        assert rows == [request_id]


def test_monitor_mode_refuses_rollback(
    production: tuple[Settings, Store], sim: SimulatorServer, tmp_path: Path
) -> None:
    settings, store = production
    original = pool_size(sim, CLUSTER, POOL)
    run_id = applied_run(store, settings, sim, original - 1)
    write_policy(tmp_path / "policy.yaml", mode="monitor")

    with pytest.raises(ActionNotAllowedError, match="monitor mode"):
        request_rollback(store, settings, run_id=run_id, actor="carol")
    assert pool_size(sim, CLUSTER, POOL) == original - 1


def test_relabelled_production_needs_production_approvals(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    settings = production_settings(tmp_path, sim)
    with opened_store(settings) as store:
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        item = pool_recommendation(sim, CLUSTER, POOL, pool_size(sim, CLUSTER, POOL) - 1)
        request_id, _ = open_request(store, settings, item)
        applied = decide(store, settings, request_id=request_id, vote="approve", actor="alice",
                         channel="cli")
        assert applied.run_id is not None
        seed_cluster(store, sim, CLUSTER, {"env": "production"})

        outcome = request_rollback(store, settings, run_id=applied.run_id, actor="carol")

        assert outcome.request_id is not None
        record = stored_request(store, outcome.request_id)
        assert record.production is True
        assert record.required_approvals == 2


def test_rollback_notice_token_decides(tmp_path: Path, sim: SimulatorServer) -> None:
    notify = {
        "channels": {"hooks": {"type": "webhook", "url": "http://127.0.0.1:9/hook",
                               "secret": "whsec_" + "A" * 43 + "="}},
        "routes": [{"name": "rollbacks", "kinds": ["rollback"], "channels": ["hooks"]}],
    }
    settings = production_settings(tmp_path, sim, notify=notify,
                                   approvals={"links_count_for_production": True})
    with opened_store(settings) as store:
        seed_cluster(store, sim, CLUSTER, {"env": "production"})
        original = pool_size(sim, CLUSTER, POOL)
        run_id = applied_run(store, settings, sim, original - 1)

        outcome = request_rollback(store, settings, run_id=run_id, actor="carol")

        with store.transaction() as session:
            rows = session.scalars(select(OutboxRecord)).all()
            notices = [notice for row in rows for notice in row.notices]
        assert [row.channel for row in rows] == ["hooks"]
        assert notices[0]["kind"] == "rollback"
        approval = notices[0]["approval"]
        assert approval["request_id"] == outcome.request_id
        claims = ApprovalTokenSigner(LINK_SECRET).verify(approval["approve_token"],
                                                         datetime.now(UTC))
        for person in ("alice", "bob"):
            decided = decide(store, settings, request_id=claims.request_id, vote="approve",
                             actor=person, channel="link", claims=claims,
                             per_actor_token=True)
        assert decided.status == "executed", decided.message
        assert pool_size(sim, CLUSTER, POOL) == original


def test_cli_rollback(sim: SimulatorServer, tmp_path: Path) -> None:
    policy_file = write_policy(tmp_path / "policy.yaml")
    config: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'cli.db'}",
        "palette": {"url": sim.url, "api_key": sim.api_key, "max_retries": 1,
                    "backoff_base_seconds": 0, "backoff_max_seconds": 0},
        "policy": {"paths": [str(policy_file)], "mode": "approve",
                   "production_min_approvals": 2},
        "notify": {"link_secret": LINK_SECRET},
    }
    path = tmp_path / "costwarden.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = Settings(**config)
    with opened_store(settings) as store:
        seed_cluster(store, sim, CLUSTER, {"env": "production"})
        run_id = applied_run(store, settings, sim, pool_size(sim, CLUSTER, POOL) - 1)

    result = CliRunner().invoke(app, ["--config", str(path), "approvals", "rollback",
                                      run_id[:8], "--as", "carol", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["status"] == "requested"

    listed = CliRunner().invoke(app, ["--config", str(path), "approvals", "list"])
    assert listed.exit_code == 0
    assert "(rollback)" in listed.stdout

    unknown = CliRunner().invoke(app, ["--config", str(path), "approvals", "rollback",
                                       "ffffffff-none", "--as", "carol"])
    assert unknown.exit_code == 2
    assert "not found" in unknown.output


def test_api_rollback(sim: SimulatorServer, tmp_path: Path) -> None:
    keys = [{"name": "alice", "key": API_KEY, "role": "admin"}]
    settings = production_settings(tmp_path, sim, service={"api_keys": keys})
    with opened_store(settings) as store:
        seed_cluster(store, sim, CLUSTER, {"env": "production"})
        run_id = applied_run(store, settings, sim, pool_size(sim, CLUSTER, POOL) - 1)

        with running_service(settings, store) as url, httpx.Client(
            base_url=f"{url}/api/v1", headers={"X-API-Key": API_KEY}, timeout=30
        ) as http:
            response = http.post(f"/actions/runs/{run_id}/rollback", json={"reason": "latency"})
            missing = http.post("/actions/runs/ffffffff/rollback")
            again = http.post(f"/actions/runs/{run_id}/rollback")
            anonymous = httpx.post(f"{url}/api/v1/actions/runs/{run_id}/rollback")

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["outcome"] == "requested"
    assert body["request"]["rollback_of"] == run_id
    assert body["request"]["required_approvals"] == 2
    assert body["request"]["evidence"]["requested_by"] == "alice"
    assert missing.status_code == 404
    assert again.status_code == 202
    assert again.json()["request"]["id"] == body["request"]["id"]
    assert anonymous.status_code == 401
