"""Calibrated intervals on held-out simulated futures: close to nominal, better than raw.

Each batch contains local-level series (random walk plus noise, weekly pattern). Every series is
forecast from its history; the held-out future comes from the same seeded process.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from costwarden.config import ForecastSettings
from costwarden.forecast import BatchOptions, forecast_batch, forecast_series

HISTORY_END = date(2025, 3, 31)
AS_OF = datetime(2025, 4, 1, 6, 30, tzinfo=UTC)
WEEKLY = np.array([8.0, 8.0, 6.0, 6.0, 4.0, -14.0, -18.0])
SERIES = 400
HISTORY_DAYS = 120
HORIZON = 14


def _local_level(noise: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return histories and futures; ``noise`` is "normal" or "t3" (Student t, 3 degrees)."""
    rng = np.random.default_rng(seed)
    days = HISTORY_DAYS + HORIZON
    level = 200 + np.cumsum(rng.normal(0, 3, (SERIES, days)), axis=1)
    if noise == "normal":
        errors = rng.normal(0, 6, (SERIES, days))
    else:
        errors = 6 * rng.standard_t(3, (SERIES, days)) / np.sqrt(3)
    values = level + WEEKLY[np.arange(days) % 7] + errors
    return values[:, :HISTORY_DAYS], values[:, HISTORY_DAYS:]


def _coverage(noise: str, seed: int, calibrate: bool) -> tuple[float, float]:
    history, future = _local_level(noise, seed)
    batch = forecast_batch(
        [f"s{i}" for i in range(SERIES)],
        history,
        HISTORY_END,
        HORIZON,
        AS_OF,
        ForecastSettings(sample_paths=100),
        options=BatchOptions(calibrate=calibrate),
    )
    low80, high80 = batch.bounds(80)
    low95, high95 = batch.bounds(95)
    inside80 = (future >= low80) & (future <= high80)
    inside95 = (future >= low95) & (future <= high95)
    return float(np.mean(inside80)), float(np.mean(inside95))


@pytest.mark.parametrize("seed", [21, 22])
def test_calibrated_coverage_near_nominal(seed: int) -> None:
    coverage80, coverage95 = _coverage("normal", seed, calibrate=True)

    # 400 series of correlated days: the coverage has a standard error of about 1.5 points.
    assert abs(coverage80 - 0.80) < 0.035, coverage80
    assert abs(coverage95 - 0.95) < 0.025, coverage95


def test_calibration_helps_heavy_tails() -> None:
    raw80, raw95 = _coverage("t3", 23, calibrate=False)
    calibrated80, calibrated95 = _coverage("t3", 23, calibrate=True)

    assert abs(calibrated80 - 0.80) < abs(raw80 - 0.80) - 0.01, (raw80, calibrated80)
    assert abs(calibrated95 - 0.95) < abs(raw95 - 0.95) - 0.005, (raw95, calibrated95)
    assert abs(calibrated80 - 0.80) < 0.035
    assert abs(calibrated95 - 0.95) < 0.025


def test_calibration_is_recorded() -> None:
    history, _ = _local_level("normal", 24)

    batch = forecast_batch(
        ["a", "b"], history[:2], HISTORY_END, HORIZON, AS_OF, ForecastSettings(sample_paths=100)
    )
    raw = forecast_series(
        "a",
        history[0],
        HISTORY_END,
        HORIZON,
        AS_OF,
        ForecastSettings(sample_paths=100),
        options=BatchOptions(calibrate=False),
    )

    record = batch.params(0)["calibration"]
    assert record["applied"] is True
    assert record["errors"] > 100
    assert set(record["width_ratio"]) == {"80", "95"}
    assert raw.params["calibration"] == {
        "applied": False,
        "errors": 0,
        "note": "calibration is turned off",
    }
    np.testing.assert_array_equal(batch[0].days.mean, raw.days.mean)


def test_short_series_keep_model_intervals() -> None:
    values = np.array([90.0, 110.0, 100.0, 95.0, 105.0, 100.0, 98.0, 102.0, 100.0, 100.0])

    forecast = forecast_series("young", values, HISTORY_END, 5, AS_OF, ForecastSettings())

    assert forecast.params["calibration"] == {"applied": False}


def test_constant_series_do_not_widen_others() -> None:
    history, _ = _local_level("normal", 25)
    flat = np.full((5, HISTORY_DAYS), 21.1)
    flat[:, -10:] += 1e-7
    values = np.vstack([history[:50], flat])
    ids = [f"s{i}" for i in range(len(values))]
    settings = ForecastSettings(sample_paths=100)

    calibrated = forecast_batch(ids, values, HISTORY_END, HORIZON, AS_OF, settings)
    raw = forecast_batch(
        ids, values, HISTORY_END, HORIZON, AS_OF, settings, options=BatchOptions(calibrate=False)
    )

    low, high = calibrated.bounds(95)
    raw_low, raw_high = raw.bounds(95)
    ratio = (high - low)[:50] / (raw_high - raw_low)[:50]
    assert 0.8 < float(np.median(ratio)) < 1.3
    assert float(np.max(high[50:] - low[50:])) < 1.0
