"""Model selection per series by the error on held-out recent days (rolling-origin folds).

Fold ``f`` fits every candidate without the last ``f * k`` days of a series and forecasts the
``k`` days after its training range. A candidate's score on a fold is the mean absolute scaled
error (MASE): the mean absolute error on those ``k`` days divided by the in-sample mean absolute
error of the seasonal naive forecast (last week's same weekday). The series' score is the mean
over its folds, and the lowest score wins; on equal scores the earlier candidate does.

The folds' forecasts are out of sample, so their errors also calibrate the intervals
(``fold_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costwarden.forecast.arrays import nanmean
from costwarden.forecast.candidates import BATCH_MODELS, FittedBatch, fit_models
from costwarden.forecast.kernels import SEASON
from costwarden.forecast.options import BatchOptions

MIN_HOLDOUT_DAYS = 7
RELATIVE_SD_FLOOR = 1e-6
"""Smallest sd an error is divided by, as a share of the actual value."""

MAX_SCALED_ERROR = 20.0
"""Scaled errors are clipped to this size, so that one broken series cannot widen the
intervals of the whole batch through the pooled scale."""
MIN_TRAINING_DAYS = 14
"""Training days a fold after the first needs; the first fold always runs."""


@dataclass(frozen=True, slots=True, eq=False)
class Fold:
    """One rolling origin: each series' training end, holdout length, and the fitted candidates.

    ``active[i]`` is False where the series is too short for this fold.
    """

    ends: np.ndarray
    holdout: np.ndarray
    active: np.ndarray
    fitted: dict[str, FittedBatch]


@dataclass(frozen=True, slots=True, eq=False)
class Selection:
    """The chosen candidate of each series and every candidate's mean holdout score."""

    candidates: tuple[str, ...]
    chosen: np.ndarray
    scores: np.ndarray
    holdout_days: np.ndarray
    folds: np.ndarray
    margin: float

    def params(self, row: int) -> dict[str, object]:
        """Return the audit record of one series' choice, with a one-line reason."""
        aliases = candidate_aliases(self.candidates)
        scores = {
            alias: round(float(score), 4)
            for alias, score in zip(aliases, self.scores[row], strict=True)
        }
        chosen = int(self.chosen[row])
        best = int(np.argmin(self.scores[row]))
        score = float(self.scores[row, chosen])
        if len(self.candidates) == 1:
            reason = f"{aliases[chosen]}: the only candidate, holdout MASE {score:.2f}"
        elif chosen == best:
            reason = (
                f"{aliases[chosen]}: lowest holdout MASE {score:.2f} "
                f"of {len(self.candidates)} candidates"
            )
        else:
            reason = (
                f"{aliases[chosen]}: first choice, holdout MASE {score:.2f}; the lowest, "
                f"{aliases[best]} {self.scores[row, best]:.2f}, is within the "
                f"{self.margin:.0%} margin"
            )
        return {
            "holdout_days": int(self.holdout_days[row]),
            "folds": int(self.folds[row]),
            "scores": scores,
            "reason": reason,
        }


def candidate_aliases(candidates: tuple[str, ...]) -> list[str]:
    return [BATCH_MODELS.spec(name).factory.alias for name in candidates]


