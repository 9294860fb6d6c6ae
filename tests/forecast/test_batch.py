"""forecast_batch: same results as one at a time, candidate models, selection and input rules."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from costwarden.config import ForecastSettings
from costwarden.domain.budget import PeriodWindow
from costwarden.errors import ForecastError
from costwarden.forecast import (
    BATCH_MODELS,
    BatchOptions,
    exceedance,
    forecast_batch,
    forecast_many,
    forecast_series,
)
from costwarden.forecast.candidates import fit_models
from costwarden.forecast.paths import path_rows

HISTORY_END = date(2025, 3, 31)
AS_OF = datetime(2025, 4, 1, 6, 30, tzinfo=UTC)
WEEKLY = np.array([8.0, 8.0, 6.0, 6.0, 4.0, -14.0, -18.0])


def _mixed_series(count: int, days: int, seed: int) -> np.ndarray:
    """Return series of different kinds: local level, trend, pure weekly, new with leading NaN."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    rows = []
    for index in range(count):
        kind = index % 4
        noise = rng.normal(0, 4, days)
        if kind == 0:
            row = 300 + np.cumsum(rng.normal(0, 2, days)) + WEEKLY[t % 7] + noise
        elif kind == 1:
            row = 80 + 0.6 * t + WEEKLY[t % 7] + noise
        elif kind == 2:
            row = 150 + 3 * WEEKLY[t % 7] + noise / 4
        else:
            row = 120 + WEEKLY[t % 7] + noise
            row[: days // 2] = np.nan
        rows.append(row)
    return np.array(rows)


def _forecast_one(
    series_id: str, values: np.ndarray, horizon: int, options: BatchOptions
) -> object:
    settings = ForecastSettings(sample_paths=300, seed=5)
    return forecast_series(
        series_id, values, HISTORY_END, horizon, AS_OF, settings, options=options
    )


def test_batch_equals_one_at_a_time() -> None:
    values = _mixed_series(12, 120, seed=1)
    ids = [f"s{index}" for index in range(len(values))]
    options = BatchOptions(calibrate=False)
    settings = ForecastSettings(sample_paths=300, seed=5)

    batch = forecast_batch(ids, values, HISTORY_END, 21, AS_OF, settings, options=options)

    # NumPy's vector loops (pow, for one) may round the last bit differently for arrays of
    # another shape, so bounds and paths are compared to 1e-12 rather than bit for bit.
    for row, series_id in enumerate(ids):
        alone = _forecast_one(series_id, values[row], 21, options)
        together = batch[row]
        assert together.model == alone.model
        assert together.params["selection"] == alone.params["selection"]
        assert together.params["method"] == alone.params["method"]
        assert together.history_start == alone.history_start
        np.testing.assert_array_equal(together.days.mean, alone.days.mean)
        np.testing.assert_allclose(together.days.lo95, alone.days.lo95, rtol=1e-12)
        np.testing.assert_allclose(together.days.hi80, alone.days.hi80, rtol=1e-12)
        np.testing.assert_allclose(together.paths, alone.paths, rtol=1e-12, atol=1e-9)


def test_calibrated_batch_keeps_point_forecasts() -> None:
    values = _mixed_series(8, 100, seed=2)
    ids = [f"s{index}" for index in range(len(values))]
    settings = ForecastSettings(sample_paths=300, seed=5)

    batch = forecast_batch(ids, values, HISTORY_END, 14, AS_OF, settings)

    for row, series_id in enumerate(ids):
        alone = _forecast_one(series_id, values[row], 14, BatchOptions())
        assert batch[row].model == alone.model
        assert batch[row].params["selection"] == alone.params["selection"]
        np.testing.assert_array_equal(batch[row].days.mean, alone.days.mean)


def test_seasonal_naive_repeats_last_week() -> None:
    t = np.arange(70)
    values = (100 + WEEKLY[t % 7])[None, :]
    starts, ends = np.array([0]), np.array([70])

    fitted = fit_models(["seasonal-naive"], values, starts, ends)["seasonal-naive"]
    mean, sd = fitted.forecast(14)

    np.testing.assert_allclose(mean[0], np.tile(values[0, -7:], 2))
    np.testing.assert_allclose(sd[0], 0.0)


def test_ets_recovers_trend_and_week() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(150)
    truth = 50 + 0.7 * t + WEEKLY[t % 7]
    values = (truth + rng.normal(0, 2, len(t)))[None, :120]

    fitted = fit_models(["ets"], values, np.array([0]), np.array([120]))["ets"]
    mean, sd = fitted.forecast(30)

    assert np.mean(np.abs(mean[0] - truth[120:])) < 1.5
    assert fitted.params(0)["method"] in ("ETS(A,A,A)", "ETS(A,Ad,A)")
    assert np.all(np.diff(sd[0]) >= 0)


def test_theta_recovers_local_level() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(100)
    level = 200 + np.cumsum(rng.normal(0, 1, len(t)))
    values = (level + WEEKLY[t % 7] + rng.normal(0, 3, len(t)))[None, :]

    fitted = fit_models(["theta"], values, np.array([0]), np.array([100]))["theta"]
    mean, _ = fitted.forecast(7)

    expected = level[-1] + WEEKLY[np.arange(100, 107) % 7]
    assert np.max(np.abs(mean[0] - expected)) < 6.0
    assert abs(float(fitted.params(0)["drift"])) < 0.3


def test_ensemble_is_mean_of_members() -> None:
    values = _mixed_series(4, 90, seed=6)
    values[3, :45] = 50.0
    starts, ends = np.zeros(4, dtype=np.int64), np.full(4, 90)

    fitted = fit_models(["ets", "theta", "ensemble"], values, starts, ends)

    mean_ets, _ = fitted["ets"].forecast(10)
    mean_theta, _ = fitted["theta"].forecast(10)
    mean_ensemble, _ = fitted["ensemble"].forecast(10)
    np.testing.assert_allclose(mean_ensemble, (mean_ets + mean_theta) / 2)


def test_weekly_pattern_not_theta() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(120)
    values = 150 + 3 * WEEKLY[t % 7] + rng.normal(0, 1, len(t))

    forecast = _forecast_one("weekly", values, 14, BatchOptions())

    assert forecast.model in ("SeasonalNaive", "ETS")
    assert forecast.params["selection"]["scores"]["SeasonalNaive"] < 1.5


def test_trend_selects_ets_or_theta() -> None:
    rng = np.random.default_rng(8)
    t = np.arange(120)
    values = 40 + 1.5 * t + WEEKLY[t % 7] + rng.normal(0, 2, len(t))

    forecast = _forecast_one("trend", values, 14, BatchOptions())

    assert forecast.model in ("ETS", "Theta")
    scores = forecast.params["selection"]["scores"]
    assert scores[forecast.model] < scores["SeasonalNaive"] / 2


def test_selection_records_scores_and_reason() -> None:
    forecast = _forecast_one("record", _mixed_series(1, 120, seed=9)[0], 14, BatchOptions())

    selection = forecast.params["selection"]
    assert set(selection["scores"]) == {"ETS", "Theta", "Ensemble", "SeasonalNaive"}
    assert selection["reason"].startswith(f"{forecast.model}: ")
    assert "MASE" in selection["reason"]
    assert selection["holdout_days"] == 14
    assert selection["folds"] == 2
    json.dumps(forecast.params)


def test_clear_winner_replaces_first_candidate() -> None:
    rng = np.random.default_rng(10)
    t = np.arange(120)
    values = 40 + 1.5 * t + WEEKLY[t % 7] + rng.normal(0, 2, len(t))
    options = BatchOptions(candidates=("seasonal-naive", "ets"), selection_margin=0.1)

    forecast = _forecast_one("switch", values, 14, options)

    scores = forecast.params["selection"]["scores"]
    assert scores["ETS"] < 0.9 * scores["SeasonalNaive"]
    assert forecast.model == "ETS"
    assert forecast.params["selection"]["reason"].startswith("ETS: lowest holdout MASE")


def test_fixed_model_skips_selection() -> None:
    values = _mixed_series(1, 90, seed=11)[0]

    forecast = forecast_series(
        "fixed", values, HISTORY_END, 7, AS_OF, ForecastSettings(), model="theta"
    )

    assert forecast.model == "Theta"
    assert forecast.params["selection"]["reason"].startswith("Theta: the only candidate")


def test_new_series_trims_leading_days() -> None:
    values = np.full(120, np.nan)
    values[40:60] = 0.0
    values[60:] = 100 + WEEKLY[np.arange(60, 120) % 7]

    forecast = _forecast_one("new", values, 7, BatchOptions())

    assert forecast.history_start == HISTORY_END - timedelta(days=59)
    assert forecast.params["history_days"] == 60
    assert forecast.fallback_reason is None


def test_short_new_series_says_why() -> None:
    values = np.zeros(60)
    values[-10:] = 50.0

    forecast = _forecast_one("young", values, 7, BatchOptions())

    assert forecast.model == "WindowAverage"
    assert forecast.fallback_reason is not None
    assert "10 complete days" in forecast.fallback_reason
    assert "days before the first spend are not counted" in forecast.fallback_reason
    np.testing.assert_allclose(forecast.days.mean, 50.0)


def test_interior_zeros_are_spend() -> None:
    t = np.arange(120)
    values = 100 + WEEKLY[t % 7]
    values[50:60] = 0.0

    forecast = _forecast_one("outage", values, 14, BatchOptions())

    assert forecast.params["history_days"] == 120
    assert forecast.params["change_point"] is None
    assert np.all(np.abs(forecast.days.mean - (100 + WEEKLY[np.arange(120, 134) % 7])) < 6)


def test_cluster_turned_off_forecasts_zero() -> None:
    values = np.concatenate([np.full(90, 80.0), np.zeros(30)])

    forecast = _forecast_one("off", values, 14, BatchOptions())

    assert forecast.params["change_point"] is not None
    np.testing.assert_allclose(forecast.days.mean, 0.0, atol=1.0)


def test_interior_nan_is_rejected() -> None:
    values = _mixed_series(3, 60, seed=12)
    values[1, 40] = np.nan

    with pytest.raises(ForecastError) as caught:
        forecast_batch(["a", "b", "c"], values, HISTORY_END, 7, AS_OF, ForecastSettings())

    assert "'b'" in str(caught.value)
    assert "2025-03-12" in str(caught.value)


def test_bad_batches_are_rejected() -> None:
    values = _mixed_series(2, 60, seed=13)
    settings = ForecastSettings()

    with pytest.raises(ForecastError, match="unique"):
        forecast_batch(["a", "a"], values, HISTORY_END, 7, AS_OF, settings)
    with pytest.raises(ForecastError, match="one row per id"):
        forecast_batch(["a"], values, HISTORY_END, 7, AS_OF, settings)
    with pytest.raises(ForecastError, match="every value is NaN"):
        forecast_batch(["a", "b"], np.full((2, 30), np.nan), HISTORY_END, 7, AS_OF, settings)


def test_unknown_candidate_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="choose from ensemble, ets, seasonal-naive, theta"):
        BatchOptions(candidates=("arima",))
    assert BATCH_MODELS.names() == ["ensemble", "ets", "seasonal-naive", "theta"]


