"""Approval requests checked again before they run: relabelled clusters, changed policies,
identities of one person, signed links on production, failed runs and edited rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from approval_helpers import (
    approval_settings,
    audit_events,
    open_request,
    pool_recommendation,
    pool_size,
    puts,
    relabel_in_palette,
    request_status,
    seed_cluster,
    write_policy,
)
from pydantic import SecretStr
from sqlalchemy import select

from costwarden.approvals import govern_recommendations
from costwarden.approvals.decisions import decide, retry
from costwarden.approvals.tokens import ApprovalTokenSigner
from costwarden.config import Settings
from costwarden.errors import ApprovalError, SourceError
from costwarden.simulator import SimulatorServer
from costwarden.store import Store
from costwarden.store.tables import ActionRunRecord, ApprovalDecisionRecord, ApprovalRequestRecord

CLUSTER = "ml-training-eks"
POOL = "gpu-training"
DEV = {"env": "dev"}
PROD = {"env": "prod"}


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


def settings_for(sqlite_url: str, sim: SimulatorServer, tmp_path: Path, **overrides: Any
                 ) -> Settings:
    policy_file = write_policy(tmp_path / "policy.yaml")
    policy = {"production_min_approvals": 2, **overrides.pop("policy", {})}
    return approval_settings(sqlite_url, sim, policy_file, policy=policy, **overrides)


def pass_over(store: Store, settings: Settings, items: list[dict[str, Any]]) -> Any:
    return govern_recommendations(store, settings, items, run_id="run-next",
                                  tenant=settings.service.tenant, now=datetime.now(UTC))


def requests_of(store: Store, subject_id: str) -> list[ApprovalRequestRecord]:
    with store.transaction() as session:
        rows = session.scalars(
            select(ApprovalRequestRecord)
            .where(ApprovalRequestRecord.subject_id == subject_id)
            .order_by(ApprovalRequestRecord.created_at)
        ).all()
        session.expunge_all()
        return list(rows)


def with_wrong_palette_key(settings: Settings) -> Settings:
    palette = settings.palette.model_copy(update={"api_key": SecretStr("wrong-key")})
    return settings.model_copy(update={"palette": palette})


def approve(store: Store, settings: Settings, request_id: str, actor: str,
            channel: str = "cli") -> Any:
    return decide(store, settings, request_id=request_id, vote="approve", actor=actor,
                  channel=channel)


def test_palette_relabel_to_prod_does_not_run(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """The cluster became production in Palette after the request; the pass has not stored
    the new labels yet, so only the live read catches it."""
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
    relabel_in_palette(sim, CLUSTER, PROD)

    outcome = approve(store, settings, request_id, "alice")

    assert outcome.status == "superseded"
    assert "Palette cluster metadata" in outcome.message
    assert "env=prod" in outcome.message
    assert request_status(store, request_id) == "superseded"
    assert puts(sim) == []
    assert audit_events(store, request_id)[-1] == "superseded"


def test_pass_supersedes_relabelled_request(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """A pass that stored env=prod supersedes the dev request and opens a production one."""
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, _ = open_request(store, settings, item)
    seed_cluster(store, sim, CLUSTER, PROD)

    report = pass_over(store, settings, [item])

    rows = requests_of(store, item["id"])
    assert report.superseded == 1
    assert report.opened == 1
    assert [row.status for row in rows] == ["superseded", "pending"]
    assert rows[1].production is True
    assert rows[1].required_approvals == 2
    assert rows[1].target["labels"] == PROD
    assert approve(store, settings, rows[1].id, "alice").status == "recorded"
    assert puts(sim) == []
    assert request_status(store, request_id) == "superseded"


def test_pass_supersedes_gone_recommendation(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, _ = open_request(store, settings, item)
    other = pool_recommendation(sim, CLUSTER, "worker-pool", 1)

    report = pass_over(store, settings, [other])

    assert report.superseded == 1
    assert request_status(store, request_id) == "superseded"


def test_production_marker_added_later(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """A production marker policy added after the request was opened stops a single approval,
    and the next pass reopens the request under two required approvals."""
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, _ = open_request(store, settings, item)
    policy_file = Path(settings.policy.paths[0])
    policies = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    policies["policies"].append({"name": "ml-is-production",
                                 "selector": {"clusters": [CLUSTER]}, "production": True})
    policy_file.write_text(yaml.safe_dump(policies), encoding="utf-8")

    outcome = approve(store, settings, request_id, "alice")

    assert outcome.status == "superseded"
    assert "the scope is now production" in outcome.message
    assert puts(sim) == []

    report = pass_over(store, settings, [item])

    [row] = requests_of(store, item["id"])
    assert report.reopened == 1
    assert row.status == "pending"
    assert row.production is True
    assert row.required_approvals == 2
    assert audit_events(store, request_id)[-1] == "reopened"
    assert approve(store, settings, request_id, "alice").status == "recorded"
    assert approve(store, settings, request_id, "bob").status == "executed"
    assert len(puts(sim)) == 1


def test_pass_reopens_pending_request_with_new_groups(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, sim, tmp_path,
                            approvals={"groups": {"sre": ["bob", "carol"]}})
    seed_cluster(store, sim, CLUSTER, DEV)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, _ = open_request(store, settings, item)
    write_policy(Path(settings.policy.paths[0]), approvers=["sre"])

    report = pass_over(store, settings, [item])

    assert report.reopened == 1
    with pytest.raises(ApprovalError, match="not a member"):
        approve(store, settings, request_id, "alice")
    assert approve(store, settings, request_id, "bob").status == "executed"


def test_one_person_counts_once(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """U0ALICE on Slack and alice@example.com on the API are one person."""
    settings = settings_for(
        sqlite_url, sim, tmp_path,
        approvals={"people": {"alice": ["U0ALICE", "alice@example.com"]}},
    )
    seed_cluster(store, sim, CLUSTER, PROD)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))

    first = approve(store, settings, request_id, "U0ALICE", channel="slack:C0FINOPS")
    second = approve(store, settings, request_id, "alice@example.com", channel="api")

    assert first.status == "recorded"
    assert second.status == "recorded"
    assert "1 of 2" in second.message
    assert "repeated by the same person" in second.message
    assert puts(sim) == []
    assert approve(store, settings, request_id, "bob", channel="api").status == "executed"


@pytest.mark.parametrize(("links_count", "expected"), [(False, "recorded"), (True, "executed")])
def test_signed_links_on_production(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path,
    links_count: bool, expected: str,
) -> None:
    settings = settings_for(sqlite_url, sim, tmp_path,
                            approvals={"links_count_for_production": links_count})
    seed_cluster(store, sim, CLUSTER, PROD)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))

    approve(store, settings, request_id, "alice@example.com", channel="link")
    outcome = approve(store, settings, request_id, "bob", channel="api")

    assert outcome.status == expected
    assert len(puts(sim)) == (1 if links_count else 0)


def test_signed_link_counts_off_production(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))

    outcome = approve(store, settings, request_id, "alice@example.com", channel="link")

    assert outcome.status == "executed"


def test_failed_request_retry(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """A wrong Palette key fails the request with a SourceError (exit 4); ``retry`` runs it
    with the recorded approval once the key is right."""
    settings = settings_for(sqlite_url, sim, tmp_path)
    wrong_key = with_wrong_palette_key(settings)
    seed_cluster(store, sim, CLUSTER, DEV)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))

    failed = approve(store, wrong_key, request_id, "alice")

    assert failed.status == "failed"
    assert isinstance(failed.error, SourceError)
    assert failed.error.exit_code == 4
    assert request_status(store, request_id) == "failed"

    retried = retry(store, settings, request_id=request_id, actor="ops")

    assert retried.status == "executed"
    assert len(puts(sim)) == 1
    assert "retried" in audit_events(store, request_id)
    with pytest.raises(ApprovalError, match="only failed requests"):
        retry(store, settings, request_id=request_id, actor="ops")


def test_pass_reopens_failed_request(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """The next pass reopens a failed request with its decisions cleared; a token used before
    stays used."""
    settings = settings_for(sqlite_url, sim, tmp_path)
    wrong_key = with_wrong_palette_key(settings)
    seed_cluster(store, sim, CLUSTER, DEV)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, report = open_request(store, settings, item)
    token = report.approvals[next(iter(report.approvals))]["approve_token"]
    claims = ApprovalTokenSigner(settings.notify.link_secret.get_secret_value()).verify(
        token, datetime.now(UTC)
    )
    failed = decide(store, wrong_key, request_id=request_id, vote="approve", actor="alice",
                    channel="link", claims=claims)
    assert failed.status == "failed"

    reopened = pass_over(store, settings, [item])

    assert reopened.reopened == 1
    assert request_status(store, request_id) == "pending"
    with store.transaction() as session:
        assert session.scalars(select(ApprovalDecisionRecord)).all() == []
    with pytest.raises(ApprovalError, match="already used"):
        decide(store, settings, request_id=request_id, vote="approve", actor="alice",
               channel="link", claims=claims)
    assert approve(store, settings, request_id, "alice").status == "executed"


def test_edited_row_does_not_run(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """Lowering required_approvals in the database does not let one approval run."""
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, PROD)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
    with store.transaction() as session:
        record = session.get(ApprovalRequestRecord, request_id)
        assert record is not None
        assert record.required_approvals == 2
        record.required_approvals = 1

    outcome = approve(store, settings, request_id, "alice")

    assert outcome.status == "failed"
    assert "required_approvals" in outcome.message
    assert "edited" in outcome.message
    assert puts(sim) == []


def test_inserted_vote_does_not_count(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """A decision row written straight into the database has no audit entry: nothing runs."""
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, PROD)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
    with store.transaction() as session:
        session.add(ApprovalDecisionRecord(
            id="forged-vote", request_id=request_id, decision="approve", actor="bob",
            groups=[], channel="cli", token_id=None, decided_at=datetime.now(UTC), detail={},
        ))

    outcome = approve(store, settings, request_id, "alice")

    assert outcome.status == "failed"
    assert "'bob'" in outcome.message
    assert "no audit entry" in outcome.message
    assert puts(sim) == []


def test_cleared_vote_written_back_does_not_count(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """A decision that a reopen cleared keeps its audit entry, but that entry no longer counts."""
    settings = settings_for(sqlite_url, sim, tmp_path,
                            approvals={"groups": {"sre": ["alice", "bob"]}})
    seed_cluster(store, sim, CLUSTER, PROD)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, _ = open_request(store, settings, item)
    assert approve(store, settings, request_id, "bob").status == "recorded"
    with store.transaction() as session:
        [saved] = session.scalars(select(ApprovalDecisionRecord)).all()
        columns = {column.key: getattr(saved, column.key)
                   for column in ApprovalDecisionRecord.__table__.columns}
    write_policy(Path(settings.policy.paths[0]), approvers=["sre"])
    assert pass_over(store, settings, [item]).reopened == 1
    with store.transaction() as session:
        session.add(ApprovalDecisionRecord(**columns))

    outcome = approve(store, settings, request_id, "alice")

    assert outcome.status == "failed"
    assert "no audit entry" in outcome.message
    assert puts(sim) == []


def test_edited_request_is_not_reopened(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)
    request_id, _ = open_request(store, settings, item)
    with store.transaction() as session:
        record = session.get(ApprovalRequestRecord, request_id)
        assert record is not None
        record.status = "superseded"
        record.target = {**record.target, "name": "other-pool"}

    report = pass_over(store, settings, [item])

    assert report.reopened == 0
    assert request_status(store, request_id) == "superseded"
    assert audit_events(store, request_id)[-1] == "not_reopened"


def test_long_actor_name_is_refused(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))

    with pytest.raises(ApprovalError, match="256 characters"):
        approve(store, settings, request_id, "ä" * 256)

    assert approve(store, settings, request_id, "alice").status == "executed"


def test_auto_mode_resizes_pool(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """An auto run pins the whole pool with a dry run first, as an approval request does."""
    settings = settings_for(sqlite_url, sim, tmp_path, policy={"mode": "auto"})
    write_policy(Path(settings.policy.paths[0]), mode="auto")
    seed_cluster(store, sim, CLUSTER, DEV)
    item = pool_recommendation(sim, CLUSTER, POOL, 4)

    first = pass_over(store, settings, [item])
    second = pass_over(store, settings, [item])

    assert first.auto_runs == 1
    assert first.auto_failed == 0
    assert pool_size(sim, CLUSTER, POOL) == 4
    assert len(puts(sim)) == 1
    assert second.auto_runs == 0
    with store.transaction() as session:
        [run] = session.scalars(select(ActionRunRecord)).all()
    assert run.status == "succeeded"


def test_approval_during_running_apply_is_unchanged(
    store: Store, sqlite_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    """Another decision is applying the change: this one answers unchanged and runs nothing."""
    settings = settings_for(sqlite_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
    with store.transaction() as session:
        record = session.get(ApprovalRequestRecord, request_id)
        session.add(ActionRunRecord(
            id="run-in-flight", tenant=record.tenant, run_key=f"{record.params_digest}:apply",
            request_id=request_id, action=record.action, mode="apply", target=record.target,
            params=record.params, status="running", started_at=datetime.now(UTC),
        ))

    outcome = approve(store, settings, request_id, "alice")

    assert outcome.status == "unchanged"
    assert outcome.run_id == "run-in-flight"
    assert "already running" in outcome.message
    assert puts(sim) == []
    assert request_status(store, request_id) != "failed"
