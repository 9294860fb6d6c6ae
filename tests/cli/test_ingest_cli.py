import csv
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.store import Store
from costwarden.store.tables import CostFact

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "focus"
SAMPLE = FIXTURES / "focus_sample.csv"
KUBERNETES = FIXTURES / "focus_1_2_kubernetes.csv"


def _costwarden(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point, so that exit codes come from ``costwarden.cli.main``."""
    return subprocess.run(
        [sys.executable, "-m", "costwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _fact_count(url: str) -> int:
    store = Store.open(url)
    try:
        with store.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(CostFact)))
    finally:
        store.close()


def _broken_copy(tmp_path: Path) -> Path:
    """Copy the FOCUS 1.2 fixture with a non-numeric EffectiveCost on line 3."""
    with KUBERNETES.open(newline="") as stream:
        rows = list(csv.reader(stream))
    rows[2][rows[0].index("EffectiveCost")] = "abc"
    path = tmp_path / "broken.csv"
    with path.open("w", newline="") as stream:
        csv.writer(stream).writerows(rows)
    return path


def test_json_output_per_file(sqlite_url):
    result = _costwarden(
        "--database-url", sqlite_url, "ingest", "focus", str(SAMPLE), str(KUBERNETES), "--json"
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    sample, kubernetes = (json.loads(line) for line in lines)
    assert sample["file"] == str(SAMPLE.resolve())
    assert sample["rows_read"] == 1000
    assert sample["inserted"] == 1000
    assert sample["cost_column"] == "EffectiveCost"
    assert sample["warning_count"] == 13
    assert sample["warnings"][0].startswith("line 1: column 'Id'")
    assert sample["window_start"] == "2024-09-01"
    assert sample["totals"] == {"USD": 14.98}
    assert sample["totals_exact"]["USD"].startswith("14.97651418")
    assert sample["replace"] is False
    assert sample["replaced"] == 0
    assert kubernetes["rows_read"] == 7
    assert kubernetes["warnings"] == []
    assert "13 warnings" in result.stderr
    assert _fact_count(sqlite_url) == 1007


def test_cost_column_flag(sqlite_url):
    result = _costwarden(
        "--database-url",
        sqlite_url,
        "ingest",
        "focus",
        "--cost-column",
        "BilledCost",
        "--json",
        str(SAMPLE),
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cost_column"] == "BilledCost"
    assert report["totals"]["USD"] == 20.52
    assert report["totals_exact"]["USD"].startswith("20.52022672")


def test_contracted_cost_flag(sqlite_url):
    result = _costwarden(
        "--database-url",
        sqlite_url,
        "ingest",
        "focus",
        "--cost-column",
        "ContractedCost",
        "--json",
        str(KUBERNETES),
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cost_column"] == "ContractedCost"
    assert report["totals_exact"] == {"USD": "0.3290000000"}
    assert report["totals"] == {"USD": 0.33}


def test_help_documents_json_totals():
    result = CliRunner().invoke(app, ["ingest", "focus", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert "totals_exact" in result.output
    assert "rounded to cents" in result.output
    assert "--replace" in result.output
    assert "ContractedCost" in result.output


def test_broken_file_exits_with_input_error(sqlite_url, tmp_path):
    broken = _broken_copy(tmp_path)

    result = _costwarden("--database-url", sqlite_url, "ingest", "focus", str(broken), "--json")

    assert result.returncode == 3
    assert result.stdout == ""
    assert "error:" in result.stderr
    assert "line 3, column EffectiveCost, value 'abc'" in result.stderr
    assert "not a number" in result.stderr
    assert _fact_count(sqlite_url) == 0


def test_earlier_files_stay_committed(sqlite_url, tmp_path):
    broken = _broken_copy(tmp_path)

    result = _costwarden(
        "--database-url", sqlite_url, "ingest", "focus", str(KUBERNETES), str(broken)
    )

    assert result.returncode == 3
    assert "rows read" in result.stdout
    assert _fact_count(sqlite_url) == 7


def test_rich_summary(sqlite_url):
    runner = CliRunner()

    result = runner.invoke(
        app, ["--database-url", sqlite_url, "ingest", "focus", str(SAMPLE)], catch_exceptions=False
    )

    assert result.exit_code == 0
    assert "rows read" in result.output
    assert "1,000" in result.output
    assert "2024-09-01 to 2024-09-30" in result.output
    assert "14.98 USD" in result.output
    assert "line 956" in result.output
    assert "7 more rows with a negative cost" in result.output


def test_missing_file_is_usage_error(sqlite_url, tmp_path):
    runner = CliRunner()

    result = runner.invoke(
        app, ["--database-url", sqlite_url, "ingest", "focus", str(tmp_path / "absent.csv")]
    )

    assert result.exit_code == 2
    assert "does not exist" in result.output


def _restated_copy(tmp_path: Path) -> Path:
    """Copy the sample with one cent added to every EffectiveCost, as a provider restatement."""
    with SAMPLE.open(newline="", encoding="utf-8-sig") as stream:
        rows = list(csv.reader(stream))
    index = rows[0].index("EffectiveCost")
    for row in rows[1:]:
        row[index] = str(Decimal(row[index]) + Decimal("0.01"))
    path = tmp_path / "restated.csv"
    with path.open("w", newline="") as stream:
        csv.writer(stream).writerows(rows)
    return path


def test_restated_export_warns_then_replaces(sqlite_url, tmp_path):
    restated = _restated_copy(tmp_path)
    runner = CliRunner()
    base = ["--database-url", sqlite_url, "ingest", "focus"]
    runner.invoke(app, [*base, str(SAMPLE)], catch_exceptions=False)

    plain = runner.invoke(app, [*base, str(restated)], catch_exceptions=False)

    assert plain.exit_code == 0
    assert "the export looks restated" in plain.output
    assert "--replace" in plain.output
    assert "stored facts replaced" not in plain.output
    assert _fact_count(sqlite_url) == 2000

    replaced = runner.invoke(app, [*base, "--replace", str(restated)], catch_exceptions=False)

    assert replaced.exit_code == 0
    assert "stored facts replaced" in replaced.output
    assert "looks restated" not in replaced.output
    assert "24.98 USD" in replaced.output
    assert _fact_count(sqlite_url) == 1000


def test_replace_json(sqlite_url, tmp_path):
    restated = _restated_copy(tmp_path)
    _costwarden("--database-url", sqlite_url, "ingest", "focus", str(SAMPLE))

    result = _costwarden(
        "--database-url", sqlite_url, "ingest", "focus", "--replace", "--json", str(restated)
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["replace"] is True
    assert report["replaced"] == 1000
    assert report["inserted"] == 1000
    assert report["totals"] == {"USD": 24.98}
    assert _fact_count(sqlite_url) == 1000


def test_single_warning_log_is_singular(sqlite_url, tmp_path):
    with KUBERNETES.open(newline="") as stream:
        rows = list(csv.reader(stream))
    path = tmp_path / "twice.csv"
    with path.open("w", newline="") as stream:
        csv.writer(stream).writerows([*rows, rows[1]])

    result = _costwarden("--database-url", sqlite_url, "ingest", "focus", str(path))

    assert result.returncode == 0, result.stderr
    log = " ".join(result.stderr.split())
    assert "1 warning;" in log
    assert "rows kept" not in log
    assert "duplicate rows skipped" in result.stdout
