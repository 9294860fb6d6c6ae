"""Numba kernels of the batched forecaster: ETS and SES filters, sample-path values.

A batch is a 2-D array with one row per series and one column per UTC day, shared by every row.
Each kernel reads one row between a ``start`` and an ``end`` column, so a series gets the same
numbers alone or in any batch. Weekdays are keyed by ``column % SEASON``. That key is a
different weekday in another batch, but it is used the same way everywhere, so results do not
change. Kernels are compiled on first use, cached on disk (``cache=True``) and release the GIL,
so the batch can be split over threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

SEASON = 7
"""Season length in days: the weekly cycle."""

INIT_DAYS = 28
"""Days at the start of a series that set the initial level, slope and weekly profile."""

MIN_TREND_INIT_DAYS = 14
"""Below this many days the initial slope is taken to be 0."""


@njit(cache=True, nogil=True)
def initial_states(y: np.ndarray, start: int, end: int) -> tuple[float, float, np.ndarray]:
    """Return the level before ``start``, the slope, and the weekly profile of a series.

    The slope and the weekly profile (mean residual per weekday, centred on 0) come from a
    least-squares line through the whole range, because a few weeks are too noisy to
    extrapolate. Below ``MIN_TREND_INIT_DAYS`` days the slope is 0. The level is the mean of
    the first ``INIT_DAYS`` deseasonalised days, moved back to the day before ``start``.
    """
    slope, profile = line_and_profile(y, start, end)
    if end - start < MIN_TREND_INIT_DAYS:
        slope = 0.0

    n = min(end - start, INIT_DAYS)
    level = 0.0
    for i in range(n):
        level += y[start + i] - profile[(start + i) % SEASON]
    level = level / n - slope * ((n - 1) / 2.0 + 1.0)
    return level, slope, profile


@njit(cache=True, nogil=True)
def _centred(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Return the weekday means, centred on 0; a weekday without data gets 0."""
    profile = np.zeros(SEASON)
    total = 0.0
    seen = 0
    for key in range(SEASON):
        if counts[key] > 0.0:
            profile[key] = sums[key] / counts[key]
            total += profile[key]
            seen += 1
    for key in range(SEASON):
        if counts[key] > 0.0:
            profile[key] -= total / seen
    return profile


@njit(cache=True, nogil=True)
def ets_sse(
    y: np.ndarray,
    start: int,
    end: int,
    alpha: float,
    beta: float,
    phi: float,
    gamma: float,
    trended: bool,
    limit: float,
) -> float:
    """Return the SSE of one-step ETS(A,Ad,A) errors, or a value above ``limit`` once it passes."""
    level, slope, season = initial_states(y, start, end)
    if not trended:
        level += slope * ((min(end - start, INIT_DAYS) - 1) / 2.0 + 1.0)
        slope = 0.0

    sse = 0.0
    for t in range(start, end):
        key = t % SEASON
        error = y[t] - (level + phi * slope + season[key])
        sse += error * error
        if sse > limit:
            return sse
        level = level + phi * slope + alpha * error
        slope = phi * slope + beta * error
        season[key] += gamma * error
    return sse


@njit(cache=True, nogil=True)
def ets_select(y: np.ndarray, start: int, end: int, grid: np.ndarray, penalties: np.ndarray) -> int:
    """Return the row of ``grid`` (alpha, beta, phi, gamma, trended) with the lowest criterion.

    The criterion is ``n * log(SSE / n) + penalty``, Akaike's information criterion for Gaussian
    errors. A row stops early once its SSE cannot beat the best row so far.
    """
    n = end - start
    best_row = 0
    best_score = math.inf
    for row in range(grid.shape[0]):
        penalty = penalties[row]
        limit = math.inf
        if best_score < math.inf:
            limit = n * math.exp((best_score - penalty) / n)
        sse = ets_sse(
            y,
            start,
            end,
            grid[row, 0],
            grid[row, 1],
            grid[row, 2],
            grid[row, 3],
            grid[row, 4] > 0.5,
            limit,
        )
        if sse > limit:
            continue
        score = n * math.log(max(sse / n, 1e-300)) + penalty
        if score < best_score:
            best_score = score
            best_row = row
    return best_row


