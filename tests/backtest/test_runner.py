"""The backtest runner on cost facts written straight into a real store (SQLite and PostgreSQL)."""

from datetime import date, timedelta

import numpy as np
import pytest
from backtest_helpers import LAST_DAY, billing_facts, days_until_end, store_clusters

from costwarden.backtest import BacktestOptions, run_backtest
from costwarden.budgets import parse_budgets
from costwarden.config import ForecastSettings
from costwarden.errors import ConfigError
from costwarden.store import Store, upsert_facts

SETTINGS = ForecastSettings(sample_paths=300, seed=1)
JULY = date(2026, 7, 1)


def _run(store, options=None, budgets=None, settings=SETTINGS):
    with store.transaction() as session:
        return run_backtest(session, settings, options or BacktestOptions(), budgets)


def _stepped_month(first: date, last: date) -> np.ndarray:
    """Return 100 a day for days 1-14 of each month and 200 a day from the 15th."""
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    return np.array([100.0 if day.day < 15 else 200.0 for day in days])


def test_constant_series_scores_perfectly(store):
    store_clusters(store, {"flat": (JULY, np.full(days_until_end(JULY), 100.0))})

    result = _run(store)

    assert result.overall.forecasts == 6
    # A constant series has a seasonal naive error of 0, so MASE is undefined everywhere.
    assert result.overall.mase is None
    assert result.overall.mase_defined == 0
    assert result.overall.smape == pytest.approx(0.0, abs=1e-6)
    assert result.overall.coverage_80 == 1.0
    assert result.overall.coverage_95 == 1.0


def test_constant_series_exceedance_is_exact(store):
    store_clusters(store, {"flat": (JULY, np.full(days_until_end(JULY), 100.0))})

    # No level makes a budget equal to a month total, where float noise in the paths decides.
    result = _run(store, BacktestOptions(levels=(0.9, 0.99, 1.01, 1.25)))

    # August, September and October have a stored previous month and end by November 14.
    assert result.event_origins == tuple(
        date(2026, month, day) for month in (8, 9, 10) for day in (10, 20)
    )
    assert result.exceedance.events == 6 * 4
    assert result.exceedance.brier == pytest.approx(0.0, abs=1e-9)
    assert result.exceedance.baseline_brier == 0.0
    october = [e for e in result.events if e.origin == date(2026, 10, 10)]
    # September spent 3,000 and October 3,100, so only the 1.25 budget is not exceeded.
    assert [e.budget for e in october] == [2700.0, 2970.0, 3030.0, 3750.0]
    assert [e.observed for e in october] == [True, True, True, False]
    assert [e.probability for e in october] == [1.0, 1.0, 1.0, 0.0]
    assert [e.baseline for e in october] == [1.0, 1.0, 1.0, 0.0]


def test_straight_line_baseline_misses_month_step(store):
    first = date(2026, 7, 1)
    store_clusters(store, {"stepped": (first, _stepped_month(first, LAST_DAY))})

    result = _run(store, BacktestOptions(levels=(0.9, 1.0)))

    august = [e for e in result.events if e.origin == date(2026, 8, 10)]
    # July and August both cost 14 x 100 + 17 x 200 = 4,800. On August 10, 1,000 spent over
    # 10 days projects 3,100 for the month, under both budgets (4,320 and 4,800).
    assert [e.budget for e in august] == [4320.0, 4800.0]
    assert [e.spent_to_date for e in august] == [1000.0, 1000.0]
    assert [e.actual_total for e in august] == [4800.0, 4800.0]
    assert [e.baseline for e in august] == [0.0, 0.0]
    assert [e.observed for e in august] == [True, False]
    assert result.exceedance.baseline_brier > 0


def test_random_walk_mase_matches_naive_theory(sqlite_store):
    rng = np.random.default_rng(11)
    first = LAST_DAY - timedelta(days=129)
    walks = {f"walk-{i}": (first, 1000 + np.cumsum(rng.normal(0, 10, 130))) for i in range(12)}
    store_clusters(sqlite_store, walks)

    result = _run(sqlite_store, BacktestOptions(origins=4, step_days=21, horizons=(7, 30)))

    # For a random walk, the naive forecast's mean absolute error h days ahead grows like sqrt(h),
    # and the weekly naive scale is the error 7 days ahead. Averaged over h = 1..7 the ratio is
    # mean(sqrt(h)) / sqrt(7) = 0.73, and over h = 1..30 it is 1.41.
    assert result.by_horizon[7].forecasts == 48
    assert result.by_horizon[7].mase == pytest.approx(0.73, abs=0.2)
    assert result.by_horizon[30].mase == pytest.approx(1.41, abs=0.4)
    assert result.by_horizon[7].mase < result.by_horizon[30].mase


