"""Level shifts and month-end effects: found where planted, not invented where absent."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from costwarden.config import ForecastSettings
from costwarden.forecast import BatchOptions, forecast_batch, forecast_series
from costwarden.forecast.monthend import days_before_month_end

HISTORY_END = date(2025, 6, 30)
AS_OF = datetime(2025, 7, 1, 8, tzinfo=UTC)
WEEKLY = np.array([8.0, 8.0, 6.0, 6.0, 4.0, -14.0, -18.0])
SETTINGS = ForecastSettings(sample_paths=200, seed=4)


def _weekly(days: int, level: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    return level + WEEKLY[t % 7] + rng.normal(0, noise, days)


def _day(index: int, days: int) -> date:
    return HISTORY_END - timedelta(days=days - 1 - index)


@pytest.mark.parametrize("shift_at", [110, 150, 165])
def test_level_shift_found_and_followed(shift_at: int) -> None:
    values = _weekly(180, 100.0, 3.0, seed=shift_at)
    values[shift_at:] += 60.0

    forecast = forecast_series("deploy", values, HISTORY_END, 14, AS_OF, SETTINGS)

    change = forecast.params["change_point"]
    assert change is not None
    found = date.fromisoformat(str(change["date"]))
    assert abs((found - _day(shift_at, 180)).days) <= 3
    assert float(change["step"]) == pytest.approx(60.0, abs=8.0)
    expected_action = "fit-after" if 180 - shift_at >= 28 else "shift-earlier-days"
    assert change["action"] == expected_action
    future = 160.0 + WEEKLY[np.arange(180, 194) % 7]
    assert np.mean(np.abs(forecast.days.mean - future)) < 6.0


def test_fit_after_shift_starts_history_there() -> None:
    values = _weekly(180, 100.0, 3.0, seed=1)
    values[120:] -= 50.0

    forecast = forecast_series("scale-down", values, HISTORY_END, 7, AS_OF, SETTINGS)

    assert forecast.history_start == date.fromisoformat(
        str(forecast.params["change_point"]["date"])
    )
    assert forecast.params["history_days"] == (HISTORY_END - forecast.history_start).days + 1


def test_no_shift_in_steady_series() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(180)
    rows = [
        200 + np.cumsum(rng.normal(0, 2, 180)) + WEEKLY[t % 7] + rng.normal(0, 6, 180)
        for _ in range(20)
    ] + [60 + 0.5 * t + WEEKLY[t % 7] + rng.normal(0, 3, 180) for _ in range(10)]

    batch = forecast_batch(
        [f"s{i}" for i in range(len(rows))], np.array(rows), HISTORY_END, 7, AS_OF, SETTINGS
    )

    shifts = [batch.params(row)["change_point"] for row in range(len(rows))]
    assert sum(shift is not None for shift in shifts) <= 1


def test_outage_is_not_a_shift() -> None:
    values = _weekly(180, 120.0, 3.0, seed=3)
    values[80:92] = 0.0

    forecast = forecast_series("outage", values, HISTORY_END, 7, AS_OF, SETTINGS)

    assert forecast.params["change_point"] is None


def test_change_points_can_be_turned_off() -> None:
    values = _weekly(180, 100.0, 3.0, seed=4)
    values[120:] += 60.0
    options = BatchOptions(change_points=False)

    forecast = forecast_series("off", values, HISTORY_END, 7, AS_OF, SETTINGS, options=options)

    assert forecast.params["change_point"] is None
    assert forecast.params["history_days"] == 180


def _month_end_series(days: int, effect: tuple[float, ...], seed: int) -> np.ndarray:
    values = _weekly(days, 100.0, 3.0, seed)
    offsets = days_before_month_end(_day(0, days), days)
    for before, size in enumerate(effect):
        values[offsets == before] += size
    return values


def test_days_before_month_end() -> None:
    offsets = days_before_month_end(date(2024, 2, 27), 4)

    assert offsets.tolist() == [2, 1, 0, 30]
    assert calendar.monthrange(2024, 3)[1] - 1 == offsets[-1]


def test_month_end_effect_recovered() -> None:
    values = _month_end_series(180, (40.0, 25.0), seed=5)
    horizon = 45

    forecast = forecast_series("billing", values, HISTORY_END, horizon, AS_OF, SETTINGS)

    effect = forecast.params["month_end"]
    assert effect["months"] >= 5
    found = effect["days_before_month_end"]
    assert float(found["0"]) == pytest.approx(40.0, abs=5.0)
    assert float(found["1"]) == pytest.approx(25.0, abs=5.0)
    assert "2" not in found

    offsets = days_before_month_end(HISTORY_END + timedelta(days=1), horizon)
    base = 100.0 + WEEKLY[np.arange(180, 180 + horizon) % 7]
    lift = forecast.days.mean - base
    assert np.mean(lift[offsets == 0]) == pytest.approx(40.0, abs=6.0)
    assert np.mean(lift[offsets == 1]) == pytest.approx(25.0, abs=6.0)
    assert np.mean(np.abs(lift[offsets >= 3])) < 4.0


def test_month_end_not_invented() -> None:
    rows = [_weekly(180, 100.0, 5.0, seed) for seed in range(30)]

    batch = forecast_batch(
        [f"s{i}" for i in range(len(rows))], np.array(rows), HISTORY_END, 7, AS_OF, SETTINGS
    )

    found = [batch.params(row)["month_end"]["days_before_month_end"] for row in range(30)]
    assert sum(bool(effects) for effects in found) <= 1


def test_month_end_needs_three_months() -> None:
    values = _month_end_series(63, (40.0,), seed=6)

    forecast = forecast_series("young", values, HISTORY_END, 7, AS_OF, SETTINGS)

    assert forecast.params["month_end"]["months"] == 2
    assert forecast.params["month_end"]["days_before_month_end"] == {}


def test_two_day_transition_keeps_intervals_tight() -> None:
    """A pool that grows over two days: the days in between are part of the change."""
    rng = np.random.default_rng(21)
    values = np.concatenate(
        [7.8 + rng.normal(0, 0.25, 20), [10.6], 13.8 + rng.normal(0, 0.25, 7)]
    )

    forecast = forecast_series("pool", values, HISTORY_END, 10, AS_OF, SETTINGS)

    change = forecast.params["change_point"]
    assert change is not None
    assert date.fromisoformat(str(change["date"])) == HISTORY_END - timedelta(days=6)
    assert np.all(np.abs(forecast.days.mean - 13.8) < 0.6)
    assert np.all(forecast.days.hi95 < 15.5)
