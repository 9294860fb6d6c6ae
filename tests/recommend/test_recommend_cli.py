"""``costwarden recommend`` through the installed entry point, against the seeded Prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import prometheus_data as fleet
from prometheus_fixtures import PrometheusServer
from recommend_expected import RATE_WINDOW_SECONDS

from costwarden.recommend import RECOMMENDERS

END = fleet.END.isoformat()


def _costwarden(*args: str, prometheus_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    if prometheus_url is not None:
        env["COSTWARDEN_PROMETHEUS_URL"] = prometheus_url
        env["COSTWARDEN_PROMETHEUS_RATE_WINDOW_SECONDS"] = str(RATE_WINDOW_SECONDS)
        env["COSTWARDEN_PROMETHEUS_MAX_RETRIES"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "costwarden", "recommend", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_json_array_with_kinds(prometheus_server: PrometheusServer) -> None:
    result = _costwarden("--end", END, "--json", prometheus_url=prometheus_server.url)

    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert isinstance(items, list)
    assert {item["kind"] for item in items} == {
        "gpu-misuse",
        "idle-load-balancers",
        "idle-volumes",
        "node-pool",
        "off-hours-schedule",
        "workload-requests",
    }
    assert items[0]["kind"] == "gpu-misuse"
    assert items[0]["savings"]["per_day"] == "19.8720"
    assert items[0]["api_call"]["method"] == "PUT"


def test_kind_help_lists_every_recommender() -> None:
    result = _costwarden("--help", prometheus_url=None)
    help_text = " ".join(result.stdout.split())

    assert result.returncode == 0, result.stderr
    for name in RECOMMENDERS.names():
        assert name in help_text


def test_kind_option_limits(prometheus_server: PrometheusServer) -> None:
    result = _costwarden(
        "--end", END, "--json", "--kind", "idle-volumes", prometheus_url=prometheus_server.url
    )

    assert result.returncode == 0, result.stderr
    names = sorted(item["target"]["name"] for item in json.loads(result.stdout))
    assert names == ["data-archive-0", "old-export"]


def test_table_output(prometheus_server: PrometheusServer) -> None:
    result = _costwarden("--end", END, prometheus_url=prometheus_server.url)

    assert result.returncode == 0, result.stderr
    assert "gpu-misuse" in result.stdout
    assert "Total without overlap" in result.stdout


def test_missing_prometheus_is_config_error() -> None:
    result = _costwarden("--json", prometheus_url=None)

    assert result.returncode == 2
    assert "COSTWARDEN_PROMETHEUS_URL" in result.stderr
    assert result.stdout == ""


def test_unknown_kind_is_config_error(prometheus_server: PrometheusServer) -> None:
    result = _costwarden("--kind", "rightsizing", prometheus_url=prometheus_server.url)

    assert result.returncode == 2
    assert "unknown recommender 'rightsizing'" in result.stderr


def test_bad_end_is_config_error(prometheus_server: PrometheusServer) -> None:
    result = _costwarden("--end", "yesterday", prometheus_url=prometheus_server.url)

    assert result.returncode == 2
    assert "--end 'yesterday'" in result.stderr


def test_empty_window_warns(prometheus_server: PrometheusServer) -> None:
    result = _costwarden(
        "--end", "2020-01-01T00:00:00Z", "--json", prometheus_url=prometheus_server.url
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert "returned no container, node or volume usage" in " ".join(result.stderr.split())


def test_unknown_cluster_warns(prometheus_server: PrometheusServer) -> None:
    result = _costwarden(
        "--end", END, "--cluster", "nope", "--json", prometheus_url=prometheus_server.url
    )

    assert result.returncode == 0, result.stderr
    assert "for cluster nope" in " ".join(result.stderr.split())
