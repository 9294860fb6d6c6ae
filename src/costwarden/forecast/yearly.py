"""Yearly seasonality for series with years of history: a trend, year and weekday regression.

Telling a yearly cycle from a trend takes at least two cycles. A series with at least
``yearly_min_days`` days of spend is therefore also fitted by a regression on up to
``yearly_history_days`` days. Its terms are a linear trend whose slope may change every
``yearly_knot_days`` days, ``yearly_order`` sine and cosine pairs of the year, and one effect
per weekday. A ridge penalty keeps the slope changes and the yearly terms small unless the data
need them, and the last slope carries on into the forecast.

The regression and last week's repeat (seasonal naive) forecast ``yearly_folds`` past periods
of ``yearly_fold_days`` days, out of sample. The regression is not used in three cases: the
repeat's mean absolute error is lower by more than ``selection_margin``, its residuals over the
last four weeks show that it misses a recent change (``RECENT_BIAS_LIMIT``), or the history is
too short for a calibration origin. The series then goes through the weekly models. The
regression's intervals are empirical quantiles of its own errors at past origins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas

from costwarden.forecast.kernels import SEASON
from costwarden.forecast.models import LEVELS
from costwarden.forecast.options import BatchOptions

logger = logging.getLogger(__name__)

YEAR_DAYS = 365.25
MODEL_ALIAS = "YearlyRegression"
CALIBRATION_ORIGINS = 16
CALIBRATION_SPACING = 23
"""Past origins whose errors set the intervals, and the days between them: together they span
about a year, so the errors of every season count and not only those of the latest one."""
HORIZON_BAND = 3
"""Errors at horizons up to this many days away are pooled with a horizon's own."""
SEASONAL_PENALTY = 0.01
"""Ridge penalty of the yearly and weekday terms, relative to that of the slope changes."""
KNOT_SPAN = 0.9
"""Slope changes may happen in this first part of the history, not in its last days."""
RECENT_DAYS = 28
RECENT_BIAS_LIMIT = 2.0
"""Noise units that the regression's mean residual over the last ``RECENT_DAYS`` may reach.

Beyond it the regression is not following a recent change, such as a ramp or a level shift. The
weekly models, which adapt to recent days, forecast instead."""
EXCLUDED_PENALTY = 1e12
"""Penalty that keeps the coefficient of a slope change outside a fit's range at zero."""


@dataclass(frozen=True, slots=True, eq=False)
class YearlyResult:
    """Forecasts of the rows where the regression won, with their intervals and audit records."""

    rows: np.ndarray
    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    params: list[dict[str, object]]
    history_days: np.ndarray


def long_rows(values: np.ndarray, options: BatchOptions) -> np.ndarray:
    """Return the rows with at least ``yearly_min_days`` days from their first spend."""
    if not options.yearly:
        return np.empty(0, dtype=np.int64)

    spend = np.isfinite(values) & (values != 0.0)
    has_spend = spend.any(axis=1)
    first = np.where(has_spend, np.argmax(spend, axis=1), values.shape[1])
    return np.flatnonzero(values.shape[1] - first >= options.yearly_min_days)


