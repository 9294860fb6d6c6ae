"""Forecast accuracy metrics: MASE, sMAPE, interval coverage, Brier score and reliability.

The functions take plain NumPy arrays so that they can be checked on hand-made inputs. Undefined
values (a MASE whose scale is 0, a reliability bin without events) are ``None``, never NaN, so
that they survive JSON output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SEASON_LENGTH = 7
"""Season of the naive forecast that scales MASE: one week of daily data."""

INTERVAL_TOLERANCE = 1e-9
"""Relative slack of the interval bounds in coverage counts, for floating-point rounding."""


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Events whose predicted probability fell in ``[lower, upper)``; the last bin includes 1."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_frequency: float | None


def seasonal_naive_scale(history: np.ndarray, season: int = SEASON_LENGTH) -> float | None:
    """Return the in-sample MAE of the seasonal naive forecast ``y[t] = y[t - season]``.

    Returns None when the history is too short to hold one seasonal difference.
    """
    y = np.asarray(history, dtype=np.float64)
    if len(y) <= season:
        return None
    return float(np.mean(np.abs(y[season:] - y[:-season])))


def mase(actual: np.ndarray, forecast: np.ndarray, scale: float | None) -> float | None:
    """Return the mean absolute error of ``forecast`` divided by ``scale``.

    MASE is undefined, and None is returned, when the scale is missing or 0. A series that repeats
    itself exactly every week has no naive error to compare with.
    """
    if scale is None or scale <= 0:
        return None
    error = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64))
    return float(np.mean(error) / scale)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Return the symmetric mean absolute percentage error in percent, between 0 and 200.

    A day where both the actual and the forecast are 0 has an error of 0.
    """
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    denominator = np.abs(a) + np.abs(f)
    ratio = np.zeros_like(denominator)
    np.divide(2.0 * np.abs(f - a), denominator, out=ratio, where=denominator > 0)
    return float(100.0 * np.mean(ratio))


def inside_interval(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> int:
    """Return how many actual values lie inside their closed interval ``[lower, upper]``.

    The bounds are widened by ``INTERVAL_TOLERANCE`` relative to the value, so that a zero-width
    interval around an exactly forecast constant still counts as a hit despite rounding.
    """
    a = np.asarray(actual, dtype=np.float64)
    slack = INTERVAL_TOLERANCE * np.maximum(np.abs(a), 1.0)
    return int(np.count_nonzero((a >= lower - slack) & (a <= upper + slack)))


def brier_score(probabilities: Sequence[float], outcomes: Sequence[bool]) -> float | None:
    """Return the mean squared difference between predicted probabilities and 0/1 outcomes."""
    p, o = _checked_events(probabilities, outcomes)
    if len(p) == 0:
        return None
    return float(np.mean((p - o) ** 2))


def reliability_table(
    probabilities: Sequence[float], outcomes: Sequence[bool], bins: int = 10
) -> list[ReliabilityBin]:
    """Group events into ``bins`` equal-width probability bins and compare with what happened.

    Each bin reports how many events it contains, their mean predicted probability and the fraction
    that occurred. A well-calibrated forecaster has the two close in every bin.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    p, o = _checked_events(probabilities, outcomes)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)

    table = []
    for position in range(bins):
        members = index == position
        count = int(np.count_nonzero(members))
        table.append(
            ReliabilityBin(
                lower=float(edges[position]),
                upper=float(edges[position + 1]),
                count=count,
                mean_predicted=float(np.mean(p[members])) if count else None,
                observed_frequency=float(np.mean(o[members])) if count else None,
            )
        )
    return table


def straight_line_total(spent_to_date: float, days_elapsed: int, days_in_period: int) -> float:
    """Project a period total by extending the month-to-date daily average to the whole period.

    This run-rate projection is the baseline: spent ÷ days elapsed × days in the period.
    """
    if days_elapsed < 1:
        raise ValueError(f"days_elapsed must be at least 1, got {days_elapsed}")
    return spent_to_date / days_elapsed * days_in_period


def _checked_events(
    probabilities: Sequence[float], outcomes: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, dtype=np.float64)
    o = np.asarray(outcomes, dtype=np.float64)
    if p.shape != o.shape or p.ndim != 1:
        raise ValueError(
            f"probabilities and outcomes must be 1-D and of equal length, got {p.shape} and "
            f"{o.shape}"
        )
    if p.size and (np.any(p < 0) or np.any(p > 1) or not np.all(np.isfinite(p))):
        raise ValueError("probabilities must lie between 0 and 1")
    return p, o
