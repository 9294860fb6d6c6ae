"""Prediction intervals calibrated on each series' own out-of-sample forecast errors.

A model's Gaussian interval is only as good as its error model: cost data has outages, spikes
and heavy tails, and a model fitted to a few months misjudges its own spread. Calibration
replaces the Gaussian quantiles with empirical ones, from the errors of the selection folds
(models fitted without the held-out days, forecasting them), in three steps:

1. Each error is divided by the fold model's standard deviation at its horizon, times the
   series' weekday ratio of the target day (``weekday_ratios``).
2. Scale per series and horizon: the root mean square of those scaled errors, shrunk towards
   the batch's value at that horizon with weight ``count / h`` (errors ``h`` days ahead from
   neighbouring origins overlap) against ``POOL_WEIGHT``. The batch's value is itself shrunk
   towards 1, the model's own scale, with weight ``PRIOR_WINDOWS`` against the number of
   effectively independent time windows behind it, which is the largest ``count / h`` of any
   series. All series share the same holdout days, so a common shock in those weeks moves
   every series' errors together, and more series add no independent windows. With the
   default two folds of 14 days, the batch's scale therefore stays close to the model's own
   from a horizon of about a week on, whatever the number of series. At horizon 1, 28
   one-step errors give the batch's value more than half the weight, even for one series.
3. Shape: the quantiles (2.5%, 10%, 90%, 97.5%) of the errors divided by that scale, pooled
   over the batch per band of horizons. A band with few errors uses the pool of all horizons.
   The quantiles are mixed with the Gaussian ones with weight ``PRIOR_SERIES`` against the
   number of series behind them.

Each bound is then ``mean + sd * ratio * scale * quantile``, with ``sd`` from the model refitted
on the whole history and ``ratio`` the weekday ratio of the forecast day. Beyond the longest
horizon with errors (``holdout_folds * holdout_days``), the last measured scale is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from costwarden.forecast.arrays import nanmean
from costwarden.forecast.kernels import SEASON

LEVEL_QUANTILES: dict[int, tuple[float, float]] = {80: (0.1, 0.9), 95: (0.025, 0.975)}
"""Lower and upper quantile of each central interval level, in percent."""

GRID = (1, 2, 3, 4, 5, 6, 7, 10, 14, 21, 28, 35, 42, 56, 70, 91, 120, 150, 180, 240, 300, 366)
"""Horizons, in days, whose errors are measured; other horizons are interpolated."""

BANDS = ((1, 1), (2, 7), (8, 14), (15, 28), (29, 10_000))
"""Horizon bands (first and last day) whose scaled errors share quantiles."""

POOL_WEIGHT = 50.0
"""Weight of the batch's scale against a series' own, in effectively independent errors."""

PRIOR_WINDOWS = 20.0
"""Weight of the model's own scale against the batch's, in effectively independent errors."""

PRIOR_SERIES = 20.0
"""Weight of the Gaussian quantiles against the batch's pooled errors, in series."""

WEEKDAY_PRIOR = 8.0
"""Weight of a series' overall one-step error against the errors of one weekday, in errors."""

MIN_BAND_ERRORS = 400
MIN_QUANTILE_GAP = 0.1
"""Smallest distance of the 80% bounds from the mean, in scaled-error units."""


@dataclass(frozen=True, slots=True, eq=False)
class Calibration:
    """Interval multipliers per series and forecast day: ``bound = mean + sd * multiplier``."""

    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    own_errors: np.ndarray
    applied: bool
    note: str
    width_ratios: dict[int, np.ndarray]
    """Mean calibrated width over the Gaussian width, per level and series."""

    def params(self, row: int) -> dict[str, object]:
        """Return the audit record of one series: how far calibration moved its intervals."""
        record: dict[str, object] = {"applied": self.applied, "errors": int(self.own_errors[row])}
        if not self.applied:
            record["note"] = self.note
            return record
        record["width_ratio"] = {
            str(level): round(float(ratio[row]), 4) for level, ratio in self.width_ratios.items()
        }
        return record


def calibration_horizons(horizon: int) -> np.ndarray:
    """Return the measured horizons up to ``horizon``."""
    return np.array([h for h in GRID if h <= horizon], dtype=np.int64)


def weekday_ratios(values: np.ndarray, starts: np.ndarray, one_step: np.ndarray) -> np.ndarray:
    """Return each series' error scale per weekday over its overall scale, shape (series, 7).

    ``one_step[i, t]`` is the forecast of column ``t`` made the day before, NaN where there is
    none. Cost that drops at weekends has smaller errors at weekends, which additive models miss.
    Each weekday's mean squared error is shrunk towards the series' overall one with weight
    ``WEEKDAY_PRIOR``. The result is keyed by ``column % 7``.
    """
    n, end = values.shape
    columns = np.arange(end)
    warm = columns[None, :] >= (starts + SEASON)[:, None]
    squares = np.where(warm, (values - one_step) ** 2, np.nan)
    overall = nanmean(squares, axis=1)
    ratios = np.ones((n, SEASON))
    for key in range(SEASON):
        day = squares[:, columns % SEASON == key]
        count = np.sum(np.isfinite(day), axis=1)
        total = np.sum(np.where(np.isfinite(day), day, 0.0), axis=1)
        mixed = (total + WEEKDAY_PRIOR * overall) / (count + WEEKDAY_PRIOR)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[:, key] = np.sqrt(np.where(overall > 0, mixed / overall, 1.0))
    return np.nan_to_num(ratios, nan=1.0)


