"""Quota alerts through the real entry point: ``costwarden run`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from costwarden.errors import ALERTS_FIRED_EXIT_CODE
from costwarden.simulator.server import SimulatorServer

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = {
    "quota": json.loads((REPO / "docs" / "schemas" / "quota-alert.schema.json").read_text()),
    "budget": json.loads((REPO / "docs" / "schemas" / "alert.schema.json").read_text()),
}
AS_OF = "2026-11-15T10:00:00Z"
BUDGETS = """\
version: 1
defaults: {currency: USD, period: monthly, timezone: UTC}
budgets:
  - name: payments-prod-generous
    scope: {cluster: payments-prod}
    amount: 1000000
    thresholds:
      - {type: forecast, percent: 100, probability: 0.8}
"""


def _costwarden(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "costwarden", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**clean, **env},
    )


@pytest.fixture
def cli_env(start_simulator: Callable[..., SimulatorServer], tmp_path: Path) -> dict[str, str]:
    sim = start_simulator(rate_limit_enabled=True)
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    return {
        "COSTWARDEN_PALETTE_URL": sim.url,
        "COSTWARDEN_PALETTE_API_KEY": sim.api_key,
        "COSTWARDEN_BUDGETS_FILE": str(budgets),
        "COSTWARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'costwarden.db'}",
        "COSTWARDEN_ANOMALY_ENABLED": "false",
    }


def test_run_json_includes_quota_alerts(cli_env: dict[str, str]) -> None:
    result = _costwarden("run", "--as-of", AS_OF, "--json", "--fail-on-alert", env=cli_env)

    assert result.returncode == ALERTS_FIRED_EXIT_CODE, result.stderr
    alerts = json.loads(result.stdout)
    quota = [alert for alert in alerts if alert["kind"] == "quota"]
    for alert in alerts:
        schema = SCHEMAS["quota" if alert["kind"] == "quota" else "budget"]
        jsonschema.validate(alert, schema, format_checker=jsonschema.FormatChecker())
    assert {alert["scope"]["description"] for alert in quota} == {
        "namespace payments-prod/ledger",
        "pool ml-training-eks/gpu-training",
    }
    assert all(alert["schema_version"] == "1.0" for alert in quota)
    assert len(alerts) == len(quota)


def test_run_table_shows_quota_breaches(cli_env: dict[str, str]) -> None:
    first = _costwarden("run", "--as-of", AS_OF, "--json", env=cli_env)
    table = _costwarden("run", "--as-of", AS_OF, "--no-ingest", env={**cli_env, "COLUMNS": "160"})

    assert first.returncode == 0, first.stderr
    assert table.returncode == 0, table.stderr
    assert "Quota breaches" in table.stdout
    assert "payments-prod/ledger" in table.stdout
    assert "BREACH SOON" in table.stdout
    assert "2 quota alert(s)" in table.stdout
    ids = {alert["alert_id"] for alert in json.loads(first.stdout)}
    again = _costwarden("run", "--as-of", AS_OF, "--no-ingest", "--json", env=cli_env)
    assert {alert["alert_id"] for alert in json.loads(again.stdout)} == ids


def test_quota_pass_can_be_disabled(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "COSTWARDEN_QUOTA_ENABLED": "false"}

    result = _costwarden("run", "--as-of", AS_OF, "--json", "--fail-on-alert", env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
