"""Backtests on simulated series from known processes: point accuracy, coverage, calibration.

Every series is forecast from its history only; the held-out future comes from the same seeded
process and is compared with the forecast afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from costwarden.config import ForecastSettings
from costwarden.domain.budget import PeriodWindow
from costwarden.domain.forecast import Forecast
from costwarden.forecast import exceedance, forecast_series

HISTORY_END = date(2025, 3, 31)
AS_OF = datetime(2025, 4, 1, 6, 30, tzinfo=UTC)
WEEKLY = np.array([8.0, 8.0, 6.0, 6.0, 4.0, -14.0, -18.0])
"""Weekly pattern with a weekend drop; it sums to zero."""

N_SERIES = 160
HISTORY_DAYS = 90
HORIZON = 14
SPENT_DAYS = 10
WINDOW = PeriodWindow(HISTORY_END - timedelta(days=SPENT_DAYS - 1), HISTORY_END + timedelta(15))
"""25 days: the last 10 days of history and all 14 held-out days plus the partial day."""


@dataclass(frozen=True)
class Backtest:
    history: np.ndarray
    future: np.ndarray
    forecast: Forecast


@pytest.fixture(scope="module")
def backtests() -> list[Backtest]:
    """Forecast local-level series (random walk plus noise, weekly pattern), futures held out."""
    rng = np.random.default_rng(2024)
    settings = ForecastSettings(sample_paths=1000, seed=3)
    days = HISTORY_DAYS + HORIZON
    results = []
    for index in range(N_SERIES):
        level = 200 + np.cumsum(rng.normal(0, 3, days))
        values = level + WEEKLY[np.arange(days) % 7] + rng.normal(0, 6, days)
        history, future = values[:HISTORY_DAYS], values[HISTORY_DAYS:]
        forecast = forecast_series(f"sim-{index}", history, HISTORY_END, HORIZON, AS_OF, settings)
        results.append(Backtest(history, future, forecast))
    return results


def test_trend_and_weekly_pattern_tracked(settings: ForecastSettings) -> None:
    rng = np.random.default_rng(0)
    history_days, horizon = 120, 28
    t = np.arange(history_days + horizon)
    trend = 50 + 0.8 * t
    expected = trend + WEEKLY[t % 7]
    values = expected + rng.normal(0, 3, len(t))

    forecast = forecast_series(
        "trend", values[:history_days], HISTORY_END, horizon, AS_OF, settings
    )

    error = forecast.days.mean - expected[history_days:]
    assert np.mean(np.abs(error)) < 1.5
    assert np.max(np.abs(error)) < 4.0
    future_t = t[history_days:]
    detrended = forecast.days.mean - trend[history_days:]
    profile = np.array([np.mean(detrended[future_t % 7 == day]) for day in range(7)])
    assert np.corrcoef(profile, WEEKLY)[0, 1] > 0.98
    assert np.ptp(profile) == pytest.approx(np.ptp(WEEKLY), abs=4.0)


def test_daily_interval_coverage(backtests: list[Backtest]) -> None:
    inside80 = [
        (test.future >= test.forecast.days.lo80) & (test.future <= test.forecast.days.hi80)
        for test in backtests
    ]
    inside95 = [
        (test.future >= test.forecast.days.lo95) & (test.future <= test.forecast.days.hi95)
        for test in backtests
    ]

    coverage80 = float(np.mean(inside80))
    coverage95 = float(np.mean(inside95))
    assert abs(coverage80 - 0.80) < 0.04, coverage80
    assert abs(coverage95 - 0.95) < 0.03, coverage95


def test_total_interval_coverage(backtests: list[Backtest]) -> None:
    """Totals of correlated paths cover the held-out total; independent days would not."""
    rng = np.random.default_rng(5)
    covered, covered_independent = [], []
    for test in backtests:
        paths = test.forecast.paths
        independent = np.column_stack([rng.permutation(column) for column in paths.T])
        truth = test.future.sum()
        low, high = np.quantile(paths.sum(axis=1), [0.1, 0.9])
        covered.append(low <= truth <= high)
        low, high = np.quantile(independent.sum(axis=1), [0.1, 0.9])
        covered_independent.append(low <= truth <= high)

    # With 160 series the coverage has a standard error of about 3 points.
    coverage = float(np.mean(covered))
    assert 0.70 < coverage < 0.90, coverage
    assert float(np.mean(covered_independent)) < coverage - 0.25


def test_exceedance_probability_calibrated(backtests: list[Backtest]) -> None:
    """Among budgets given probability p of being exceeded, about a share p are exceeded."""
    rng = np.random.default_rng(8)
    probabilities, outcomes = [], []
    for test in backtests:
        spent = round(float(test.history[-SPENT_DAYS:].sum()), 2)
        actual_total = spent + float(test.future.sum())
        typical = float(test.history[-7:].mean()) * HORIZON
        for _ in range(8):
            budget = round(spent + typical * rng.uniform(0.85, 1.15), 2)
            result = exceedance(test.forecast, WINDOW, Decimal(str(spent)), Decimal(str(budget)))
            probabilities.append(result.probability)
            outcomes.append(actual_total > budget)
    probability = np.array(probabilities)
    outcome = np.array(outcomes, dtype=float)

    brier = float(np.mean((probability - outcome) ** 2))
    base_rate = float(np.mean(outcome))
    assert brier < 0.5 * base_rate * (1 - base_rate)
    # Paths with independent days fail this table: too sure in the outer bins (gaps of about
    # 0.05) and too unsure in the lower middle bin (a gap of about 0.15).
    bins = [(0.0, 0.1, 0.03), (0.1, 0.5, 0.1), (0.5, 0.9, 0.1), (0.9, 1.01, 0.03)]
    for low, high, tolerance in bins:
        in_bin = (probability >= low) & (probability < high)
        assert in_bin.sum() >= 100, (low, high, in_bin.sum())
        gap = abs(float(np.mean(probability[in_bin])) - float(np.mean(outcome[in_bin])))
        assert gap < tolerance, (low, high, gap)