class _Regression:
    """The regression's design on one series, fitted at many training ends at once.

    ``y`` ends with as many placeholder days as the longest forecast, so that the design has a
    row for every forecast day. The Gram matrix of the whole design is computed once; a fit
    that ends at column ``cut`` subtracts the rows from ``cut`` on. Slope changes after
    ``KNOT_SPAN`` of a fit's training range get a prohibitive penalty in that fit, as if the
    series ended there.
    """

    def __init__(self, y: np.ndarray, options: BatchOptions) -> None:
        self.y = y
        self.options = options
        self.knots = _knots(len(y), options.yearly_knot_days)
        self.x = _design(np.arange(len(y), dtype=np.float64), self.knots, options.yearly_order)
        self.gram = _gram(self.x)
        self.moment = y @ self.x
        self.penalty = np.zeros(self.x.shape[1])
        self.penalty[2 : 2 + len(self.knots)] = options.yearly_trend_penalty
        self.penalty[2 + len(self.knots) :] = options.yearly_trend_penalty * SEASONAL_PENALTY

    def forecasts(self, cuts: np.ndarray, horizon: int) -> np.ndarray:
        """Fit on the days before each cut; return the next ``horizon`` days, (cuts, horizon)."""
        return self.predict(cuts, self.coefficients(cuts), horizon)

    def coefficients(self, cuts: np.ndarray) -> np.ndarray:
        """Return the coefficients fitted on the days before each cut, (cuts, columns)."""
        order = np.argsort(-cuts)
        ordered = cuts[order]
        edges = np.concatenate([[len(self.y)], ordered])
        segments = [self.x[low:high] for low, high in zip(ordered, edges[:-1], strict=True)]
        removed_gram = np.cumsum([segment.T @ segment for segment in segments], axis=0)
        removed_moment = np.cumsum(
            [
                segment.T @ self.y[low:high]
                for segment, low, high in zip(segments, ordered, edges[:-1], strict=True)
            ],
            axis=0,
        )

        penalty = np.tile(self.penalty, (len(ordered), 1)) * ordered[:, None] / 100.0
        late = self.knots[None, :] >= KNOT_SPAN * ordered[:, None]
        penalty[:, 2 : 2 + len(self.knots)][late] = EXCLUDED_PENALTY
        systems = self.gram - removed_gram
        diagonal = np.arange(len(self.penalty))
        systems[:, diagonal, diagonal] += penalty
        beta = np.linalg.solve(systems, (self.moment - removed_moment)[..., None])[..., 0]

        result = np.empty_like(beta)
        result[order] = beta
        return result

    def predict(self, cuts: np.ndarray, beta: np.ndarray, horizon: int) -> np.ndarray:
        """Return the ``horizon`` days after each cut from its coefficients, (cuts, horizon)."""
        rows = self.x[cuts[:, None] + np.arange(horizon)[None, :]]
        return np.matmul(rows, beta[..., None])[..., 0]

    def recent_bias(self, end: int, beta: np.ndarray) -> float:
        """Return the mean residual of the last ``RECENT_DAYS`` before ``end``, in noise units.

        The noise unit is the robust sd (1.4826 times the MAD) of all residuals before ``end``.
        """
        residuals = self.y[:end] - self.x[:end] @ beta
        deviation = np.abs(residuals - np.median(residuals))
        noise = 1.4826 * float(np.median(deviation))
        if noise <= 0.0:
            return 0.0
        return float(np.mean(residuals[-RECENT_DAYS:])) / noise

    def origin_cuts(self, end: int, horizon: int) -> np.ndarray:
        """Return the calibration origins before ``end``, latest first.

        Origins lie ``CALIBRATION_SPACING`` days apart, the latest ``horizon`` days before
        ``end``; each has at least ``yearly_min_days`` days before it.
        """
        cuts = end - horizon - CALIBRATION_SPACING * np.arange(CALIBRATION_ORIGINS)
        return cuts[cuts >= self.options.yearly_min_days]

    def fold_cuts(self, end: int) -> np.ndarray:
        days = self.options.yearly_fold_days
        return end - days * np.arange(1, self.options.yearly_folds + 1)

    def actual(self, cuts: np.ndarray, horizon: int) -> np.ndarray:
        return self.y[cuts[:, None] + np.arange(horizon)[None, :]]


def regression_forecast(y: np.ndarray, horizon: int, options: BatchOptions) -> np.ndarray:
    """Fit the regression on ``y`` (no NaN) and return the next ``horizon`` days."""
    extended = np.concatenate([y, np.zeros(horizon)])
    return _Regression(extended, options).forecasts(np.array([len(y)]), horizon)[0]


def interval_offsets(errors: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Return the lower and upper offset of each level per horizon, from pooled past errors.

    The errors at each horizon are pooled with those up to ``HORIZON_BAND`` horizons away. At
    the first and last horizons the band is clipped, so the edge horizon counts more.
    """
    horizon = errors.shape[1]
    band = np.arange(-HORIZON_BAND, HORIZON_BAND + 1)
    columns = np.clip(np.arange(horizon)[:, None] + band[None, :], 0, horizon - 1)
    pooled = errors[:, columns].transpose(1, 0, 2).reshape(horizon, -1)

    tails = [(1.0 - level / 100.0) / 2.0 for level in LEVELS]
    quantiles = np.quantile(pooled, [q for tail in tails for q in (tail, 1.0 - tail)], axis=1)
    offsets = {}
    for index, level in enumerate(LEVELS):
        lower, upper = quantiles[2 * index], quantiles[2 * index + 1]
        offsets[level] = (np.minimum(lower, 0.0), np.maximum(upper, 0.0))
    return offsets


def yearly_stage(
    values: np.ndarray, rows: np.ndarray, horizon: int, options: BatchOptions
) -> YearlyResult:
    """Fit the regression on ``rows`` and keep it where it beats last week's repeat.

    ``values`` contains up to ``yearly_history_days`` days per row, NaN before a series existed.
    """
    kept: list[int] = []
    forecasts: list[tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]] = []
    params = []
    days = []
    for row in rows:
        y = values[row, _first_spend(values[row]) :]
        fold_days = options.yearly_fold_days
        length = max(horizon, fold_days)
        regression = _Regression(np.concatenate([y, np.zeros(length)]), options)
        folds = regression.fold_cuts(len(y))
        origins = regression.origin_cuts(len(y), horizon)
        if not origins.size:
            continue

        cuts = np.concatenate([[len(y)], origins, folds])
        betas = regression.coefficients(cuts)
        if abs(regression.recent_bias(len(y), betas[0])) > RECENT_BIAS_LIMIT:
            continue

        fitted = regression.predict(cuts, betas, length)
        regression_error, naive_error = _fold_errors(regression, folds, fitted[-len(folds) :])
        if naive_error < (1.0 - options.selection_margin) * regression_error:
            continue

        errors = regression.actual(origins, horizon) - fitted[1 : 1 + len(origins), :horizon]
        forecasts.append((fitted[0, :horizon], interval_offsets(errors)))
        params.append(_params(len(y), options, regression_error, naive_error, len(errors)))
        kept.append(int(row))
        days.append(len(y))

    logger.info("yearly regression: %d of %d long series keep it", len(kept), len(rows))
    return _result(kept, forecasts, params, days, horizon)


def _fold_errors(
    regression: _Regression, cuts: np.ndarray, fitted: np.ndarray
) -> tuple[float, float]:
    """Return the mean absolute error of the regression and of last week's repeat on folds."""
    days = regression.options.yearly_fold_days
    actual = regression.actual(cuts, days)
    last_week = regression.y[cuts[:, None] - SEASON + np.arange(days)[None, :] % SEASON]
    return (
        float(np.mean(np.abs(actual - fitted[:, :days]))),
        float(np.mean(np.abs(actual - last_week))),
    )


def _result(
    kept: list[int],
    forecasts: list[tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]],
    params: list[dict[str, object]],
    days: list[int],
    horizon: int,
) -> YearlyResult:
    mean = np.array([forecast for forecast, _ in forecasts]).reshape(-1, horizon)
    lower = {}
    upper = {}
    for level in LEVELS:
        low = np.array([offsets[level][0] for _, offsets in forecasts]).reshape(-1, horizon)
        high = np.array([offsets[level][1] for _, offsets in forecasts]).reshape(-1, horizon)
        lower[level] = mean + low
        upper[level] = mean + high
    return YearlyResult(
        np.array(kept, dtype=np.int64), mean, lower, upper, params, np.array(days, dtype=np.int64)
    )