def calibrate(scaled: np.ndarray, horizons: np.ndarray, horizon: int) -> Calibration:
    """Turn scaled errors (series, origins, measured horizons) into interval multipliers."""
    n = scaled.shape[0]
    own_errors = np.sum(np.isfinite(scaled), axis=(1, 2))
    if horizons.size == 0 or not own_errors.any():
        return gaussian(n, horizon, "no out-of-sample errors to calibrate on")

    scale = _scale(scaled, horizons)
    standardised = scaled / scale[:, None, :]
    quantiles = _band_quantiles(standardised, horizons)
    full_scale = _interpolate(scale, horizons, horizon)

    lower, upper = {}, {}
    days = np.arange(1, horizon + 1)
    band = np.searchsorted([last for _, last in BANDS], days)
    for level, (low_q, high_q) in LEVEL_QUANTILES.items():
        lower[level] = full_scale * quantiles[low_q][band][None, :]
        upper[level] = full_scale * quantiles[high_q][band][None, :]
    ratios = {
        level: np.mean(upper[level] - lower[level], axis=1) / (2 * _z(level)) for level in lower
    }
    return Calibration(lower, upper, own_errors, True, "", ratios)


def gaussian(n: int, horizon: int, note: str) -> Calibration:
    """Return the multipliers of the models' own Gaussian intervals."""
    lower = {level: np.full((n, horizon), -_z(level)) for level in LEVEL_QUANTILES}
    upper = {level: np.full((n, horizon), _z(level)) for level in LEVEL_QUANTILES}
    ratios = {level: np.ones(n) for level in LEVEL_QUANTILES}
    return Calibration(lower, upper, np.zeros(n, dtype=np.int64), False, note, ratios)


def _scale(scaled: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """Return each series' error scale per measured horizon, shrunk towards the batch's."""
    squares = scaled**2
    finite = np.isfinite(squares)
    own = nanmean(squares, axis=1)
    count = np.sum(finite, axis=1)

    pooled_count = np.sum(finite, axis=(0, 1))
    pooled_mean = np.sum(np.where(finite, squares, 0.0), axis=(0, 1)) / np.maximum(pooled_count, 1)
    weight = count / horizons[None, :]
    windows = np.max(weight, axis=0)
    pooled = (windows * pooled_mean + PRIOR_WINDOWS) / (windows + PRIOR_WINDOWS)
    pooled = _carry_forward(np.where(pooled_count > 0, pooled, np.nan))

    mixed = (weight * np.nan_to_num(own) + POOL_WEIGHT * pooled[None, :]) / (weight + POOL_WEIGHT)
    return np.sqrt(np.maximum(mixed, 1e-12))


def _carry_forward(values: np.ndarray) -> np.ndarray:
    """Fill NaN entries with the last finite value before them (or 1 when there is none)."""
    filled = values.copy()
    last = 1.0
    for index, value in enumerate(filled):
        if np.isfinite(value):
            last = value
        else:
            filled[index] = last
    return filled


def _band_quantiles(standardised: np.ndarray, horizons: np.ndarray) -> dict[float, np.ndarray]:
    """Return the pooled quantiles of scaled errors per horizon band, monotone and around 0."""
    probabilities = sorted(q for pair in LEVEL_QUANTILES.values() for q in pair)
    gaussian_q = np.array([NormalDist().inv_cdf(q) for q in probabilities])
    overall = _mixed_quantiles(standardised, probabilities, gaussian_q)

    table = np.empty((len(BANDS), len(probabilities)))
    for index, (first, last) in enumerate(BANDS):
        inside = (horizons >= first) & (horizons <= last)
        sample = standardised[:, :, inside]
        if np.sum(np.isfinite(sample)) >= MIN_BAND_ERRORS:
            table[index] = _mixed_quantiles(sample, probabilities, gaussian_q)
        else:
            table[index] = overall

    low_outer, low_inner, high_inner, high_outer = (table[:, k] for k in range(4))
    low_inner = np.minimum(low_inner, -MIN_QUANTILE_GAP)
    high_inner = np.maximum(high_inner, MIN_QUANTILE_GAP)
    return dict(
        zip(
            probabilities,
            (
                np.minimum(low_outer, low_inner),
                low_inner,
                high_inner,
                np.maximum(high_outer, high_inner),
            ),
            strict=True,
        )
    )


def _mixed_quantiles(
    sample: np.ndarray, probabilities: list[float], gaussian_q: np.ndarray
) -> np.ndarray:
    """Return empirical quantiles mixed with Gaussian ones by the number of series behind them."""
    finite = np.isfinite(sample)
    if not finite.any():
        return gaussian_q
    series = float(np.sum(finite.any(axis=(1, 2))))
    empirical = np.quantile(sample[finite], probabilities)
    return (series * empirical + PRIOR_SERIES * gaussian_q) / (series + PRIOR_SERIES)


def _interpolate(scale: np.ndarray, horizons: np.ndarray, horizon: int) -> np.ndarray:
    """Return the scale on every day 1..horizon, linear between measured horizons."""
    if len(horizons) == 1:
        return np.repeat(scale[:, :1], horizon, axis=1)
    days = np.arange(1, horizon + 1)
    upper = np.clip(np.searchsorted(horizons, days), 1, len(horizons) - 1)
    lower = upper - 1
    span = horizons[upper] - horizons[lower]
    weight = np.clip((days - horizons[lower]) / span, 0.0, 1.0)
    return scale[:, lower] * (1.0 - weight) + scale[:, upper] * weight


def _z(level: int) -> float:
    return NormalDist().inv_cdf(0.5 + level / 200)
