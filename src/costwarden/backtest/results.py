"""Typed backtest results: what each origin produced, and the summaries computed from it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from costwarden.backtest.metrics import (
    ReliabilityBin,
    brier_score,
    inside_interval,
    mase,
    smape,
)
from costwarden.backtest.series import ScopeSeries
from costwarden.domain.forecast import DailyForecast
from costwarden.forecast.adjustment import IntervalAdjustment


@dataclass(frozen=True, slots=True, eq=False)
class OriginForecast:
    """One scope's forecast from one rolling origin, next to what was actually spent.

    ``days`` and ``actual`` cover the longest horizon. ``scale`` is the seasonal naive MAE of the
    fitted window, None when that window is shorter than eight days. ``raw`` contains the
    uncalibrated intervals when the forecaster produced them. ``adjusted`` contains the intervals
    after the backtest adjustment fitted on the other origins (see ``forecast.adjustment``).
    """

    scope: str
    origin: date
    actual: np.ndarray
    days: DailyForecast
    scale: float | None
    model: str
    raw: DailyForecast | None = None
    adjusted: DailyForecast | None = None

    def mase(self, horizon: int) -> float | None:
        return mase(self.actual[:horizon], self.days.mean[:horizon], self.scale)

    def smape(self, horizon: int) -> float:
        return smape(self.actual[:horizon], self.days.mean[:horizon])

    def inside(
        self, horizon: int, level: int, *, raw: bool = False, adjusted: bool = False
    ) -> int:
        """Return how many of the first ``horizon`` days fell inside the ``level``% interval."""
        days = self.days
        if raw:
            days = self.raw
        elif adjusted:
            days = self.adjusted
        assert days is not None
        lower, upper = (days.lo80, days.hi80) if level == 80 else (days.lo95, days.hi95)
        return inside_interval(self.actual[:horizon], lower[:horizon], upper[:horizon])


@dataclass(frozen=True, slots=True)
class ExceedanceEvent:
    """One budget question asked at a mid-month origin: will the month total exceed ``budget``?

    ``budget`` is ``level`` times the previous month's actual total. ``probability`` is the
    forecaster's estimate. ``baseline`` is 1 when the straight-line month-to-date projection exceeds
    the budget and 0 otherwise. ``observed`` is True when the actual month total exceeded it.
    """

    scope: str
    origin: date
    period_start: date
    period_end: date
    level: float
    budget: float
    spent_to_date: float
    actual_total: float
    probability: float
    baseline: float
    observed: bool


@dataclass(frozen=True, slots=True)
class Skip:
    """A scope left out at one origin, and why."""

    scope: str
    origin: date | None
    purpose: str
    reason: str


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Point and interval accuracy over a set of forecasts.

    ``mase`` and ``smape`` (in percent) are means over forecasts. Coverage is the fraction of all
    evaluated days whose actual value fell inside the interval. The ``_raw`` figures are the
    coverage of the uncalibrated intervals, None when the forecaster does not produce them. The
    ``_adjusted`` figures are the coverage after the backtest adjustment, each origin adjusted by
    factors fitted on the other origins only.
    """

    forecasts: int
    days: int
    mase: float | None
    mase_defined: int
    smape: float | None
    coverage_80: float | None
    coverage_95: float | None
    coverage_80_raw: float | None = None
    coverage_95_raw: float | None = None
    coverage_80_adjusted: float | None = None
    coverage_95_adjusted: float | None = None


@dataclass(frozen=True, slots=True)
class ProbabilityScore:
    """Brier scores of the forecaster and of the straight-line baseline over a set of events."""

    events: int
    brier: float | None
    baseline_brier: float | None


@dataclass(frozen=True, slots=True)
class ScopeReport:
    """The results of one scope: over all horizons, per horizon, and for exceedance events."""

    name: str
    spend: float
    currency: str | None
    accuracy: Accuracy
    by_horizon: dict[int, Accuracy]
    exceedance: ProbabilityScore
    skipped: int


@dataclass(frozen=True, slots=True, eq=False)
class BacktestResult:
    """Everything a backtest run measured, with the inputs needed to plot it.

    ``forecasts_made`` counts every forecast computed, at rolling and at mid-month origins, and
    ``calibrated_forecasts`` those whose intervals the forecaster recorded as calibrated.
    """

    source: str
    scope_kind: str
    history_start: date
    history_end: date
    horizons: tuple[int, ...]
    origins: tuple[date, ...]
    event_origins: tuple[date, ...]
    levels: tuple[float, ...]
    overall: Accuracy
    by_horizon: dict[int, Accuracy]
    exceedance: ProbabilityScore
    by_level: dict[float, ProbabilityScore]
    reliability: list[ReliabilityBin]
    scopes: list[ScopeReport]
    skipped: list[Skip]
    forecasts: list[OriginForecast]
    events: list[ExceedanceEvent]
    series: dict[str, ScopeSeries]
    forecasts_made: int
    calibrated_forecasts: int
    without_data: list[str]
    adjustment: IntervalAdjustment | None = None


def summarize_accuracy(cells: Sequence[OriginForecast], horizons: Iterable[int]) -> Accuracy:
    """Summarise forecasts at each of ``horizons``; every (forecast, horizon) pair counts once."""
    horizons = tuple(horizons)
    mase_values: list[float] = []
    smape_values: list[float] = []
    days = inside80 = inside95 = 0
    raw80 = raw95 = adjusted80 = adjusted95 = 0
    raw_complete = bool(cells) and all(cell.raw is not None for cell in cells)
    adjusted_complete = bool(cells) and all(cell.adjusted is not None for cell in cells)

    for cell in cells:
        for horizon in horizons:
            value = cell.mase(horizon)
            if value is not None:
                mase_values.append(value)
            smape_values.append(cell.smape(horizon))
            days += horizon
            inside80 += cell.inside(horizon, 80)
            inside95 += cell.inside(horizon, 95)
            if raw_complete:
                raw80 += cell.inside(horizon, 80, raw=True)
                raw95 += cell.inside(horizon, 95, raw=True)
            if adjusted_complete:
                adjusted80 += cell.inside(horizon, 80, adjusted=True)
                adjusted95 += cell.inside(horizon, 95, adjusted=True)

    return Accuracy(
        forecasts=len(cells),
        days=days,
        mase=_mean(mase_values),
        mase_defined=len(mase_values),
        smape=_mean(smape_values),
        coverage_80=inside80 / days if days else None,
        coverage_95=inside95 / days if days else None,
        coverage_80_raw=raw80 / days if days and raw_complete else None,
        coverage_95_raw=raw95 / days if days and raw_complete else None,
        coverage_80_adjusted=adjusted80 / days if days and adjusted_complete else None,
        coverage_95_adjusted=adjusted95 / days if days and adjusted_complete else None,
    )


def summarize_events(events: Sequence[ExceedanceEvent]) -> ProbabilityScore:
    outcomes = [event.observed for event in events]
    return ProbabilityScore(
        events=len(events),
        brier=brier_score([event.probability for event in events], outcomes),
        baseline_brier=brier_score([event.baseline for event in events], outcomes),
    )


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
