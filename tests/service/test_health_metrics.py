"""Per-budget gauges and pass metrics on /metrics after a pass against the Palette simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings
from costwarden.store.budgets import delete_budget
from costwarden.store.tables import BudgetStatusRecord, Run

DEMO_BUDGETS = Path(str(resources.files("costwarden") / "data" / "demo" / "budgets.yaml"))
AS_OF = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(
        seed=7, as_of=AS_OF, cluster_count=8, history_days=45, rate_limit_enabled=False
    )
    with SimulatorServer(settings) as server:
        yield server


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def wait_for_run(store, run_id: str) -> Run:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with store.transaction() as session:
            run = session.get(Run, run_id)
        if run is not None and run.status not in ("queued", "running"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish within 60 s")


def test_budget_gauges_match_statuses(start_service, sim: SimulatorServer) -> None:  # type: ignore[no-untyped-def]
    service = start_service(
        budgets_file=DEMO_BUDGETS,
        palette={"url": sim.url, "api_key": sim.api_key, "history_days": 45},
    )
    store = service.state.store
    run = wait_for_run(store, service.state.runner.request("api"))
    assert run.status == "succeeded"

    with store.transaction() as session:
        statuses = {row.budget: row.payload for row in session.scalars(select(BudgetStatusRecord))}
    assert len(statuses) == 6
    metrics = samples(service.url)

    checked = 0
    for name, status in statuses.items():
        assert status["run_id"] == run.id
        spend = metrics[("costwarden_budget_spend_to_date",
                         (("budget", name), ("currency", status["currency"])))]
        assert spend == pytest.approx(float(status["spend_to_date"]))
        limit = metrics[("costwarden_budget_limit",
                         (("budget", name), ("currency", status["currency"])))]
        assert limit == pytest.approx(float(status["amount"]))
        if status["forecast_total"] is None:
            continue
        checked += 1
        forecast = metrics[("costwarden_budget_forecast_total",
                            (("budget", name), ("currency", status["currency"])))]
        assert forecast == pytest.approx(float(status["forecast_total"]))
        probability = metrics[("costwarden_budget_exceedance_probability", (("budget", name),))]
        assert probability == pytest.approx(status["exceedance_probability"])
        days_key = ("costwarden_budget_days_to_breach", (("budget", name),))
        if status["days_to_breach"] is None:
            assert days_key not in metrics
        else:
            assert metrics[days_key] == status["days_to_breach"]
    assert checked >= 4


def test_pass_and_palette_counters(start_service, sim: SimulatorServer) -> None:  # type: ignore[no-untyped-def]
    service = start_service(
        budgets_file=DEMO_BUDGETS,
        palette={"url": sim.url, "api_key": sim.api_key, "history_days": 45},
    )
    before = samples(service.url)
    search = ("costwarden_palette_api_calls_total",
              (("endpoint", "/v1/dashboard/spectroclusters/search"), ("status", "200")))
    succeeded = ("costwarden_passes_total", (("status", "succeeded"), ("trigger", "api")))

    run = wait_for_run(service.state.store, service.state.runner.request("api"))
    assert run.status == "succeeded"
    after = samples(service.url)

    assert after[search] > before.get(search, 0)
    assert after[succeeded] == before.get(succeeded, 0) + 1
    assert after[("costwarden_pass_running", ())] == 0
    namespaces = [key for key in after if key[0] == "costwarden_palette_api_calls_total"
                  and ("endpoint", "/v1/dashboard/spectroclusters/{uid}/workloads/namespace")
                  in key[1]]
    assert namespaces


def test_deleted_budget_gauges_removed(start_service, sim: SimulatorServer) -> None:  # type: ignore[no-untyped-def]
    service = start_service(
        budgets_file=DEMO_BUDGETS,
        palette={"url": sim.url, "api_key": sim.api_key, "history_days": 45},
    )
    store = service.state.store
    wait_for_run(store, service.state.runner.request("api"))
    key = ("costwarden_budget_limit", (("budget", "ml-training-monthly"), ("currency", "USD")))
    assert key in samples(service.url)

    with store.transaction() as session:
        assert delete_budget(session, "ml-training-monthly")
    wait_for_run(store, service.state.runner.request("api"))

    metrics = samples(service.url)
    assert key not in metrics
    assert ("costwarden_budget_exceedance_probability",
            (("budget", "ml-training-monthly"),)) not in metrics
