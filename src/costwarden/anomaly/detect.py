"""Find anomalous runs of days in many daily cost series at once.

A day opens an anomaly when it rises above its one-day-ahead baseline by at least
``z_threshold`` noise scales, by at least ``min_impact`` in money and by at least
``min_percent`` of the expected value. All three must hold, so a noisy small scope does not
alert on cents and a large steady scope does not alert on its usual wobble.

The day before an opening day joins the run when it passes the continuing rule below against
its own baseline, which catches the partial first day of a change made late in a day. From the
first anomalous day, the baseline is frozen: later days are compared with the level,
trend and weekday pattern fitted before the anomaly began, so a new normal keeps being measured
against the old one. The anomaly goes on while days stay ``continue_z`` scales and half the
minimum impact and percentage above that frozen baseline, allowing one ordinary day inside it.
A run of at least ``level_shift_min_days`` days is a level shift (a new normal), a shorter one
a spike (one-off). A run that reaches the last checked day is ongoing, any other resolved.

Only rises are reported: a drop in spend does not page anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from costwarden.anomaly.baseline import Baselines, fit_baselines
from costwarden.config import AnomalySettings

MAX_GAP_DAYS = 1
"""Ordinary days allowed inside a run, such as one weekend day of a weekday-only workload."""
MAX_BACK_DAYS = 1
"""Days before the opening day that may join a run when they pass the continuing rule."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The detection rule, in the units of the series."""

    z_threshold: float
    continue_z: float
    min_impact: float
    min_percent: float
    level_shift_min_days: int

    @classmethod
    def from_settings(cls, settings: AnomalySettings) -> Thresholds:
        return cls(
            z_threshold=settings.z_threshold,
            continue_z=settings.continue_z,
            min_impact=float(settings.min_impact_per_day),
            min_percent=settings.min_percent,
            level_shift_min_days=settings.level_shift_min_days,
        )


@dataclass(frozen=True, eq=False)
class Run:
    """An anomalous run of one series: columns ``start`` to ``end`` of the panel, inclusive.

    The arrays have one entry per day of the run: the expected value from the baseline frozen
    at ``start``, the actual value, the noise scale and the robust z-score.
    """

    row: int
    start: int
    end: int
    kind: str
    ongoing: bool
    expected: np.ndarray
    actual: np.ndarray
    sigma: np.ndarray
    z: np.ndarray

    @property
    def excess(self) -> np.ndarray:
        return self.actual - self.expected

    @property
    def days(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, eq=False)
class Detection:
    """Runs found in a panel, with the counts that describe how much was checked."""

    runs: tuple[Run, ...]
    baselines: Baselines
    checked_rows: int
    scope_days: int


def detect_runs(
    values: np.ndarray,
    first: int,
    thresholds: Thresholds,
    *,
    baseline_days: int,
    season_weeks: int,
    min_history_days: int,
    scale_floor: float,
) -> Detection:
    """Return the anomalous runs of every row of ``values`` among the columns from ``first`` on."""
    baselines = fit_baselines(
        values,
        first,
        baseline_days=baseline_days,
        season_weeks=season_weeks,
        min_days=min_history_days,
        scale_floor=scale_floor,
    )
    actual = values[:, first:]
    expected, sigma = baselines.one_day_ahead()
    opens = _opening_days(actual, expected, sigma, baselines.valid, thresholds)

    runs: list[Run] = []
    for row in np.flatnonzero(opens.any(axis=1)):
        runs.extend(_runs_of_row(int(row), values, first, baselines, opens[row], thresholds))
    checked = baselines.valid.any(axis=1)
    return Detection(tuple(runs), baselines, int(checked.sum()), int(baselines.valid.sum()))


def _opening_days(
    actual: np.ndarray,
    expected: np.ndarray,
    sigma: np.ndarray,
    valid: np.ndarray,
    thresholds: Thresholds,
) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = actual - expected
        z = excess / sigma
        opens = (
            valid
            & np.isfinite(actual)
            & (z >= thresholds.z_threshold)
            & (excess >= thresholds.min_impact)
            & (excess >= thresholds.min_percent * expected)
        )
    return opens


