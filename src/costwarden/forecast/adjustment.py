"""Interval adjustment fitted on backtest residuals (split conformal prediction).

The calibration inside ``forecast_batch`` uses only the last weeks of each series. A backtest
covers many origins, and on cost data it shows where the intervals still miss: growth and upward
jumps put more actual days above the upper bound than below the lower one. An ``IntervalAdjustment``
corrects that with one factor per level, side and band of horizons. The factor scales the distance
from the mean to the bound.

A factor is the conformal quantile of the ratios ``(actual - mean) / (upper - mean)`` for the
upper side, and ``(mean - actual) / (mean - lower)`` for the lower side, over the backtest's
forecast days. With ``n`` ratios, the factor for an upper bound at probability ``p`` is the
``ceil((n + 1) p)``-th smallest, so that a new day exchangeable with those would fall below the
adjusted bound with probability at least ``p``.

Days of one origin share their shocks, so the ratios are not independent. Factors are therefore
kept within ``[MIN_FACTOR, MAX_FACTOR]``, and the backtest reports the effect by leaving one origin
out at a time (``cross_validated``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

LEVELS = (80, 95)
BANDS: tuple[tuple[int, int], ...] = ((1, 7), (8, 14), (15, 10_000))
"""Bands of horizons (first and last day ahead) that share a factor."""

MIN_FACTOR = 0.5
MAX_FACTOR = 3.0
MIN_RATIOS = 50
"""A band and side with fewer usable days keeps the factor 1."""

Side = Literal["lower", "upper"]


class AdjustmentFactor(BaseModel):
    """The factor of one level, side and band of horizons, and the days behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: int
    side: Side
    first_day: int = Field(ge=1)
    last_day: int = Field(ge=1)
    factor: float = Field(ge=MIN_FACTOR, le=MAX_FACTOR)
    days: int = Field(ge=0)


class IntervalAdjustment(BaseModel):
    """Factors that widen or narrow forecast intervals, fitted on a backtest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    factors: tuple[AdjustmentFactor, ...]
    origins: int = Field(ge=0, description="Backtest origins whose forecasts gave the ratios.")
    forecasts: int = Field(ge=0, description="Forecasts whose days gave the ratios.")
    history_end: date | None = Field(None, description="Last day of the backtested history.")

    def factor(self, level: int, side: Side, day: int) -> float:
        """Return the factor for a forecast ``day`` days ahead (1 is tomorrow), 1 if none."""
        for item in self.factors:
            if item.level == level and item.side == side and item.first_day <= day <= item.last_day:
                return item.factor
        return 1.0

    def factor_rows(self, level: int, side: Side, horizon: int) -> np.ndarray:
        """Return the factor of each day 1..horizon."""
        return np.array([self.factor(level, side, day) for day in range(1, horizon + 1)])

    def audit(self) -> dict[str, object]:
        """Return the record kept in a forecast's params."""
        return {
            "origins": self.origins,
            "forecasts": self.forecasts,
            "history_end": self.history_end.isoformat() if self.history_end else None,
            "factors": {
                f"{item.level}_{item.side}_{item.first_day}-{item.last_day}": round(item.factor, 4)
                for item in self.factors
            },
        }


@dataclass(frozen=True, slots=True, eq=False)
class ResidualForecast:
    """One backtest forecast: its mean and bounds per day, the actual values and its origin."""

    origin: date
    actual: np.ndarray
    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]


def apply_adjustment(
    mean: np.ndarray,
    lower: dict[int, np.ndarray],
    upper: dict[int, np.ndarray],
    adjustment: IntervalAdjustment,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Return the bounds with each distance from the mean scaled by its factor.

    Arrays have shape (series, horizon) or (horizon,). The 95% bounds are kept at least as wide as
    the 80% ones.
    """
    horizon = mean.shape[-1]
    new_lower: dict[int, np.ndarray] = {}
    new_upper: dict[int, np.ndarray] = {}
    for level in sorted(lower):
        new_lower[level] = mean - (mean - lower[level]) * adjustment.factor_rows(
            level, "lower", horizon
        )
        new_upper[level] = mean + (upper[level] - mean) * adjustment.factor_rows(
            level, "upper", horizon
        )
    for inner, outer in zip(sorted(lower), sorted(lower)[1:], strict=False):
        new_lower[outer] = np.minimum(new_lower[outer], new_lower[inner])
        new_upper[outer] = np.maximum(new_upper[outer], new_upper[inner])
    return new_lower, new_upper


def fit_adjustment(
    forecasts: Sequence[ResidualForecast], history_end: date | None = None
) -> IntervalAdjustment:
    """Fit the factors on the days of ``forecasts``."""
    factors = []
    for level in LEVELS:
        probability = 1.0 - (1.0 - level / 100.0) / 2.0
        for side in ("lower", "upper"):
            ratios, days = _ratios(forecasts, level, side)
            for first, last in BANDS:
                inside = ratios[(days >= first) & (days <= last)]
                factors.append(
                    AdjustmentFactor(
                        level=level,
                        side=side,
                        first_day=first,
                        last_day=last,
                        factor=_conformal_factor(inside, probability),
                        days=len(inside),
                    )
                )
    return IntervalAdjustment(
        factors=tuple(factors),
        origins=len({item.origin for item in forecasts}),
        forecasts=len(forecasts),
        history_end=history_end,
    )


def cross_validated(
    forecasts: Sequence[ResidualForecast],
) -> list[tuple[dict[int, np.ndarray], dict[int, np.ndarray]]]:
    """Return each forecast's bounds adjusted by factors fitted on the other origins only.

    The (lower, upper) pairs come in input order. A single origin has no other to learn from, so
    its forecasts keep their bounds.
    """
    adjustments = {}
    for origin in {item.origin for item in forecasts}:
        others = [item for item in forecasts if item.origin != origin]
        adjustments[origin] = fit_adjustment(others) if others else None

    adjusted = []
    for item in forecasts:
        adjustment = adjustments[item.origin]
        if adjustment is None:
            adjusted.append((item.lower, item.upper))
        else:
            adjusted.append(apply_adjustment(item.mean, item.lower, item.upper, adjustment))
    return adjusted


def _ratios(
    forecasts: Iterable[ResidualForecast], level: int, side: Side
) -> tuple[np.ndarray, np.ndarray]:
    """Return the ratio of each forecast day and its day ahead, for days with a nonzero width."""
    ratios = []
    days = []
    for item in forecasts:
        count = min(len(item.actual), len(item.mean))
        mean = item.mean[:count]
        actual = item.actual[:count]
        if side == "upper":
            width = item.upper[level][:count] - mean
            excess = actual - mean
        else:
            width = mean - item.lower[level][:count]
            excess = mean - actual
        usable = width > 1e-9 * np.maximum(np.abs(mean), 1.0)
        ratios.append(excess[usable] / width[usable])
        days.append(np.arange(1, count + 1)[usable])
    if not ratios:
        return np.empty(0), np.empty(0, dtype=np.int64)
    return np.concatenate(ratios), np.concatenate(days)


def _conformal_factor(ratios: np.ndarray, probability: float) -> float:
    """Return the conformal quantile of ``ratios`` at ``probability``, within the factor limits."""
    if len(ratios) < MIN_RATIOS:
        return 1.0

    rank = math.ceil((len(ratios) + 1) * probability)
    value = float(np.sort(ratios)[min(rank, len(ratios)) - 1])
    return float(np.clip(value, MIN_FACTOR, MAX_FACTOR))
