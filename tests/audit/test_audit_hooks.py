"""Audit entries written by a pass on the simulator and by the delivery worker."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit_helpers import fill
from fakes.webhook_receiver import start
from sqlalchemy import select

from costwarden.audit import record_policy_change, verify
from costwarden.budgets import load_budgets
from costwarden.cli.run import DEMO_AS_OF, DEMO_SEED, demo_budgets_file, demo_calendar_file
from costwarden.config import NotifySettings, PaletteSettings, Settings
from costwarden.notify.channels import build_channels
from costwarden.notify.notice import Notice
from costwarden.notify.worker import DeliveryWorker
from costwarden.pipeline import run_pass
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.simulator.planted import PLANTED_CLUSTER_COUNT
from costwarden.store import Store
from costwarden.store.tables import AuditCheckpointRecord, AuditEntryRecord, OutboxRecord

TENANT = "default"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SIM_HISTORY_DAYS = 70
"""A smaller simulated fleet than the demo's keeps the pass fast; it still raises alerts."""


def entries(store: Store, tenant: str = TENANT) -> list[AuditEntryRecord]:
    with store.transaction() as session:
        found = list(
            session.scalars(
                select(AuditEntryRecord)
                .where(AuditEntryRecord.tenant == tenant)
                .order_by(AuditEntryRecord.seq)
            )
        )
        session.expunge_all()
        return found


def test_pass_records_each_stage(sqlite_url: str, sqlite_store: Store) -> None:
    old = fill(sqlite_store, 2, tenant=TENANT, recorded_at=datetime.now(UTC) - timedelta(days=90))
    simulator = SimulatorServer(
        SimulatorSettings(
            seed=DEMO_SEED, as_of=DEMO_AS_OF, rate_limit_enabled=False,
            history_days=SIM_HISTORY_DAYS, cluster_count=PLANTED_CLUSTER_COUNT,
        )
    )
    with simulator:
        settings = Settings(
            database_url=sqlite_url,
            palette=PaletteSettings(url=simulator.url, api_key=simulator.api_key),
            calendar_file=demo_calendar_file(),
            audit={"retention_days": 30},
        )
        result = run_pass(sqlite_store, settings, load_budgets(demo_budgets_file()), DEMO_AS_OF)

    trail = entries(sqlite_store)
    kinds = Counter(entry.kind for entry in trail)
    assert kinds["ingest"] == len(result.ingest)
    assert kinds["forecast"] == 1
    assert kinds["alert"] == len(result.payloads())
    assert kinds["alert"] > 0
    assert result.recommendations is not None
    assert kinds["recommendation"] == len(result.recommendations.items)
    assert kinds["retention"] == 1

    ingest = next(entry for entry in trail if entry.kind == "ingest")
    assert ingest.detail["rows"]["read"] == result.ingest[0].rows_read
    assert ingest.detail["window"]["end"] == result.ingest[0].window_end.isoformat()
    forecast = next(entry for entry in trail if entry.kind == "forecast")
    assert forecast.detail["series"]["budgets"] == len(result.statuses)
    assert forecast.detail["parameters"]["sample_paths"] == settings.forecast.sample_paths
    assert forecast.detail["model"]["name"]
    budget_alert = result.alerts[0]
    alert = next(entry for entry in trail if entry.subject == f"alert:{budget_alert.alert_id}")
    assert alert.detail["budget_name"] == budget_alert.status.budget.name
    assert alert.detail["probability"] == alert.detail["exceedance_probability"]
    assert alert.detail["window"]["end"]
    assert "contributors" not in alert.detail

    with sqlite_store.transaction() as session:
        checkpoint = session.get(AuditCheckpointRecord, TENANT)
        report = verify(session, TENANT)
    assert checkpoint is not None and checkpoint.seq == old[-1]
    assert report.ok, report.problems[:3]


def _outbox_row(store: Store, alert_id: str, created_at: datetime) -> None:
    notice = Notice(
        alert_id=alert_id, kind="budget", severity="warning", title=f"Budget alert {alert_id}",
        generated_at=created_at,
    ).to_json()
    with store.transaction() as session:
        session.add(
            OutboxRecord(
                id=f"row-{alert_id}", channel="hook", alert_id=alert_id, event="trigger",
                route="test", notices=[notice], status="pending", attempts=0,
                next_attempt_at=created_at, updated_at=created_at, created_at=created_at,
            )
        )


def test_worker_records_sent_and_dead(sqlite_store: Store) -> None:
    now = datetime.now(UTC)
    _outbox_row(sqlite_store, "gone", now - timedelta(seconds=2))
    _outbox_row(sqlite_store, "fine", now - timedelta(seconds=1))

    with start(SECRET) as receiver:
        receiver.respond_next(410)
        settings = NotifySettings(
            channels={"hook": {"type": "webhook", "url": receiver.url, "secret": SECRET}}
        )
        worker = DeliveryWorker(
            sqlite_store, settings, build_channels(settings), rng=random.Random(1),
            audit_tenant="acme",
        )
        try:
            report = worker.run_once()
        finally:
            worker.close()

    assert (report.sent, report.dead) == (1, 1)
    trail = entries(sqlite_store, "acme")
    by_alert = {entry.detail["alert_id"]: entry for entry in trail}
    assert {entry.kind for entry in trail} == {"notification"}
    assert by_alert["fine"].detail["outcome"] == "sent"
    assert by_alert["fine"].detail["channel"] == "hook"
    assert by_alert["fine"].subject == "alert:fine"
    assert by_alert["gone"].detail["outcome"] == "dead"
    assert by_alert["gone"].detail["status"] == 410
    text = json.dumps([entry.detail for entry in trail]) + " ".join(e.summary for e in trail)
    assert SECRET not in text
    assert receiver.url not in text
    with sqlite_store.transaction() as session:
        assert verify(session, "acme").ok


def test_policy_change_recorded_once(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as session:
        first = record_policy_change(session, TENANT, "a" * 64, ["policy/base.yaml"])
        again = record_policy_change(session, TENANT, "a" * 64, ["policy/base.yaml"])
        changed = record_policy_change(session, TENANT, "b" * 64, ["policy/base.yaml"])

    assert (first, again, changed) == (True, False, True)
    trail = entries(sqlite_store)
    assert [entry.detail["previous_digest"] for entry in trail] == [None, "a" * 64]


def test_pass_records_policy_set_once(
    sqlite_url: str, sqlite_store: Store, tmp_path: Path
) -> None:
    policies = tmp_path / "policy"
    policies.mkdir()
    settings = Settings(database_url=sqlite_url, policy={"paths": [str(policies)]})

    run_pass(sqlite_store, settings, [], DEMO_AS_OF, ingest=False)
    run_pass(sqlite_store, settings, [], DEMO_AS_OF, ingest=False)

    recorded = [entry for entry in entries(sqlite_store) if entry.kind == "policy"]
    assert len(recorded) == 1
    assert recorded[0].subject == "policy-set"
    assert len(recorded[0].detail["digest"]) == 64
