"""Service start-up and shutdown: budget import, readiness, and a pass cut off by shutdown."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from service_helpers import service_settings

from costwarden.pipeline import RunResult, run_pass
from costwarden.service.runner import PassRunner
from costwarden.store import Store
from costwarden.store.budgets import stored_budgets
from costwarden.store.tables import Run

DEMO_BUDGETS = Path(str(resources.files("costwarden") / "data" / "demo" / "budgets.yaml"))


def abandoned_count() -> float:
    value = REGISTRY.get_sample_value(
        "costwarden_passes_total", {"trigger": "api", "status": "abandoned"}
    )
    return value or 0.0


def test_start_imports_budget_file(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service(budgets_file=DEMO_BUDGETS)
    with service.state.store.transaction() as session:
        names = [budget.name for budget in stored_budgets(session)]
    assert len(names) == 6
    assert "ml-training-monthly" in names
    assert httpx.get(f"{service.url}/readyz").status_code == 200


def test_shutdown_abandons_long_pass(start_service, store: Store, database_url: str) -> None:  # type: ignore[no-untyped-def]
    started = threading.Event()
    release = threading.Event()

    def slow_pass(store: Store, settings: Any, budgets: Any, as_of: datetime,
                  **options: Any) -> RunResult:
        def hold(description: str, completed: int, total: int) -> None:
            started.set()
            release.wait(30)

        return run_pass(store, settings, budgets, as_of, ingest=False, progress=hold, **options)

    settings = service_settings(database_url, service={"shutdown_grace_seconds": 0.3})
    runner = PassRunner(settings, store, pass_function=slow_pass, poll_seconds=0.1)
    service = start_service(runner=runner, service={"shutdown_grace_seconds": 0.3})
    before = abandoned_count()
    run_id = runner.request("api")
    assert started.wait(30)

    clock = time.monotonic()
    service.stop()
    elapsed = time.monotonic() - clock
    release.set()

    with store.transaction() as session:
        run = session.get(Run, run_id)
    assert run is not None
    assert run.status == "abandoned"
    assert run.error == "the service shut down during the pass"
    assert runner.leases.current() is None
    assert abandoned_count() == before + 1
    assert elapsed < 15
    assert service.state.ready is False
    assert runner.stop(30)
