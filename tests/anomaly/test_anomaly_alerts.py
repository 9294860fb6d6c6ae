"""Anomaly alert payloads against their JSON schema, and how passes record and close anomalies."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from anomaly_helpers import AS_OF, days_before, shop_fleet
from sqlalchemy import select

from costwarden.anomaly import anomaly_payload, evaluate_anomalies, record_anomalies
from costwarden.anomaly.alerts import severity
from costwarden.anomaly.evaluate import keep_stored_ids
from costwarden.config import AnomalySettings, Settings
from costwarden.domain.anomaly import AnomalyReport
from costwarden.store import Store
from costwarden.store.tables import AlertRecord, AnomalyRecord

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "schemas" / "anomaly-alert.schema.json").read_text())


def _pass(
    store: Store, settings: Settings, generated_at=AS_OF, run_id: str = "run-1"
) -> AnomalyReport:  # type: ignore[no-untyped-def]
    with store.transaction() as session:
        report = evaluate_anomalies(session, settings, AS_OF, generated_at)
        record_anomalies(session, run_id, report, settings.anomaly, generated_at)
    return report


@pytest.fixture
def shop_store(sqlite_store: Store) -> Store:
    shop_fleet(sqlite_store)
    return sqlite_store


def test_payloads_match_schema(shop_store: Store) -> None:
    settings = Settings()
    report = _pass(shop_store, settings)
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

    everything = report.anomalies + report.related
    assert len(report.anomalies) == 1
    assert report.related
    for anomaly in everything:
        payload = anomaly_payload(anomaly, settings.anomaly, AS_OF)
        errors = sorted(validator.iter_errors(payload), key=str)
        assert errors == [], errors[0].message if errors else ""


def test_payload_carries_triage_and_contributors(shop_store: Store) -> None:
    settings = Settings()
    anomaly = _pass(shop_store, settings).anomalies[0]

    payload = anomaly_payload(anomaly, settings.anomaly, AS_OF)

    assert payload["kind"] == "anomaly"
    assert payload["anomaly_kind"] == "level_shift"
    assert payload["first_day"] == days_before(5).isoformat()
    assert payload["triage"]["cause"] == "new_namespace"
    assert payload["contributors"][0]["value"] == "promo"
    assert payload["links"]["palette"] == payload["triage"]["link"]
    assert payload["values"]["actual_per_day"] > payload["values"]["expected_per_day"]
    assert payload["impact"]["per_day"] == pytest.approx(
        float(anomaly.impact_per_day or 0), abs=0.01
    )
    assert {driver["name"] for driver in payload["drivers"]} >= {"more_nodes", "new_workloads"}
    assert payload["related"][0]["scope"].startswith(("namespace", "project"))


def test_alert_recorded_like_quota_alerts(shop_store: Store) -> None:
    settings = Settings()
    report = _pass(shop_store, settings)

    with shop_store.transaction() as session:
        alerts = list(session.scalars(select(AlertRecord)))
        stored = {row.anomaly_id: row for row in session.scalars(select(AnomalyRecord))}
    anomaly = report.anomalies[0]
    assert [(row.alert_id, row.kind) for row in alerts] == [
        (anomaly.anomaly_id, "anomaly:cost:new_namespace")
    ]
    assert stored[anomaly.anomaly_id].role == "alert"
    assert stored[anomaly.anomaly_id].expected == anomaly.expected
    assert stored[anomaly.anomaly_id].top_contributor == "namespace promo"
    related = [row for row in stored.values() if row.role == "related"]
    assert related and all(row.parent_id == anomaly.anomaly_id for row in related)


def test_later_pass_keeps_id_and_first_seen(shop_store: Store) -> None:
    settings = Settings()
    first = _pass(shop_store, settings)
    later_time = AS_OF + timedelta(hours=6)
    second = _pass(shop_store, settings, generated_at=later_time, run_id="run-2")

    assert second.anomalies[0].anomaly_id == first.anomalies[0].anomaly_id
    with shop_store.transaction() as session:
        row = session.get(AnomalyRecord, first.anomalies[0].anomaly_id)
        alert = session.get(AlertRecord, first.anomalies[0].anomaly_id)
    assert row is not None and alert is not None
    assert (row.first_seen, row.last_seen, row.run_id) == (AS_OF, later_time, "run-2")
    assert alert.first_seen == AS_OF


def test_moved_first_day_continues_stored_anomaly(shop_store: Store) -> None:
    settings = Settings()
    anomaly = _pass(shop_store, settings).anomalies[0]
    moved = replace(anomaly, anomaly_id="f" * 32, first_day=anomaly.first_day + timedelta(days=1))

    with shop_store.transaction() as session:
        kept = keep_stored_ids(session, [moved], AS_OF + timedelta(days=1))

    assert kept[0].anomaly_id == anomaly.anomaly_id
    assert kept[0].first_seen == AS_OF


def test_absorbed_level_shift_becomes_new_normal(shop_store: Store) -> None:
    anomaly = _pass(shop_store, Settings()).anomalies[0]
    deaf = Settings(anomaly=AnomalySettings(min_impact_per_day=Decimal("100000")))

    report = _pass(shop_store, deaf, generated_at=AS_OF + timedelta(days=1), run_id="run-2")

    assert report.anomalies == ()
    with shop_store.transaction() as session:
        row = session.get(AnomalyRecord, anomaly.anomaly_id)
    assert row is not None
    assert row.status == "new_normal"
    assert row.payload["status"] == "new_normal"


def test_severity_follows_impact_and_cause(shop_store: Store) -> None:
    anomaly = _pass(shop_store, Settings()).anomalies[0]
    impact = anomaly.impact_per_day or Decimal(0)

    assert severity(anomaly, AnomalySettings()) == "warning"
    assert severity(anomaly, AnomalySettings(critical_impact_per_day=impact)) == "critical"
    mining = replace(anomaly, triage=replace(anomaly.triage, cause="cryptomining"))  # type: ignore[type-var]
    assert severity(mining, AnomalySettings()) == "critical"


def test_no_cost_data_gives_empty_report(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as session:
        report = evaluate_anomalies(session, Settings(), AS_OF, AS_OF)

    assert report.anomalies == ()
    assert report.data_end is None
    assert report.notes and "no Palette cost facts" in report.notes[0]


def test_records_on_each_database(store: Store) -> None:
    shop_fleet(store)
    settings = Settings()
    first = _pass(store, settings)
    _pass(store, settings, generated_at=AS_OF + timedelta(hours=1), run_id="run-2")

    with store.transaction() as session:
        rows = {row.anomaly_id: row for row in session.scalars(select(AnomalyRecord))}
        alert = session.get(AlertRecord, first.anomalies[0].anomaly_id)
    row = rows[first.anomalies[0].anomaly_id]
    assert row.impact_per_day == first.anomalies[0].impact_per_day
    assert row.first_seen == AS_OF
    assert row.payload["triage"]["cause"] == "new_namespace"
    assert alert is not None
    assert alert.run_id == "run-2"
    assert len(rows) == 1 + len(first.related)
