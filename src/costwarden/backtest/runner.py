"""Rolling-origin backtest of the forecaster over the cost history in the store.

Two kinds of origin are evaluated, and at each one every scope is forecast from its own data up
to and including the origin day:

* Rolling origins, ``step_days`` apart, the latest one ``max(horizons)`` days before the last
  stored day. The forecast mean and intervals are compared with the actual daily spend over the
  first ``h`` days, for each horizon ``h``.
* Mid-month origins (by default the 10th and the 20th) of every month whose previous month is
  fully stored. For each budget level (a multiple of the previous month's actual total),
  ``exceedance(...).probability`` is scored against whether the month total exceeded it.
"""

from __future__ import annotations

import logging
import math
import time as timer
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from costwarden.backtest.forecasting import OriginForecasts, forecast_origin
from costwarden.backtest.metrics import reliability_table, seasonal_naive_scale, straight_line_total
from costwarden.backtest.results import (
    BacktestResult,
    ExceedanceEvent,
    OriginForecast,
    ScopeReport,
    Skip,
    summarize_accuracy,
    summarize_events,
)
from costwarden.backtest.series import (
    LoadedScopes,
    ScopeSeries,
    load_budget_series,
    load_cluster_series,
    stored_source,
)
from costwarden.config import ForecastSettings
from costwarden.domain.budget import Budget, PeriodWindow
from costwarden.domain.cost import quantize_money
from costwarden.domain.forecast import DailyForecast, Forecast
from costwarden.errors import ConfigError, ForecastError
from costwarden.forecast import exceedance
from costwarden.forecast.adjustment import (
    IntervalAdjustment,
    ResidualForecast,
    cross_validated,
    fit_adjustment,
)

logger = logging.getLogger(__name__)


