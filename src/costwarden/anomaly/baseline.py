"""A robust one-day-ahead baseline for many daily series at once.

For each series and each checked day ``t``, the baseline is fitted on the days before ``t`` only:

1. Weekday factors: the median of each weekday over the ``season_weeks`` weeks before ``t``,
   divided by the median of all those days, then normalised to a mean of 1. A weekday with fewer
   than two values, or a series whose median is 0, gets factor 1.
2. The ``baseline_days`` days before ``t`` are divided by their weekday factor.
3. Trend and scale from the week-over-week differences of those days, where the weekly pattern
   cancels: the trend is their median divided by 7, kept only when it is larger than three times
   its standard error so that noise does not become a trend. The scale is their MAD times
   1.4826 (the MAD estimate of a normal standard deviation) divided by sqrt(2), because a
   difference of two days has twice the variance of one day. Differences do not depend on the
   weekday factors, so the scale is not shrunk by factors fitted on the same days.
4. Level at ``t``: the median of the deseasonalised days, each moved along the trend to ``t``.
   The scale is widened to the spread of a new day around the expected value, which also
   carries the error of the level and of the weekday factor, both medians. So it is multiplied
   by ``sqrt(1 + (pi/2)/n + (pi/2)/w)`` for ``n`` days and ``w`` weeks of data in the window. It is
   at least ``scale_floor`` times the level.

The expected value of a day ``k`` days after ``t`` is ``(level + slope * k) * factor`` and its
noise scale is ``scale * factor``, with the factor of that day's weekday. Medians make the
baseline robust: a spike or a shift covering less than half of the window does not move it.

Missing days are NaN and are skipped. A baseline is valid when at least ``min_days`` of the
``baseline_days`` have data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

WEEK = 7
MAD_TO_SD = 1.4826
"""Factor that turns a median absolute deviation into a normal standard deviation."""

MIN_FACTOR = 0.1
MAX_FACTOR = 10.0
MIN_TREND_PAIRS = 7
TREND_SIGMAS = 3.0
MEDIAN_SE = 1.2533
"""Standard error of a sample median relative to that of the mean, for normal noise."""
MEDIAN_VARIANCE = MEDIAN_SE**2


@dataclass(frozen=True, eq=False)
class Baselines:
    """Baseline models of ``n`` series for ``days`` checked days, fitted on earlier days only.

    Column ``j`` belongs to the checked day ``first + j`` of the panel. ``factors[i, j, p]`` is
    the weekday factor of the days ``k`` after that checked day with ``k % 7 == p``.
    """

    first: int
    level: np.ndarray
    slope: np.ndarray
    scale: np.ndarray
    factors: np.ndarray
    valid: np.ndarray

    def expected(self, rows: np.ndarray, origin: np.ndarray, ahead: np.ndarray) -> np.ndarray:
        """Return the expected values ``ahead`` days after each origin column, for ``rows``."""
        level = self.level[rows, origin] + self.slope[rows, origin] * ahead
        factor = self.factors[rows, origin, ahead % WEEK]
        return np.clip(level, 0.0, None) * factor

    def sigma(self, rows: np.ndarray, origin: np.ndarray, ahead: np.ndarray) -> np.ndarray:
        """Return the noise scale of the same days as ``expected``."""
        return self.scale[rows, origin] * self.factors[rows, origin, ahead % WEEK]

    def one_day_ahead(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the expected value and noise scale of every checked day, shape (n, days)."""
        n, days = self.level.shape
        rows = np.repeat(np.arange(n), days).reshape(n, days)
        origin = np.tile(np.arange(days), n).reshape(n, days)
        ahead = np.zeros((n, days), dtype=np.int64)
        return self.expected(rows, origin, ahead), self.sigma(rows, origin, ahead)


def fit_baselines(
    values: np.ndarray,
    first: int,
    *,
    baseline_days: int,
    season_weeks: int,
    min_days: int,
    scale_floor: float,
) -> Baselines:
    """Fit the baseline of every series for each checked day from column ``first`` to the end.

    ``values`` has one row per series and one column per UTC day, NaN where a series has no data.
    """
    data = np.ascontiguousarray(values, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"values must be a 2-D array, got shape {data.shape}")
    if baseline_days % WEEK:
        raise ValueError(f"baseline_days must be a multiple of 7, got {baseline_days}")
    if not 0 <= first <= data.shape[1]:
        raise ValueError(f"first checked column {first} is outside 0..{data.shape[1]}")

    level, slope, scale, factors, valid = _fit_all(
        data, first, baseline_days, season_weeks * WEEK, min_days, scale_floor
    )
    return Baselines(first, level, slope, scale, factors, valid)


