"""``costwarden anomalies`` through the real entry point, on a database with one recorded pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from anomaly_helpers import AS_OF, shop_fleet

from costwarden.anomaly import evaluate_anomalies, record_anomalies
from costwarden.config import Settings
from costwarden.store import Store


def _costwarden(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "costwarden", "--database-url", database, "anomalies", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, "COLUMNS": "160"},
    )


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('anomaly-cli') / 'costwarden.db'}"
    store = Store.open(url)
    shop_fleet(store)
    settings = Settings()
    with store.transaction() as session:
        report = evaluate_anomalies(session, settings, AS_OF, AS_OF)
        record_anomalies(session, "run-1", report, settings.anomaly, AS_OF)
    store.close()
    return url


def _anomaly_id(database: str) -> str:
    listed = _costwarden(database, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)["anomalies"][0]["anomaly_id"]


def test_list_json_and_table(database: str) -> None:
    listed = _costwarden(database, "list", "--json")
    table = _costwarden(database, "list", "--related")

    data = json.loads(listed.stdout)
    assert [item["scope"] for item in data["anomalies"]] == ["cluster shop-eks"]
    assert data["anomalies"][0]["top_contributor"]["value"] == "promo"
    assert data["precision"] == {"problems": 0, "expected": 0, "precision": None}
    assert table.returncode == 0, table.stderr
    assert "shop-eks" in table.stdout
    assert "namespace shop-eks/promo" in table.stdout
    assert "no verdicts yet" in table.stdout


def test_show_prints_triage(database: str) -> None:
    anomaly_id = _anomaly_id(database)

    shown = _costwarden(database, "show", anomaly_id[:8])
    as_json = _costwarden(database, "show", anomaly_id, "--json")

    assert shown.returncode == 0, shown.stderr
    for text in (
        "Likely cause: New namespace promo",
        "Next step:",
        "Contributors",
        "Cost drivers",
        "NamespaceCreated",
    ):
        assert text in shown.stdout
    assert json.loads(as_json.stdout)["alert_id"] == anomaly_id


def test_mark_then_precision(database: str) -> None:
    anomaly_id = _anomaly_id(database)

    missing = _costwarden(database, "mark", anomaly_id, "--expected")
    both = _costwarden(database, "mark", anomaly_id, "--expected", "--problem")
    marked = _costwarden(database, "mark", anomaly_id[:8], "--problem")
    figure = _costwarden(database, "precision", "--json")

    assert missing.returncode == 2
    assert "needs a reason" in missing.stderr
    assert both.returncode == 2
    assert "exactly one of" in both.stderr
    assert marked.returncode == 0, marked.stderr
    assert "Alert precision: 100%" in marked.stdout
    assert json.loads(figure.stdout) == {"problems": 1, "expected": 0, "precision": 1.0}


def test_unknown_id_is_an_error(database: str) -> None:
    result = _costwarden(database, "show", "0000000000")

    assert result.returncode == 2
    assert "no anomaly with id" in result.stderr
