"""Forecast many scopes from one origin through the public API of ``costwarden.forecast``.

The batched entry point ``forecast_batch`` is used when the installed forecaster has it; otherwise
each series goes through ``forecast_series``. When the forecaster can turn calibration off, by a
``calibrate`` argument or by ``options=BatchOptions(calibrate=False)``, the uncalibrated intervals
are computed as well, so that the report can show coverage before and after calibration.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from costwarden import forecast as forecast_api
from costwarden.backtest.series import ScopeSeries
from costwarden.config import ForecastSettings
from costwarden.domain.forecast import DailyForecast, Forecast
from costwarden.errors import ForecastError

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
"""Series per forecaster call. The sample paths of one call are in memory together, so the cap
bounds the peak. For example, 1,000 series x 2,000 paths x 31 days of float64 take about 500 MB."""


@dataclass(frozen=True, slots=True)
class OriginForecasts:
    """Forecasts of many scopes made from the same origin.

    ``raw`` contains uncalibrated intervals by scope name when the forecaster can produce them.
    ``failures`` maps a scope name to the reason its forecast could not be computed.
    """

    forecasts: dict[str, Forecast] = field(default_factory=dict)
    raw: dict[str, DailyForecast] | None = None
    failures: dict[str, str] = field(default_factory=dict)


def origin_as_of(origin: date) -> datetime:
    """Return the data-as-of time of a forecast made at ``origin``: midnight after that day."""
    return datetime.combine(origin + timedelta(days=1), time(), UTC)


def raw_intervals_supported() -> bool:
    """Return True when the forecaster can produce uncalibrated intervals."""
    return _uncalibrated_arguments(ForecastSettings()) is not None


def forecast_origin(
    scopes: list[ScopeSeries], origin: date, horizon: int, settings: ForecastSettings
) -> OriginForecasts:
    """Forecast ``horizon`` days after ``origin`` for each scope, from its data up to ``origin``.

    Only values up to and including ``origin`` reach the forecaster, so later data cannot leak
    into the forecast.
    """
    uncalibrated = _uncalibrated_arguments(settings)
    result = OriginForecasts(raw={} if uncalibrated is not None else None)

    for start in range(0, len(scopes), BATCH_SIZE):
        chunk = scopes[start : start + BATCH_SIZE]
        forecasts, failures = _forecast_chunk(chunk, origin, horizon, settings, {})
        result.forecasts.update(forecasts)
        result.failures.update(failures)

        if result.raw is not None and uncalibrated is not None:
            raw, _ = _forecast_chunk(chunk, origin, horizon, settings, uncalibrated)
            result.raw.update({name: item.days for name, item in raw.items()})
    return result


def _entry_point() -> Callable[..., Any]:
    batch = getattr(forecast_api, "forecast_batch", None)
    return batch if batch is not None else forecast_api.forecast_series


def _uncalibrated_arguments(settings: ForecastSettings) -> dict[str, Any] | None:
    """Return the keyword arguments that turn calibration off, or None when there are none.

    The other batch options stay as the settings choose them.
    """
    parameters = inspect.signature(_entry_point()).parameters
    if "calibrate" in parameters:
        return {"calibrate": False}

    if "options" in parameters:
        return {"options": settings.batch.model_copy(update={"calibrate": False})}
    return None


def _forecast_chunk(
    scopes: list[ScopeSeries],
    origin: date,
    horizon: int,
    settings: ForecastSettings,
    options: dict[str, Any],
) -> tuple[dict[str, Forecast], dict[str, str]]:
    as_of = origin_as_of(origin)
    batch = getattr(forecast_api, "forecast_batch", None)
    if batch is None:
        return _forecast_one_by_one(scopes, origin, horizon, as_of, settings, options)

    ids = [scope.name for scope in scopes]
    try:
        output = batch(ids, _aligned(scopes, origin), origin, horizon, as_of, settings, **options)
    except ForecastError as exc:
        logger.error("backtest origin %s: batch forecast failed: %s", origin, exc)
        return {}, {name: str(exc) for name in ids}

    forecasts = _collect_forecasts(output)
    failures = {
        name: "the forecaster returned no forecast" for name in ids if name not in forecasts
    }
    failures.update(_collect_failures(output))
    return {name: forecasts[name] for name in ids if name in forecasts}, failures


def _forecast_one_by_one(
    scopes: list[ScopeSeries],
    origin: date,
    horizon: int,
    as_of: datetime,
    settings: ForecastSettings,
    options: dict[str, Any],
) -> tuple[dict[str, Forecast], dict[str, str]]:
    forecasts: dict[str, Forecast] = {}
    failures: dict[str, str] = {}
    for scope in scopes:
        try:
            forecasts[scope.name] = forecast_api.forecast_series(
                scope.name, scope.through(origin), origin, horizon, as_of, settings, **options
            )
        except ForecastError as exc:
            logger.error("backtest origin %s: forecast of %s failed: %s", origin, scope.name, exc)
            failures[scope.name] = str(exc)
    return forecasts, failures


def _aligned(scopes: list[ScopeSeries], origin: date) -> np.ndarray:
    """Return one row per scope ending on ``origin``; days before a scope's first day are NaN."""
    histories = [scope.through(origin) for scope in scopes]
    width = max(len(history) for history in histories)
    values = np.full((len(scopes), width), np.nan)
    for row, history in enumerate(histories):
        values[row, width - len(history) :] = history
    return values


def _collect_forecasts(output: object) -> dict[str, Forecast]:
    """Index the forecasts in a batch result by series id, whatever container they come in."""
    container = getattr(output, "forecasts", output)
    items: Iterable[object] = (
        container.values() if isinstance(container, Mapping) else container  # type: ignore[assignment]
    )
    return {item.series_id: item for item in items if isinstance(item, Forecast)}


def _collect_failures(output: object) -> dict[str, str]:
    failures = getattr(output, "failures", None)
    if not isinstance(failures, Mapping):
        return {}
    return {str(name): str(error) for name, error in failures.items()}
