"""With actions.ticket_channel set, a pass proposes the ticket action for every recommendation,
and the policies decide it: tickets open once in the fake Jira, or wait for approval."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from approval_helpers import (
    approval_settings,
    pool_recommendation,
    pool_size,
    seed_cluster,
)
from fakes.jira import FakeJira
from pydantic import ValidationError
from sqlalchemy import select

from costwarden.approvals import GovernanceReport, govern_recommendations
from costwarden.config import Settings
from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.notify.build import recommendation_alert_id
from costwarden.simulator import SimulatorServer
from costwarden.store import Store
from costwarden.store.tables import ActionRunRecord, ApprovalRequestRecord

CLUSTER = "ml-training-eks"
POOL = "gpu-training"
JIRA_CHANNEL = "finops-jira"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


def workload_recommendation() -> dict[str, Any]:
    """Return a rightsizing recommendation of a deployment, which no action applies."""
    recommendation = Recommendation(
        kind="rightsizing",
        title=f"Lower the CPU request of {CLUSTER}/training/api from 2 to 1 core",
        target=Target(cluster=CLUSTER, kind="Deployment", name="api", namespace="training"),
        before={"cpu": "2"},
        after={"cpu": "1"},
        savings=Savings(per_day=Decimal("3.10"), currency="USD", method="test price"),
        confidence="high",
        risk="low",
        risk_note="p95 CPU is 0.4 cores",
        effort="low",
        reversible=True,
        resources=frozenset({f"workload:{CLUSTER}/training/Deployment/api"}),
        manual_change="Set resources.requests.cpu of deployment api to 1",
    )
    return recommendation.to_dict()


def ticket_settings(tmp_path: Path, sim: SimulatorServer, jira: FakeJira, ticket_mode: str
                    ) -> Settings:
    actions = [
        {"action": "palette.resize_pool", "mode": "approve"},
        {"action": "ticket", "mode": ticket_mode},
    ]
    policy = {"name": "tickets", "actions": actions}
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump({"policies": [policy]}), encoding="utf-8")
    return approval_settings(
        f"sqlite:///{tmp_path / 'tickets.db'}", sim, policy_file,
        policy={"mode": "auto"},
        notify={"channels": {JIRA_CHANNEL: jira.channel_options()}},
        actions={"ticket_channel": JIRA_CHANNEL},
    )


@contextmanager
def ticket_store(tmp_path: Path, sim: SimulatorServer, jira: FakeJira, ticket_mode: str
                 ) -> Iterator[tuple[Settings, Store]]:
    """Yield ticket settings and their store, with the cluster stored as a dev cluster."""
    settings = ticket_settings(tmp_path, sim, jira, ticket_mode)
    store = Store.open(settings.database_url)
    try:
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        yield settings, store
    finally:
        store.close()


def run_pass(store: Store, settings: Settings, items: list[dict[str, Any]]) -> GovernanceReport:
    return govern_recommendations(store, settings, items, run_id="run-test",
                                  tenant=settings.service.tenant, now=datetime.now(UTC))


def test_auto_tickets_open_once(tmp_path: Path, sim: SimulatorServer, jira: FakeJira) -> None:
    with ticket_store(tmp_path, sim, jira, "auto") as (settings, store):
        pool_item = pool_recommendation(sim, CLUSTER, POOL, pool_size(sim, CLUSTER, POOL) - 1)
        items = [pool_item, workload_recommendation()]

        first = run_pass(store, settings, items)
        second = run_pass(store, settings, items)
        with store.transaction() as session:
            actions = session.scalars(select(ApprovalRequestRecord.action)).all()

    summaries = sorted(issue.fields["summary"] for issue in jira.issues.values())
    assert summaries == sorted(item["title"] for item in items)
    assert first.auto_runs == 2
    assert second.auto_runs == 0
    assert len(jira.issues) == 2
    assert actions == ["palette.resize_pool"]
    assert first.approvals[recommendation_alert_id(pool_item["id"])]["action"] == (
        "palette.resize_pool"
    )


def test_reworded_recommendation_keeps_ticket(
    tmp_path: Path, sim: SimulatorServer, jira: FakeJira
) -> None:
    with ticket_store(tmp_path, sim, jira, "auto") as (settings, store):
        item = workload_recommendation()
        other = {**workload_recommendation(), "id": "0000000000000b02",
                 "target": {**item["target"], "name": "worker"}}
        reworded = {**item, "title": item["title"] + " (p95 CPU now 0.38 cores)"}

        first = run_pass(store, settings, [item, other])
        second = run_pass(store, settings, [reworded, other])

    assert first.auto_runs == 2
    assert second.auto_runs == 0
    assert len(jira.issues) == 2


def test_jira_outage_keeps_pass(
    tmp_path: Path, sim: SimulatorServer, jira: FakeJira
) -> None:
    with ticket_store(tmp_path, sim, jira, "auto") as (settings, store):
        items = [workload_recommendation()]
        jira.fail_next(401, count=20)

        down = run_pass(store, settings, items)
        jira.failures.clear()
        recovered = run_pass(store, settings, items)
        with store.transaction() as session:
            statuses = sorted(session.scalars(select(ActionRunRecord.status)).all())

    assert down.auto_runs == 0
    assert recovered.auto_runs == 1
    assert len(jira.issues) == 1
    assert statuses == ["failed", "succeeded"]


def test_approve_mode_ticket_waits(tmp_path: Path, sim: SimulatorServer, jira: FakeJira) -> None:
    with ticket_store(tmp_path, sim, jira, "approve") as (settings, store):
        item = workload_recommendation()

        report = run_pass(store, settings, [item])
        with store.transaction() as session:
            record = session.scalars(select(ApprovalRequestRecord)).one()
            session.expunge(record)

    assert report.opened == 1
    assert record.action == "ticket"
    assert record.target["kind"] == "namespace"
    assert record.target["namespace"] == "training"
    assert record.params["channel"] == JIRA_CHANNEL
    assert record.params["description"] == "Set resources.requests.cpu of deployment api to 1"
    assert jira.issues == {}
    assert report.approvals[recommendation_alert_id(item["id"])]["action"] == "ticket"


@pytest.mark.parametrize(("channels", "message"), [
    ({}, "not defined in notify.channels"),
    ({"finops-jira": {"type": "webhook", "url": "https://hooks.example.com/a",
               "secret": "whsec_" + "A" * 43 + "="}}, "of type webhook"),
])
def test_ticket_channel_must_be_ticket_type(channels: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({"notify": {"channels": channels},
                                 "actions": {"ticket_channel": "finops-jira"}})
