"""The governance review on planted alerts, action runs, approvals and anomaly feedback."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from review_helpers import CHANGE_DAY, NOW, add_request, add_run, seed_flat, seed_fleet
from typer.testing import CliRunner

from costwarden.budgets import parse_budgets
from costwarden.cli import app
from costwarden.config import load_settings
from costwarden.review import ReviewRange, build_review, record_realised_savings
from costwarden.review.render import review_markdown
from costwarden.store.tables import AlertRecord, AnomalyFeedbackRecord

BUDGETS = """
budgets:
  - name: flat
    scope: {cluster: flat-name}
    amount: 2000
    thresholds:
      - {type: actual, percent: 50}
      - {type: forecast, percent: 100}
  - name: roomy
    scope: {cluster: flat-name}
    amount: 5000
    thresholds:
      - {type: forecast, percent: 100}
"""

RANGE = ReviewRange(date(2026, 9, 21), date(2026, 12, 19))


def _alert(budget, kind, limit, amount, first_seen, start=date(2026, 10, 1), end="2026-10-31"):
    threshold = "100" if kind == "budget_forecast" else "50"
    return AlertRecord(
        alert_id=f"{budget}-{kind}-{start}",
        budget=budget,
        period_start=start,
        kind=f"{kind}:{threshold}",
        severity="warning",
        payload={
            "currency": "USD",
            "budget": {"amount": amount},
            "threshold": {"limit": limit},
            "period": {"start": start.isoformat(), "end": end},
        },
        first_seen=first_seen,
        last_seen=first_seen,
        run_id="run-1",
    )


def _seen(day):
    return datetime(2026, 10, day, 6, 0, tzinfo=UTC)


@pytest.fixture
def planted(sqlite_store):
    """Cluster "flat" costs exactly 100 a day, so October totals 3100 and passes 1000 on
    October 10 and 2000 on October 20."""
    seed_flat(sqlite_store, "flat", "100")
    with sqlite_store.transaction() as session:
        session.add_all(
            [
                _alert("flat", "budget_forecast", 2000.0, 2000.0, _seen(5)),
                _alert("flat", "budget_actual", 1000.0, 2000.0, _seen(11)),
                _alert("roomy", "budget_forecast", 5000.0, 5000.0, _seen(3)),
                _alert("gone", "budget_forecast", 100.0, 100.0, _seen(3)),
                _alert(
                    "flat", "budget_forecast", 2000.0, 2000.0, NOW, date(2026, 12, 1), "2026-12-31"
                ),
                _alert(
                    "flat",
                    "budget_forecast",
                    2000.0,
                    2000.0,
                    _seen(1),
                    date(2026, 8, 1),
                    "2026-08-31",
                ),
            ]
        )
    return sqlite_store


def _review(store, budgets=BUDGETS):
    with store.transaction() as session:
        return build_review(session, parse_budgets(budgets), RANGE, NOW)


def test_alert_precision_on_planted_outcomes(planted):
    alerts = _review(planted)["alerts"]

    outcomes = {
        (item["budget"], item["kind"], item["period_start"]): item for item in alerts["items"]
    }
    assert outcomes[("flat", "budget_forecast", "2026-10-01")]["outcome"] == "true_positive"
    assert outcomes[("flat", "budget_actual", "2026-10-01")]["outcome"] == "true_positive"
    assert outcomes[("roomy", "budget_forecast", "2026-10-01")]["outcome"] == "false_positive"
    assert outcomes[("gone", "budget_forecast", "2026-10-01")]["outcome"] == "unknown"
    assert outcomes[("flat", "budget_forecast", "2026-12-01")]["outcome"] == "pending"
    assert ("flat", "budget_forecast", "2026-08-01") not in outcomes
    assert alerts["true_positives"] == 2
    assert alerts["false_positives"] == 1
    assert alerts["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert alerts["pending"] == 1
    assert alerts["unknown"] == 1


def test_alert_lead_time_to_crossing(planted):
    alerts = _review(planted)["alerts"]

    by_kind = {item["kind"]: item for item in alerts["by_kind"]}
    forecast = next(
        item
        for item in alerts["items"]
        if item["budget"] == "flat" and item["kind"] == "budget_forecast"
    )
    assert forecast["crossing_day"] == "2026-10-20"
    assert forecast["lead_days"] == 15
    assert forecast["actual_total"] == "3100.00"
    assert by_kind["budget_actual"]["lead_days"]["median"] == -1.0
    assert by_kind["budget_forecast"]["precision"] == pytest.approx(0.5)
    assert by_kind["budget_actual"]["precision"] == pytest.approx(1.0)


def test_alert_periods_list_spend(planted):
    periods = _review(planted)["alerts"]["periods"]

    october = {(item["budget"], item["start"]): item for item in periods}
    assert october[("flat", "2026-10-01")]["exceeded"] is True
    assert october[("flat", "2026-10-01")]["alerts"] == 2
    assert october[("roomy", "2026-10-01")]["exceeded"] is False
    assert october[("flat", "2026-12-01")]["status"] == "pending"


def test_data_lag_keeps_alert_pending(sqlite_store):
    seed_flat(sqlite_store, "flat", "100", last_day=date(2026, 10, 30))
    with sqlite_store.transaction() as session:
        session.add(_alert("flat", "budget_forecast", 2000.0, 2000.0, _seen(5)))

    alerts = _review(sqlite_store)["alerts"]

    assert alerts["items"][0]["outcome"] == "pending"
    assert "2026-10-30" in alerts["items"][0]["note"]
    assert alerts["precision"] is None


def test_savings_accuracy_on_planted_runs(sqlite_store):
    seed_fleet(sqlite_store, drops={"c1": CHANGE_DAY, "c2": None})
    with sqlite_store.transaction() as session:
        add_run(
            session,
            cluster_uid="c1",
            day=CHANGE_DAY,
            params={"estimated_savings_per_month": "1217.50", "currency": "USD"},
        )
        add_run(
            session,
            cluster_uid="c2",
            day=CHANGE_DAY,
            params={"estimated_savings_per_month": "500", "currency": "USD"},
        )
        add_run(session, cluster_uid="c1", day=NOW.date() - timedelta(days=2))
        record_realised_savings(session, load_settings(), NOW)

    savings = _review(sqlite_store)["savings"]

    assert savings["count"] == 2
    assert len(savings["runs_without_result"]) == 1
    items = {item["scope"]: item for item in savings["items"]}
    assert items["cluster:c1"]["window_days"] == 30
    assert items["cluster:c1"]["within_noise"] is False
    assert items["cluster:c2"]["within_noise"] is True
    assert items["cluster:c1"]["absolute_percentage_error"] < 0.1
    assert items["cluster:c2"]["absolute_percentage_error"] > 0.8
    (overall,) = savings["overall"]
    realised = float(items["cluster:c1"]["realised_per_month"]) + float(
        items["cluster:c2"]["realised_per_month"]
    )
    assert overall["sum_ratio"] == pytest.approx(realised / 1717.5, abs=1e-4)
    assert overall["within_noise"] == 1
    assert overall["runs_with_estimate"] == 2


def test_approvals_actions_and_feedback(sqlite_store):
    created = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    with sqlite_store.transaction() as session:
        add_request(session, evidence={}, created=created, decided=created + timedelta(hours=2))
        add_request(
            session,
            evidence={},
            status="rejected",
            created=created,
            decided=created + timedelta(hours=6),
        )
        add_request(session, evidence={}, status="pending", created=created)
        add_request(session, evidence={}, status="expired", created=created,
                    decided=created + timedelta(hours=24))
        add_request(session, evidence={}, status="superseded", created=created,
                    decided=created + timedelta(hours=30))
        add_run(session, cluster_uid="c1", day=CHANGE_DAY)
        add_run(session, cluster_uid="c1", day=CHANGE_DAY, mode="rollback")
        add_run(session, cluster_uid="c1", day=CHANGE_DAY, status="failed")
        for index, verdict in enumerate(["problem", "problem", "expected"]):
            session.add(
                AnomalyFeedbackRecord(
                    anomaly_id=f"a{index}",
                    scope_key="cluster:c1",
                    cause="spike",
                    verdict=verdict,
                    created_at=created,
                )
            )

    review = _review(sqlite_store)

    approvals = review["approvals"]
    assert approvals["by_status"] == {
        "approved": 1, "expired": 1, "pending": 1, "rejected": 1, "superseded": 1,
    }
    assert approvals["decided"] == 2
    assert approvals["median_hours_to_decision"] == pytest.approx(4.0)
    assert approvals["expired"] == 2
    actions = review["actions"]
    assert actions["count"] == 3
    assert actions["applied"] == 1
    assert actions["rollbacks"] == {"count": 1, "by_status": {"succeeded": 1}}
    assert review["anomaly_feedback"]["precision"] == pytest.approx(2 / 3, abs=1e-4)


def test_empty_range_says_nothing_to_review(sqlite_store):
    review = _review(sqlite_store)

    assert review["empty"] is True
    assert review["notes"][0].startswith("Nothing to review")
    assert "Nothing to review" in review_markdown(review)


def test_review_cli_formats(planted, sqlite_url, tmp_path):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    runner = CliRunner()
    base = [
        "--database-url",
        sqlite_url,
        "review",
        "--since",
        "2026-09-21",
        "--until",
        "2026-12-19",
    ]

    json_out = runner.invoke(app, [*base, "--budgets", str(budgets), "--format", "json"])
    table_out = runner.invoke(app, [*base, "--budgets", str(budgets)])
    markdown_file = tmp_path / "review.md"
    markdown_out = runner.invoke(
        app,
        [*base, "--budgets", str(budgets), "--format", "markdown", "--output", str(markdown_file)],
    )

    assert json_out.exit_code == 0, json_out.output
    review = json.loads(json_out.output)
    assert review["schema_version"] == "1.0"
    assert review["alerts"]["true_positives"] == 2
    assert table_out.exit_code == 0, table_out.output
    assert "precision 67%" in table_out.output
    assert markdown_out.exit_code == 0, markdown_out.output
    assert markdown_file.read_text().startswith("# Governance review 2026-09-21 to 2026-12-19")


def test_review_cli_rejects_bad_dates(sqlite_url):
    runner = CliRunner()

    result = runner.invoke(app, ["--database-url", sqlite_url, "review", "--since", "October"])
    swapped = runner.invoke(
        app,
        ["--database-url", sqlite_url, "review", "--since", "2026-12-01", "--until", "2026-11-01"],
    )

    assert result.exit_code != 0
    assert "YYYY-MM-DD" in str(result.exception)
    assert "swap" in str(swapped.exception)
