"""A spend effect on the last days of each month, such as month-end batch jobs or reports.

Take the day ``d`` days before a month ends (``d = 0`` is the last day). Its deviation is its
deseasonalised spend minus the median of the other days within ``BASELINE_DAYS`` of it, and
its effect is the median deviation over the month ends in the history. An effect counts only
when there are enough month ends, when it is large against the series' noise, and when most
month ends agree on its sign.
Counted effects are removed from the history before fitting and added to the forecast.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from costwarden.forecast import kernels
from costwarden.forecast.arrays import nanmedian
from costwarden.forecast.kernels import SEASON
from costwarden.forecast.options import BatchOptions

BASELINE_DAYS = 10
"""Days on each side of a month-end day whose median spend is its baseline."""

MIN_NOISE_SCALES = 4.0
"""Smallest effect counted, in noise scales divided by the square root of the month count."""

MIN_AGREEMENT = 0.75
"""Share of month ends whose deviation has the sign of the effect."""


@dataclass(frozen=True, slots=True, eq=False)
class MonthEndEffects:
    """Effects per series and day before month end, 0 where none counts; shape (series, days)."""

    effects: np.ndarray
    months: np.ndarray


def days_before_month_end(first_day: date, count: int) -> np.ndarray:
    """Return, for ``count`` consecutive days from ``first_day``, the days left in their month."""
    offsets = np.empty(count, dtype=np.int64)
    for index in range(count):
        day = first_day + timedelta(days=index)
        offsets[index] = calendar.monthrange(day.year, day.month)[1] - day.day
    return offsets


def estimate_month_end(
    values: np.ndarray, starts: np.ndarray, first_day: date, options: BatchOptions
) -> MonthEndEffects:
    """Estimate the month-end effects of every series; ``first_day`` is the day of column 0."""
    n, end = values.shape
    span = options.month_end_days
    offsets = days_before_month_end(first_day, end)
    effects = np.zeros((n, span))
    months = np.zeros(n, dtype=np.int64)
    last_days = _complete_month_ends(offsets, span)
    if not last_days:
        return MonthEndEffects(effects, months)

    x = _deseasonalised(values, starts)
    noise = _noise_scale(x)
    deviations = np.stack([_deviations(x, offsets, last, span) for last in last_days], axis=1)
    valid = np.array([last - span + 1 for last in last_days])[None, :] >= starts[:, None]
    deviations[~np.broadcast_to(valid[:, :, None], deviations.shape)] = np.nan
    months = np.isfinite(deviations[:, :, 0]).sum(axis=1)

    enough = months >= options.month_end_min_months
    if not enough.any():
        return MonthEndEffects(effects, months)

    rows = np.flatnonzero(enough)
    sample = deviations[rows]
    median = nanmedian(sample, axis=1)
    agrees = (np.sign(sample) == np.sign(median)[:, None, :]) & np.isfinite(sample)
    agreement = agrees.sum(axis=1) / months[rows, None]
    bound = MIN_NOISE_SCALES * noise[rows, None] / np.sqrt(months[rows, None])
    counted = (np.abs(median) > bound) & (agreement >= MIN_AGREEMENT)
    effects[rows] = np.where(counted, median, 0.0)
    return MonthEndEffects(effects, months)


def remove_effects(values: np.ndarray, effects: MonthEndEffects, first_day: date) -> np.ndarray:
    """Return the values with each series' month-end effects subtracted."""
    offsets = days_before_month_end(first_day, values.shape[1])
    return values - _effect_by_column(effects.effects, offsets)


def future_effects(effects: MonthEndEffects, first_forecast_day: date, horizon: int) -> np.ndarray:
    """Return the effects of the forecast days, shape (series, horizon)."""
    offsets = days_before_month_end(first_forecast_day, horizon)
    return _effect_by_column(effects.effects, offsets)


def month_end_params(effects: MonthEndEffects, row: int) -> dict[str, object]:
    """Return the audit record of one series: month ends seen and the effects that count."""
    counted = {
        str(offset): round(float(effect), 6)
        for offset, effect in enumerate(effects.effects[row])
        if effect != 0.0
    }
    return {"months": int(effects.months[row]), "days_before_month_end": counted}


def _effect_by_column(effects: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    span = effects.shape[1]
    inside = offsets < span
    by_column = np.zeros((effects.shape[0], len(offsets)))
    by_column[:, inside] = effects[:, offsets[inside]]
    return by_column


def _complete_month_ends(offsets: np.ndarray, span: int) -> list[int]:
    """Return the columns of the last days of months whose last ``span`` days are all present."""
    last_days = np.flatnonzero(offsets == 0)
    return [int(last) for last in last_days if last - span + 1 >= 0]


def _deseasonalised(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    x = np.full_like(values, np.nan)
    end = values.shape[1]
    keys = np.arange(end) % SEASON
    for row, start in enumerate(starts):
        profile = kernels.robust_profile(values[row], int(start), end)
        x[row, start:] = values[row, start:] - profile[keys[start:]]
    return x


def _noise_scale(x: np.ndarray) -> np.ndarray:
    """Return the noise scale of each series from the median absolute day-to-day change."""
    changes = np.diff(x, axis=1)
    centre = nanmedian(changes, axis=1)[:, None]
    scale = 1.4826 * nanmedian(np.abs(changes - centre), axis=1) / np.sqrt(2.0)
    return np.nan_to_num(scale, nan=0.0)


def _deviations(x: np.ndarray, offsets: np.ndarray, last: int, span: int) -> np.ndarray:
    """Return each series' deviation from baseline on the last ``span`` days of one month."""
    low = max(last - span + 1 - BASELINE_DAYS, 0)
    high = min(last + BASELINE_DAYS + 1, x.shape[1])
    around = np.arange(low, high)
    baseline_columns = around[offsets[around] >= span]
    baseline = nanmedian(x[:, baseline_columns], axis=1)
    columns = last - np.arange(span)
    return x[:, columns] - baseline[:, None]
