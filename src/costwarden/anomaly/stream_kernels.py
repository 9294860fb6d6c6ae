"""Numba kernels of the streaming breakout detector. ``streaming.py`` is the public interface.

The whole detector state lives in the NumPy arrays of ``DetectorState``, so one compiled step
function serves both the point-by-point ``update`` and the batch loop, and both give
bit-identical scores.

Channels: index 0 is the raw value, indices ``1..M`` are rolling medians over the level windows,
and index ``M + 1`` is the smoothed seasonal residual. Each channel keeps a sorted window of its
last ``history_points`` values, which gives its median, quartiles, minimum and maximum.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

# Slots of ``DetectorState.counters``.
POINTS = 0
LAST_FIRE = 1
SEASON = 2
N_INTERVALS = 3
HISTORY_HEAD = 4
N_RESIDUALS = 5
RESIDUAL_HEAD = 6

SEASON_UNKNOWN = 0
SEASON_OFF = -1

# Slots of ``DetectorState.scalars``.
LAST_TIMESTAMP = 0

# Slots of ``Parameters.floats`` and ``Parameters.ints``.
SPREAD_MULTIPLE = 0
AGREEMENT_BONUS = 1
REFRACTORY_RATIO = 2
SEASON_SECONDS = 3

MIN_HISTORY = 0
REFRACTORY_POINTS = 1
FIXED_SEASON = 2

IQR_TO_SIGMA = 1.349
"""Interquartile range of the standard normal distribution, to read a spread as a sigma."""

MAX_RATIO = 1e3


class Parameters(NamedTuple):
    """Settings as arrays the kernels read."""

    levels: np.ndarray
    floor_share: np.ndarray
    exponent: np.ndarray
    two_sided: np.ndarray
    floats: np.ndarray
    ints: np.ndarray


class DetectorState(NamedTuple):
    """Everything the detector remembers, as arrays the kernels update in place."""

    counters: np.ndarray
    scalars: np.ndarray
    window_sorted: np.ndarray
    window_ring: np.ndarray
    window_meta: np.ndarray
    level_sorted: np.ndarray
    level_ring: np.ndarray
    level_meta: np.ndarray
    history: np.ndarray
    residuals: np.ndarray
    recent: np.ndarray
    intervals: np.ndarray
    channel: np.ndarray


def new_state(
    channels: int,
    history_points: int,
    levels: np.ndarray,
    max_season_points: int,
    smoothing_points: int,
    local_max_points: int,
    interval_sample: int,
) -> DetectorState:
    """Allocate the state of a detector that has seen no point."""
    counters = np.zeros(8, dtype=np.int64)
    counters[LAST_FIRE] = -(2**62)
    longest = int(levels.max()) if levels.size else 1
    return DetectorState(
        counters=counters,
        scalars=np.full(2, np.nan),
        window_sorted=np.zeros((channels, history_points)),
        window_ring=np.zeros((channels, history_points)),
        window_meta=np.zeros((channels, 2), dtype=np.int64),
        level_sorted=np.zeros((levels.size, longest)),
        level_ring=np.zeros((levels.size, longest)),
        level_meta=np.zeros((levels.size, 2), dtype=np.int64),
        history=np.zeros(max_season_points),
        residuals=np.zeros(smoothing_points),
        recent=np.zeros(local_max_points),
        intervals=np.zeros(interval_sample),
        channel=np.zeros(channels),
    )


@nb.njit(cache=True)
def _lower_bound(buffer: np.ndarray, count: int, value: float) -> int:
    low, high = 0, count
    while low < high:
        middle = (low + high) >> 1
        if buffer[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low


@nb.njit(cache=True)
def _push(
    sorted_row: np.ndarray, ring_row: np.ndarray, meta_row: np.ndarray, capacity: int, value: float
) -> None:
    """Add ``value`` to a sliding window of ``capacity`` values, dropping the oldest when full."""
    count = meta_row[0]
    head = meta_row[1]
    if count == capacity:
        index = _lower_bound(sorted_row, count, ring_row[head])
        for j in range(index, count - 1):
            sorted_row[j] = sorted_row[j + 1]
        count -= 1

    index = _lower_bound(sorted_row, count, value)
    for j in range(count, index, -1):
        sorted_row[j] = sorted_row[j - 1]
    sorted_row[index] = value
    ring_row[head] = value
    meta_row[1] = (head + 1) % capacity
    meta_row[0] = count + 1


@nb.njit(cache=True)
def _quantile(sorted_row: np.ndarray, count: int, share: float) -> float:
    """Linear-interpolation quantile of the first ``count`` sorted values."""
    position = share * (count - 1)
    index = int(position)
    if index + 1 < count:
        return sorted_row[index] + (sorted_row[index + 1] - sorted_row[index]) * (position - index)
    return sorted_row[index]


@nb.njit(cache=True)
def _spread(sorted_row: np.ndarray, count: int) -> float:
    upper = _quantile(sorted_row, count, 0.75)
    return (upper - _quantile(sorted_row, count, 0.25)) / IQR_TO_SIGMA


@nb.njit(cache=True)
def _breakout(
    sorted_row: np.ndarray, count: int, value: float, spread_multiple: float, floor: float
) -> tuple[float, float]:
    """Return how far ``value`` reaches above and below the window, as shares of its range.

    The upward ratio is ``(value - median) / (max - median)``, so 1 means "level with the
    highest value in the window"; the downward one mirrors it. Each range is at least
    ``spread_multiple`` spreads, so that a window of nearly equal values does not turn noise
    into breakouts.
    """
    center = _quantile(sorted_row, count, 0.5)
    spread = max(_spread(sorted_row, count), floor)
    reach_up = max(sorted_row[count - 1] - center, spread_multiple * spread)
    reach_down = max(center - sorted_row[0], spread_multiple * spread)

    if reach_up > 0.0:
        up = (value - center) / reach_up
    else:
        up = MAX_RATIO if value > center else 0.0
    if reach_down > 0.0:
        down = (center - value) / reach_down
    else:
        down = MAX_RATIO if value < center else 0.0
    return min(max(up, 0.0), MAX_RATIO), min(max(down, 0.0), MAX_RATIO)


@nb.njit(cache=True)
def _learn_season(
    counters: np.ndarray,
    scalars: np.ndarray,
    intervals: np.ndarray,
    floats: np.ndarray,
    ints: np.ndarray,
    capacity: int,
    timestamp: float,
) -> None:
    """Set the season length in points from the median of the first sampling intervals."""
    if counters[SEASON] != SEASON_UNKNOWN:
        return
    if ints[FIXED_SEASON] > 0:
        counters[SEASON] = ints[FIXED_SEASON] if ints[FIXED_SEASON] <= capacity else SEASON_OFF
        return
    if math.isnan(timestamp) or math.isnan(floats[SEASON_SECONDS]):
        return

    previous = scalars[LAST_TIMESTAMP]
    scalars[LAST_TIMESTAMP] = timestamp
    if math.isnan(previous) or timestamp <= previous:
        return
    intervals[counters[N_INTERVALS]] = timestamp - previous
    counters[N_INTERVALS] += 1
    if counters[N_INTERVALS] < intervals.size:
        return

    points = int(round(floats[SEASON_SECONDS] / np.median(intervals)))
    counters[SEASON] = points if 2 <= points <= capacity else SEASON_OFF


@nb.njit(cache=True)
def _channel_values(state: DetectorState, levels: np.ndarray, value: float) -> bool:
    """Fill ``state.channel`` with the raw value, rolling medians and seasonal residual.

    Returns whether the seasonal channel has a value for this point.
    """
    channel = state.channel
    channel[0] = value
    for k in range(levels.size):
        _push(state.level_sorted[k], state.level_ring[k], state.level_meta[k], levels[k], value)
        channel[1 + k] = _quantile(state.level_sorted[k], state.level_meta[k, 0], 0.5)

    counters = state.counters
    history = state.history
    residuals = state.residuals
    season = counters[SEASON]
    head = counters[HISTORY_HEAD]
    seasonal = season > 0 and counters[POINTS] >= season
    if seasonal:
        residuals[counters[RESIDUAL_HEAD]] = value - history[(head - season) % history.size]
        counters[RESIDUAL_HEAD] = (counters[RESIDUAL_HEAD] + 1) % residuals.size
        counters[N_RESIDUALS] = min(counters[N_RESIDUALS] + 1, residuals.size)
        channel[channel.size - 1] = residuals[: counters[N_RESIDUALS]].mean()
    history[head] = value
    counters[HISTORY_HEAD] = (head + 1) % history.size
    return seasonal


@nb.njit(cache=True)
def step(state: DetectorState, parameters: Parameters, timestamp: float, value: float) -> float:
    """Score one point from the state, then add the point to the state.

    Non-finite values score 0 and leave the state unchanged.
    """
    if not math.isfinite(value):
        return 0.0
    counters = state.counters
    floats = parameters.floats
    ints = parameters.ints
    _learn_season(
        counters, state.scalars, state.intervals, floats, ints, state.history.size, timestamp
    )
    seasonal = _channel_values(state, parameters.levels, value)

    channel = state.channel
    window_sorted = state.window_sorted
    window_meta = state.window_meta
    capacity = window_sorted.shape[1]
    min_history = ints[MIN_HISTORY]
    raw_count = window_meta[0, 0]
    raw_spread = _spread(window_sorted[0], raw_count) if raw_count >= min_history else 0.0
    best = 0.0
    agreeing = 0
    for c in range(channel.size):
        if c == channel.size - 1 and not seasonal:
            continue
        count = window_meta[c, 0]
        if count >= min_history:
            floor = parameters.floor_share[c] * raw_spread
            up, down = _breakout(
                window_sorted[c], count, channel[c], floats[SPREAD_MULTIPLE], floor
            )
            up = up ** parameters.exponent[c]
            down = down ** parameters.exponent[c] if parameters.two_sided[c] else 0.0
            agreeing += (up >= 1.0) + (down >= 1.0)
            best = max(best, up, down)
        _push(window_sorted[c], state.window_ring[c], window_meta[c], capacity, channel[c])

    ratio = best * (1.0 + floats[AGREEMENT_BONUS] * max(agreeing - 1, 0))
    return _suppress(counters, state.recent, floats, ints, ratio)


@nb.njit(cache=True)
def _suppress(counters, recent, floats, ints, ratio) -> float:
    """Keep a ratio only when it tops the recent ones and no alarm fired just before."""
    t = counters[POINTS]
    recent_max = 0.0
    for j in range(min(t, recent.size)):
        recent_max = max(recent_max, recent[j])
    recent[t % recent.size] = ratio
    counters[POINTS] = t + 1

    if ratio <= recent_max or t - counters[LAST_FIRE] <= ints[REFRACTORY_POINTS]:
        return 0.0
    if ratio >= floats[REFRACTORY_RATIO]:
        counters[LAST_FIRE] = t
    return ratio / (1.0 + ratio)


@nb.njit(cache=True)
def run(
    state: DetectorState, parameters: Parameters, timestamps: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Score a batch of points in order, exactly as repeated ``step`` calls would."""
    scores = np.zeros(values.size)
    for i in range(values.size):
        scores[i] = step(state, parameters, timestamps[i], values[i])
    return scores
