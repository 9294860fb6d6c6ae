"""Sample paths of future daily spend, with errors that persist from one day to the next.

Summing per-day intervals gives the wrong spread for a period total, because a cost level that is
higher today stays higher tomorrow. The paths here keep each day's marginal distribution equal
to the model's mean and prediction intervals, and correlate the days the way a local-level model
does:

1. The h-step variances ``v_h`` are read from the widest interval. ``v_1`` is the one-day noise,
   and each growth ``max(v_h - v_{h-1}, 0)`` is the variance added by a persistent level shift.
2. Each path draws one standard normal innovation per day. The innovation of day ``k`` enters
   day ``k`` as noise (scale ``sqrt(v_1)``) and shifts the level of every later day (scale
   ``sqrt(v_{k+1} - v_k)``), a single source of error as in ETS state-space models. For simple
   exponential smoothing, ETS(A,N,N), this is the model's own error structure.
3. Each day's score is standardised and mapped through that day's quantile knots
   (lower 95%, lower 80%, mean, upper 80%, upper 95%), linear between knots and beyond them. For
   Gaussian intervals this reproduces the normal distribution exactly.

Forecasts share one seeded pool of innovations (``innovation_pool``) instead of drawing their
own: drawing 2,000 x 45 normals costs about as much as fitting the series, and a fleet has
thousands. Each series reads the pool's rows in its own order (``path_rows``), so path ``k``
of two series comes from different innovations and sums across series stay independent.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from costwarden.forecast import kernels
from costwarden.forecast.models import Prediction

POOL_STREAM = 0x70617468
"""Seed-sequence key of the innovation pool, so it never repeats another stream of the seed."""


@dataclass(frozen=True, slots=True, eq=False)
class PathInputs:
    """Inputs of the path kernel for a batch of forecasts, each array with one row per series.

    ``z_knots`` contains the standard normal scores of the quantile knots, and ``y_knots[:, k, h]``
    is the spend at knot ``k`` on day ``h``, with ``slopes`` the linear pieces between knots.
    """

    noise_sd: np.ndarray
    level_sd: np.ndarray
    error_sd: np.ndarray
    z_knots: np.ndarray
    y_knots: np.ndarray
    slopes: np.ndarray


def simulate_paths(prediction: Prediction, n_paths: int, rng: np.random.Generator) -> np.ndarray:
    """Draw sample paths of shape (n_paths, h), clipped at 0 because spend is never negative."""
    inputs = path_inputs(
        prediction.mean[None, :],
        {level: bound[None, :] for level, bound in prediction.lower.items()},
        {level: bound[None, :] for level, bound in prediction.upper.items()},
    )
    innovations = rng.standard_normal((n_paths, prediction.horizon))
    return draw_paths(inputs, 0, innovations, np.arange(n_paths))


def draw_paths(
    inputs: PathInputs, row: int, innovations: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Return the paths of series ``row``; path ``k`` uses innovation row ``rows[k]``."""
    horizon = inputs.y_knots.shape[2]
    paths = np.empty((len(rows), horizon))
    kernels.fill_paths(
        innovations,
        rows,
        float(inputs.noise_sd[row]),
        inputs.level_sd[row],
        inputs.error_sd[row],
        inputs.z_knots,
        inputs.y_knots[row],
        inputs.slopes[row],
        paths,
    )
    return paths


def path_inputs(
    mean: np.ndarray, lower: dict[int, np.ndarray], upper: dict[int, np.ndarray]
) -> PathInputs:
    """Return the path kernel inputs of forecasts with shape (series, days)."""
    variance = _daily_variance(lower, upper)
    noise_sd = np.sqrt(variance[:, 0])
    level_sd = np.sqrt(np.maximum(np.diff(variance, axis=1), 0.0))
    level_sd = np.concatenate([level_sd, np.zeros((len(variance), 1))], axis=1)
    cumulative = np.concatenate(
        [np.zeros((len(variance), 1)), np.cumsum(level_sd[:, :-1] ** 2, axis=1)], axis=1
    )
    error_sd = np.sqrt(variance[:, :1] + cumulative)

    levels = sorted(lower, reverse=True)
    z_knots = np.array([-_z(level) for level in levels] + [0.0] + [_z(lv) for lv in levels[::-1]])
    y_knots = np.stack(
        [lower[level] for level in levels] + [mean] + [upper[level] for level in levels[::-1]],
        axis=1,
    )
    # A point forecast outside its own 80% interval would make the map decrease; keep it monotone.
    y_knots = np.maximum.accumulate(y_knots, axis=1)
    slopes = np.diff(y_knots, axis=1) / np.diff(z_knots)[None, :, None]
    return PathInputs(
        noise_sd=noise_sd,
        level_sd=np.ascontiguousarray(level_sd),
        error_sd=np.ascontiguousarray(error_sd),
        z_knots=z_knots,
        y_knots=np.ascontiguousarray(y_knots),
        slopes=np.ascontiguousarray(slopes),
    )


@lru_cache(maxsize=8)
def innovation_pool(seed: int, n_paths: int, horizon: int) -> np.ndarray:
    """Return the shared standard normal innovations, shape (n_paths, horizon), read-only.

    Column ``j`` comes from its own seed sequence ``(seed, POOL_STREAM, j)``, so the first days
    of a longer pool equal a shorter one and a forecast's paths do not depend on its horizon.
    """
    pool = np.empty((n_paths, horizon))
    for day in range(horizon):
        rng = np.random.default_rng([seed % 2**64, POOL_STREAM, day])
        pool[:, day] = rng.standard_normal(n_paths)
    pool.flags.writeable = False
    return pool


def path_rows(seed: int, series_id: str, n_paths: int) -> np.ndarray:
    """Return the order in which a series reads the pool's rows: an affine permutation.

    Row ``(a * k + b) mod n_paths`` feeds path ``k``, with ``a`` coprime to ``n_paths``. ``a`` and
    ``b`` come from a BLAKE2b hash of the seed and the id, because Python's ``hash`` of a string
    changes between processes.
    """
    digest = hashlib.blake2b(f"{seed}\x1f{series_id}".encode(), digest_size=16).digest()
    a = int.from_bytes(digest[:8], "big") % n_paths
    b = int.from_bytes(digest[8:], "big") % n_paths
    while math.gcd(a, n_paths) != 1:
        a = (a + 1) % n_paths
    return (a * np.arange(n_paths, dtype=np.int64) + b) % n_paths


def _z(level: int) -> float:
    """Return the standard normal quantile at the upper end of a central ``level``% interval."""
    return NormalDist().inv_cdf(0.5 + level / 200)


def _daily_variance(lower: dict[int, np.ndarray], upper: dict[int, np.ndarray]) -> np.ndarray:
    """Return each day's forecast variance, as implied by the widest prediction interval."""
    level = max(lower)
    half_width = (upper[level] - lower[level]) / 2
    return (half_width / _z(level)) ** 2
