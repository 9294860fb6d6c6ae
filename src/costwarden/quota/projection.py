"""Project one daily usage series against its limit: when, and how likely, it reaches it.

The steps, cheapest first:

1. Usage at or over the limit now is reported as such, with the day it got there.
2. A history shorter than ``min_history_days`` is not forecast.
3. A headroom screen skips series that cannot plausibly reach the limit within the window. Its
   ceiling is the highest recent peak, plus the recent upward trend (two standard errors above
   its estimate) over the days to the window's end, plus four residual standard deviations.
   Most quotas are far above their usage, so the screen keeps the pass fast.
4. Every other series is forecast with ``costwarden.forecast.forecast_series`` (AutoETS, or a
   window average for short histories). The first day each sample path reaches the limit gives
   the breach date quantiles and the probability of a breach within the window.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta

import numpy as np

from costwarden.config import ForecastSettings, QuotaSettings
from costwarden.errors import ForecastError
from costwarden.forecast import forecast_series
from costwarden.quota.model import QuotaProjection, QuotaTarget, UsageHistory

SCREEN_MODEL = "headroom-screen"
SCREEN_DAYS = 14
SCREEN_SIGMAS = 4.0
BREACH_QUANTILES = (0.5, 0.1, 0.9)


def window_bounds(as_of: datetime, window_days: int) -> tuple[date, date]:
    """Return the first and last day of the alert window; the day of ``as_of`` is day 1."""
    first = as_of.date()
    return first, first + timedelta(days=window_days - 1)


def project(
    target: QuotaTarget,
    history: UsageHistory | None,
    as_of: datetime,
    quota: QuotaSettings,
    forecast: ForecastSettings,
) -> QuotaProjection:
    """Project ``history`` against ``target.limit`` and return the result with its evidence."""
    window_start, window_end = window_bounds(as_of, quota.window_days)
    base = QuotaProjection(target, "no_usage", as_of, window_start, window_end)
    if history is None:
        return replace(base, note=f"no {target.resource} usage data for this scope")

    base = replace(
        base,
        current=history.current,
        current_day=history.current_day,
        history_start=history.start if len(history.values) else None,
        history_end=history.end if len(history.values) else None,
    )
    if history.current >= target.limit:
        return _at_limit(base, history, target.limit)
    if len(history.values) < quota.min_history_days:
        note = (
            f"{len(history.values)} days of usage history, fewer than min_history_days="
            f"{quota.min_history_days}"
        )
        return replace(base, status="insufficient_history", note=note)

    days_ahead = (window_end - history.end).days
    if headroom_clear(history.values, target.limit, days_ahead):
        return replace(base, status="screened", model=SCREEN_MODEL)
    return _forecast(base, history, as_of, forecast)


def _at_limit(base: QuotaProjection, history: UsageHistory, limit: float) -> QuotaProjection:
    """Report usage at or over the limit, dated from the first day of the current streak."""
    reached = history.current_day
    day = history.end
    for value in history.values[::-1]:
        if value < limit:
            break
        reached = day
        day -= timedelta(days=1)
    return replace(
        base,
        status="at_limit",
        breach_date=reached,
        breach_date_p10=reached,
        breach_date_p90=reached,
        probability=1.0,
    )


def headroom_clear(values: np.ndarray, limit: float, days_ahead: int) -> bool:
    """Return True when the recent peaks, trend and noise cannot reach ``limit`` in time."""
    recent = np.asarray(values[-SCREEN_DAYS:], dtype=float)
    if len(recent) < 3:
        return False

    offsets = np.arange(len(recent), dtype=float)
    slope, intercept = np.polyfit(offsets, recent, 1)
    residuals = recent - (intercept + slope * offsets)
    sigma = float(np.std(residuals, ddof=2)) if len(recent) > 2 else 0.0
    spread = float(np.sum((offsets - offsets.mean()) ** 2))
    slope_error = sigma / math.sqrt(spread) if spread > 0 else 0.0

    growth = max(slope + 2 * slope_error, 0.0) * max(days_ahead, 0)
    ceiling = float(recent.max()) + growth + SCREEN_SIGMAS * sigma
    return ceiling < limit


def _forecast(
    base: QuotaProjection, history: UsageHistory, as_of: datetime, settings: ForecastSettings
) -> QuotaProjection:
    target = base.target
    horizon = max((base.window_end - history.end).days, settings.min_horizon_days)
    series_id = f"quota:{target.scope_kind}:{target.scope_id}:{target.resource}"
    try:
        result = forecast_series(series_id, history.values, history.end, horizon, as_of, settings)
    except ForecastError as exc:
        return replace(base, status="insufficient_history", note=f"forecast failed: {exc}")

    first = first_crossings(result.paths, target.limit)
    dates = result.days.dates
    median, p10, p90 = (_day_at(dates, index) for index in breach_indices(first))
    in_window = [i for i, day in enumerate(dates) if day <= base.window_end]
    last_index = in_window[-1] if in_window else -1
    probability = float(np.mean(first <= last_index))

    status = "clear"
    if median is not None:
        status = "breach_in_window" if median <= base.window_end else "breach_later"
    return replace(
        base,
        status=status,  # type: ignore[arg-type]
        breach_date=median,
        breach_date_p10=p10,
        breach_date_p90=p90,
        probability=probability,
        horizon_end=dates[-1],
        model=result.model,
        model_version=result.model_version,
        fallback_reason=result.fallback_reason,
        params=dict(result.params),
    )


def first_crossings(paths: np.ndarray, limit: float) -> np.ndarray:
    """Return each path's first day index at or over ``limit``; paths that never reach it get
    the horizon length."""
    reached = paths >= limit
    first = np.argmax(reached, axis=1)
    first[~reached.any(axis=1)] = paths.shape[1]
    return first


def breach_indices(first: np.ndarray) -> tuple[int, int, int]:
    """Return the median, 10th and 90th percentile of the first crossing indices.

    ``inverted_cdf`` picks an index that some path actually has, never a fraction of a day.
    """
    quantiles = np.quantile(first, BREACH_QUANTILES, method="inverted_cdf")
    median, p10, p90 = (int(value) for value in quantiles)
    return median, p10, p90


def _day_at(dates: tuple[date, ...], index: int) -> date | None:
    return dates[index] if index < len(dates) else None