@njit(cache=True, nogil=True)
def ets_filter(
    y: np.ndarray,
    start: int,
    end: int,
    params: np.ndarray,
    first_origin: int,
    horizons: np.ndarray,
    origin_forecasts: np.ndarray,
) -> tuple[float, float, np.ndarray, float]:
    """Run ETS(A,Ad,A) over ``[start, end)`` and return the final level, slope, profile and SSE.

    ``params`` is (alpha, beta, phi, gamma, trended). For each origin column ``t`` from
    ``first_origin`` on, ``origin_forecasts[t - first_origin, j]`` receives the forecast made
    after day ``t`` for day ``t + horizons[j]``, where that day is before ``end``.
    """
    alpha, beta, phi, gamma = params[0], params[1], params[2], params[3]
    level, slope, season = initial_states(y, start, end)
    if params[4] < 0.5:
        level += slope * ((min(end - start, INIT_DAYS) - 1) / 2.0 + 1.0)
        slope = 0.0

    sse = 0.0
    for t in range(start, end):
        key = t % SEASON
        error = y[t] - (level + phi * slope + season[key])
        sse += error * error
        level = level + phi * slope + alpha * error
        slope = phi * slope + beta * error
        season[key] += gamma * error

        if t >= first_origin:
            damped = 0.0
            power = 1.0
            step = 0
            for j in range(horizons.shape[0]):
                h = horizons[j]
                if t + h >= end:
                    break
                while step < h:
                    power *= phi
                    damped += power
                    step += 1
                origin_forecasts[t - first_origin, j] = (
                    level + damped * slope + season[(t + h) % SEASON]
                )
    return level, slope, season, sse


@njit(cache=True, nogil=True)
def theta_filter(
    x: np.ndarray,
    start: int,
    end: int,
    alpha: float,
    drift: float,
    first_origin: int,
    horizons: np.ndarray,
    origin_forecasts: np.ndarray,
) -> tuple[float, float]:
    """Run simple exponential smoothing with drift over a deseasonalised row ``x``.

    Returns the final level and the SSE of the one-step forecasts. The forecast ``h`` days after
    the ``k``-th day is ``level + drift * (h - 1 + (1 - (1 - alpha) ** k) / alpha)``, the Theta
    method of Hyndman and Billah (2003). Origin forecasts are written as in ``ets_filter``,
    without the weekly profile, which the caller adds.
    """
    n_init = min(end - start, SEASON)
    level = 0.0
    for i in range(n_init):
        level += x[start + i]
    level /= n_init

    sse = 0.0
    decay = 1.0
    for t in range(start, end):
        error = x[t] - (level + drift * (1.0 - decay) / alpha)
        sse += error * error
        level += alpha * error
        decay *= 1.0 - alpha

        if t >= first_origin:
            memory = (1.0 - decay) / alpha
            for j in range(horizons.shape[0]):
                h = horizons[j]
                if t + h >= end:
                    break
                origin_forecasts[t - first_origin, j] = level + drift * (h - 1 + memory)
    return level, sse


@njit(cache=True, nogil=True)
def theta_select(x: np.ndarray, start: int, end: int, alphas: np.ndarray, drift: float) -> int:
    """Return the index of the smoothing parameter in ``alphas`` with the lowest one-step SSE."""
    scratch = np.empty((0, 0))
    no_horizons = np.empty(0, dtype=np.int64)
    best = 0
    best_sse = math.inf
    for i in range(alphas.shape[0]):
        _, sse = theta_filter(x, start, end, alphas[i], drift, end, no_horizons, scratch)
        if sse < best_sse:
            best_sse = sse
            best = i
    return best


