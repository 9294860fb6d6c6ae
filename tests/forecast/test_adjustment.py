"""The backtest interval adjustment: fitted from residuals, applied to bounds, cross-validated."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from costwarden.config import ForecastSettings
from costwarden.forecast import BatchOptions, forecast_batch
from costwarden.forecast.adjustment import (
    MAX_FACTOR,
    IntervalAdjustment,
    ResidualForecast,
    apply_adjustment,
    cross_validated,
    fit_adjustment,
)

Z80 = 1.2816
Z95 = 1.9600
HORIZON = 20


def _forecasts(
    origins: int, per_origin: int, *, true_sd: float, model_sd: float, seed: int, skew: float = 0.0
) -> list[ResidualForecast]:
    """Return forecasts whose bounds assume ``model_sd`` while the errors have ``true_sd``."""
    rng = np.random.default_rng(seed)
    items = []
    for number in range(origins):
        origin = date(2026, 1, 1) + timedelta(days=14 * number)
        for _ in range(per_origin):
            mean = np.full(HORIZON, 100.0)
            noise = rng.normal(0.0, true_sd, HORIZON)
            actual = mean + noise + skew * np.abs(noise)
            items.append(
                ResidualForecast(
                    origin=origin,
                    actual=actual,
                    mean=mean,
                    lower={80: mean - Z80 * model_sd, 95: mean - Z95 * model_sd},
                    upper={80: mean + Z80 * model_sd, 95: mean + Z95 * model_sd},
                )
            )
    return items


def _coverage(items, bounds, level: int) -> float:
    inside = [
        np.mean((item.actual >= lower[level]) & (item.actual <= upper[level]))
        for item, (lower, upper) in zip(items, bounds, strict=True)
    ]
    return float(np.mean(inside))


def test_narrow_intervals_get_widened() -> None:
    items = _forecasts(6, 40, true_sd=15.0, model_sd=10.0, seed=1)

    adjustment = fit_adjustment(items)

    for factor in adjustment.factors:
        assert factor.factor == pytest.approx(1.5, abs=0.12)
    assert adjustment.origins == 6
    assert adjustment.forecasts == 240


def test_right_intervals_stay_about_the_same() -> None:
    items = _forecasts(6, 40, true_sd=10.0, model_sd=10.0, seed=2)

    adjustment = fit_adjustment(items)

    for factor in adjustment.factors:
        assert factor.factor == pytest.approx(1.0, abs=0.1)


def test_upward_skew_widens_upper_side_more() -> None:
    items = _forecasts(6, 40, true_sd=10.0, model_sd=10.0, seed=3, skew=0.6)

    adjustment = fit_adjustment(items)

    for level in (80, 95):
        assert adjustment.factor(level, "upper", 3) > adjustment.factor(level, "lower", 3) + 0.2


def test_cross_validation_brings_coverage_to_nominal() -> None:
    items = _forecasts(6, 40, true_sd=15.0, model_sd=10.0, seed=4)
    before = [(item.lower, item.upper) for item in items]

    after = cross_validated(items)

    assert _coverage(items, before, 80) < 0.65
    assert _coverage(items, after, 80) == pytest.approx(0.80, abs=0.03)
    assert _coverage(items, after, 95) == pytest.approx(0.95, abs=0.02)


def test_cross_validation_keeps_input_order() -> None:
    items = _forecasts(3, 5, true_sd=10.0, model_sd=10.0, seed=5)
    shuffled = [items[index] for index in np.random.default_rng(5).permutation(len(items))]

    after = cross_validated(shuffled)

    for item, (lower, upper) in zip(shuffled, after, strict=True):
        assert np.all(lower[80] <= item.mean)
        assert np.all(upper[80] >= item.mean)
        assert len(lower[80]) == HORIZON


def test_single_origin_keeps_bounds() -> None:
    items = _forecasts(1, 10, true_sd=20.0, model_sd=10.0, seed=6)

    after = cross_validated(items)

    for item, (lower, upper) in zip(items, after, strict=True):
        np.testing.assert_array_equal(lower[80], item.lower[80])
        np.testing.assert_array_equal(upper[95], item.upper[95])


def test_few_days_keep_factor_one() -> None:
    items = _forecasts(2, 1, true_sd=30.0, model_sd=10.0, seed=7)

    adjustment = fit_adjustment(items)

    assert all(factor.factor == 1.0 for factor in adjustment.factors)


def test_factor_is_capped() -> None:
    items = _forecasts(4, 30, true_sd=100.0, model_sd=1.0, seed=8)

    adjustment = fit_adjustment(items)

    assert all(factor.factor == MAX_FACTOR for factor in adjustment.factors)


def test_apply_keeps_95_outside_80() -> None:
    mean = np.full((2, 10), 50.0)
    lower = {80: mean - 10.0, 95: mean - 12.0}
    upper = {80: mean + 10.0, 95: mean + 12.0}
    items = _forecasts(4, 30, true_sd=10.0, model_sd=10.0, seed=9)
    adjustment = fit_adjustment(items)
    widened = IntervalAdjustment(
        factors=tuple(
            factor.model_copy(update={"factor": 2.0 if factor.level == 80 else 1.0})
            for factor in adjustment.factors
        ),
        origins=4,
        forecasts=120,
    )

    new_lower, new_upper = apply_adjustment(mean, lower, upper, widened)

    np.testing.assert_allclose(new_lower[80], 30.0)
    np.testing.assert_allclose(new_upper[80], 70.0)
    assert np.all(new_lower[95] <= new_lower[80])
    assert np.all(new_upper[95] >= new_upper[80])


def test_adjustment_survives_json_round_trip() -> None:
    adjustment = fit_adjustment(
        _forecasts(3, 30, true_sd=12.0, model_sd=10.0, seed=10), history_end=date(2026, 3, 1)
    )

    restored = IntervalAdjustment.model_validate(adjustment.model_dump(mode="json"))

    assert restored == adjustment
    assert restored.audit()["history_end"] == "2026-03-01"
    assert len(restored.audit()["factors"]) == 12


def test_forecast_batch_applies_adjustment() -> None:
    rng = np.random.default_rng(11)
    values = 100.0 + rng.normal(0.0, 5.0, (3, 90))
    history_end = date(2026, 6, 30)
    as_of = datetime(2026, 7, 1, tzinfo=UTC)
    settings = ForecastSettings(sample_paths=200)
    adjustment = fit_adjustment(_forecasts(4, 30, true_sd=15.0, model_sd=10.0, seed=12))

    plain = forecast_batch(["a", "b", "c"], values, history_end, 14, as_of, settings)
    options = BatchOptions(interval_adjustment=adjustment)
    adjusted = forecast_batch(
        ["a", "b", "c"], values, history_end, 14, as_of, settings, options=options
    )

    np.testing.assert_allclose(adjusted.mean, plain.mean)
    plain_low, plain_high = plain.bounds(80)
    low, high = adjusted.bounds(80)
    assert np.all(high - adjusted.mean > 1.3 * (plain_high - plain.mean))
    assert np.all(adjusted.mean - low > 1.3 * (plain.mean - plain_low))
    assert adjusted.params(0)["interval_adjustment"]["origins"] == 4
    assert "interval_adjustment" not in plain.params(0)