@njit(cache=True, nogil=True, parallel=True)
def _fit_all(
    values: np.ndarray,
    first: int,
    window: int,
    season: int,
    min_days: int,
    floor: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n, total = values.shape
    days = total - first
    level = np.zeros((n, days))
    slope = np.zeros((n, days))
    scale = np.zeros((n, days))
    factors = np.ones((n, days, WEEK))
    valid = np.zeros((n, days), dtype=np.bool_)
    for i in prange(n):
        for j in range(days):
            t = first + j
            factor = _weekday_factors(values[i], t, season)
            factors[i, j] = factor
            fitted = _level_and_scale(values[i], t, window, factor, min_days, floor)
            level[i, j], slope[i, j], scale[i, j], valid[i, j] = fitted
    return level, slope, scale, factors, valid


@njit(cache=True, nogil=True)
def _weekday_factors(y: np.ndarray, t: int, season: int) -> np.ndarray:
    """Return the factors by position ``(day - t) % 7`` from the ``season`` days before ``t``."""
    factor = np.ones(WEEK)
    start = max(t - season, 0)
    everything = np.empty(t - start)
    count = 0
    for u in range(start, t):
        if not np.isnan(y[u]):
            everything[count] = y[u]
            count += 1
    if count < 2 * WEEK:
        return factor
    overall = np.median(everything[:count])
    if overall <= 0.0:
        return factor

    medians = np.ones(WEEK)
    for p in range(WEEK):
        chosen = np.empty(season // WEEK + 1)
        found = 0
        for u in range(start, t):
            if (u - t) % WEEK == p and not np.isnan(y[u]):
                chosen[found] = y[u]
                found += 1
        if found < 2:
            return factor
        medians[p] = np.median(chosen[:found]) / overall
    mean = medians.mean()
    if mean <= 0.0:
        return factor
    for p in range(WEEK):
        factor[p] = min(max(medians[p] / mean, MIN_FACTOR), MAX_FACTOR)
    return factor


@njit(cache=True, nogil=True)
def _level_and_scale(
    y: np.ndarray, t: int, window: int, factor: np.ndarray, min_days: int, floor: float
) -> tuple[float, float, float, bool]:
    start = max(t - window, 0)
    deseasonalised = np.full(t - start, np.nan)
    count = 0
    for u in range(start, t):
        if not np.isnan(y[u]):
            deseasonalised[u - start] = y[u] / factor[(u - t) % WEEK]
            count += 1
    if count < min_days:
        return 0.0, 0.0, 0.0, False

    trend, spread = _trend_and_scale(deseasonalised)
    moved = np.empty(count)
    k = 0
    for offset in range(t - start):
        value = deseasonalised[offset]
        if not np.isnan(value):
            moved[k] = value + trend * (t - (start + offset))
            k += 1
    level = np.median(moved)
    if spread < 0.0:
        spread = MAD_TO_SD * np.median(np.abs(moved - level))
    weeks = max(count // WEEK, 1)
    spread *= np.sqrt(1.0 + MEDIAN_VARIANCE / count + MEDIAN_VARIANCE / weeks)
    return level, trend, max(spread, floor * abs(level), 1e-9), True


@njit(cache=True, nogil=True)
def _trend_and_scale(d: np.ndarray) -> tuple[float, float]:
    """Return the trend per day and the noise scale from week-over-week differences.

    The scale is -1 when there are too few differences, and the caller then uses the MAD of the
    days themselves.
    """
    pairs = np.empty(len(d))
    m = 0
    for u in range(WEEK, len(d)):
        if not np.isnan(d[u]) and not np.isnan(d[u - WEEK]):
            pairs[m] = d[u] - d[u - WEEK]
            m += 1
    if m < MIN_TREND_PAIRS:
        return 0.0, -1.0
    diffs = pairs[:m]
    centre = np.median(diffs)
    spread = MAD_TO_SD * np.median(np.abs(diffs - centre))
    error = MEDIAN_SE * spread / np.sqrt(m)
    trend = centre / WEEK if abs(centre) > TREND_SIGMAS * error else 0.0
    return trend, spread / np.sqrt(2.0)
