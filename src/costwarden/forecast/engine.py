"""Forecast one series or a mapping of series, on top of the batched forecaster.

``forecast_series`` runs ``forecast_batch`` on a batch of one by default. Naming a model of
``MODELS`` instead (``auto-ets``, ``window-average``) fits that per-series model, which the
benchmark uses as a reference.
"""

from __future__ import annotations

import logging
import time as timer
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from costwarden.domain.forecast import DailyForecast, Forecast
from costwarden.errors import ForecastError
from costwarden.forecast.batch import first_invalid_day, forecast_batch, validate_request
from costwarden.forecast.candidates import BATCH_MODELS
from costwarden.forecast.models import LEVELS, MODELS, ForecastModel, Prediction
from costwarden.forecast.options import BatchOptions
from costwarden.forecast.paths import draw_paths, innovation_pool, path_inputs, path_rows

if TYPE_CHECKING:
    from costwarden.config import ForecastSettings

logger = logging.getLogger(__name__)

PRIMARY_MODEL = "auto"
"""Model name that selects a batched model per series by its holdout error."""

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
    options: BatchOptions | None = None,
) -> Forecast:
    """Forecast the ``horizon`` days after ``history_end`` from a dense daily spend series.

    ``values`` contains one amount per UTC day and ends on ``history_end``, the last complete day
    at ``as_of``. Leading NaN values are days before the series existed; any other day without
    cost data must already be 0. Only the last ``settings.history_days`` are fitted. The day in
    progress at ``as_of`` is the first forecast day. Means, bounds and paths are clipped at 0.
    Invalid input raises ForecastError.

    ``model`` is ``"auto"`` (pick a batched model per series), the registry name of a batched
    model, or the name of a per-series model in ``MODELS``. A per-series model that fails falls
    back to ``fallback``, and the failure is recorded in ``fallback_reason``.
    """
    y = _validated_history(series_id, values, history_end, horizon, as_of)
    if model == PRIMARY_MODEL or model in BATCH_MODELS.names():
        options = options or settings.batch
        if model != PRIMARY_MODEL:
            options = options.model_copy(update={"candidates": (model,)})
        batch = forecast_batch(
            [series_id], y[None, :], history_end, horizon, as_of, settings, options=options
        )
        return batch[0]

    return _forecast_one(series_id, y, history_end, horizon, as_of, settings, model, fallback)


def forecast_many(
    series: Mapping[str, tuple[np.ndarray, date]],
    horizon: int,
    as_of: datetime,
    settings: ForecastSettings,
    *,
    options: BatchOptions | None = None,
) -> ForecastBatch:
    """Forecast each ``series_id -> (values, history_end)`` and skip the series that are rejected.

    Series that end on the same day are forecast together by ``forecast_batch``. The
    ForecastError of each rejected series is logged and kept in ``failures``.
    """
    started = timer.perf_counter()
    batch = ForecastBatch()
    groups: dict[date, dict[str, np.ndarray]] = {}
    for series_id, (values, history_end) in series.items():
        try:
            y = _validated_history(series_id, values, history_end, horizon, as_of)
        except ForecastError as exc:
            logger.error("forecast series %s failed: %s", series_id, exc)
            batch.failures[series_id] = exc
            continue
        groups.setdefault(history_end, {})[series_id] = y[-settings.fetch_days :]

    for history_end, rows in groups.items():
        ids = list(rows)
        width = max(len(y) for y in rows.values())
        values_2d = np.full((len(ids), width), np.nan)
        for index, y in enumerate(rows.values()):
            values_2d[index, width - len(y) :] = y
        result = forecast_batch(
            ids, values_2d, history_end, horizon, as_of, settings, options=options
        )
        batch.forecasts.update(zip(ids, result, strict=True))

    logger.info(
        "forecast %d series in %.2f s: %d with the fallback model, %d failed",
        len(series),
        timer.perf_counter() - started,
        batch.fallback_count,
        len(batch.failures),
    )
    return batch


def _validated_history(
    series_id: str, values: np.ndarray, history_end: date, horizon: int, as_of: datetime
) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or len(y) == 0:
        raise ForecastError(
            f"series {series_id!r}: values must be a non-empty 1-D array of daily spend, "
            f"got shape {y.shape}"
        )
    error = first_invalid_day(series_id, y, history_end, leading_nan=True)
    if error is not None:
        raise error
    validate_request(f"series {series_id!r}", history_end, horizon, as_of)
    return y


def _forecast_one(
    series_id: str,
    y: np.ndarray,
    history_end: date,
    horizon: int,
    as_of: datetime,
    settings: ForecastSettings,
    model: str,
    fallback: str,
) -> Forecast:
    """Fit a per-series model from ``MODELS`` and draw its paths from the shared pool."""
    y = y[np.isfinite(y).argmax() :][-settings.history_days :]
    history_start = history_end - timedelta(days=len(y) - 1)
    fitted, prediction, fallback_reason = _fit_and_predict(
        series_id, y, horizon, settings, model, fallback
    )

    inputs = path_inputs(
        prediction.mean[None, :],
        {level: bound[None, :] for level, bound in prediction.lower.items()},
        {level: bound[None, :] for level, bound in prediction.upper.items()},
    )
    pool = innovation_pool(settings.seed, settings.sample_paths, horizon)
    paths = draw_paths(inputs, 0, pool, path_rows(settings.seed, series_id, settings.sample_paths))
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


def _fit_and_predict(
    series_id: str,
    y: np.ndarray,
    horizon: int,
    settings: ForecastSettings,
    model: str,
    fallback: str,
) -> tuple[ForecastModel, Prediction, str | None]:
    """Fit the named model, or the fallback when the history is short or the model fails."""
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
