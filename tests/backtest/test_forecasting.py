"""How the backtest calls the forecaster: one series at a time, or through ``forecast_batch``.

``forecast_batch`` and ``calibrate=False`` are optional parts of the forecaster's public API. The
batch function here follows that contract (one row per series, aligned on the origin, leading NaN
before a series' first day) and forecasts each row with the real ``forecast_series``.
"""

from datetime import date, timedelta

import numpy as np
import pytest

from costwarden import forecast as forecast_api
from costwarden.backtest.forecasting import forecast_origin, origin_as_of, raw_intervals_supported
from costwarden.backtest.series import ScopeSeries
from costwarden.config import ForecastSettings
from costwarden.domain.forecast import DailyForecast

SETTINGS = ForecastSettings(sample_paths=200, seed=4)
ORIGIN = date(2026, 10, 31)


def _scopes() -> list[ScopeSeries]:
    rng = np.random.default_rng(3)
    long_first = ORIGIN - timedelta(days=89)
    short_first = ORIGIN - timedelta(days=29)
    return [
        ScopeSeries("long", "palette", long_first, 300 + rng.normal(0, 5, 120)),
        ScopeSeries("short", "palette", short_first, 40 + rng.normal(0, 1, 60)),
    ]


@pytest.fixture
def recorded_batches(monkeypatch):
    """Install a ``forecast_batch`` that records its input and honours ``calibrate``."""
    calls = []

    def forecast_batch(ids, values_2d, history_end, horizon, as_of, settings, *, calibrate=True):
        calls.append({"ids": list(ids), "values": values_2d.copy(), "calibrate": calibrate})
        forecasts = []
        for series_id, row in zip(ids, values_2d, strict=True):
            history = row[~np.isnan(row)]
            item = forecast_api.forecast_series(
                series_id, history, history_end, horizon, as_of, settings
            )
            if not calibrate:
                item.params["raw"] = True
            forecasts.append(item)
        return forecasts

    monkeypatch.setattr(forecast_api, "forecast_batch", forecast_batch, raising=False)
    return calls


def test_batch_rows_end_on_origin(recorded_batches):
    scopes = _scopes()

    result = forecast_origin(scopes, ORIGIN, 14, SETTINGS)

    values = recorded_batches[0]["values"]
    assert recorded_batches[0]["ids"] == ["long", "short"]
    assert values.shape == (2, 90)
    np.testing.assert_array_equal(values[0], scopes[0].values[:90])
    assert np.isnan(values[1, :60]).all()
    np.testing.assert_array_equal(values[1, 60:], scopes[1].values[:30])
    assert set(result.forecasts) == {"long", "short"}
    assert result.forecasts["short"].history_end == ORIGIN


def test_batch_matches_one_by_one(recorded_batches, monkeypatch):
    batched = forecast_origin(_scopes(), ORIGIN, 14, SETTINGS)
    monkeypatch.delattr(forecast_api, "forecast_batch")

    single = forecast_origin(_scopes(), ORIGIN, 14, SETTINGS)

    for name in ("long", "short"):
        np.testing.assert_array_equal(
            batched.forecasts[name].days.mean, single.forecasts[name].days.mean
        )


def test_raw_intervals_when_calibrate_is_accepted(recorded_batches):
    assert raw_intervals_supported()

    result = forecast_origin(_scopes(), ORIGIN, 7, SETTINGS)

    assert [call["calibrate"] for call in recorded_batches] == [True, False]
    assert result.raw is not None
    assert set(result.raw) == {"long", "short"}
    assert isinstance(result.raw["long"], DailyForecast)


def test_missing_forecast_becomes_failure(monkeypatch):
    def forecast_batch(ids, values_2d, history_end, horizon, as_of, settings):
        return {"forecasts": {}}

    monkeypatch.setattr(forecast_api, "forecast_batch", forecast_batch, raising=False)

    result = forecast_origin(_scopes(), ORIGIN, 7, SETTINGS)

    assert result.forecasts == {}
    assert set(result.failures) == {"long", "short"}


def test_one_by_one_without_batch(monkeypatch):
    monkeypatch.delattr(forecast_api, "forecast_batch", raising=False)

    result = forecast_origin(_scopes(), ORIGIN, 7, SETTINGS)

    forecast = result.forecasts["long"]
    assert forecast.as_of == origin_as_of(ORIGIN)
    assert forecast.days.dates[0] == ORIGIN + timedelta(days=1)
    assert len(forecast.days.dates) == 7
