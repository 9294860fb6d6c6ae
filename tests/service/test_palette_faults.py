"""A pass against a simulator that returns 429 or 503 on a third of the calls."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from service_helpers import service_settings

from costwarden.logging_setup import json_formatter
from costwarden.service.app import import_budget_file
from costwarden.service.runner import PassRunner
from costwarden.service.state import ServiceState
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings
from costwarden.store import Store
from costwarden.store.tables import Run

DEMO_BUDGETS = Path(str(resources.files("costwarden") / "data" / "demo" / "budgets.yaml"))
AS_OF = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def faulty_sim() -> Iterator[SimulatorServer]:
    """Palette's own rate limits, plus a 429 or a 503 on a third of the calls."""
    settings = SimulatorSettings(
        seed=11,
        as_of=AS_OF,
        cluster_count=8,
        history_days=30,
        fault_rate=0.33,
        fault_statuses=(429, 503),
    )
    with SimulatorServer(settings) as server:
        yield server


def retries(reason: str) -> float:
    total = 0.0
    for family in REGISTRY.collect():
        if family.name != "costwarden_palette_api_retries":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["reason"] == reason:
                total += sample.value
    return total


def test_pass_completes_despite_faults(
    sqlite_store: Store, sqlite_url: str, faulty_sim: SimulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = service_settings(
        sqlite_url,
        budgets_file=DEMO_BUDGETS,
        palette={
            "url": faulty_sim.url,
            "api_key": faulty_sim.api_key,
            "history_days": 30,
            "max_retries": 8,
            "backoff_base_seconds": 0.05,
            "backoff_max_seconds": 0.5,
        },
    )
    runner = PassRunner(settings, sqlite_store, poll_seconds=0.1)
    import_budget_file(ServiceState(settings, sqlite_store, runner))
    before_429, before_5xx = retries("429"), retries("5xx")

    caplog.set_level(logging.WARNING, logger="costwarden.sources.palette.client")
    lines = io.StringIO()
    json_handler = logging.StreamHandler(lines)
    json_handler.setFormatter(json_formatter())
    client_logger = logging.getLogger("costwarden.sources.palette.client")
    client_logger.addHandler(json_handler)
    runner.start()
    try:
        run_id = runner.request("api")
        run = _wait(sqlite_store, run_id)
    finally:
        runner.stop(30)
        client_logger.removeHandler(json_handler)

    assert run.status == "succeeded", run.error
    stats = faulty_sim.state.stats
    assert stats.faults > 10
    assert stats.rate_limited == 0
    assert retries("429") > before_429
    assert retries("5xx") > before_5xx
    retry_lines = [
        record.getMessage() for record in caplog.records if "; retry " in record.getMessage()
    ]
    assert any("HTTP 429" in line for line in retry_lines)
    assert any("HTTP 503" in line for line in retry_lines)
    assert len(retry_lines) == retries("429") + retries("5xx") - before_429 - before_5xx
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert logged
    assert {entry["run_id"] for entry in logged} == {run_id}
    assert {entry["trigger"] for entry in logged} == {"api"}


def _wait(store: Store, run_id: str) -> Run:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with store.transaction() as session:
            run = session.get(Run, run_id)
        assert run is not None
        if run.status not in ("queued", "running"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish within 120 s")