@njit(cache=True, nogil=True)
def path_row(
    innovations: np.ndarray,
    noise_sd: float,
    level_sd: np.ndarray,
    inverse_sd: np.ndarray,
    z_knots: np.ndarray,
    y_knots: np.ndarray,
    slopes: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write one sample path: correlated scores mapped through each day's quantile knots.

    The innovation of day ``h`` enters day ``h`` as noise and shifts every later day by
    ``level_sd[h]``. The score of day ``h`` is standardised (``inverse_sd`` is 1 over its
    standard deviation, or 0 when that is 0) and mapped through the piecewise-linear quantile
    function of that day, then clipped at 0.
    """
    interior = z_knots.shape[0] - 1
    shift = 0.0
    for h in range(out.shape[0]):
        epsilon = innovations[h]
        error = noise_sd * epsilon + shift
        shift += level_sd[h] * epsilon
        score = error * inverse_sd[h]
        # Counting the knots passed, without an early exit, avoids a mispredicted branch per
        # day: the segments are equally likely.
        segment = 0
        for knot in range(1, interior):
            segment += score >= z_knots[knot]
        value = y_knots[segment, h] + slopes[segment, h] * (score - z_knots[segment])
        out[h] = max(value, 0.0)


@njit(cache=True, nogil=True)
def _inverse(error_sd: np.ndarray) -> np.ndarray:
    inverse = np.zeros(error_sd.shape[0])
    for h in range(error_sd.shape[0]):
        if error_sd[h] > 0.0:
            inverse[h] = 1.0 / error_sd[h]
    return inverse


@njit(cache=True, nogil=True)
def fill_paths(
    innovations: np.ndarray,
    rows: np.ndarray,
    noise_sd: float,
    level_sd: np.ndarray,
    error_sd: np.ndarray,
    z_knots: np.ndarray,
    y_knots: np.ndarray,
    slopes: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out`` (paths, days): path ``k`` uses row ``rows[k]`` of ``innovations``."""
    horizon = out.shape[1]
    inverse_sd = _inverse(error_sd)
    for k in range(out.shape[0]):
        path_row(
            innovations[rows[k], :horizon],
            noise_sd,
            level_sd,
            inverse_sd,
            z_knots,
            y_knots,
            slopes,
            out[k],
        )


@njit(cache=True, nogil=True)
def window_totals(
    innovations: np.ndarray,
    rows: np.ndarray,
    noise_sd: float,
    level_sd: np.ndarray,
    error_sd: np.ndarray,
    z_knots: np.ndarray,
    y_knots: np.ndarray,
    slopes: np.ndarray,
    first_day: int,
    last_day: int,
    spent: float,
    budget: float,
    totals: np.ndarray,
    first_crossing: np.ndarray,
) -> None:
    """Stream the paths of one series and keep only what a budget check needs.

    ``totals[k]`` is ``spent`` plus path ``k`` summed over the forecast days
    ``[first_day, last_day)``. ``first_crossing[k]`` is the offset from ``first_day`` of the first
    day on which that running total exceeds ``budget``, or -1. The sums are taken in the same
    order as ``spent + numpy.cumsum(path)``, so they match ``exceedance`` on a materialised path.
    """
    buffer = np.empty(last_day)
    inverse_sd = _inverse(error_sd)
    for k in range(totals.shape[0]):
        path_row(
            innovations[rows[k], :last_day],
            noise_sd,
            level_sd,
            inverse_sd,
            z_knots,
            y_knots,
            slopes,
            buffer,
        )
        running = 0.0
        crossing = -1
        for h in range(first_day, last_day):
            running += buffer[h]
            if crossing < 0 and spent + running > budget:
                crossing = h - first_day
        totals[k] = spent + running
        first_crossing[k] = crossing


@njit(cache=True, nogil=True)
def line_and_profile(y: np.ndarray, start: int, end: int) -> tuple[float, np.ndarray]:
    """Return the least-squares slope over ``[start, end)`` and the weekday means around the line.

    The weekly profile is centred on 0; a weekday without data gets 0.
    """
    n = end - start
    mean_t = (n - 1) / 2.0
    mean_y = 0.0
    for i in range(n):
        mean_y += y[start + i]
    mean_y /= n

    covariance = 0.0
    variance = 0.0
    for i in range(n):
        covariance += (i - mean_t) * (y[start + i] - mean_y)
        variance += (i - mean_t) ** 2
    slope = covariance / variance if variance > 0.0 else 0.0

    sums = np.zeros(SEASON)
    counts = np.zeros(SEASON)
    for i in range(n):
        key = (start + i) % SEASON
        sums[key] += y[start + i] - (mean_y + slope * (i - mean_t))
        counts[key] += 1.0
    return slope, _centred(sums, counts)


@njit(cache=True, nogil=True)
def ets_select_rows(
    values: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    grids: np.ndarray,
    penalties: np.ndarray,
    chosen: np.ndarray,
) -> None:
    """Write into ``chosen[i]`` the best row of ``grids[i]`` for series ``i``."""
    for i in range(values.shape[0]):
        chosen[i] = ets_select(values[i], starts[i], ends[i], grids[i], penalties[i])


@njit(cache=True, nogil=True)
def ets_filter_rows(
    values: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    params: np.ndarray,
    first_origin: int,
    horizons: np.ndarray,
    origin_forecasts: np.ndarray,
    levels: np.ndarray,
    slopes: np.ndarray,
    profiles: np.ndarray,
    sse: np.ndarray,
) -> None:
    """Run ``ets_filter`` on every series and store its final states and SSE."""
    for i in range(values.shape[0]):
        level, slope, profile, total = ets_filter(
            values[i], starts[i], ends[i], params[i], first_origin, horizons, origin_forecasts[i]
        )
        levels[i] = level
        slopes[i] = slope
        profiles[i] = profile
        sse[i] = total


@njit(cache=True, nogil=True)
def theta_rows(
    values: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    alphas: np.ndarray,
    first_origin: int,
    horizons: np.ndarray,
    origin_forecasts: np.ndarray,
    chosen_alpha: np.ndarray,
    drifts: np.ndarray,
    levels: np.ndarray,
    profiles: np.ndarray,
    sse: np.ndarray,
) -> None:
    """Fit the Theta method to every series and store its parameters and final level.

    Each series is deseasonalised by its weekly profile around a least-squares line. The drift
    is half the slope of that line, and the smoothing parameter is the value in ``alphas`` with
    the lowest one-step SSE.
    """
    for i in range(values.shape[0]):
        y = values[i]
        start, end = starts[i], ends[i]
        slope, profile = line_and_profile(y, start, end)
        x = np.empty(end)
        for t in range(start, end):
            x[t] = y[t] - profile[t % SEASON]
        drift = slope / 2.0
        alpha = alphas[theta_select(x, start, end, alphas, drift)]
        level, total = theta_filter(
            x, start, end, alpha, drift, first_origin, horizons, origin_forecasts[i]
        )
        chosen_alpha[i] = alpha
        drifts[i] = drift
        levels[i] = level
        profiles[i] = profile
        sse[i] = total


@njit(cache=True, nogil=True)
def _median(values: np.ndarray) -> float:
    ordered = np.sort(values)
    n = ordered.shape[0]
    if n % 2 == 1:
        return ordered[n // 2]
    return 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])


