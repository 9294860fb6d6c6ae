"""Recommendations in a pass of the main job: the run's report and each alert's actions."""

from __future__ import annotations

import json
import socket
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import prometheus_data as fleet
import pytest
from recommend_expected import fleet_settings
from sqlalchemy import select

from costwarden.budgets import parse_budgets
from costwarden.budgets.alerts import alert_payload
from costwarden.config import load_settings
from costwarden.domain import ClusterInfo, CostRecord, NamespaceInfo, ProjectInfo
from costwarden.pipeline import run_pass
from costwarden.store import upsert_facts, upsert_fleet
from costwarden.store.tables import AlertRecord

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "schemas" / "alert.schema.json").read_text()
)
AS_OF = fleet.END + timedelta(hours=6)
CLUSTERS = {"c-prod": fleet.PROD, "c-dev": fleet.DEV}

BUDGETS = f"""
budgets:
  - name: prod-cluster
    scope: {{cluster: {fleet.PROD}}}
    amount: 1000
    thresholds: [{{type: actual, percent: 50}}]
  - name: checkout-namespace
    scope: {{cluster: {fleet.PROD}, namespace: checkout}}
    amount: 100
    thresholds: [{{type: actual, percent: 50}}]
  - name: whole-fleet
    scope: {{}}
    amount: 1000
    thresholds: [{{type: actual, percent: 50}}]
"""


def _facts() -> list[CostRecord]:
    records = []
    day = date(2026, 9, 1)
    while day < AS_OF.date():
        start = datetime.combine(day, datetime.min.time(), AS_OF.tzinfo)
        for uid, name in CLUSTERS.items():
            for grain, namespace, amount in (
                ("cluster", None, "100"),
                ("namespace", "checkout", "40"),
                ("namespace", "batch", "30"),
            ):
                records.append(
                    CostRecord(
                        source="palette",
                        grain=grain,
                        period_start=start,
                        period_end=start + timedelta(days=1),
                        amount=Decimal(amount),
                        currency="USD",
                        cloud="eks" if uid == "c-prod" else "aks",
                        project_uid="p1",
                        project_name="shop",
                        cluster_uid=uid,
                        cluster_name=name,
                        namespace=namespace,
                    )
                )
        day += timedelta(days=1)
    return records


@pytest.fixture
def fleet_store(sqlite_store):
    with sqlite_store.transaction() as session:
        upsert_fleet(
            session,
            [ProjectInfo("p1", "shop")],
            [
                ClusterInfo(uid, name, "p1", "shop", "eks" if uid == "c-prod" else "aks")
                for uid, name in CLUSTERS.items()
            ],
            [
                NamespaceInfo(uid, namespace, {})
                for uid in CLUSTERS
                for namespace in ("checkout", "batch")
            ],
        )
        upsert_facts(session, _facts(), batch_id="test")
    return sqlite_store


def _settings(prometheus_url: str):
    prometheus = fleet_settings(prometheus_url).model_dump()
    return load_settings(
        prometheus=prometheus,
        anomaly={"enabled": False},
        quota={"enabled": False},
        forecast__sample_paths=200,
    )


def _run(store, settings):
    return run_pass(store, settings, parse_budgets(BUDGETS), AS_OF, ingest=False)


def _alert(result, budget):
    return next(alert for alert in result.alerts if alert.status.budget.name == budget)


def test_alert_actions_match_scope(fleet_store, prometheus_server):
    result = _run(fleet_store, _settings(prometheus_server.url))

    outcome = result.recommendations
    assert outcome.source == "prometheus"
    assert outcome.report is not None and outcome.items
    clusters = {item.target.cluster for item in outcome.items}
    assert clusters == {fleet.PROD, fleet.DEV}

    prod = _alert(result, "prod-cluster").actions
    assert prod and all(item.target.cluster == fleet.PROD for item in prod)
    savings = [item.savings.per_day for item in prod]
    assert savings == sorted(savings, reverse=True)
    assert min(savings) > 0
    best_prod = [
        i for i in outcome.items if i.target.cluster == fleet.PROD and i.savings.per_day > 0
    ]
    assert [item.id for item in prod] == [item.id for item in best_prod[:5]]

    checkout = _alert(result, "checkout-namespace").actions
    assert checkout
    assert {(item.target.cluster, item.target.namespace) for item in checkout} == {
        (fleet.PROD, "checkout")
    }

    whole = _alert(result, "whole-fleet").actions
    positive = [item for item in outcome.items if item.savings.per_day > 0]
    assert [item.id for item in whole] == [item.id for item in positive[:5]]


def test_alert_payload_lists_actions_and_is_stored(fleet_store, prometheus_server):
    result = _run(fleet_store, _settings(prometheus_server.url))

    alert = _alert(result, "prod-cluster")
    payload = alert_payload(alert)
    jsonschema.validate(payload, SCHEMA, format_checker=jsonschema.FormatChecker())
    actions = payload["recommended_actions"]
    assert [action["id"] for action in actions] == [item.id for item in alert.actions]
    first = actions[0]
    assert first["savings"]["per_month"] == pytest.approx(float(alert.actions[0].savings.per_month))
    assert first["api_call"] is not None or first["manual_change"] is not None

    with fleet_store.transaction() as session:
        stored = session.scalar(
            select(AlertRecord.payload).where(AlertRecord.alert_id == alert.alert_id)
        )
    assert [action["id"] for action in stored["recommended_actions"]] == [
        action["id"] for action in actions
    ]


def test_alert_actions_limit_and_switch_off(fleet_store, prometheus_server):
    settings = _settings(prometheus_server.url)
    settings.recommend.alert_actions = 2
    limited = _run(fleet_store, settings)
    assert len(_alert(limited, "whole-fleet").actions) == 2

    settings.recommend.in_run = False
    off = _run(fleet_store, settings)
    assert off.recommendations.report is None
    assert "in_run" in off.recommendations.note
    assert all(not alert.actions for alert in off.alerts)


def test_pass_survives_a_prometheus_that_does_not_answer(fleet_store):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = _run(fleet_store, _settings(f"http://127.0.0.1:{closed}"))

    assert result.alerts
    assert result.recommendations.report is None
    assert "Palette API key" in result.recommendations.note
    assert result.recommendations.note.startswith("Prometheus failed")
    assert all(alert_payload(alert)["recommended_actions"] == [] for alert in result.alerts)
