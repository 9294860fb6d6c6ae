"""``costwarden run --calendar`` through the real entry point, against the Palette simulator."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from costwarden.simulator import SimulatorServer, SimulatorSettings

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "schemas" / "alert.schema.json").read_text())
BUDGETS = REPO / "examples" / "budgets.yaml"
CALENDAR = REPO / "examples" / "calendar.ics"
AS_OF = "2026-11-15T10:00:00Z"


def _costwarden(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "costwarden", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**clean, "COLUMNS": "200", **(env or {})},
    )


def _forecast_alert(alerts: list[dict], budget: str) -> dict:
    forecast_alerts = [alert for alert in alerts if alert["kind"] == "budget_forecast"]
    return next(alert for alert in forecast_alerts if alert["budget"]["name"] == budget)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """Ingest the simulated fleet once with the example calendar; return the database and the
    budget alerts."""
    database = f"sqlite:///{tmp_path_factory.mktemp('calendar-cli') / 'costwarden.db'}"
    # A small fleet keeps the test fast; the two planted clusters are always part of it.
    fleet = SimulatorSettings(seed=7, as_of=AS_OF, cluster_count=8, history_days=100)
    with SimulatorServer(fleet) as simulator:
        env = {"COSTWARDEN_PALETTE_URL": simulator.url,
               "COSTWARDEN_PALETTE_API_KEY": simulator.api_key}
        result = _costwarden("--database-url", database, "run", "--budgets", str(BUDGETS),
                             "--as-of", AS_OF, "--calendar", str(CALENDAR), "--json", env=env)
    assert result.returncode == 0, result.stderr
    alerts = [alert for alert in json.loads(result.stdout) if alert["kind"].startswith("budget_")]
    return database, alerts


def test_json_alert_carries_scheduled_runs(first_run):
    _, alerts = first_run

    for alert in alerts:
        jsonschema.validate(alert, SCHEMA, format_checker=jsonschema.FormatChecker())
    overrun = _forecast_alert(alerts, "ml-training-monthly")
    scheduled = overrun["forecast"]["scheduled"]
    # 192 node-hours of g5.2xlarge at 1.212 USD, on the two Saturdays left in November.
    assert [o["start"] for o in scheduled["occurrences"]] == [
        "2026-11-21T07:00:00Z", "2026-11-28T07:00:00Z"
    ]
    assert [o["cost"] for o in scheduled["occurrences"]] == [232.7, 232.7]
    assert scheduled["total"] == pytest.approx(465.41)
    assert overrun["exceedance_probability"] >= 0.8
    assert "2026-11-01" <= overrun["breach_date"] <= "2026-11-30"
    assert not any(a["budget"]["name"] == "payments-prod-monthly" for a in alerts)


def test_calendar_shifts_forecast_by_its_cost(first_run):
    database, _ = first_run
    args = ("--database-url", database, "run", "--budgets", str(BUDGETS), "--as-of", AS_OF,
            "--no-ingest", "--json")

    plain = _costwarden(*args)
    scheduled = _costwarden(*args, "--calendar", str(CALENDAR))

    assert plain.returncode == 0, plain.stderr
    assert scheduled.returncode == 0, scheduled.stderr
    without = _forecast_alert(json.loads(plain.stdout), "ml-training-monthly")
    shifted = _forecast_alert(json.loads(scheduled.stdout), "ml-training-monthly")
    assert without["schema_version"] == "1.4"
    assert without["forecast"]["scheduled"] is None
    difference = shifted["forecast"]["mean_total"] - without["forecast"]["mean_total"]
    assert difference == pytest.approx(465.41, abs=0.02)


def test_panel_shows_scheduled_line(first_run):
    database, _ = first_run

    result = _costwarden("--database-url", database, "run", "--budgets", str(BUDGETS),
                         "--as-of", AS_OF, "--no-ingest", "--calendar", str(CALENDAR))

    assert result.returncode == 0, result.stderr
    assert "Scheduled jobs add 465.41 USD to the forecast" in result.stdout
    assert "Weekly LLM fine-tuning run Nov 21 07:00 UTC 232.70" in result.stdout
    assert "AT RISK" in result.stdout


def test_broken_calendar_stops_before_pass(tmp_path):
    broken = tmp_path / "jobs.csv"
    broken.write_text("name,start,cost,currency,cluster\nETL,2026-11-20T01:00Z,ten,USD,c1\n")
    database = f"sqlite:///{tmp_path / 'c.db'}"

    flag = _costwarden("--database-url", database, "run", "--budgets", str(BUDGETS),
                       "--no-ingest", "--calendar", str(broken))
    from_env = _costwarden("--database-url", database, "run", "--budgets", str(BUDGETS),
                           "--no-ingest", env={"COSTWARDEN_CALENDAR_FILE": str(broken)})

    for result in (flag, from_env):
        assert result.returncode == 3
        assert f"{broken}, line 2, field cost, value 'ten'" in result.stderr
        assert "decimal" in result.stderr
    assert not (tmp_path / "c.db").exists()