@njit(cache=True, nogil=True)
def _window_medians(x: np.ndarray, window: int) -> np.ndarray:
    """Return the median of every run of ``window`` consecutive values (insertion sort)."""
    count = x.shape[0] - window + 1
    medians = np.empty(count)
    buffer = np.empty(window)
    for k in range(count):
        for i in range(window):
            value = x[k + i]
            j = i
            while j > 0 and buffer[j - 1] > value:
                buffer[j] = buffer[j - 1]
                j -= 1
            buffer[j] = value
        if window % 2 == 1:
            medians[k] = buffer[window // 2]
        else:
            medians[k] = 0.5 * (buffer[window // 2 - 1] + buffer[window // 2])
    return medians


@njit(cache=True, nogil=True)
def robust_profile(y: np.ndarray, start: int, end: int) -> np.ndarray:
    """Return the weekly profile as weekday medians of the deviation from a centred weekly mean.

    Medians keep outage days and spikes from bending the profile. Without two full weeks the
    profile is 0.
    """
    profile = np.zeros(SEASON)
    if end - start < 2 * SEASON:
        return profile

    deviations = np.empty(end - start)
    keys = np.empty(end - start, dtype=np.int64)
    count = 0
    half = SEASON // 2
    for t in range(start + half, end - half):
        mean = 0.0
        for j in range(t - half, t + half + 1):
            mean += y[j]
        deviations[count] = y[t] - mean / SEASON
        keys[count] = t % SEASON
        count += 1

    total = 0.0
    for key in range(SEASON):
        selected = deviations[:count][keys[:count] == key]
        if selected.shape[0] > 0:
            profile[key] = _median(selected)
        total += profile[key]
    for key in range(SEASON):
        profile[key] -= total / SEASON
    return profile


@njit(cache=True, nogil=True)
def level_shift(
    y: np.ndarray, start: int, end: int, window: int, threshold: float, min_relative: float
) -> tuple[int, float, float]:
    """Find the largest lasting level shift in a series, or return column -1.

    The series is deseasonalised by ``robust_profile``. For each column ``t`` the step is the
    median of the ``window`` days from ``t`` minus the median of the ``window`` days before it,
    less the median step of the series (the part a steady trend explains). A step counts when it
    is at least ``threshold`` times the noise scale and ``min_relative`` times the typical
    level. The noise scale comes from the median absolute deviation of day-to-day changes. The
    step must also last: the median of all days from ``t`` on must differ from the median of
    all days before ``t`` by at least half the step, in the same direction. That test rejects
    outages that end before ``end``.
    Returns the column, the step and the step in units of the noise scale.
    """
    n = end - start
    if n < 4 * window:
        return -1, 0.0, 0.0

    profile = robust_profile(y, start, end)
    x = np.empty(n)
    for i in range(n):
        x[i] = y[start + i] - profile[(start + i) % SEASON]

    changes = np.diff(x)
    noise = 1.4826 * _median(np.abs(changes - _median(changes))) / math.sqrt(2.0)
    typical = _median(np.abs(x))
    if noise <= 0.0:
        noise = max(1e-9 * typical, 1e-12)

    medians = _window_medians(x, window)
    m = n - 2 * window + 1
    steps = medians[window : window + m] - medians[:m]
    steps -= _median(steps)

    order = np.argsort(-np.abs(steps))
    for rank in range(min(3, m)):
        k = order[rank]
        step = steps[k]
        if abs(step) < threshold * noise or abs(step) < min_relative * typical:
            break
        t = k + window
        lasting = _median(x[t:]) - _median(x[:t])
        if lasting * np.sign(step) >= 0.5 * abs(step):
            return start + t, step, abs(step) / noise
    return -1, 0.0, 0.0


@njit(cache=True, nogil=True)
def level_shift_rows(
    values: np.ndarray,
    starts: np.ndarray,
    end: int,
    window: int,
    threshold: float,
    min_relative: float,
    columns: np.ndarray,
    steps: np.ndarray,
    scores: np.ndarray,
) -> None:
    """Run ``level_shift`` on every series."""
    for i in range(values.shape[0]):
        column, step, score = level_shift(
            values[i], starts[i], end, window, threshold, min_relative
        )
        columns[i] = column
        steps[i] = step
        scores[i] = score


@njit(cache=True, nogil=True)
def theta_origin_rows(
    values: np.ndarray,
    starts: np.ndarray,
    alphas: np.ndarray,
    drifts: np.ndarray,
    profiles: np.ndarray,
    first_origin: int,
    horizons: np.ndarray,
    origin_forecasts: np.ndarray,
) -> None:
    """Write Theta forecasts from every origin to the end of each row, with fitted parameters.

    The profile is added to each forecast, unlike ``theta_filter``.
    """
    end = values.shape[1]
    for i in range(values.shape[0]):
        y = values[i]
        start = starts[i]
        x = np.empty(end)
        for t in range(start, end):
            x[t] = y[t] - profiles[i, t % SEASON]
        theta_filter(
            x, start, end, alphas[i], drifts[i], first_origin, horizons, origin_forecasts[i]
        )
        for o in range(origin_forecasts.shape[1]):
            for j in range(horizons.shape[0]):
                origin_forecasts[i, o, j] += profiles[i, (first_origin + o + horizons[j]) % SEASON]