class BacktestOptions(BaseModel):
    """Options of a backtest: origins, horizons, budget levels and scopes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origins: int = Field(6, ge=1, description="Number of rolling origins.")
    step_days: int = Field(14, ge=1, description="Days between two rolling origins.")
    horizons: tuple[int, ...] = Field(
        (7, 14, 30), min_length=1, description="Forecast horizons scored, in days."
    )
    levels: tuple[float, ...] = Field(
        (0.9, 1.0, 1.1, 1.25),
        min_length=1,
        description="Budget levels of the exceedance events, as multiples of the previous "
        "month's actual total.",
    )
    month_days: tuple[int, ...] = Field(
        (10, 20), min_length=1, description="Days of the month used as exceedance origins."
    )
    min_history_days: int | None = Field(
        None,
        ge=2,
        description="Days of data a scope needs before an origin; default: the forecast "
        "setting min_history_days.",
    )
    reliability_bins: int = Field(10, ge=1, le=100, description="Bins of the reliability table.")
    scope: str | None = Field(None, description="Evaluate only the scope with this name.")

    @field_validator("horizons", "month_days")
    @classmethod
    def _positive_days(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(value < 1 for value in values):
            raise ValueError(f"every value must be at least 1, got {list(values)}")
        return tuple(sorted(set(values)))

    @field_validator("levels")
    @classmethod
    def _positive_levels(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if any(not math.isfinite(value) or value <= 0 for value in values):
            raise ValueError(
                f"every budget level must be a finite number greater than 0, got {list(values)}"
            )
        return tuple(sorted(set(values)))


@dataclass(frozen=True, slots=True)
class _EventOrigin:
    scope: ScopeSeries
    origin: date
    window: PeriodWindow
    previous: PeriodWindow


@dataclass
class _Collected:
    forecasts: list[OriginForecast] = field(default_factory=list)
    events: list[ExceedanceEvent] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    made: int = 0
    calibrated: int = 0


def run_backtest(
    session: Session,
    settings: ForecastSettings,
    options: BacktestOptions,
    budgets: list[Budget] | None = None,
) -> BacktestResult:
    """Backtest the forecaster on the stored history of every cluster, or of ``budgets``.

    Raises ConfigError when the store has no cost data, when ``options.scope`` names no scope,
    or when the history is too short for the longest horizon.
    """
    loaded = _load_scopes(session, budgets)
    scopes = _selected(loaded, options.scope)
    min_history = options.min_history_days or settings.min_history_days
    first = min(scope.first_day for scope in scopes)
    end = scopes[0].last_day

    origins = rolling_origins(first, end, options, min_history)
    event_origins = _event_origins(scopes, first, end, options.month_days)
    collected = _Collected(
        skipped=[Skip(name, None, "all", "no cost data") for name in loaded.without_data]
    )
    _run_origins(scopes, origins, event_origins, settings, options, min_history, collected)

    return _result(loaded, scopes, first, end, origins, options, collected)


def rolling_origins(
    first: date, end: date, options: BacktestOptions, min_history: int
) -> tuple[date, ...]:
    """Return the rolling origins, oldest first; each has ``min_history`` days of data or more.

    The latest origin leaves ``max(horizons)`` days of actual data after it.
    """
    longest = max(options.horizons)
    stored = (end - first).days + 1
    if stored < longest + min_history:
        raise ConfigError(
            f"the stored history has {stored} days ({first} to {end}), but horizon {longest} "
            f"needs at least {longest + min_history} ({longest} to score and {min_history} to "
            "fit); pass a shorter --horizon, lower --min-history or ingest more history"
        )

    latest = end - timedelta(days=longest)
    candidates = [latest - timedelta(days=k * options.step_days) for k in range(options.origins)]
    origins = [day for day in candidates if (day - first).days + 1 >= min_history]
    if len(origins) < len(candidates):
        logger.warning(
            "backtest: %d of %d rolling origins dropped because they have fewer than %d days of "
            "history; lower --origins or --step to keep them",
            len(candidates) - len(origins),
            len(candidates),
            min_history,
        )
    return tuple(sorted(origins))


def _load_scopes(session: Session, budgets: list[Budget] | None) -> LoadedScopes:
    if budgets is not None:
        loaded = load_budget_series(session, budgets)
        if not loaded.series:
            raise ConfigError(
                f"none of the {len(budgets)} budgets has stored cost data; ingest cost data "
                "first (costwarden run, or costwarden ingest focus)"
            )
        return loaded

    source = stored_source(session)
    loaded = load_cluster_series(session, source) if source else None
    if loaded is None or not loaded.series:
        raise ConfigError(
            "the store has no cluster cost data to backtest; ingest cost data first "
            "(costwarden run, or costwarden ingest focus) or check --database-url"
        )
    return loaded


def _selected(loaded: LoadedScopes, name: str | None) -> list[ScopeSeries]:
    if name is None:
        return loaded.series

    found = [scope for scope in loaded.series if scope.name == name]
    if not found:
        names = sorted(scope.name for scope in loaded.series)
        listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        raise ConfigError(
            f"--scope {name!r}: no {loaded.kind} with cost data has that name; "
            f"valid names: {listed}"
        )
    return found


def _event_origins(
    scopes: list[ScopeSeries], first: date, end: date, month_days: tuple[int, ...]
) -> list[_EventOrigin]:
    """Return the mid-month origins of the months stored from ``first`` through ``end``.

    A month qualifies when the month before it starts on or after ``first`` and the month itself
    ends by ``end``. Whether a scope has data for that previous month is checked later, so that a
    scope without it is counted as skipped.
    """
    planned = []
    for scope in scopes:
        window = scope.month.window_for(first)
        while window.end - timedelta(days=1) <= end:
            previous = scope.month.previous(window)
            for day in month_days:
                origin = window.start + timedelta(days=day - 1)
                if previous.start >= first and origin < window.end - timedelta(days=1):
                    planned.append(_EventOrigin(scope, origin, window, previous))
            window = scope.month.window_for(window.end)
    return planned


def _run_origins(
    scopes: list[ScopeSeries],
    origins: tuple[date, ...],
    event_origins: list[_EventOrigin],
    settings: ForecastSettings,
    options: BacktestOptions,
    min_history: int,
    collected: _Collected,
) -> None:
    """Forecast once per origin day, for the scopes that day is a rolling or event origin of."""
    events_by_day: dict[date, list[_EventOrigin]] = defaultdict(list)
    for planned in event_origins:
        events_by_day[planned.origin].append(planned)

    for origin in sorted(set(origins) | set(events_by_day)):
        started = timer.perf_counter()
        rolling = scopes if origin in origins else []
        events = _eligible_events(events_by_day.get(origin, []), min_history, collected)
        needed = {scope.name: scope for scope in rolling}
        needed.update({planned.scope.name: planned.scope for planned in events})
        ready = _with_history(list(needed.values()), origin, min_history, collected, bool(rolling))
        if not ready:
            continue

        horizons = [_days_left(planned) for planned in events]
        if rolling:
            horizons.append(max(options.horizons))
        horizon = max(horizons)
        batch = forecast_origin(ready, origin, horizon, settings)
        _score_origin(batch, origin, rolling, events, options, collected)
        logger.info(
            "backtest origin %s: %d scopes forecast %d days ahead, %d failed, in %.2f s",
            origin,
            len(batch.forecasts),
            horizon,
            len(batch.failures),
            timer.perf_counter() - started,
        )


def _eligible_events(
    planned: list[_EventOrigin], min_history: int, collected: _Collected
) -> list[_EventOrigin]:
    eligible = []
    for item in planned:
        previous_total = item.scope.total(item.previous)
        if item.scope.first_day > item.previous.start:
            reason = f"previous month from {item.previous.start} is not fully stored"
        elif previous_total <= 0:
            reason = "previous month's spend is 0, so budget levels relative to it are 0"
        elif item.scope.history_days(item.origin) < min_history:
            reason = f"fewer than {min_history} days of history"
        else:
            eligible.append(item)
            continue
        collected.skipped.append(Skip(item.scope.name, item.origin, "exceedance", reason))
    return eligible


def _with_history(
    scopes: list[ScopeSeries],
    origin: date,
    min_history: int,
    collected: _Collected,
    rolling: bool,
) -> list[ScopeSeries]:
    ready = []
    for scope in scopes:
        if scope.history_days(origin) >= min_history:
            ready.append(scope)
        elif rolling:
            reason = f"{scope.history_days(origin)} days of history, fewer than {min_history}"
            collected.skipped.append(Skip(scope.name, origin, "accuracy", reason))
    return ready


def _days_left(planned: _EventOrigin) -> int:
    return (planned.window.end - timedelta(days=1) - planned.origin).days


def _score_origin(
    batch: OriginForecasts,
    origin: date,
    rolling: list[ScopeSeries],
    events: list[_EventOrigin],
    options: BacktestOptions,
    collected: _Collected,
) -> None:
    for name, reason in batch.failures.items():
        collected.skipped.append(Skip(name, origin, "forecast", f"forecast failed: {reason}"))
    collected.made += len(batch.forecasts)
    collected.calibrated += sum(_calibrated(item) for item in batch.forecasts.values())

    longest = max(options.horizons)
    for scope in rolling:
        forecast = batch.forecasts.get(scope.name)
        if forecast is None:
            continue
        raw = None if batch.raw is None else batch.raw.get(scope.name)
        collected.forecasts.append(_origin_forecast(scope, origin, forecast, raw, longest))

    for planned in events:
        forecast = batch.forecasts.get(planned.scope.name)
        if forecast is not None:
            collected.events.extend(_exceedance_events(planned, forecast, options.levels))


def _calibrated(forecast: Forecast) -> bool:
    """Return True when the forecaster recorded that it calibrated this forecast's intervals."""
    record = forecast.params.get("calibration")
    return isinstance(record, dict) and bool(record.get("applied", True))