def holdout_lengths(lengths: np.ndarray, holdout_days: int) -> np.ndarray:
    """Return each series' holdout: ``holdout_days``, or a quarter of a short series (min 7)."""
    return np.minimum(holdout_days, np.maximum(MIN_HOLDOUT_DAYS, lengths // 4))


def run_folds(values: np.ndarray, starts: np.ndarray, options: BatchOptions) -> list[Fold]:
    """Fit every candidate on the training range of each fold."""
    end = values.shape[1]
    holdout = holdout_lengths(end - starts, options.holdout_days)
    folds = []
    for number in range(1, options.holdout_folds + 1):
        ends = end - number * holdout
        active = (ends - starts >= MIN_TRAINING_DAYS) | (number == 1)
        if not active.any():
            break
        ends = np.where(active, ends, end - holdout)
        fitted = fit_models(options.candidates, values, starts, ends, options.model_options)
        folds.append(Fold(ends, holdout, active, fitted))
    return folds


def select_models(
    values: np.ndarray, starts: np.ndarray, folds: list[Fold], margin: float = 0.0
) -> Selection:
    """Score every candidate on each fold and pick the lowest mean MASE per series.

    The first candidate is kept unless another one scores lower by more than ``margin`` times
    its score: a short holdout ranks close candidates by chance.
    """
    candidates = tuple(folds[0].fitted)
    n = len(values)
    totals = np.zeros((n, len(candidates)))
    counts = np.zeros(n)
    for fold in folds:
        scores = _fold_scores(values, starts, fold)
        totals[fold.active] += scores[fold.active]
        counts += fold.active

    scores = totals / counts[:, None]
    best = np.argmin(scores, axis=1)
    clear = scores[np.arange(n), best] < (1.0 - margin) * scores[:, 0]
    chosen = np.where(clear, best, 0)
    return Selection(candidates, chosen, scores, folds[0].holdout, counts.astype(np.int64), margin)


def chosen_rows(selection: Selection) -> dict[str, np.ndarray]:
    """Return the rows that chose each candidate, for candidates chosen at least once."""
    return {
        name: np.flatnonzero(selection.chosen == index)
        for index, name in enumerate(selection.candidates)
        if np.any(selection.chosen == index)
    }


def fold_errors(
    values: np.ndarray,
    folds: list[Fold],
    selection: Selection,
    horizons: np.ndarray,
    weekday_ratios: np.ndarray,
) -> np.ndarray:
    """Return the out-of-sample errors of each series' chosen model, scaled by its sd.

    The sd is the fold model's at the horizon times ``weekday_ratios[i, target % 7]``.

    The origins of a fold are the last training day and the holdout days after it except the
    last, and a target may lie anywhere up to the end of the history. The result has shape
    (series, folds * longest holdout, horizons), NaN where no error exists.
    """
    n, end = values.shape
    width = int(folds[0].holdout.max())
    scaled = np.full((n, len(folds) * width, len(horizons)), np.nan)
    offsets = np.arange(width)
    for number, fold in enumerate(folds):
        first = int(fold.ends[fold.active].min()) - 1
        origins = fold.ends[:, None] - 1 + offsets[None, :]
        in_window = (offsets[None, :] < fold.holdout[:, None]) & fold.active[:, None]
        targets = origins[:, :, None] + horizons[None, None, :]
        actual = values[np.arange(n)[:, None, None], np.minimum(targets, end - 1)]
        usable = in_window[:, :, None] & (targets < end)

        for name, rows in chosen_rows(selection).items():
            fitted = fold.fitted[name]
            forecasts = fitted.origin_forecasts(first, horizons)
            _, sd = fitted.forecast(int(horizons.max()))
            index = np.clip(origins[rows] - first, 0, forecasts.shape[1] - 1)
            predicted = np.take_along_axis(forecasts[rows], index[:, :, None], axis=1)
            errors = actual[rows] - predicted
            weekday = np.take_along_axis(
                weekday_ratios[rows], (targets[rows] % SEASON).reshape(len(rows), -1), axis=1
            ).reshape(targets[rows].shape)
            spread = sd[rows][:, horizons - 1][:, None, :] * weekday
            # A constant series has an sd of 0 and errors of rounding size; the floor keeps
            # their ratio near 0 instead of huge.
            spread = np.maximum(spread, RELATIVE_SD_FLOOR * np.abs(actual[rows]) + 1e-12)
            ratio = np.clip(errors / spread, -MAX_SCALED_ERROR, MAX_SCALED_ERROR)
            block = slice(number * width, (number + 1) * width)
            scaled[rows, block] = np.where(usable[rows], ratio, np.nan)
    return scaled


def _fold_scores(values: np.ndarray, starts: np.ndarray, fold: Fold) -> np.ndarray:
    """Return every candidate's MASE on the fold, shape (series, candidates)."""
    end = values.shape[1]
    longest = int(fold.holdout.max())
    steps = np.arange(longest)
    columns = np.minimum(fold.ends[:, None] + steps[None, :], end - 1)
    actual = np.take_along_axis(values, columns, axis=1)
    inside = steps[None, :] < fold.holdout[:, None]
    scale = _naive_scale(values, starts, fold.ends)

    scores = np.empty((len(values), len(fold.fitted)))
    for index, fitted in enumerate(fold.fitted.values()):
        mean, _ = fitted.forecast(longest)
        error = np.where(inside, np.abs(actual - mean), np.nan)
        scores[:, index] = nanmean(error, axis=1) / scale
    return scores


def _naive_scale(values: np.ndarray, starts: np.ndarray, train_ends: np.ndarray) -> np.ndarray:
    """Return the in-sample MAE of the seasonal naive forecast on each training range.

    A range of a week or less uses the one-day naive forecast instead. A constant series has
    no error to scale by, so a tiny share of its level is used instead, and any error then
    counts as large.
    """
    columns = np.arange(values.shape[1])[None, :]
    in_train = (columns >= starts[:, None]) & (columns < train_ends[:, None])
    scales = np.zeros(len(values))
    for lag in (SEASON, 1):
        rows = (train_ends - starts > SEASON) == (lag == SEASON)
        if not rows.any():
            continue
        changes = np.full(values.shape, np.nan)
        changes[:, lag:] = np.abs(values[:, lag:] - values[:, :-lag])
        valid = in_train.copy()
        valid[:, lag:] &= in_train[:, :-lag]
        valid[:, :lag] = False
        scales[rows] = nanmean(np.where(valid, changes, np.nan)[rows], axis=1)

    level = nanmean(np.where(in_train, np.abs(values), np.nan), axis=1)
    floor = np.maximum(1e-6 * np.nan_to_num(level), 1e-12)
    return np.maximum(np.nan_to_num(scales), floor)
