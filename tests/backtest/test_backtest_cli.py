"""``costwarden backtest`` through the real entry point, on history ingested from the simulator."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from PIL import Image

from costwarden.backtest.forecasting import raw_intervals_supported
from costwarden.config import PaletteSettings
from costwarden.simulator import OVERRUN_CLUSTER, SimulatorServer, SimulatorSettings
from costwarden.sources.palette.ingest import ingest_palette
from costwarden.store import Store

AS_OF = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
HISTORY_DAYS = 120
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRICS = ("mase", "smape", "coverage_80", "coverage_95", "brier")


def _costwarden(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "costwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=clean,
    )


@pytest.fixture(scope="module")
def simulated_history(tmp_path_factory) -> str:
    """Return the URL of a SQLite database holding 120 days of a ten-cluster simulated fleet."""
    url = f"sqlite:///{tmp_path_factory.mktemp('backtest') / 'history.db'}"
    settings = SimulatorSettings(
        seed=7, as_of=AS_OF, cluster_count=10, history_days=HISTORY_DAYS, rate_limit_enabled=False
    )
    with SimulatorServer(settings) as simulator:
        store = Store.open(url)
        palette = PaletteSettings(
            url=simulator.url, api_key=simulator.api_key, history_days=HISTORY_DAYS
        )
        ingest_palette(store, palette, as_of=AS_OF)
        store.close()
    return url


def test_json_and_plots(simulated_history, tmp_path):
    plots = tmp_path / "plots"

    result = _costwarden(
        "--database-url", simulated_history, "backtest", "--json", "--plot", str(plots)
    )

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["source"] == "palette"
    assert data["horizons"] == [7, 14, 30]
    assert len(data["origins"]) == 6
    assert data["counts"]["scopes"] == 10
    assert data["counts"]["forecasts"] == 60
    assert data["counts"]["events"] > 0
    for record in [data, *data["scopes"]]:
        for field in METRICS:
            assert field in record, field
        assert record["mase"] > 0
        assert 0 <= record["smape"] <= 200
        assert 0 <= record["coverage_80"] <= record["coverage_95"] <= 1
        assert 0 <= record["brier"] <= 1
        assert 0 <= record["baseline_brier"] <= 1
    assert [row["horizon"] for row in data["by_horizon"]] == [7, 14, 30]
    assert sum(row["count"] for row in data["reliability"]) == data["counts"]["events"]
    assert data["scopes"][0]["name"] == OVERRUN_CLUSTER
    assert 0 <= data["calibration"]["calibrated"] <= data["calibration"]["forecasts"]
    if raw_intervals_supported():
        assert 0 <= data["coverage_80_raw"] <= data["coverage_95_raw"] <= 1
    else:
        assert "coverage_80_raw" not in data

    written = sorted(path.name for path in plots.iterdir())
    assert written == [f"fan-{OVERRUN_CLUSTER}.png", "reliability.png"]
    for path in plots.iterdir():
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.width >= 600
            assert image.height >= 400


def test_table_for_budget_scope(simulated_history, tmp_path):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        "budgets:\n"
        "  - name: overrun-cluster\n"
        f"    scope: {{cluster: {OVERRUN_CLUSTER}}}\n"
        "    amount: 50000\n"
        "    thresholds: [{type: forecast, percent: 100}]\n"
    )

    result = _costwarden(
        "--database-url",
        simulated_history,
        "backtest",
        "--budgets",
        str(budgets),
        "--horizon",
        "7",
        "--horizon",
        "14",
    )

    assert result.returncode == 0, result.stderr
    assert "overrun-cluster" in result.stdout
    assert "Accuracy per horizon" in result.stdout
    assert "14 d" in result.stdout
    assert "30 d" not in result.stdout


def test_empty_database_exits_with_config_error(tmp_path):
    result = _costwarden("--database-url", f"sqlite:///{tmp_path / 'empty.db'}", "backtest")

    assert result.returncode == 2
    assert "no cluster cost data" in result.stderr
    assert result.stdout == ""


def test_horizon_beyond_history_exits_with_config_error(simulated_history):
    result = _costwarden("--database-url", simulated_history, "backtest", "--horizon", "200")

    assert result.returncode == 2
    assert "horizon 200" in result.stderr
    assert "--horizon" in result.stderr


def test_unknown_plot_scope_exits_with_config_error(simulated_history, tmp_path):
    result = _costwarden(
        "--database-url",
        simulated_history,
        "backtest",
        "--origins",
        "1",
        "--horizon",
        "7",
        "--plot",
        str(tmp_path),
        "--plot-scope",
        "nope",
    )

    assert result.returncode == 2
    assert "--plot-scope 'nope'" in result.stderr


def test_save_adjustment_stores_factors(simulated_history):
    from costwarden.store.adjustments import latest_adjustment

    result = _costwarden(
        "--database-url", simulated_history, "backtest", "--json", "--save-adjustment"
    )

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["adjustment"]["origins"] == len(data["origins"])
    assert 0 <= data["coverage_80_adjusted"] <= data["coverage_95_adjusted"] <= 1
    assert "saved interval adjustment (id " in result.stderr
    assert "with fewer than 100" in " ".join(result.stderr.split())
    store = Store.open(simulated_history)
    try:
        with store.transaction() as session:
            stored = latest_adjustment(session, "palette")
    finally:
        store.close()
    assert stored is not None
    assert stored.audit()["factors"] == data["adjustment"]["factors"]


def test_save_adjustment_needs_two_origins(simulated_history):
    result = _costwarden(
        "--database-url", simulated_history, "backtest", "--origins", "1", "--save-adjustment"
    )

    assert result.returncode == 2
    assert "at least two rolling origins" in result.stderr


def test_save_adjustment_rejects_one_scope(simulated_history):
    result = _costwarden(
        "--database-url",
        simulated_history,
        "backtest",
        "--scope",
        OVERRUN_CLUSTER,
        "--save-adjustment",
    )

    assert result.returncode == 2
    assert "--save-adjustment with --scope" in result.stderr


def test_plot_directory_not_creatable(simulated_history, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")

    result = _costwarden(
        "--database-url", simulated_history, "backtest", "--plot", str(blocker / "plots")
    )

    assert result.returncode == 2
    assert "cannot create the directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_plot_file_not_writable(simulated_history, tmp_path):
    plots = tmp_path / "plots"
    (plots / "reliability.png").mkdir(parents=True)

    result = _costwarden("--database-url", simulated_history, "backtest", "--plot", str(plots))

    assert result.returncode == 2
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.stderr
