"""The main job through the real entry point: ``costwarden demo``, ``run`` and ``budgets``."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import func, select

from costwarden.errors import ALERTS_FIRED_EXIT_CODE
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.store import Store
from costwarden.store.tables import AlertRecord, CostFact, Run

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "schemas" / "alert.schema.json").read_text())
QUOTA_SCHEMA = json.loads((REPO / "docs" / "schemas" / "quota-alert.schema.json").read_text())
ANOMALY_SCHEMA = json.loads((REPO / "docs" / "schemas" / "anomaly-alert.schema.json").read_text())
SCHEMAS = {"quota": QUOTA_SCHEMA, "anomaly": ANOMALY_SCHEMA}
BUDGETS = REPO / "examples" / "budgets.yaml"
AS_OF = "2026-11-15T10:00:00Z"


def _costwarden(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "costwarden", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**clean, **(env or {})},
    )


def _by_budget(alerts: list[dict]) -> dict[str, list[dict]]:
    """Group the budget alerts by budget name; quota and anomaly alerts carry no budget."""
    grouped: dict[str, list[dict]] = {}
    for alert in alerts:
        if alert["kind"] in SCHEMAS:
            continue
        grouped.setdefault(alert["budget"]["name"], []).append(alert)
    return grouped


@pytest.fixture(scope="module")
def simulator():
    with SimulatorServer(SimulatorSettings(seed=7, as_of="2026-11-15T10:00:00Z")) as server:
        yield server


def test_demo_json_flags_planted_overrun_only():
    result = _costwarden("demo", "--json")

    assert result.returncode == 0, result.stderr
    alerts = json.loads(result.stdout)
    for alert in alerts:
        schema = SCHEMAS.get(alert["kind"], SCHEMA)
        jsonschema.validate(alert, schema, format_checker=jsonschema.FormatChecker())
    grouped = _by_budget(alerts)
    overrun = next(a for a in grouped["ml-training-monthly"] if a["kind"] == "budget_forecast")
    assert overrun["exceedance_probability"] >= 0.8
    assert overrun["period"]["start"] <= overrun["breach_date"] <= overrun["period"]["end"]
    assert overrun["contributors"][0]["name"].startswith("ml-training-eks/")
    assert "payments-prod-monthly" not in grouped


def test_run_fails_on_alert_and_deduplicates(simulator, tmp_path):
    database = f"sqlite:///{tmp_path / 'costwarden.db'}"
    env = {"COSTWARDEN_PALETTE_URL": simulator.url, "COSTWARDEN_PALETTE_API_KEY": simulator.api_key}
    args = ("--database-url", database, "run", "--budgets", str(BUDGETS), "--as-of", AS_OF)

    first = _costwarden(*args, "--json", "--fail-on-alert", env=env)
    second = _costwarden(*args, "--json", "--no-ingest", env=env)

    assert first.returncode == ALERTS_FIRED_EXIT_CODE, first.stderr
    assert second.returncode == 0, second.stderr
    first_ids = sorted(alert["alert_id"] for alert in json.loads(first.stdout))
    second_ids = sorted(alert["alert_id"] for alert in json.loads(second.stdout))
    assert first_ids == second_ids
    store = Store.open(database)
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AlertRecord)) == len(first_ids)
        assert session.scalar(select(func.count()).select_from(Run).where(Run.status == "succeeded")) == 2
        assert session.scalar(select(func.count()).select_from(CostFact)) > 50_000
    store.close()


def test_run_table_shows_every_budget(simulator, tmp_path):
    env = {"COSTWARDEN_PALETTE_URL": simulator.url, "COSTWARDEN_PALETTE_API_KEY": simulator.api_key,
           "COSTWARDEN_BUDGETS_FILE": str(BUDGETS)}
    result = _costwarden("--database-url", f"sqlite:///{tmp_path / 'c.db'}", "run", "--as-of", AS_OF,
                         env=env)

    assert result.returncode == 0, result.stderr
    for name in ("ml-training-monthly", "payments-prod-monthly", "platform-quarterly"):
        assert name in result.stdout
    assert "AT RISK" in result.stdout
    assert "alert(s)" in result.stdout


def test_run_with_policies_opens_approvals_once(simulator, tmp_path):
    policies = REPO / "src" / "costwarden" / "data" / "demo" / "policies.yaml"
    env = {"COSTWARDEN_PALETTE_URL": simulator.url, "COSTWARDEN_PALETTE_API_KEY": simulator.api_key,
           "COSTWARDEN_BUDGETS_FILE": str(BUDGETS), "COSTWARDEN_POLICY_MODE": "approve",
           "COSTWARDEN_POLICY_PATHS": json.dumps([str(policies)])}
    database = ("--database-url", f"sqlite:///{tmp_path / 'c.db'}")

    first = _costwarden(*database, "run", "--as-of", AS_OF, env=env)
    second = _costwarden(*database, "run", "--no-ingest", "--as-of", AS_OF, env=env)
    listed = _costwarden(*database, "approvals", "list", env=env)

    # Rich wraps long lines at the terminal width, so compare whitespace-normalised text.
    first_text = " ".join(first.stdout.split())
    second_text = " ".join(second.stdout.split())
    assert first.returncode == 0, first.stderr
    waiting = int(first_text.split("Governance: ")[1].split()[0])
    assert waiting > 0
    assert f"{waiting} approval request(s) waiting ({waiting} new)" in first_text
    assert "costwarden approvals list shows them" in first_text
    assert second.returncode == 0, second.stderr
    assert f"{waiting} approval request(s) waiting (0 new)" in second_text
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("pending") >= 1


def test_wrong_api_key_exits_with_source_error(simulator, tmp_path):
    env = {"COSTWARDEN_PALETTE_URL": simulator.url, "COSTWARDEN_PALETTE_API_KEY": "not-the-key"}

    result = _costwarden("--database-url", f"sqlite:///{tmp_path / 'c.db'}", "run", "--budgets",
                         str(BUDGETS), "--as-of", AS_OF, env=env)

    assert result.returncode == 4
    assert "COSTWARDEN_PALETTE_API_KEY" in result.stderr
    assert "not-the-key" not in result.stderr + result.stdout


def test_run_without_budget_file_explains_fix(tmp_path):
    result = _costwarden("--database-url", f"sqlite:///{tmp_path / 'c.db'}", "run", "--no-ingest")

    assert result.returncode == 2
    assert "--budgets" in result.stderr


def test_invalid_as_of_is_rejected(tmp_path):
    result = _costwarden("--database-url", f"sqlite:///{tmp_path / 'c.db'}", "run", "--budgets",
                         str(BUDGETS), "--as-of", "mid-november")

    assert result.returncode == 2
    assert "'mid-november'" in result.stderr


def test_budgets_validate_reports_file_and_field(tmp_path):
    broken = tmp_path / "budgets.yaml"
    broken.write_text(BUDGETS.read_text().replace("amount: 15000", "amount: fifteen"))

    good = _costwarden("budgets", "validate", str(BUDGETS))
    bad = _costwarden("budgets", "validate", str(broken))

    assert good.returncode == 0
    assert "6 budgets" in good.stdout
    assert bad.returncode == 2
    assert str(broken) in bad.stderr
    assert "budget 'ml-training-monthly', field amount" in bad.stderr


def test_budgets_list_shows_past_periods(simulator, tmp_path):
    database = f"sqlite:///{tmp_path / 'costwarden.db'}"
    env = {"COSTWARDEN_PALETTE_URL": simulator.url, "COSTWARDEN_PALETTE_API_KEY": simulator.api_key}
    _costwarden("--database-url", database, "run", "--budgets", str(BUDGETS), "--as-of", AS_OF, env=env)

    result = _costwarden("--database-url", database, "budgets", "list", "--budgets", str(BUDGETS),
                         "--as-of", "2026-11-15", "--periods", "4", "--json")

    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    periods = listing["ml-training-monthly"]["periods"]
    assert [p["start"] for p in periods] == ["2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01"]
    assert all(p["actual"] > 0 for p in periods)
    assert [p["complete"] for p in periods] == [True, True, True, False]
    assert date.fromisoformat(periods[-1]["end"]) == date(2026, 11, 30)
