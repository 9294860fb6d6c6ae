"""The yearly regression: used on long seasonal histories, refused where it does not help."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from costwarden.config import ForecastSettings, load_settings
from costwarden.forecast import BatchOptions, forecast_batch
from costwarden.forecast.yearly import (
    KNOT_SPAN,
    MODEL_ALIAS,
    _design,
    _gram,
    _knots,
    _Regression,
    interval_offsets,
    regression_forecast,
)

SETTINGS = ForecastSettings(sample_paths=200, seed=3)
HORIZON = 60


def _seasonal(days: int, seed: int, noise: float = 4.0) -> np.ndarray:
    """Return a daily series with a yearly peak, a weekly cycle and a slow trend."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    yearly = 40.0 * np.sin(2 * np.pi * t / 365.25) + 15.0 * np.cos(4 * np.pi * t / 365.25)
    weekly = np.array([6.0, 6.0, 5.0, 5.0, 4.0, -12.0, -14.0])[t % 7]
    return 300.0 + 0.02 * t + yearly + weekly + rng.normal(0.0, noise, days)


def _forecast(history: np.ndarray, options: BatchOptions | None = None):
    history_end = date(2026, 6, 30)
    as_of = datetime.combine(history_end + timedelta(days=1), datetime.min.time(), UTC)
    return forecast_batch(
        ["s"], history[None, :], history_end, HORIZON, as_of, SETTINGS, options=options
    )


def test_yearly_cycle_beats_weekly_models() -> None:
    series = _seasonal(3 * 365 + HORIZON, seed=1)
    history, future = series[:-HORIZON], series[-HORIZON:]

    yearly = _forecast(history)
    weekly = _forecast(history, BatchOptions(yearly=False))

    assert yearly.models == [MODEL_ALIAS]
    assert weekly.models != [MODEL_ALIAS]
    yearly_error = np.mean(np.abs(yearly.mean[0] - future))
    weekly_error = np.mean(np.abs(weekly.mean[0] - future))
    assert yearly_error < 0.5 * weekly_error
    assert yearly_error < 8.0


def test_yearly_intervals_cover_held_out_days() -> None:
    inside = []
    for seed in range(6):
        series = _seasonal(3 * 365 + HORIZON, seed=10 + seed)
        batch = _forecast(series[:-HORIZON])
        low, high = batch.bounds(80)
        future = series[-HORIZON:]
        inside.append(np.mean((future >= low[0]) & (future <= high[0])))

    assert 0.65 <= float(np.mean(inside)) <= 0.95


def test_yearly_choice_records_reason() -> None:
    batch = _forecast(_seasonal(1200, seed=2))

    params = batch.params(0)
    assert params["history_days"] == 1200
    assert batch.history_starts[0] == date(2026, 6, 30) - timedelta(days=1199)
    selection = params["selection"]
    assert set(selection["scores"]) == {MODEL_ALIAS, "SeasonalNaive"}
    assert selection["scores"][MODEL_ALIAS] < selection["scores"]["SeasonalNaive"]
    assert "1200 days of history" in selection["reason"]
    assert params["calibration"]["origins"] == 16


def test_short_or_disabled_uses_weekly() -> None:
    short = _forecast(_seasonal(700, seed=3))
    switched_off = _forecast(_seasonal(900, seed=3), BatchOptions(yearly=False))

    assert short.models != [MODEL_ALIAS]
    assert switched_off.models != [MODEL_ALIAS]
    assert short.params(0)["history_days"] == SETTINGS.history_days


def test_leading_zeros_not_counted() -> None:
    series = _seasonal(900, seed=4)
    padded = np.concatenate([np.zeros(200), series[-700:]])

    batch = _forecast(padded)

    assert batch.models != [MODEL_ALIAS]


def test_random_walk_rejects_regression() -> None:
    rng = np.random.default_rng(5)
    walk = 1000.0 + np.cumsum(rng.normal(0.0, 25.0, 1100))

    batch = _forecast(walk)

    assert batch.models != [MODEL_ALIAS]


def test_mixed_batch_keeps_each_series_own_model() -> None:
    long = _seasonal(1000, seed=6)
    short = np.full(1000, np.nan)
    short[-120:] = _seasonal(120, seed=7)
    history_end = date(2026, 6, 30)
    as_of = datetime(2026, 7, 1, tzinfo=UTC)

    batch = forecast_batch(
        ["long", "short"], np.vstack([long, short]), history_end, 30, as_of, SETTINGS
    )

    assert batch.models[0] == MODEL_ALIAS
    assert batch.models[1] != MODEL_ALIAS
    assert batch.params(1)["history_days"] == 120


