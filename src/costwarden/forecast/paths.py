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
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from costwarden.forecast.models import Prediction


def simulate_paths(prediction: Prediction, n_paths: int, rng: np.random.Generator) -> np.ndarray:
    """Draw sample paths of shape (n_paths, h), clipped at 0 because spend is never negative."""
    variance = _daily_variance(prediction)
    scores = _correlated_scores(variance, n_paths, rng)
    paths = _map_to_quantiles(scores, prediction)
    return np.clip(paths, 0.0, None)


def _z(level: int) -> float:
    """Return the standard normal quantile at the upper end of a central ``level``% interval."""
    return NormalDist().inv_cdf(0.5 + level / 200)


def _daily_variance(prediction: Prediction) -> np.ndarray:
    """Return each day's forecast variance, as implied by the widest prediction interval."""
    level = max(prediction.lower)
    half_width = (prediction.upper[level] - prediction.lower[level]) / 2
    return (half_width / _z(level)) ** 2


def _correlated_scores(variance: np.ndarray, n_paths: int, rng: np.random.Generator) -> np.ndarray:
    """Return standard normal scores per path and day, correlated like a local-level model."""
    noise_sd = np.sqrt(variance[0])
    level_sd = np.sqrt(np.maximum(np.diff(variance), 0.0))

    innovations = rng.standard_normal((n_paths, len(variance)))
    errors = noise_sd * innovations
    errors[:, 1:] += np.cumsum(innovations[:, :-1] * level_sd, axis=1)

    error_variance = variance[0] + np.concatenate(([0.0], np.cumsum(level_sd**2)))
    error_sd = np.sqrt(error_variance)
    scores = np.zeros_like(errors)
    np.divide(errors, error_sd, out=scores, where=error_sd > 0)
    return scores


def _map_to_quantiles(scores: np.ndarray, prediction: Prediction) -> np.ndarray:
    """Map standard normal scores to spend through each day's interval bounds and mean."""
    levels = sorted(prediction.lower, reverse=True)
    z_knots = np.array(
        [-_z(level) for level in levels] + [0.0] + [_z(level) for level in levels[::-1]]
    )
    y_knots = np.vstack(
        [prediction.lower[level] for level in levels]
        + [prediction.mean]
        + [prediction.upper[level] for level in levels[::-1]]
    )
    # A point forecast outside its own 80% interval would make the map decrease; keep it monotone.
    y_knots = np.maximum.accumulate(y_knots, axis=0)
    slopes = np.diff(y_knots, axis=0) / np.diff(z_knots)[:, None]

    segment = np.searchsorted(z_knots, scores, side="right") - 1
    segment = np.clip(segment, 0, len(z_knots) - 2)
    days = np.arange(scores.shape[1])
    return y_knots[segment, days] + slopes[segment, days] * (scores - z_knots[segment])
