"""simulate_paths: per-day marginals that match the intervals, and errors that persist."""

from __future__ import annotations

from datetime import UTC, date, datetime
from statistics import NormalDist

import numpy as np
import pytest

from costwarden.config import ForecastSettings
from costwarden.forecast import Prediction, forecast_series, simulate_paths

HISTORY_END = date(2025, 3, 31)
AS_OF = datetime(2025, 4, 1, 6, 30, tzinfo=UTC)
Z80 = NormalDist().inv_cdf(0.90)
Z95 = NormalDist().inv_cdf(0.975)


def _gaussian(mean: np.ndarray, sd: np.ndarray) -> Prediction:
    return Prediction(
        mean=mean,
        lower={80: mean - Z80 * sd, 95: mean - Z95 * sd},
        upper={80: mean + Z80 * sd, 95: mean + Z95 * sd},
    )


def _inside(paths: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Return, per day, the share of paths inside [lower, upper]."""
    return np.mean((paths >= lower) & (paths <= upper), axis=0)


def _local_level(days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 300 + np.cumsum(rng.normal(0, 4, days)) + rng.normal(0, 6, days)


@pytest.mark.parametrize("history_days", [90, 10], ids=["autoets", "window-average"])
def test_path_quantiles_match_intervals(settings: ForecastSettings, history_days: int) -> None:
    values = _local_level(history_days, seed=3)

    forecast = forecast_series("marginals", values, HISTORY_END, 30, AS_OF, settings)

    days = forecast.days
    inside80 = _inside(forecast.paths, days.lo80, days.hi80)
    inside95 = _inside(forecast.paths, days.lo95, days.hi95)
    assert np.all(np.abs(inside80 - 0.80) < 0.03), inside80
    assert np.all(np.abs(inside95 - 0.95) < 0.015), inside95
    median = np.median(forecast.paths, axis=0)
    spread = days.hi95 - days.lo95
    assert np.all(np.abs(median - days.mean) < 0.05 * spread)


def test_asymmetric_intervals_are_matched() -> None:
    mean = np.full(10, 100.0)
    prediction = Prediction(
        mean=mean,
        lower={80: mean - 10.0, 95: mean - 15.0},
        upper={80: mean + 30.0, 95: mean + 60.0},
    )

    paths = simulate_paths(prediction, 20_000, np.random.default_rng(0))

    quantiles = np.quantile(paths, [0.025, 0.10, 0.5, 0.90, 0.975], axis=0)
    expected = np.array([85.0, 90.0, 100.0, 130.0, 160.0])
    np.testing.assert_allclose(quantiles, np.tile(expected[:, None], (1, 10)), atol=1.5)


def test_simple_smoothing_total_variance_exact() -> None:
    # ETS(A,N,N): y[T+h] - forecast = e[h] + alpha * (e[1] + ... + e[h-1]), e ~ N(0, sigma^2).
    alpha, sigma, horizon = 0.4, 5.0, 14
    steps = np.arange(1, horizon + 1)
    prediction = _gaussian(np.full(horizon, 100.0), sigma * np.sqrt(1 + alpha**2 * (steps - 1)))

    paths = simulate_paths(prediction, 40_000, np.random.default_rng(1))

    total_variance = sigma**2 * np.sum((1 + alpha * (horizon - steps)) ** 2)
    assert np.var(paths.sum(axis=1)) == pytest.approx(total_variance, rel=0.03)
    day1_day5 = np.cov(paths[:, 0], paths[:, 4])[0, 1]
    assert day1_day5 == pytest.approx(alpha * sigma**2, rel=0.1)
    day3_day9 = np.cov(paths[:, 2], paths[:, 8])[0, 1]
    assert day3_day9 == pytest.approx((alpha + 2 * alpha**2) * sigma**2, rel=0.1)


def test_correlated_total_wider_than_independent(settings: ForecastSettings) -> None:
    forecast = forecast_series("total", _local_level(90, seed=4), HISTORY_END, 30, AS_OF, settings)
    rng = np.random.default_rng(2)
    independent = np.column_stack([rng.permutation(column) for column in forecast.paths.T])

    correlated_total = forecast.paths.sum(axis=1)
    independent_total = independent.sum(axis=1)

    def width80(totals: np.ndarray) -> float:
        low, high = np.quantile(totals, [0.1, 0.9])
        return float(high - low)

    # Shuffling each day's column keeps every marginal but breaks the day-to-day correlation.
    np.testing.assert_allclose(np.sort(independent, axis=0), np.sort(forecast.paths, axis=0))
    assert width80(correlated_total) > 2.0 * width80(independent_total)


def test_zero_width_intervals_give_mean() -> None:
    mean = np.linspace(10.0, 20.0, 8)
    prediction = _gaussian(mean, np.zeros(8))

    paths = simulate_paths(prediction, 500, np.random.default_rng(0))

    np.testing.assert_array_equal(paths, np.tile(mean, (500, 1)))


def test_paths_clipped_at_zero() -> None:
    prediction = _gaussian(np.full(5, 2.0), np.full(5, 4.0))

    paths = simulate_paths(prediction, 20_000, np.random.default_rng(0))

    assert np.min(paths) == 0.0
    share_at_zero = np.mean(paths == 0.0, axis=0)
    np.testing.assert_allclose(share_at_zero, NormalDist(2.0, 4.0).cdf(0.0), atol=0.015)


def test_same_generator_seed_same_paths() -> None:
    prediction = _gaussian(np.full(12, 50.0), np.linspace(1.0, 6.0, 12))

    first = simulate_paths(prediction, 300, np.random.default_rng(9))
    second = simulate_paths(prediction, 300, np.random.default_rng(9))

    np.testing.assert_array_equal(first, second)