def test_gram_matches_the_plain_product() -> None:
    x = _design(np.arange(800.0), _knots(800, 60), 10)

    np.testing.assert_allclose(_gram(x), x.T @ x, rtol=1e-10, atol=1e-8)


def test_cut_fit_equals_short_fit() -> None:
    """The Gram subtraction gives the fit that the series ending at the cut would get."""
    options = BatchOptions()
    y = _seasonal(1200, seed=8)
    cut = 1000

    from_full = _Regression(y, options).forecasts(np.array([cut]), 30)[0]

    knots = _knots(1200, options.yearly_knot_days)
    knots = knots[knots < KNOT_SPAN * cut]
    x = _design(np.arange(float(cut)), knots, options.yearly_order)
    penalty = np.zeros(x.shape[1])
    penalty[2 : 2 + len(knots)] = options.yearly_trend_penalty
    penalty[2 + len(knots) :] = options.yearly_trend_penalty * 0.01
    beta = np.linalg.solve(x.T @ x + np.diag(penalty) * cut / 100.0, x.T @ y[:cut])
    direct = _design(np.arange(cut, cut + 30.0), knots, options.yearly_order) @ beta

    np.testing.assert_allclose(from_full, direct, rtol=1e-6, atol=1e-6)


def test_regression_forecast_follows_the_last_slope() -> None:
    t = np.arange(1000.0)
    y = 50.0 + 0.5 * t

    forecast = regression_forecast(y, 10, BatchOptions())

    np.testing.assert_allclose(forecast, 50.0 + 0.5 * np.arange(1000.0, 1010.0), atol=0.5)


def test_interval_offsets_are_quantiles_of_pooled_errors() -> None:
    rng = np.random.default_rng(9)
    errors = rng.normal(0.0, 10.0, (400, 12))

    offsets = interval_offsets(errors)

    low80, high80 = offsets[80]
    low95, high95 = offsets[95]
    assert np.all(low95 <= low80)
    assert np.all(high95 >= high80)
    np.testing.assert_allclose(high80, 12.8, atol=1.5)
    np.testing.assert_allclose(low95, -19.6, atol=2.5)


def test_interval_offsets_never_exclude_the_mean() -> None:
    errors = np.full((20, 5), 3.0)

    low, high = interval_offsets(errors)[80]

    assert np.all(low == 0.0)
    assert np.all(high == 3.0)


@pytest.mark.parametrize("field", ["yearly_min_days", "yearly_history_days"])
def test_yearly_options_reject_short_spans(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BatchOptions(**{field: 400})


def test_batch_options_come_from_the_settings(tmp_path, monkeypatch) -> None:
    config = tmp_path / "costwarden.yaml"
    config.write_text("forecast:\n  batch:\n    yearly: false\n    holdout_folds: 3\n")
    monkeypatch.delenv("COSTWARDEN_FORECAST", raising=False)

    settings = load_settings(config)

    assert settings.forecast.batch.yearly is False
    assert settings.forecast.batch.holdout_folds == 3
    assert settings.forecast.fetch_days == settings.forecast.history_days
    assert ForecastSettings().fetch_days == BatchOptions().yearly_history_days


@pytest.mark.parametrize("days", [730, 760, 789])
def test_no_calibration_origin_uses_weekly(days: int) -> None:
    """Between 730 days and 730 plus the horizon no origin is left to calibrate on."""
    batch = _forecast(_seasonal(days, seed=days))

    assert batch.models != [MODEL_ALIAS]
    assert np.all(np.isfinite(batch.mean))


def test_recent_ramp_rejects_regression() -> None:
    series = _seasonal(1000, seed=12)
    ramp = np.clip(np.arange(1000) - 970, 0, None) * 12.0
    with_ramp = series + ramp

    steady = _forecast(series)
    ramped = _forecast(with_ramp)

    assert steady.models == [MODEL_ALIAS]
    assert ramped.models != [MODEL_ALIAS]
    assert ramped.mean[0][0] > with_ramp[-7:].mean()


def test_unknown_candidate_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown candidate model 'Prophet'"):
        BatchOptions(candidates=("ets", "Prophet"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model_options": {"ets": {"foo": 1}}}, "model_options.ets: foo"),
        ({"model_options": {"prophet": {}}}, "unknown candidate model 'prophet'"),
        ({"holdout_folds": 1000}, "holdout_folds"),
    ],
)
def test_bad_batch_options_are_rejected(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchOptions(**options)