def test_forecast_many_groups_by_history_end() -> None:
    values = _mixed_series(3, 80, seed=15)
    earlier = HISTORY_END - timedelta(days=3)
    series = {
        "a": (values[0], HISTORY_END),
        "b": (values[1][:-3], earlier),
        "c": (values[2], HISTORY_END),
    }

    batch = forecast_many(series, 10, AS_OF, ForecastSettings(sample_paths=200))

    assert sorted(batch.forecasts) == ["a", "b", "c"]
    assert batch.forecasts["b"].history_end == earlier
    assert batch.forecasts["b"].days.dates[0] == earlier + timedelta(days=1)


def test_batch_exceedance_matches_each_forecast() -> None:
    values = np.nan_to_num(_mixed_series(9, 100, seed=16))
    ids = [f"s{index}" for index in range(len(values))]
    settings = ForecastSettings(sample_paths=400, seed=2)
    batch = forecast_batch(ids, values, HISTORY_END, 30, AS_OF, settings)
    window = PeriodWindow(date(2025, 3, 20), date(2025, 4, 20))
    spent = [Decimal(str(round(float(row[-12:].sum()), 2))) for row in values]
    budgets = [
        Decimal(str(round(float(row[-12:].sum() + row[-7:].mean() * 19 * factor), 2)))
        for row, factor in zip(values, np.linspace(0.9, 1.1, len(values)), strict=True)
    ]

    together = batch.exceedance(window, spent, budgets)

    for row in range(len(ids)):
        alone = exceedance(batch[row], window, spent[row], budgets[row])
        assert together[row] == alone
    assert any(0.0 < result.probability < 1.0 for result in together)


def test_batch_exceedance_needs_one_budget_per_series() -> None:
    values = _mixed_series(2, 60, seed=17)
    batch = forecast_batch(["a", "b"], values, HISTORY_END, 30, AS_OF, ForecastSettings())
    window = PeriodWindow(date(2025, 4, 1), date(2025, 5, 1))

    with pytest.raises(ForecastError, match="one spent amount and one budget per series"):
        batch.exceedance(window, [Decimal(0)], [Decimal(1), Decimal(2)])


def test_path_rows_are_a_permutation() -> None:
    first = path_rows(3, "cluster-a", 2000)
    second = path_rows(3, "cluster-b", 2000)

    np.testing.assert_array_equal(np.sort(first), np.arange(2000))
    assert not np.array_equal(first, second)
    assert np.mean(first == second) < 0.01
