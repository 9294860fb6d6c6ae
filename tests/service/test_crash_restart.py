"""Kill -9 of ``costwarden serve`` during a pass, then a restart: the data ends up complete.

The simulator and the service run as subprocesses on loopback, the service on PostgreSQL. The
service is killed once the pass has committed its first ingest batch. After a restart the old
run is marked abandoned and a new pass completes. Its cost facts and alert ids must equal those
of a clean reference pass on a fresh database against the same simulator.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from costwarden.config import Settings
from costwarden.pipeline import run_pass
from costwarden.store import Store
from costwarden.store.budgets import stored_budgets
from costwarden.store.tables import AlertRecord, CostFact, IngestBatch, Run

pytestmark = pytest.mark.postgres

COSTWARDEN = str(Path(sys.executable).with_name("costwarden"))
DEMO_BUDGETS = Path(str(resources.files("costwarden") / "data" / "demo" / "budgets.yaml"))
WAIT_SECONDS = 90.0
HISTORY_DAYS = 45


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}


def wait_until(
    condition: Any, description: str, process: subprocess.Popen[bytes] | None = None
) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"process exited with {process.returncode} waiting for {description}"
            )
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {description}")


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    """The Palette simulator as a subprocess with Palette's rate limits."""
    port = free_port()
    log = open(tmp_path / "simulator.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [COSTWARDEN, "palette-sim", "--port", str(port), "--seed", "7", "--clusters", "12",
         "--history-days", str(HISTORY_DAYS)],
        stdout=log, stderr=subprocess.STDOUT, env=clean_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _simulator_up(url), "the simulator", process)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _simulator_up(url: str) -> bool:
    try:
        httpx.get(f"{url}/v1/users/info", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def palette_settings(simulator: str) -> dict[str, Any]:
    # A low dashboard rate stretches the ingestion, so the kill lands inside the pass.
    return {
        "url": simulator,
        "api_key": "sim-demo-key",
        "history_days": HISTORY_DAYS,
        "dashboard_rate_per_second": 2,
    }


def write_config(path: Path, database_url: str, simulator: str, port: int) -> Path:
    config = {
        "database_url": database_url,
        "budgets_file": str(DEMO_BUDGETS),
        "log_level": "INFO",
        "palette": palette_settings(simulator),
        "service": {
            "port": port,
            "run_on_start": True,
            "schedule": None,
            "lease_seconds": 60,
        },
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as output:
        return subprocess.Popen(
            [COSTWARDEN, "--config", str(config), "--log-json", "-v", "serve"],
            stdout=output, stderr=subprocess.STDOUT, env=clean_env(),
        )


def runs(store: Store) -> list[Run]:
    with store.transaction() as session:
        return list(session.scalars(select(Run).order_by(Run.started_at)))


def batches(store: Store) -> int:
    with store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(IngestBatch)) or 0)


def facts(store: Store) -> dict[str, Decimal]:
    with store.transaction() as session:
        rows = session.execute(select(CostFact.fact_key, CostFact.amount)).all()
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys))
    return {key: Decimal(amount).normalize() for key, amount in rows}


def alert_ids(store: Store) -> list[str]:
    with store.transaction() as session:
        return list(session.scalars(select(AlertRecord.alert_id)))


def test_kill_during_pass_then_restart(
    tmp_path: Path, postgres_url: str, postgres_server: str, simulator: str
) -> None:
    port = free_port()
    config = write_config(tmp_path / "config.yaml", postgres_url, simulator, port)
    log = tmp_path / "serve.log"
    store = Store.open(postgres_url)
    try:
        first = start_serve(config, log)
        try:
            wait_until(lambda: batches(store) >= 1, "the first ingest batch", first)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(20)
        killed = runs(store)
        assert [run.status for run in killed] == ["running"]

        second = start_serve(config, log)
        try:
            wait_until(
                lambda: any(run.status == "succeeded" for run in runs(store)),
                "the pass after the restart",
                second,
            )
        finally:
            second.send_signal(signal.SIGTERM)
            # Uvicorn raises the captured SIGTERM again after its graceful shutdown.
            assert second.wait(30) in (0, -signal.SIGTERM)
        assert "costwarden service stopped" in log.read_text(encoding="utf-8")

        after = {run.id: run for run in runs(store)}
        assert after[killed[0].id].status == "abandoned"
        assert sorted(run.status for run in after.values()) == ["abandoned", "succeeded"]
        served_facts = facts(store)
        served_alerts = alert_ids(store)
        with store.transaction() as session:
            budgets = stored_budgets(session)
    finally:
        store.close()

    reference = _reference_pass(postgres_server, simulator, budgets)
    assert served_facts == reference[0]
    assert len(served_alerts) == len(set(served_alerts))
    assert sorted(served_alerts) == sorted(reference[1])
    assert served_alerts


def _reference_pass(
    postgres_server: str, simulator: str, budgets: list[Any]
) -> tuple[dict[str, Decimal], list[str]]:
    """Run one clean pass on a fresh database against the same simulator."""
    import psycopg

    name = f"reference_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    store = Store.open(url)
    try:
        settings = Settings(database_url=url, palette=palette_settings(simulator))
        run_pass(store, settings, budgets, datetime.now(UTC))
        return facts(store), alert_ids(store)
    finally:
        store.close()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
