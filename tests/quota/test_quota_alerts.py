"""The planted quota breaches of the demo fleet alert, nothing else does, and payloads validate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from quota_helpers import AS_OF, palette_settings
from sqlalchemy import func, select

from costwarden.config import QuotaSettings, Settings
from costwarden.quota import QuotaReport, evaluate_quotas, quota_payload, record_quota_alerts
from costwarden.simulator.server import SimulatorServer
from costwarden.sources.palette.usage import ingest_palette_usage
from costwarden.store import Store
from costwarden.store.tables import AlertRecord

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "schemas" / "quota-alert.schema.json").read_text())


@pytest.fixture(scope="module")
def demo_store(sim: SimulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A SQLite store with the demo fleet's usage and quotas ingested once."""
    path = tmp_path_factory.mktemp("quota") / "costwarden.db"
    store = Store.open(f"sqlite:///{path}")
    ingest_palette_usage(store, palette_settings(sim), QuotaSettings(), as_of=AS_OF)
    yield store
    store.close()


@pytest.fixture(scope="module")
def report(demo_store: Store) -> QuotaReport:
    with demo_store.transaction() as session:
        return evaluate_quotas(session, Settings(), AS_OF, AS_OF)


def _by_scope(report: QuotaReport) -> dict[str, Any]:
    return {alert.projection.target.describe(): alert for alert in report.alerts}


def test_only_planted_breaches_alert(report: QuotaReport) -> None:
    alerts = _by_scope(report)

    assert set(alerts) == {"namespace payments-prod/ledger", "pool ml-training-eks/gpu-training"}
    assert alerts["namespace payments-prod/ledger"].projection.target.resource == "memory"
    assert alerts["pool ml-training-eks/gpu-training"].projection.target.resource == "gpu"
    assert len(report.projections) > 300
    assert report.count("screened") > 200


def test_planted_breach_dates_fall_in_window(report: QuotaReport) -> None:
    alerts = _by_scope(report)
    ledger = alerts["namespace payments-prod/ledger"].projection
    pool = alerts["pool ml-training-eks/gpu-training"].projection
    window_end = AS_OF.date() + timedelta(days=4)

    assert ledger.breach_date is not None
    assert AS_OF.date() + timedelta(days=1) <= ledger.breach_date <= window_end
    assert ledger.probability >= 0.5
    assert ledger.current is not None and ledger.current < ledger.target.limit
    assert pool.breach_date is not None
    assert AS_OF.date() <= pool.breach_date <= window_end
    assert pool.target.limit == 24
    assert pool.current == 23


def test_payloads_match_schema(report: QuotaReport) -> None:
    for alert in report.alerts:
        payload = quota_payload(alert)

        jsonschema.validate(payload, SCHEMA, format_checker=jsonschema.FormatChecker())
        assert payload["kind"] == "quota"
        assert payload["data_window"]["end"] == "2026-11-14"
        assert payload["links"]["palette"].startswith("https://")


def test_pool_payload_carries_sizes(report: QuotaReport) -> None:
    alert = _by_scope(report)["pool ml-training-eks/gpu-training"]

    payload = quota_payload(alert)

    assert payload["pool"] == {
        "instance_type": "g5.2xlarge",
        "size": 23,
        "min_size": 4,
        "max_size": 24,
        "gpus_per_node": 1,
    }
    assert payload["scope"]["cluster"]["name"] == "ml-training-eks"
    assert payload["limit"] == {"value": 24.0, "kind": "autoscaler_max"}
    assert payload["model"]["name"]


def test_recording_twice_keeps_one_row_per_alert(demo_store: Store, report: QuotaReport) -> None:
    later = AS_OF + timedelta(days=1)
    with demo_store.transaction() as session:
        record_quota_alerts(session, "run-1", report.alerts)
    with demo_store.transaction() as session:
        again = evaluate_quotas(session, Settings(), AS_OF, later)
        record_quota_alerts(session, "run-2", again.alerts)

    with demo_store.transaction() as session:
        count = session.scalar(select(func.count()).select_from(AlertRecord))
        records = list(session.scalars(select(AlertRecord)))

    assert count == len(report.alerts)
    assert {record.run_id for record in records} == {"run-2"}
    assert all(record.first_seen == AS_OF for record in records)
    assert all(record.last_seen == later for record in records)


def test_one_day_window_drops_later_breaches(demo_store: Store) -> None:
    settings = Settings(quota={"window_days": 1})

    with demo_store.transaction() as session:
        narrow = evaluate_quotas(session, settings, AS_OF, AS_OF)

    assert narrow.alerts == ()
    statuses = {p.target.describe(): p.status for p in narrow.projections}
    assert statuses["pool ml-training-eks/gpu-training"] == "breach_later"
    assert statuses["namespace payments-prod/ledger"] in ("screened", "breach_later")
