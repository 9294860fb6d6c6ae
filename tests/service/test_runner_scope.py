"""Targeted refreshes and the statuses and recommendations a pass stores for the API."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import select

from costwarden.budgets import load_budgets
from costwarden.config import Settings
from costwarden.logging_setup import json_formatter
from costwarden.pipeline import run_pass
from costwarden.service.logs import run_context
from costwarden.service.state import RefreshScope
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings
from costwarden.store import Store
from costwarden.store.tables import (
    BudgetStatusRecord,
    Cluster,
    CostFact,
    RecommendationReportRecord,
    Run,
)

DEMO_BUDGETS = Path(str(resources.files("costwarden") / "data" / "demo" / "budgets.yaml"))
AS_OF = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(
        seed=7, as_of=AS_OF, cluster_count=8, history_days=40, rate_limit_enabled=False
    )
    with SimulatorServer(settings) as server:
        yield server


def settings_for(store_url: str, sim: SimulatorServer) -> Settings:
    return Settings(
        database_url=store_url,
        palette={"url": sim.url, "api_key": sim.api_key, "history_days": 40},
    )


def test_scoped_pass_fetches_named_clusters(
    sqlite_store: Store, sqlite_url: str, sim: SimulatorServer
) -> None:
    settings = settings_for(sqlite_url, sim)
    cluster = sim.state.fleet.clusters[0]
    scope = RefreshScope(cluster_names=(cluster.name,), days=3)

    result = run_pass(sqlite_store, settings, [], AS_OF, run_id="scoped", trigger="webhook",
                      tenant="default", scope=scope)

    assert len(result.ingest) == 1
    with sqlite_store.transaction() as session:
        uids = set(session.scalars(select(CostFact.cluster_uid).distinct()))
        days = set(session.scalars(select(CostFact.day).distinct()))
        clusters = list(session.scalars(select(Cluster.name)))
        run = session.get(Run, "scoped")
    assert uids == {cluster.uid}
    assert clusters == [cluster.name]
    today = AS_OF.date()
    assert days == {today - timedelta(days=offset) for offset in (1, 2, 3)}
    assert run is not None
    assert run.trigger == "webhook"
    assert run.scope == scope.as_json()
    assert run.status == "succeeded"


def test_pass_stores_statuses_and_recommendations(
    sqlite_store: Store, sqlite_url: str, sim: SimulatorServer
) -> None:
    settings = settings_for(sqlite_url, sim)
    budgets = load_budgets(DEMO_BUDGETS)

    result = run_pass(sqlite_store, settings, budgets, AS_OF)

    with sqlite_store.transaction() as session:
        rows = {row.budget: row for row in session.scalars(select(BudgetStatusRecord))}
        report = session.get(RecommendationReportRecord, result.run_id)
    assert set(rows) == {budget.name for budget in budgets}
    for status in result.statuses:
        payload = rows[status.budget.name].payload
        assert payload["run_id"] == result.run_id
        assert Decimal(payload["spend_to_date"]) == status.spent_to_date
        assert payload["period_start"] == status.window.start.isoformat()
        if status.exceedance is None:
            assert payload["forecast_total"] is None
            continue
        assert Decimal(payload["forecast_total"]) == status.exceedance.forecast_total
        assert payload["exceedance_probability"] == status.exceedance.probability
        assert Decimal(payload["interval"]["hi95"]) == status.exceedance.total_hi95
        assert len(payload["thresholds"]) == len(status.budget.thresholds)
        for threshold in payload["thresholds"]:
            assert 0.0 <= threshold["probability"] <= 1.0
    assert report is not None
    assert report.payload["items"] == [
        item.to_dict() for item in result.recommendations.items  # type: ignore[union-attr]
    ]


def test_queued_run_row_is_reused(
    sqlite_store: Store, sqlite_url: str, sim: SimulatorServer
) -> None:
    settings = settings_for(sqlite_url, sim)
    with sqlite_store.transaction() as session:
        session.add(Run(id="queued-1", as_of=AS_OF, started_at=AS_OF, status="queued",
                        trigger="api", tenant="default"))

    result = run_pass(sqlite_store, settings, [], AS_OF, ingest=False, run_id="queued-1",
                      trigger="api", tenant="default")

    with sqlite_store.transaction() as session:
        runs = list(session.scalars(select(Run)))
    assert result.run_id == "queued-1"
    assert [run.id for run in runs] == ["queued-1"]
    assert runs[0].status == "succeeded"
    assert runs[0].trigger == "api"


def test_budget_bound_in_json_logs(
    sqlite_store: Store, sqlite_url: str, sim: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(sqlite_url, sim)
    budgets = load_budgets(DEMO_BUDGETS)
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(json_formatter())
    caplog.set_level(logging.INFO, logger="costwarden")
    logging.getLogger("costwarden").addHandler(handler)
    try:
        with run_context("run-42", "api", "default"):
            run_pass(sqlite_store, settings, budgets, AS_OF, ingest=False)
    finally:
        logging.getLogger("costwarden").removeHandler(handler)

    entries = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert entries
    assert {entry.get("run_id") for entry in entries} == {"run-42"}
    named = {entry["budget"] for entry in entries if "budget" in entry}
    assert named
    assert named <= {budget.name for budget in budgets}