def _origin_forecast(
    scope: ScopeSeries,
    origin: date,
    forecast: Forecast,
    raw: DailyForecast | None,
    longest: int,
) -> OriginForecast:
    start = origin + timedelta(days=1)
    actual = scope.between(start, start + timedelta(days=longest))
    fitted = scope.between(max(forecast.history_start, scope.first_day), start)
    return OriginForecast(
        scope=scope.name,
        origin=origin,
        actual=actual,
        days=_truncated(forecast.days, longest),
        scale=seasonal_naive_scale(fitted),
        model=forecast.model,
        raw=None if raw is None else _truncated(raw, longest),
    )


def _truncated(days: DailyForecast, horizon: int) -> DailyForecast:
    return DailyForecast(
        dates=days.dates[:horizon],
        mean=days.mean[:horizon].copy(),
        lo80=days.lo80[:horizon].copy(),
        hi80=days.hi80[:horizon].copy(),
        lo95=days.lo95[:horizon].copy(),
        hi95=days.hi95[:horizon].copy(),
    )


def _exceedance_events(
    planned: _EventOrigin, forecast: Forecast, levels: tuple[float, ...]
) -> list[ExceedanceEvent]:
    """Score each budget level at one mid-month origin, and the straight-line projection."""
    scope, origin, window = planned.scope, planned.origin, planned.window
    previous_total = scope.total(planned.previous)
    spent = float(scope.between(window.start, origin + timedelta(days=1)).sum())
    actual_total = scope.total(window)
    elapsed = (origin - window.start).days + 1
    projected = straight_line_total(spent, elapsed, window.days)

    events = []
    for level in levels:
        budget = quantize_money(level * previous_total)
        try:
            outlook = exceedance(forecast, window, Decimal(repr(spent)), budget)
        except ForecastError as exc:
            logger.error("backtest %s at %s: exceedance failed: %s", scope.name, origin, exc)
            continue
        events.append(
            ExceedanceEvent(
                scope=scope.name,
                origin=origin,
                period_start=window.start,
                period_end=window.end - timedelta(days=1),
                level=level,
                budget=float(budget),
                spent_to_date=spent,
                actual_total=actual_total,
                probability=outlook.probability,
                baseline=1.0 if projected > float(budget) else 0.0,
                observed=actual_total > float(budget),
            )
        )
    return events