def test_forecast_ignores_data_after_origin(tmp_path):
    first = LAST_DAY - timedelta(days=150)
    rng = np.random.default_rng(5)
    values = 500 + np.cumsum(rng.normal(0, 5, 151)) + 20 * np.sin(np.arange(151) * 2 * np.pi / 7)
    options = BacktestOptions(origins=3, step_days=14, horizons=(14,))
    earliest = LAST_DAY - timedelta(days=14 + 2 * 14)
    perturbed = values.copy()
    perturbed[(earliest - first).days + 1 :] *= 3

    results = []
    for name, series in (("original", values), ("perturbed", perturbed)):
        store = Store.open(f"sqlite:///{tmp_path / name}.db")
        store_clusters(store, {"walk": (first, series)})
        results.append(_run(store, options))
        store.close()

    original, changed = ({cell.origin: cell for cell in result.forecasts} for result in results)
    assert sorted(original) == sorted(changed)
    assert min(original) == earliest
    np.testing.assert_array_equal(original[earliest].days.mean, changed[earliest].days.mean)
    np.testing.assert_array_equal(original[earliest].days.hi95, changed[earliest].days.hi95)
    assert not np.array_equal(original[earliest].actual, changed[earliest].actual)
    later = max(original)
    assert not np.allclose(original[later].days.mean, changed[later].days.mean)


def test_new_cluster_is_skipped_and_counted(store):
    old_first, new_first = date(2026, 6, 1), LAST_DAY - timedelta(days=50)
    store_clusters(
        store,
        {
            "old": (old_first, np.full(days_until_end(old_first), 50.0)),
            "new": (new_first, np.full(days_until_end(new_first), 80.0)),
        },
    )

    result = _run(store)

    reports = {report.name: report for report in result.scopes}
    assert reports["old"].accuracy.forecasts == 6
    # The new cluster has 21 days at the latest origin, 30 days before the end, and 7 at the one
    # before, fewer than the 14 that min_history_days requires.
    assert reports["new"].accuracy.forecasts == 1
    skipped = [skip for skip in result.skipped if skip.scope == "new"]
    assert len([skip for skip in skipped if skip.purpose == "accuracy"]) == 5
    assert all("days of history" in skip.reason for skip in skipped if skip.purpose == "accuracy")
    assert reports["new"].skipped == len(skipped)


def test_budget_scopes_are_evaluated(store):
    store_clusters(
        store,
        {
            "alpha": (JULY, np.full(days_until_end(JULY), 40.0)),
            "beta": (JULY, np.full(days_until_end(JULY), 60.0)),
        },
    )
    budgets = parse_budgets(
        """
budgets:
  - name: whole-project
    scope: {project: proj}
    amount: 3000
    thresholds: [{type: forecast, percent: 100}]
  - name: gone
    scope: {cluster: no-such-cluster}
    amount: 10
    thresholds: [{type: actual, percent: 100}]
"""
    )

    result = _run(store, BacktestOptions(horizons=(7,)), budgets)

    assert result.scope_kind == "budget"
    assert [report.name for report in result.scopes] == ["whole-project"]
    assert result.scopes[0].spend == pytest.approx(100.0 * days_until_end(JULY))
    assert result.without_data == ["gone"]
    assert any(skip.scope == "gone" and skip.origin is None for skip in result.skipped)


def test_scope_option_restricts(store):
    store_clusters(
        store,
        {name: (JULY, np.full(days_until_end(JULY), 10.0)) for name in ("alpha", "beta")},
    )

    result = _run(store, BacktestOptions(scope="beta", horizons=(7,)))

    assert [report.name for report in result.scopes] == ["beta"]
    assert {cell.scope for cell in result.forecasts} == {"beta"}


def test_billing_history_by_cluster_tag(store):
    records = billing_facts("eks-a", JULY, np.full(days_until_end(JULY), 30.0))
    records += billing_facts(None, JULY, np.full(days_until_end(JULY), 5.0))
    with store.transaction() as session:
        upsert_facts(session, records, batch_id="focus-test")

    result = _run(store, BacktestOptions(horizons=(7,)))

    assert result.source == "focus"
    assert [report.name for report in result.scopes] == ["eks-a", "(untagged)"]
    assert result.scopes[0].currency == "EUR"
    assert result.overall.forecasts == 12
    assert result.exceedance.events == 2 * 6 * 4


def test_empty_store_is_rejected(store):
    with pytest.raises(ConfigError, match="no cluster cost data"):
        _run(store)


def test_horizon_longer_than_history_is_rejected(store):
    first = LAST_DAY - timedelta(days=19)
    store_clusters(store, {"short": (first, np.full(20, 5.0))})

    with pytest.raises(ConfigError, match="has 20 days .* horizon 30 needs at least 44"):
        _run(store)


def test_unknown_scope_lists_valid_names(store):
    store_clusters(store, {"alpha": (JULY, np.full(days_until_end(JULY), 10.0))})

    with pytest.raises(ConfigError, match="'nope'.*valid names: alpha"):
        _run(store, BacktestOptions(scope="nope"))
