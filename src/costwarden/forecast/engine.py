"""Forecast dense daily spend series: fit a model, predict intervals, simulate sample paths."""

from __future__ import annotations

import hashlib
import logging
import time as timer
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from costwarden.config import ForecastSettings
from costwarden.domain.forecast import DailyForecast, Forecast
from costwarden.errors import ForecastError
from costwarden.forecast.models import LEVELS, MODELS, ForecastModel, Prediction
from costwarden.forecast.paths import simulate_paths

logger = logging.getLogger(__name__)

PRIMARY_MODEL = "auto-ets"
FALLBACK_MODEL = "window-average"


@dataclass(frozen=True, slots=True)
class ForecastBatch:
    """Forecasts of many series, and the error of each series whose input was rejected."""

    forecasts: dict[str, Forecast] = field(default_factory=dict)
    failures: dict[str, ForecastError] = field(default_factory=dict)

    @property
    def fallback_count(self) -> int:
        return sum(forecast.fallback_reason is not None for forecast in self.forecasts.values())


def horizon_for(history_end: date, period_end: date, settings: ForecastSettings) -> int:
    """Return the days to forecast: through the period's last day, and at least min_horizon_days.

    ``period_end`` is exclusive, as in ``PeriodWindow``.
    """
    return max((period_end - history_end).days - 1, settings.min_horizon_days)


def forecast_series(
    series_id: str,
    values: np.ndarray,
    history_end: date,
    horizon: int,
    as_of: datetime,
    settings: ForecastSettings,
    *,
    model: str = PRIMARY_MODEL,
    fallback: str = FALLBACK_MODEL,
) -> Forecast:
    """Forecast the ``horizon`` days after ``history_end`` from a dense daily spend series.

    ``values`` contains one amount per UTC day and ends on ``history_end``, the last complete day
    at ``as_of``. Days without cost data must already be 0. Only the last
    ``settings.history_days`` are fitted. The day in progress at ``as_of`` is the first forecast
    day. Means, bounds and paths are clipped at 0. Invalid input raises ForecastError. When the
    model fails, the ``fallback`` model is used and the failure is recorded in
    ``fallback_reason``.
    """
    y = _validated_history(series_id, values, history_end, horizon, as_of)
    y = y[-settings.history_days :]
    history_start = history_end - timedelta(days=len(y) - 1)

    fitted, prediction, fallback_reason = _fit_and_predict(
        series_id, y, horizon, settings, model, fallback
    )

    rng = np.random.default_rng(path_seed(settings.seed, series_id))
    paths = simulate_paths(prediction, settings.sample_paths, rng)
    params = {**fitted.fitted_params(), "history_days": len(y)}
    logger.debug(
        "forecast series %s: %s on %d days (%s to %s), horizon %d days",
        series_id,
        fitted.alias,
        len(y),
        history_start,
        history_end,
        horizon,
    )

    return Forecast(
        series_id=series_id,
        as_of=as_of,
        history_start=history_start,
        history_end=history_end,
        days=_daily_forecast(history_end, prediction),
        paths=paths,
        model=fitted.alias,
        model_version=fitted.version,
        params=params,
        fallback_reason=fallback_reason,
    )


def forecast_many(
    series: Mapping[str, tuple[np.ndarray, date]],
    horizon: int,
    as_of: datetime,
    settings: ForecastSettings,
) -> ForecastBatch:
    """Forecast each ``series_id -> (values, history_end)`` and skip the series that are rejected.

    The ForecastError of each rejected series is logged and kept in ``failures``.
    """
    started = timer.perf_counter()
    batch = ForecastBatch()

    for series_id, (values, history_end) in series.items():
        try:
            forecast = forecast_series(series_id, values, history_end, horizon, as_of, settings)
        except ForecastError as exc:
            logger.error("forecast series %s failed: %s", series_id, exc)
            batch.failures[series_id] = exc
            continue
        batch.forecasts[series_id] = forecast

    logger.info(
        "forecast %d series in %.2f s: %d with the fallback model, %d failed",
        len(series),
        timer.perf_counter() - started,
        batch.fallback_count,
        len(batch.failures),
    )
    return batch


def path_seed(seed: int, series_id: str) -> np.random.SeedSequence:
    """Return the sample-path seed of one series: the settings seed combined with the series id.

    The id is hashed with BLAKE2b because Python's ``hash`` of a string changes between processes.
    """
    digest = hashlib.blake2b(series_id.encode("utf-8"), digest_size=8).digest()
    return np.random.SeedSequence([seed % 2**64, int.from_bytes(digest, "big")])


def _validated_history(
    series_id: str, values: np.ndarray, history_end: date, horizon: int, as_of: datetime
) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or len(y) == 0:
        raise ForecastError(
            f"series {series_id!r}: values must be a non-empty 1-D array of daily spend, "
            f"got shape {y.shape}"
        )

    invalid = np.flatnonzero(~np.isfinite(y))
    if invalid.size:
        index = int(invalid[0])
        day = history_end - timedelta(days=len(y) - 1 - index)
        raise ForecastError(
            f"series {series_id!r}: value {y[index]} on {day} (index {index}) is not a finite "
            "number; fill days without cost data with 0 before forecasting"
        )

    if horizon < 1:
        raise ForecastError(f"series {series_id!r}: horizon must be at least 1 day, got {horizon}")

    if as_of.tzinfo is None:
        raise ForecastError(
            f"series {series_id!r}: as_of {as_of.isoformat()} has no time zone; pass a UTC datetime"
        )
    end_of_history = datetime.combine(history_end + timedelta(days=1), time(), UTC)
    if as_of < end_of_history:
        last_complete = as_of.astimezone(UTC).date() - timedelta(days=1)
        raise ForecastError(
            f"series {series_id!r}: history_end {history_end} is not a complete UTC day at as_of "
            f"{as_of.isoformat()}; end the history on {last_complete} or earlier"
        )
    return y


def _fit_and_predict(
    series_id: str,
    y: np.ndarray,
    horizon: int,
    settings: ForecastSettings,
    model: str,
    fallback: str,
) -> tuple[ForecastModel, Prediction, str | None]:
    """Fit the primary model, or the fallback when the history is short or the primary fails."""
    if len(y) < settings.min_history_days:
        reason = (
            f"history has {len(y)} complete days, fewer than min_history_days="
            f"{settings.min_history_days}"
        )
    else:
        primary = MODELS.create(model)
        try:
            primary.fit(y)
            return primary, primary.predict(horizon, LEVELS), None
        # statsforecast raises bare Exception, ValueError or NotImplementedError from a failed
        # fit. Whatever the class, it is recorded in fallback_reason and logged below.
        except Exception as exc:
            reason = f"{primary.alias} failed: {type(exc).__name__}: {exc}"

    logger.warning("forecast series %s: using model %s because %s", series_id, fallback, reason)
    simple = MODELS.create(fallback).fit(y)
    return simple, simple.predict(horizon, LEVELS), reason


def _daily_forecast(history_end: date, prediction: Prediction) -> DailyForecast:
    dates = tuple(
        history_end + timedelta(days=offset) for offset in range(1, prediction.horizon + 1)
    )
    return DailyForecast(
        dates=dates,
        mean=np.clip(prediction.mean, 0.0, None),
        lo80=np.clip(prediction.lower[80], 0.0, None),
        hi80=np.clip(prediction.upper[80], 0.0, None),
        lo95=np.clip(prediction.lower[95], 0.0, None),
        hi95=np.clip(prediction.upper[95], 0.0, None),
    )
