"""Budget evaluation and the alert payload, on facts written straight into a real store."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from costwarden.budgets import parse_budgets
from costwarden.budgets.alerts import alert_payload, crossed_thresholds
from costwarden.budgets.evaluate import evaluate_budget
from costwarden.config import load_settings
from costwarden.domain import ClusterInfo, CostRecord, NamespaceInfo, ProjectInfo
from sqlalchemy import delete

from costwarden.store import upsert_facts, upsert_fleet
from costwarden.store.tables import CostFact

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "schemas" / "alert.schema.json").read_text()
)
AS_OF = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
FIRST_DAY = date(2026, 9, 1)

BUDGETS = """
budgets:
  - name: steady
    scope: {cluster: steady-cluster}
    amount: 2000
    thresholds:
      - {type: actual, percent: 50}
      - {type: forecast, percent: 100, probability: 0.8, severity: critical}
      - {type: forecast, percent: 200}
  - name: ml-team
    scope: {labels: "team=ml"}
    amount: 100000
    thresholds:
      - {type: forecast, percent: 100, probability: 0.5}
  - name: nowhere
    scope: {cluster: no-such-cluster}
    amount: 10
    thresholds:
      - {type: actual, percent: 1}
"""


def _fact(grain, day, amount, namespace=None):
    start = datetime.combine(day, datetime.min.time(), UTC)
    return CostRecord(
        source="palette",
        grain=grain,
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=Decimal(amount),
        currency="USD",
        cloud="aws",
        project_uid="p1",
        project_name="proj",
        cluster_uid="c1",
        cluster_name="steady-cluster",
        namespace=namespace,
    )


@pytest.fixture
def steady_store(store):
    """A cluster costing exactly 100 a day; namespace "web" grows from 30 to 60 on November 1."""
    records = []
    day = FIRST_DAY
    while day < AS_OF.date():
        web = "60" if day >= date(2026, 11, 1) else "30"
        records += [
            _fact("cluster", day, "100"),
            _fact("namespace", day, web, "web"),
            _fact("namespace", day, "20", "batch"),
        ]
        day += timedelta(days=1)

    with store.transaction() as session:
        upsert_fleet(
            session,
            [ProjectInfo("p1", "proj")],
            [ClusterInfo("c1", "steady-cluster", "p1", "proj", "aws", labels={"env": "dev"})],
            [
                NamespaceInfo("c1", "web", {"team": "ml"}),
                NamespaceInfo("c1", "batch", {"team": "data"}),
            ],
        )
        upsert_facts(session, records, batch_id="test")
    return store


def _evaluate(store, name):
    settings = load_settings(forecast__sample_paths=500)
    budget = next(b for b in parse_budgets(BUDGETS) if b.name == name)
    with store.transaction() as session:
        return evaluate_budget(session, budget, AS_OF, settings)


def test_steady_cluster_breaches_on_known_day(steady_store):
    status = _evaluate(steady_store, "steady")

    assert status.problem is None
    assert status.history_end == date(2026, 11, 15)
    assert status.spent_to_date == Decimal("1500")
    assert status.previous_total == Decimal("3100")
    assert status.exceedance.probability == pytest.approx(1.0)
    assert status.exceedance.breach_date == date(2026, 11, 21)
    assert float(status.exceedance.forecast_total) == pytest.approx(3000, abs=5)
    assert float(status.exceedance.expected_overspend) == pytest.approx(1000, abs=5)


def test_contributors_rank_growing_namespace_first(steady_store):
    status = _evaluate(steady_store, "steady")

    names = [contributor.name for contributor in status.contributors]
    assert names[0] == "steady-cluster/web"
    assert status.contributors[0].kind == "namespace"
    assert float(status.contributors[0].previous_total) == pytest.approx(930)
    # Web spends 60 of the cluster's 100 a day, so it gets 60% of the 15 forecast days.
    assert float(status.contributors[0].forecast_total) == pytest.approx(1800, abs=5)
    assert "(idle and unallocated)" in names


def test_thresholds_and_payload_match_schema(steady_store):
    status = _evaluate(steady_store, "steady")

    alerts = crossed_thresholds(status, AS_OF)

    assert [alert.threshold.key() for alert in alerts] == ["actual>=50%", "forecast>=100%@p0.8"]
    for alert in alerts:
        payload = alert_payload(alert)
        jsonschema.validate(payload, SCHEMA, format_checker=jsonschema.FormatChecker())
        assert payload["period"] == {
            "start": "2026-11-01",
            "end": "2026-11-30",
            "days_total": 30,
            "days_elapsed": 15,
        }
        assert payload["spend_to_date"] == 1500.0
        assert payload["breach_date"] == "2026-11-21"
        assert payload["links"]["palette"].endswith("/projects/p1/clusters/c1/overview")
        assert payload["data_window"]["end"] == "2026-11-15"
        assert payload["model"]["name"]


def test_alert_id_is_stable_across_runs(steady_store):
    first = crossed_thresholds(_evaluate(steady_store, "steady"), AS_OF)
    second = crossed_thresholds(_evaluate(steady_store, "steady"), AS_OF + timedelta(hours=3))

    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    assert len({a.alert_id for a in first}) == len(first)


def test_label_selector_reads_namespaces(steady_store):
    status = _evaluate(steady_store, "ml-team")

    assert status.grain == "namespace"
    assert status.spent_to_date == Decimal(15 * 60)
    assert crossed_thresholds(status, AS_OF) == []


def test_unknown_cluster_reports_problem(steady_store):
    status = _evaluate(steady_store, "nowhere")

    assert status.problem == "no cluster 'no-such-cluster'"
    assert crossed_thresholds(status, AS_OF) == []


def test_payload_rounded_and_complete(steady_store):
    alert = crossed_thresholds(_evaluate(steady_store, "steady"), AS_OF)[0]
    payload = alert_payload(alert)

    broken = dict(payload)
    del broken["alert_id"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)

    for key in ("spend_to_date", "previous_period_total"):
        assert round(payload[key], 2) == payload[key]


def test_late_source_days_are_forecast_not_zero(steady_store):
    with steady_store.transaction() as session:
        session.execute(delete(CostFact).where(CostFact.day > date(2026, 11, 12)))

    status = _evaluate(steady_store, "steady")

    # The source's last day, Nov 12, may be partial, so it is forecast along with Nov 13-15.
    assert status.missing_days == 4
    assert status.history_end == date(2026, 11, 11)
    assert status.spent_to_date == Decimal("1100")
    assert float(status.exceedance.forecast_total) == pytest.approx(3000, abs=5)
    assert status.exceedance.breach_date == date(2026, 11, 21)
    alert = crossed_thresholds(status, AS_OF)[-1]
    assert alert_payload(alert)["data_window"]["missing_days"] == 4


def test_quiet_scope_is_not_late(steady_store):
    """A cluster with no facts on recent days while the source has them spent nothing."""
    with steady_store.transaction() as session:
        upsert_facts(session, [_other_cluster_fact(date(2026, 11, 15))], batch_id="other")
        session.execute(
            delete(CostFact).where(CostFact.cluster_uid == "c1", CostFact.day > date(2026, 11, 12))
        )

    status = _evaluate(steady_store, "steady")

    assert status.missing_days == 0
    assert status.spent_to_date == Decimal("1200")


def _other_cluster_fact(day):
    start = datetime.combine(day, datetime.min.time(), UTC)
    return CostRecord(
        source="palette",
        grain="cluster",
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=Decimal("5"),
        currency="USD",
        cluster_uid="c2",
        cluster_name="other-cluster",
    )


def test_other_currency_is_not_summed(steady_store):
    text = BUDGETS.replace("amount: 2000", "amount: 2000\n    currency: EUR")
    budget = next(b for b in parse_budgets(text) if b.name == "steady")
    with steady_store.transaction() as session:
        status = evaluate_budget(session, budget, AS_OF, load_settings(forecast__sample_paths=500))

    assert status.problem is not None
    assert "is in USD, not EUR" in status.problem
    assert status.spent_to_date == 0