def _runs_of_row(
    row: int,
    values: np.ndarray,
    first: int,
    baselines: Baselines,
    opens: np.ndarray,
    thresholds: Thresholds,
) -> list[Run]:
    runs = []
    days = len(opens)
    start = _next_open(opens, 0)
    floor = 0
    while start is not None:
        start = _extend_back(row, values, first, baselines, start, floor, thresholds)
        run = _grow_run(row, values, first, baselines, start, thresholds)
        floor = run.end - first + 1
        runs.append(run)
        start = _next_open(opens, run.end - first + 1)
        if start is not None and start >= days:
            start = None
    return runs


def _extend_back(
    row: int,
    values: np.ndarray,
    first: int,
    baselines: Baselines,
    start: int,
    floor: int,
    thresholds: Thresholds,
) -> int:
    """Move the opening day back over days that are above their own baseline by the continuing
    rule, at most ``MAX_BACK_DAYS``: the partial first day of a change that began late in a day."""
    for _ in range(MAX_BACK_DAYS):
        before = start - 1
        if before < floor or not baselines.valid[row, before]:
            break
        index = np.array([row])
        origin = np.array([before])
        zero = np.array([0])
        expected = float(baselines.expected(index, origin, zero)[0])
        sigma = float(baselines.sigma(index, origin, zero)[0])
        excess = float(values[row, first + before]) - expected
        if not _continues(excess, excess / sigma, expected, thresholds):
            break
        start = before
    return start


def _continues(excess: float, z: float, expected: float, thresholds: Thresholds) -> bool:
    return (
        z >= thresholds.continue_z
        and excess >= 0.5 * thresholds.min_impact
        and excess >= 0.5 * thresholds.min_percent * expected
    )


def _next_open(opens: np.ndarray, after: int) -> int | None:
    found = np.flatnonzero(opens[after:])
    return None if not found.size else int(after + found[0])


def _grow_run(
    row: int,
    values: np.ndarray,
    first: int,
    baselines: Baselines,
    origin: int,
    thresholds: Thresholds,
) -> Run:
    """Extend a run from its opening day while days stay above the frozen baseline."""
    days = values.shape[1] - first
    ahead = np.arange(days - origin)
    rows = np.full(len(ahead), row)
    origins = np.full(len(ahead), origin)
    expected = baselines.expected(rows, origins, ahead)
    sigma = baselines.sigma(rows, origins, ahead)
    actual = values[row, first + origin :]
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = actual - expected
        z = excess / sigma
        above = (
            (z >= thresholds.continue_z)
            & (excess >= 0.5 * thresholds.min_impact)
            & (excess >= 0.5 * thresholds.min_percent * expected)
        )

    length = _run_length(np.nan_to_num(above, nan=0.0).astype(bool))
    end = origin + length - 1
    kind = "level_shift" if length >= thresholds.level_shift_min_days else "spike"
    return Run(
        row=row,
        start=first + origin,
        end=first + end,
        kind=kind,
        ongoing=end == days - 1,
        expected=expected[:length],
        actual=actual[:length],
        sigma=sigma[:length],
        z=z[:length],
    )


def _run_length(above: np.ndarray) -> int:
    """Return the length of the run from day 0, allowing ``MAX_GAP_DAYS`` ordinary days inside."""
    length = 1
    gap = 0
    for index in range(1, len(above)):
        if above[index]:
            length = index + 1
            gap = 0
            continue
        gap += 1
        if gap > MAX_GAP_DAYS:
            break
    return length


def money_per_day(values: np.ndarray) -> Decimal:
    """Return the mean of a float array as a Decimal rounded to 10 places, the store's scale."""
    return money(float(np.mean(values)))


def money(value: float) -> Decimal:
    """Return a float amount as a Decimal rounded to 10 places, the store's scale."""
    return Decimal(str(round(value, 10)))
