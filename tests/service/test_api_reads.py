"""Forecasts, alerts, anomalies, recommendations and runs over the REST API on a real server.

The end-to-end test stores a fleet's cost facts, creates budgets through the API, starts a pass
with POST /runs (the real pass runner and pipeline) and reads what the pass stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from costwarden.domain import ClusterInfo, CostRecord, NamespaceInfo, ProjectInfo
from costwarden.store import Store, upsert_facts, upsert_fleet
from costwarden.store.tables import AnomalyRecord, RecommendationReportRecord, Run

if TYPE_CHECKING:
    from conftest import RunningService

ADMIN_KEY = "admin-secret-key"
READ_KEY = "read-secret-key"
KEYS = [
    {"name": "ops", "key": ADMIN_KEY, "role": "admin"},
    {"name": "viewer", "key": READ_KEY, "role": "read"},
]
PASS_TIMEOUT_SECONDS = 120.0
HISTORY_DAYS = 75


def _fact(day: date, amount: str, namespace: str | None = None) -> CostRecord:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return CostRecord(
        source="palette",
        grain="namespace" if namespace else "cluster",
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=Decimal(amount),
        currency="USD",
        cloud="aws",
        project_uid="p1",
        project_name="platform",
        cluster_uid="c1",
        cluster_name="prod-eu",
        namespace=namespace,
    )


def _seed_fleet(store: Store) -> None:
    """Store a cluster costing 100 a day up to yesterday; namespace web costs 60 of it."""
    today = datetime.now(UTC).date()
    records = []
    for offset in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=offset)
        records += [_fact(day, "100"), _fact(day, "60", "web"), _fact(day, "40", "batch")]
    with store.transaction() as session:
        upsert_fleet(
            session,
            [ProjectInfo("p1", "platform")],
            [ClusterInfo("c1", "prod-eu", "p1", "platform", "aws", labels={"env": "prod"})],
            [NamespaceInfo("c1", "web", {"team": "web"}), NamespaceInfo("c1", "batch", {})],
        )
        upsert_facts(session, records, batch_id="seed")


@pytest.fixture
def service(start_service: Callable[..., RunningService]) -> RunningService:
    return start_service(service={"api_keys": KEYS}, forecast={"sample_paths": 200})


@pytest.fixture
def admin(service: RunningService) -> Iterator[httpx.Client]:
    headers = {"X-API-Key": ADMIN_KEY}
    with httpx.Client(base_url=f"{service.url}/api/v1", headers=headers, timeout=60) as client:
        yield client


@pytest.fixture
def reader(service: RunningService) -> Iterator[httpx.Client]:
    headers = {"X-API-Key": READ_KEY}
    with httpx.Client(base_url=f"{service.url}/api/v1", headers=headers, timeout=60) as client:
        yield client


def _wait_for_run(client: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + PASS_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {PASS_TIMEOUT_SECONDS} s")


def test_pass_results_over_api(
    service: RunningService, admin: httpx.Client, reader: httpx.Client
) -> None:
    _seed_fleet(service.state.store)
    # About 3,000 a month: the actual threshold at 1% is crossed, so an alert fires.
    crossed = {
        "name": "prod",
        "scope": {"cluster": "prod-eu"},
        "amount": 5000,
        "thresholds": [{"type": "actual", "percent": 1, "severity": "critical"}],
    }
    assert admin.post("/budgets", json=crossed).status_code == 201
    roomy = {"name": "web", "scope": {"cluster": "prod-eu", "namespace": "web"}, "amount": 90000}
    assert admin.post("/budgets", json=roomy).status_code == 201

    accepted = admin.post("/runs", json={})
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]
    assert accepted.headers["Location"] == f"/api/v1/runs/{run_id}"
    run = _wait_for_run(reader, run_id)

    assert run["status"] == "succeeded", run["error"]
    assert run["trigger"] == "api"
    assert run["budgets"] == 2
    assert run["duration_seconds"] >= 0
    runs = reader.get("/runs").json()
    assert runs["total"] == 1
    assert runs["items"][0]["id"] == run_id

    forecast = reader.get("/budgets/prod/forecast").json()
    assert forecast["refreshed"] is False
    assert forecast["status"]["run_id"] == run_id
    total = Decimal(forecast["status"]["forecast_total"])
    assert Decimal(forecast["status"]["spend_to_date"]) <= total
    assert reader.get("/budgets/prod").json()["status"]["run_id"] == run_id
    listed = reader.get("/budgets").json()["items"]
    assert listed[0]["status"]["forecast_total"] == forecast["status"]["forecast_total"]

    alerts = reader.get("/alerts", params={"budget": "prod"}).json()
    assert alerts["total"] == 1
    assert alerts["items"][0]["severity"] == "critical"
    alert_id = alerts["items"][0]["alert_id"]
    detail = reader.get(f"/alerts/{alert_id}").json()
    assert detail["payload"]["budget"]["name"] == "prod"
    assert reader.get("/alerts", params={"budget": "web"}).json()["total"] == 0
    assert reader.get("/alerts", params={"severity": "info"}).json()["total"] == 0
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert reader.get("/alerts", params={"since": future}).json()["total"] == 0


def test_forecast_refresh_and_scope(service: RunningService, reader: httpx.Client) -> None:
    _seed_fleet(service.state.store)
    budget = {"name": "web", "scope": {"cluster": "prod-eu", "namespace": "web"}, "amount": 2500}
    headers = {"X-API-Key": ADMIN_KEY}
    httpx.post(f"{service.url}/api/v1/budgets", json=budget, headers=headers)

    stored = reader.get("/budgets/web/forecast")
    fresh = reader.get("/budgets/web/forecast", params={"refresh": "true"})
    scope = reader.get("/forecasts", params={"cluster": "prod-eu", "namespace": "web"})
    empty = reader.get("/forecasts", params={"cluster": "nowhere"})
    invalid = reader.get("/forecasts", params={"labels": "team in (web"})

    assert stored.status_code == 404
    assert "refresh=true" in stored.json()["error"]["message"]
    assert fresh.status_code == 200
    assert fresh.json()["refreshed"] is True
    assert fresh.json()["daily"]
    # 60 a day for the rest of the period; intervals bracket the median.
    period = scope.json()
    assert scope.status_code == 200
    first = period["daily"][0]
    assert first["lo95"] <= first["mean"] <= first["hi95"]
    assert abs(first["mean"] - 60) < 6
    assert Decimal(period["interval"]["lo80"]) <= Decimal(period["forecast_total"])
    assert Decimal(period["forecast_total"]) <= Decimal(period["interval"]["hi80"])
    assert period["forecast_total"] == fresh.json()["status"]["forecast_total"]
    assert empty.json()["problem"] is not None
    assert empty.json()["daily"] == []
    assert invalid.status_code == 422
    assert invalid.json()["error"]["field"] == "query.labels"


def _anomaly(anomaly_id: str, last_day: date, **overrides: Any) -> AnomalyRecord:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "anomaly_id": anomaly_id,
        "scope_kind": "namespace",
        "scope_key": "c1/web",
        "scope_name": "prod-eu/web",
        "cluster_uid": "c1",
        "metric": "cost",
        "kind": "spike",
        "cause": "cost_spike",
        "status": "ongoing",
        "severity": "warning",
        "role": "root",
        "parent_id": None,
        "first_day": last_day - timedelta(days=1),
        "last_day": last_day,
        "unit": "USD",
        "currency": "USD",
        "expected": Decimal("60"),
        "actual": Decimal("240"),
        "impact_per_day": Decimal("180"),
        "impact_total": Decimal("360"),
        "percent": 300.0,
        "score": 9.5,
        "top_contributor": None,
        "payload": {"anomaly_id": anomaly_id},
        "first_seen": now,
        "last_seen": now,
        "run_id": "r1",
    }
    values.update(overrides)
    return AnomalyRecord(**values)


def test_anomalies_and_feedback(
    service: RunningService, admin: httpx.Client, reader: httpx.Client
) -> None:
    last_day = datetime.now(UTC).date() - timedelta(days=1)
    with service.state.store.transaction() as session:
        session.add(_anomaly("a" * 32, last_day))
        session.add(_anomaly("b" * 32, last_day, severity="critical", scope_name="prod-eu"))

    listing = reader.get("/anomalies", params={"severity": "critical"}).json()
    by_scope = reader.get("/anomalies", params={"scope": "prod-eu/web"}).json()
    missing = reader.get("/anomalies/" + "c" * 32)
    refused = reader.post(f"/anomalies/{'a' * 32}/feedback", json={"verdict": "problem"})
    no_reason = admin.post(f"/anomalies/{'a' * 32}/feedback", json={"verdict": "expected"})
    too_early = admin.post(
        f"/anomalies/{'a' * 32}/feedback",
        json={"verdict": "expected", "reason": "load test", "until": "2000-01-01"},
    )
    given = admin.post(
        f"/anomalies/{'a' * 32}/feedback",
        json={"verdict": "expected", "reason": "quarterly load test"},
    )

    assert [item["anomaly_id"] for item in listing["items"]] == ["b" * 32]
    assert by_scope["total"] == 1
    assert by_scope["items"][0]["impact_total"] == "360"
    assert missing.status_code == 404
    assert refused.status_code == 403
    assert no_reason.status_code == 422
    assert "reason" in no_reason.json()["error"]["message"]
    assert too_early.status_code == 400
    assert given.status_code == 201
    feedback = reader.get(f"/anomalies/{'a' * 32}/feedback").json()
    assert [item["reason"] for item in feedback] == ["quarterly load test"]
    assert reader.get(f"/anomalies/{'a' * 32}").json()["payload"] == {"anomaly_id": "a" * 32}


def _item(kind: str, cluster: str, per_month: str) -> dict[str, Any]:
    return {
        "id": f"{kind}-{cluster}",
        "kind": kind,
        "target": {"cluster": cluster},
        "savings": {"per_month": per_month, "per_day": "1", "currency": "USD"},
    }


def test_recommendation_filters(service: RunningService, reader: httpx.Client) -> None:
    assert reader.get("/recommendations").status_code == 404
    items = [
        _item("rightsize_pool", "prod-eu", "900"),
        _item("spot", "prod-eu", "40"),
        _item("rightsize_pool", "dev", "300"),
    ]
    now = datetime.now(UTC)
    with service.state.store.transaction() as session:
        session.add(
            RecommendationReportRecord(
                run_id="old",
                created_at=now - timedelta(days=1),
                source="palette",
                payload={"items": items[:1], "currency": "USD"},
            )
        )
        session.add(
            RecommendationReportRecord(
                run_id="new",
                created_at=now,
                source="palette",
                payload={"items": items, "currency": "USD", "total_per_day": "55.10"},
            )
        )

    latest = reader.get("/recommendations").json()
    by_cluster = reader.get("/recommendations", params={"cluster": "prod-eu"}).json()
    by_kind = reader.get(
        "/recommendations", params={"kind": "rightsize_pool", "min_savings": "500"}
    ).json()
    old = reader.get("/runs/old/recommendations").json()

    assert latest["run_id"] == "new"
    assert latest["total"] == 3
    assert latest["total_per_day"] == "55.10"
    assert [item["id"] for item in by_cluster["items"]] == [
        "rightsize_pool-prod-eu",
        "spot-prod-eu",
    ]
    assert [item["id"] for item in by_kind["items"]] == ["rightsize_pool-prod-eu"]
    assert old["total"] == 1
    assert reader.get("/runs/none/recommendations").status_code == 404


def test_run_request_scope(service: RunningService, admin: httpx.Client) -> None:
    _seed_fleet(service.state.store)
    runner = service.state.runner
    runner.stop(0)  # type: ignore[attr-defined]

    first = admin.post("/runs", json={"clusters": ["prod-eu", "new-cluster"], "days": 5})
    joined = admin.post("/runs", json={"clusters": ["c1"]})
    invalid = admin.post("/runs", json={"days": 90})

    assert first.status_code == 202
    assert joined.json()["run_id"] == first.json()["run_id"]
    assert invalid.status_code == 422
    assert invalid.json()["error"]["field"] == "days"
    with service.state.store.transaction() as session:
        run = session.get(Run, first.json()["run_id"])
        assert run is not None
        assert run.status == "queued"
        assert run.scope is not None
        assert run.scope["cluster_uids"] == ["c1"]
        assert run.scope["cluster_names"] == ["new-cluster", "prod-eu"]
        assert run.scope["days"] == 5
