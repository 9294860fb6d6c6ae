"""Summaries of hand-made forecasts: means over forecasts, coverage pooled over days."""

from datetime import date, timedelta

import numpy as np
import pytest

from costwarden.backtest.results import (
    ExceedanceEvent,
    OriginForecast,
    summarize_accuracy,
    summarize_events,
)
from costwarden.domain.forecast import DailyForecast

ORIGIN = date(2026, 10, 1)


def _days(mean, lo80, hi80, lo95, hi95) -> DailyForecast:
    dates = tuple(ORIGIN + timedelta(days=offset) for offset in range(1, len(mean) + 1))
    arrays = (np.array(values, dtype=float) for values in (mean, lo80, hi80, lo95, hi95))
    return DailyForecast(dates, *arrays)


def _cell(scale, raw=None) -> OriginForecast:
    # Actual 10, 10, 10, 10 against a mean of 10, 12, 10, 14: absolute errors 0, 2, 0, 4.
    days = _days(
        mean=[10, 12, 10, 14],
        lo80=[9, 11, 9, 13],
        hi80=[11, 13, 11, 15],
        lo95=[8, 9, 8, 9],
        hi95=[12, 15, 12, 16],
    )
    return OriginForecast("a", ORIGIN, np.full(4, 10.0), days, scale, "test", raw)


def test_accuracy_per_horizon():
    accuracy = summarize_accuracy([_cell(scale=2.0)], (2,))

    # Days 1-2: MAE 1, so MASE 0.5. sMAPE is (0 + 2 * 2 / 22) / 2 in percent.
    assert accuracy.forecasts == 1
    assert accuracy.days == 2
    assert accuracy.mase == pytest.approx(0.5)
    assert accuracy.smape == pytest.approx(100 * (4 / 22) / 2)
    assert accuracy.coverage_80 == 0.5
    assert accuracy.coverage_95 == 1.0


def test_accuracy_pools_horizons():
    accuracy = summarize_accuracy([_cell(scale=2.0), _cell(scale=None)], (2, 4))

    # MASE is defined for the first cell only: 0.5 at horizon 2 and 6 / 4 / 2 = 0.75 at 4.
    assert accuracy.mase_defined == 2
    assert accuracy.mase == pytest.approx((0.5 + 0.75) / 2)
    # Each cell covers 1 of 2 days and 2 of 4 days at 80%, and 4 of 4 days at 95%.
    assert accuracy.days == 2 * (2 + 4)
    assert accuracy.coverage_80 == pytest.approx(6 / 12)
    assert accuracy.coverage_95 == pytest.approx(1.0)
    assert accuracy.coverage_80_raw is None


def test_raw_coverage_from_uncalibrated_intervals():
    narrow = _days([10] * 4, [10.5] * 4, [11] * 4, [9] * 4, [10.5] * 4)

    accuracy = summarize_accuracy([_cell(scale=2.0, raw=narrow)], (4,))

    assert accuracy.coverage_80_raw == 0.0
    assert accuracy.coverage_95_raw == 1.0
    assert accuracy.coverage_80 == 0.5


def test_raw_coverage_needs_every_forecast():
    narrow = _days([10] * 4, [10.5] * 4, [11] * 4, [9] * 4, [10.5] * 4)

    accuracy = summarize_accuracy([_cell(2.0, raw=narrow), _cell(2.0)], (4,))

    assert accuracy.coverage_80_raw is None


def test_events_brier_and_baseline():
    def event(probability, baseline, observed):
        return ExceedanceEvent(
            "a", ORIGIN, ORIGIN, ORIGIN, 1.0, 100.0, 40.0, 90.0, probability, baseline, observed
        )

    score = summarize_events([event(0.8, 1.0, True), event(0.3, 1.0, False)])

    # Forecaster: (0.2^2 + 0.3^2) / 2 = 0.065. Baseline: (0 + 1) / 2 = 0.5.
    assert score.events == 2
    assert score.brier == pytest.approx(0.065)
    assert score.baseline_brier == pytest.approx(0.5)
