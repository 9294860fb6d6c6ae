"""``costwarden recommend --json`` with a Palette API key: the simulator's prices and pools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import prometheus_data as fleet
import pytest
from prometheus_fixtures import PrometheusServer
from recommend_expected import RATE_WINDOW_SECONDS

from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings

END = fleet.END.isoformat()
UI = "https://console.example/projects/{project_uid}/clusters/{cluster_uid}"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    as_of = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
    settings = SimulatorSettings(seed=7, as_of=as_of, cluster_count=12, history_days=20)
    with SimulatorServer(settings) as server:
        yield server


def _recommend(prometheus_url: str, sim: SimulatorServer, *args: str) -> list[dict]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    env.update(
        {
            "COSTWARDEN_PROMETHEUS_URL": prometheus_url,
            "COSTWARDEN_PROMETHEUS_RATE_WINDOW_SECONDS": str(RATE_WINDOW_SECONDS),
            "COSTWARDEN_PROMETHEUS_MAX_RETRIES": "0",
            "COSTWARDEN_PALETTE_URL": sim.url,
            "COSTWARDEN_PALETTE_API_KEY": sim.api_key,
            "COSTWARDEN_PALETTE_MAX_RETRIES": "0",
            "COSTWARDEN_PALETTE_UI_URL_TEMPLATE": UI,
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "costwarden", "recommend", "--end", END, "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    items: list[dict] = json.loads(result.stdout)
    return items


def test_palette_prices_in_json(prometheus_server: PrometheusServer, sim: SimulatorServer) -> None:
    """prod-eks's GPU swap is priced from the simulator, whose on-demand prices are the lists."""
    items = _recommend(prometheus_server.url, sim, "--kind", "gpu-misuse")

    assert [item["kind"] for item in items] == ["gpu-misuse"]
    gpu = items[0]
    assert gpu["savings"]["per_day"] == "19.8720"
    sources = [price["source"] for price in gpu["savings"]["prices"]]
    assert sources
    assert all(source.startswith("Palette rate API") for source in sources)


def test_unmatched_pools_keep_placeholders(
    prometheus_server: PrometheusServer, sim: SimulatorServer
) -> None:
    """The seeded Prometheus clusters have no Palette machine pool of the same name."""
    items = _recommend(prometheus_server.url, sim, "--kind", "gpu-misuse")

    assert (
        items[0]["api_call"]["path"] == "/v1/cloudconfigs/{cloudType}/{configUid}/machinePools/gpu"
    )
    assert items[0]["ui_link"] is None
