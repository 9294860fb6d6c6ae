"""Lasting level shifts, such as a deployment that adds nodes, and how the history adapts to them.

Detection runs ``kernels.level_shift`` on each series: the largest jump between the medians of
the week before and the week after a day, on the deseasonalised series, net of the trend. A
detected shift either starts the fitted history (when enough days follow it) or moves the
earlier days to the new level, so that the weekly pattern of the longer history still counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from costwarden.forecast import kernels
from costwarden.forecast.candidates import run_in_threads
from costwarden.forecast.options import BatchOptions

WINDOW_DAYS = 7
"""Days on each side of a candidate shift whose medians are compared."""
TRANSITION_DAYS = 2
TRANSITION_PROGRESS = 0.25
"""Days just before a shift that had already moved this share of the way to the new level are
taken as part of the change, not as the old level."""


@dataclass(frozen=True, slots=True, eq=False)
class LevelShifts:
    """Detected shifts: ``columns[i]`` is the first day at the new level, or -1 for none."""

    columns: np.ndarray
    steps: np.ndarray
    scores: np.ndarray
    actions: tuple[str | None, ...]


def detect_level_shifts(
    values: np.ndarray, starts: np.ndarray, options: BatchOptions
) -> LevelShifts:
    """Find at most one lasting level shift per series."""
    n, end = values.shape
    columns = np.full(n, -1, dtype=np.int64)
    steps = np.zeros(n)
    scores = np.zeros(n)

    def work(low: int, high: int) -> None:
        kernels.level_shift_rows(
            values[low:high],
            starts[low:high],
            end,
            WINDOW_DAYS,
            options.change_point_threshold,
            options.change_point_min_relative,
            columns[low:high],
            steps[low:high],
            scores[low:high],
        )

    run_in_threads(n, work)
    for row in np.flatnonzero(columns >= 0):
        columns[row] = refine_boundary(values[row], int(starts[row]), int(columns[row]))
    actions = tuple(None if column < 0 else _action(end - column, options) for column in columns)
    return LevelShifts(columns, steps, scores, actions)


def refine_boundary(y: np.ndarray, start: int, column: int) -> int:
    """Return the first day at the new level near ``column``, day by day.

    The detection compares week-long medians, so on a change that takes a day or two its column
    can land a few days early or late. Within a week of it, the boundary that minimises the
    absolute deviations from the two levels wins. The levels are the medians of the week before
    and the week after the detected column.
    """
    low = max(start + 1, column - WINDOW_DAYS)
    high = min(len(y) - 1, column + WINDOW_DAYS)
    before = float(np.median(y[low - 1 : column]))
    after = float(np.median(y[column : high + 1]))
    best, best_cost = column, np.inf
    for candidate in range(low, high + 1):
        cost = float(
            np.sum(np.abs(y[low - 1 : candidate] - before))
            + np.sum(np.abs(y[candidate : high + 1] - after))
        )
        if cost < best_cost:
            best, best_cost = candidate, cost
    return best


def apply_level_shifts(
    values: np.ndarray, starts: np.ndarray, shifts: LevelShifts
) -> tuple[np.ndarray, np.ndarray]:
    """Return the values and start columns to fit after the detected shifts.

    A series with enough days after its shift starts there. Otherwise the days before the shift
    get the step added, so they continue at the new level. Other series are unchanged.
    """
    adjusted = values.copy()
    new_starts = starts.copy()
    for row in np.flatnonzero(shifts.columns >= 0):
        column = int(shifts.columns[row])
        if shifts.actions[row] == "fit-after":
            new_starts[row] = column
        else:
            adjusted[row, starts[row] : column] += shifts.steps[row]
            _settle_transition(adjusted[row], values[row], int(starts[row]), column)
    return adjusted, new_starts


def _settle_transition(adjusted: np.ndarray, y: np.ndarray, start: int, column: int) -> None:
    """Replace shifted days that were already on their way to the new level with that level.

    A change that takes a day or two leaves days between the two levels just before the
    boundary. Moved by the full step, they would overshoot the new level.
    """
    after = float(np.median(y[column : column + WINDOW_DAYS]))
    before = float(np.median(y[max(start, column - WINDOW_DAYS) : column]))
    gap = after - before
    if gap == 0.0:
        return
    for day in range(max(start, column - TRANSITION_DAYS), column):
        progress = (y[day] - before) / gap
        if progress > TRANSITION_PROGRESS:
            adjusted[day] = after


def shift_params(shifts: LevelShifts, row: int, first_day: date) -> dict[str, object] | None:
    """Return the audit record of a series' shift, or None; ``first_day`` is column 0's day."""
    column = int(shifts.columns[row])
    if column < 0:
        return None
    return {
        "date": (first_day + timedelta(days=column)).isoformat(),
        "step": round(float(shifts.steps[row]), 6),
        "noise_scales": round(float(shifts.scores[row]), 2),
        "action": shifts.actions[row],
    }


def _action(days_after: int, options: BatchOptions) -> str:
    return "fit-after" if days_after >= options.change_point_min_days else "shift-earlier-days"