def _params(
    days: int, options: BatchOptions, regression_error: float, naive_error: float, origins: int
) -> dict[str, object]:
    return {
        "method": f"trend with slope changes every {options.yearly_knot_days} days, "
        f"{options.yearly_order} yearly harmonics, weekday effects",
        "yearly_order": options.yearly_order,
        "knot_days": options.yearly_knot_days,
        "selection": {
            "folds": options.yearly_folds,
            "fold_days": options.yearly_fold_days,
            "scores": {
                MODEL_ALIAS: round(regression_error, 4),
                "SeasonalNaive": round(naive_error, 4),
            },
            "reason": f"{MODEL_ALIAS}: {days} days of history; fold mean absolute error "
            f"{regression_error:.3g} against {naive_error:.3g} for last week's repeat",
        },
        "calibration": {
            "applied": origins > 0,
            "method": "empirical quantiles of the regression's errors at past origins",
            "origins": origins,
        },
    }


def _knots(n: int, spacing: int) -> np.ndarray:
    return np.arange(spacing, KNOT_SPAN * n, spacing, dtype=np.float64)


def _design(t: np.ndarray, knots: np.ndarray, order: int) -> np.ndarray:
    """Return the regression's columns: intercept, slope, slope changes, year, weekday."""
    n_knots = len(knots)
    # Column-major, so that each column is written in one pass and BLAS reads it as is.
    x = np.zeros((2 + n_knots + 2 * order + SEASON - 1, len(t))).T
    x[:, 0] = 1.0
    x[:, 1] = t / YEAR_DAYS
    x[:, 2 : 2 + n_knots] = np.maximum(0.0, t[:, None] - knots[None, :]) / YEAR_DAYS

    # The harmonics are powers of the first one, which is cheaper than a sine per column.
    base = np.exp(2j * np.pi * t / YEAR_DAYS)
    harmonics = np.cumprod(np.broadcast_to(base[:, None], (len(t), order)), axis=1)
    first = 2 + n_knots
    x[:, first : first + 2 * order : 2] = harmonics.imag
    x[:, first + 1 : first + 2 * order : 2] = harmonics.real

    weekday = t.astype(np.int64) % SEASON
    has_effect = weekday > 0
    x[np.flatnonzero(has_effect), first + 2 * order + weekday[has_effect] - 1] = 1.0
    return x


def _gram(x: np.ndarray) -> np.ndarray:
    """Return ``x.T @ x`` through BLAS's symmetric rank-k update.

    NOTE: on a busy 2-core machine, NumPy's ``x.T @ x`` took about 60 times as long as this
    call (measured on 2,930 x 71), which computes half the matrix.
    """
    upper = blas.dsyrk(1.0, np.asfortranarray(x), trans=1)
    return upper + np.triu(upper, 1).T


def _first_spend(row: np.ndarray) -> int:
    spend = np.flatnonzero(np.isfinite(row) & (row != 0.0))
    return int(spend[0]) if spend.size else 0