def _result(
    loaded: LoadedScopes,
    scopes: list[ScopeSeries],
    first: date,
    end: date,
    origins: tuple[date, ...],
    options: BacktestOptions,
    collected: _Collected,
) -> BacktestResult:
    forecasts, adjustment = _with_adjustment(collected.forecasts, end)
    collected.forecasts = forecasts
    events = collected.events
    if not events:
        logger.warning(
            "backtest: no exceedance events; they need a fully stored month before a month "
            "that ends by %s",
            end,
        )

    return BacktestResult(
        source=loaded.source,
        scope_kind=loaded.kind,
        history_start=first,
        history_end=end,
        horizons=options.horizons,
        origins=origins,
        event_origins=tuple(sorted({event.origin for event in events})),
        levels=options.levels,
        overall=summarize_accuracy(forecasts, options.horizons),
        by_horizon={h: summarize_accuracy(forecasts, (h,)) for h in options.horizons},
        exceedance=summarize_events(events),
        by_level={
            level: summarize_events([e for e in events if e.level == level])
            for level in options.levels
        },
        reliability=reliability_table(
            [event.probability for event in events],
            [event.observed for event in events],
            options.reliability_bins,
        ),
        scopes=_scope_reports(scopes, options, collected),
        skipped=collected.skipped,
        forecasts=forecasts,
        events=events,
        series={scope.name: scope for scope in scopes},
        forecasts_made=collected.made,
        calibrated_forecasts=collected.calibrated,
        without_data=loaded.without_data,
        adjustment=adjustment,
    )


def _with_adjustment(
    cells: list[OriginForecast], end: date
) -> tuple[list[OriginForecast], IntervalAdjustment | None]:
    """Fit the interval adjustment on every cell and add each cell's cross-validated bounds.

    With fewer than two origins there is nothing to cross-validate on, so no cell gets adjusted
    bounds and no adjustment is returned.
    """
    if len({cell.origin for cell in cells}) < 2:
        return cells, None

    residuals = [_residual(cell) for cell in cells]
    adjusted = []
    for cell, (lower, upper) in zip(cells, cross_validated(residuals), strict=True):
        days = replace(cell.days, lo80=lower[80], hi80=upper[80], lo95=lower[95], hi95=upper[95])
        adjusted.append(replace(cell, adjusted=days))
    return adjusted, fit_adjustment(residuals, history_end=end)


def _residual(cell: OriginForecast) -> ResidualForecast:
    days = cell.days
    return ResidualForecast(
        origin=cell.origin,
        actual=cell.actual,
        mean=days.mean,
        lower={80: days.lo80, 95: days.lo95},
        upper={80: days.hi80, 95: days.hi95},
    )


def _scope_reports(
    scopes: list[ScopeSeries], options: BacktestOptions, collected: _Collected
) -> list[ScopeReport]:
    """Return one report per scope, the highest total spend first."""
    cells_by_scope: dict[str, list[OriginForecast]] = defaultdict(list)
    for cell in collected.forecasts:
        cells_by_scope[cell.scope].append(cell)
    events_by_scope: dict[str, list[ExceedanceEvent]] = defaultdict(list)
    for event in collected.events:
        events_by_scope[event.scope].append(event)
    skips_by_scope: dict[str, int] = defaultdict(int)
    for skip in collected.skipped:
        skips_by_scope[skip.scope] += 1

    reports = []
    for scope in scopes:
        cells = cells_by_scope[scope.name]
        reports.append(
            ScopeReport(
                name=scope.name,
                spend=float(scope.values.sum()),
                currency=scope.currency,
                accuracy=summarize_accuracy(cells, options.horizons),
                by_horizon={h: summarize_accuracy(cells, (h,)) for h in options.horizons},
                exceedance=summarize_events(events_by_scope[scope.name]),
                skipped=skips_by_scope[scope.name],
            )
        )
    reports.sort(key=lambda report: (-report.spend, report.name))
    return reports
