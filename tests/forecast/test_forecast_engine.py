"""forecast_series and forecast_many on series whose forecasts are known."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from costwarden.config import ForecastSettings
from costwarden.errors import ConfigError, ForecastError
from costwarden.forecast import MODELS, forecast_many, forecast_series, horizon_for

HISTORY_END = date(2025, 3, 31)
AS_OF = datetime(2025, 4, 1, 6, 30, tzinfo=UTC)


def _noisy_weekly(days: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weekly = np.array([5.0, 5.0, 5.0, 5.0, 5.0, -10.0, -15.0])
    return 200 + weekly[np.arange(days) % 7] + rng.normal(0, 4, days)


def test_constant_series_forecasts_level(settings: ForecastSettings) -> None:
    forecast = forecast_series("constant", np.full(60, 100.0), HISTORY_END, 30, AS_OF, settings)

    assert forecast.model == "ETS"
    assert forecast.fallback_reason is None
    np.testing.assert_allclose(forecast.days.mean, 100.0, atol=0.01)
    assert np.max(forecast.days.hi95 - forecast.days.lo95) < 0.01
    np.testing.assert_allclose(forecast.paths, 100.0, atol=0.01)


def test_forecast_dates_start_after_history_end(settings: ForecastSettings) -> None:
    values = _noisy_weekly(40)

    forecast = forecast_series("dates", values, HISTORY_END, 10, AS_OF, settings)

    assert forecast.days.dates[0] == date(2025, 4, 1)
    assert forecast.days.dates[-1] == date(2025, 4, 10)
    assert len(forecast.days.dates) == 10
    assert forecast.history_end == HISTORY_END
    assert forecast.history_start == HISTORY_END - timedelta(days=39)
    assert forecast.paths.shape == (settings.sample_paths, 10)
    assert forecast.as_of == AS_OF


def test_partial_day_is_rejected(settings: ForecastSettings) -> None:
    # At 06:30 on 1 April the day 1 April is still in progress, so it cannot end the history.
    with pytest.raises(ForecastError, match="not a complete UTC day"):
        forecast_series("partial", _noisy_weekly(40), date(2025, 4, 1), 10, AS_OF, settings)


def test_as_of_at_midnight_accepts_previous_day(settings: ForecastSettings) -> None:
    midnight = datetime(2025, 4, 1, tzinfo=UTC)

    forecast = forecast_series("midnight", _noisy_weekly(40), HISTORY_END, 5, midnight, settings)

    assert forecast.days.dates[0] == date(2025, 4, 1)


def test_naive_as_of_is_rejected(settings: ForecastSettings) -> None:
    naive = datetime(2025, 4, 1, 6, 30)

    with pytest.raises(ForecastError, match="no time zone"):
        forecast_series("naive", _noisy_weekly(40), HISTORY_END, 5, naive, settings)


def test_nan_value_names_its_day(settings: ForecastSettings) -> None:
    values = _noisy_weekly(40)
    values[-3] = np.nan

    with pytest.raises(ForecastError) as caught:
        forecast_series("holes", values, HISTORY_END, 5, AS_OF, settings)

    assert "'holes'" in str(caught.value)
    assert "2025-03-29" in str(caught.value)
    assert "fill days without cost data with 0" in str(caught.value)


def test_invalid_shapes_and_horizon_rejected(settings: ForecastSettings) -> None:
    with pytest.raises(ForecastError, match="non-empty 1-D"):
        forecast_series("empty", np.array([]), HISTORY_END, 5, AS_OF, settings)
    with pytest.raises(ForecastError, match="non-empty 1-D"):
        forecast_series("matrix", np.ones((3, 3)), HISTORY_END, 5, AS_OF, settings)
    with pytest.raises(ForecastError, match="horizon must be at least 1"):
        forecast_series("horizon", _noisy_weekly(40), HISTORY_END, 0, AS_OF, settings)


def test_only_history_days_fitted(settings: ForecastSettings) -> None:
    values = np.concatenate([np.full(100, 10_000.0), np.full(180, 100.0)])

    forecast = forecast_series("long", values, HISTORY_END, 7, AS_OF, settings)

    assert forecast.params["history_days"] == 180
    assert forecast.history_start == HISTORY_END - timedelta(days=179)
    # The old level of 10,000 a day lies outside the fitted window, so it leaves no trace.
    np.testing.assert_allclose(forecast.days.mean, 100.0, atol=0.01)


def test_short_history_uses_fallback(
    settings: ForecastSettings, caplog: pytest.LogCaptureFixture
) -> None:
    values = np.array([90.0, 110.0, 100.0, 95.0, 105.0, 100.0, 98.0, 102.0, 100.0, 100.0])

    with caplog.at_level(logging.WARNING, logger="costwarden.forecast"):
        forecast = forecast_series("young", values, HISTORY_END, 14, AS_OF, settings)

    assert forecast.model == "WindowAverage"
    assert forecast.model_version.startswith("costwarden ")
    assert forecast.fallback_reason is not None
    assert "10 complete days" in forecast.fallback_reason
    assert "min_history_days=14" in forecast.fallback_reason
    np.testing.assert_allclose(forecast.days.mean, np.mean(values[-7:]))
    assert np.all(np.diff(forecast.days.hi95 - forecast.days.lo95) > 0)
    assert any("young" in record.getMessage() for record in caplog.records)
    assert caplog.records[-1].levelno == logging.WARNING


def test_failing_primary_uses_fallback() -> None:
    # Four days pass min_history_days=2, but AutoETS cannot fit fewer parameters than that.
    settings = ForecastSettings(min_history_days=2, sample_paths=500)
    values = np.array([100.0, 104.0, 98.0, 101.0])

    forecast = forecast_series("tiny", values, HISTORY_END, 7, AS_OF, settings, model="auto-ets")

    assert forecast.model == "WindowAverage"
    assert forecast.fallback_reason is not None
    assert forecast.fallback_reason.startswith("AutoETS failed: ")


def test_autoets_records_version_and_params(settings: ForecastSettings) -> None:
    forecast = forecast_series(
        "weekly", _noisy_weekly(120), HISTORY_END, 14, AS_OF, settings, model="auto-ets"
    )

    assert forecast.model == "AutoETS"
    assert forecast.model_version.startswith("statsforecast ")
    assert forecast.params["season"] == "A"
    assert forecast.params["season_length"] == 7
    assert str(forecast.params["method"]).startswith("ETS(")
    assert 0 < float(forecast.params["alpha"]) < 1  # type: ignore[arg-type]
    assert forecast.params["history_days"] == 120


def test_zero_series_gives_zeros(settings: ForecastSettings) -> None:
    forecast = forecast_series("idle", np.zeros(45), HISTORY_END, 20, AS_OF, settings)

    for array in (forecast.days.mean, forecast.days.lo95, forecast.days.hi95, forecast.paths):
        np.testing.assert_array_equal(array, 0.0)


def test_gaps_never_give_negative_values(settings: ForecastSettings) -> None:
    rng = np.random.default_rng(5)
    values = np.clip(rng.normal(8, 6, 60), 0, None)
    values[20:30] = 0.0
    values[-4:] = 0.0

    forecast = forecast_series("gappy", values, HISTORY_END, 30, AS_OF, settings)

    for array in (forecast.days.mean, forecast.days.lo80, forecast.days.lo95, forecast.paths):
        assert np.min(array) >= 0.0
    # The wide interval reaches below zero before clipping, so the clip did something.
    assert np.min(forecast.days.lo95) == 0.0
    assert np.all(forecast.days.hi95 > 0.0)


def test_same_seed_repeats_paths(settings: ForecastSettings) -> None:
    values = _noisy_weekly(60)

    first = forecast_series("repeat", values, HISTORY_END, 20, AS_OF, settings)
    second = forecast_series("repeat", values, HISTORY_END, 20, AS_OF, settings)
    other_seed = ForecastSettings(sample_paths=2000, seed=8)
    third = forecast_series("repeat", values, HISTORY_END, 20, AS_OF, other_seed)
    other_id = forecast_series("repeat-2", values, HISTORY_END, 20, AS_OF, settings)

    np.testing.assert_array_equal(first.paths, second.paths)
    assert not np.array_equal(first.paths, third.paths)
    assert not np.array_equal(first.paths, other_id.paths)
    np.testing.assert_array_equal(first.days.mean, other_id.days.mean)


def test_forecast_many_keeps_going(settings: ForecastSettings) -> None:
    bad = np.full(30, 50.0)
    bad[4] = np.inf
    series = {
        "a": (_noisy_weekly(40, seed=1), HISTORY_END),
        "b": (bad, HISTORY_END),
        "c": (np.full(5, 20.0), HISTORY_END),
    }

    batch = forecast_many(series, 10, AS_OF, settings)

    assert sorted(batch.forecasts) == ["a", "c"]
    assert sorted(batch.failures) == ["b"]
    assert "not a finite number" in str(batch.failures["b"])
    assert batch.fallback_count == 1
    assert batch.forecasts["a"].series_id == "a"


def test_horizon_covers_period_end() -> None:
    settings = ForecastSettings(min_horizon_days=30)

    assert horizon_for(date(2025, 3, 31), date(2025, 7, 1), settings) == 91
    assert horizon_for(date(2025, 3, 31), date(2025, 4, 1), settings) == 30


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as caught:
        MODELS.create("prophet")

    assert "auto-ets" in str(caught.value)
    assert "window-average" in str(caught.value)


def test_model_options_are_validated() -> None:
    model = MODELS.create("window-average", {"window_days": 3})
    assert model.alias == "WindowAverage"

    with pytest.raises(ConfigError, match="window_days"):
        MODELS.create("window-average", {"window_days": 0})
    with pytest.raises(ConfigError, match="invalid options"):
        MODELS.create("auto-ets", {"seasonlength": 7})
