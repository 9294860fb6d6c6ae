"""Forecast results and the budget exceedance derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class DailyForecast:
    """Per-day forecast of spend: the mean and the 80% and 95% prediction intervals.

    Every array has one element per date in ``dates``.
    """

    dates: tuple[date, ...]
    mean: np.ndarray
    lo80: np.ndarray
    hi80: np.ndarray
    lo95: np.ndarray
    hi95: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class Forecast:
    """A fitted forecast of one daily spend series, with the evidence behind it.

    ``paths`` contains simulated sample paths of the forecast days, shape (n_paths, len(dates)).
    Sums and first-crossing times are computed over them because daily errors are correlated.
    ``history_end`` is the last complete UTC day used for fitting; ``as_of`` is the data-as-of time.
    """

    series_id: str
    as_of: datetime
    history_start: date
    history_end: date
    days: DailyForecast
    paths: np.ndarray
    model: str
    model_version: str
    params: dict[str, object] = field(default_factory=dict)
    fallback_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Exceedance:
    """The probability and timing of a budget being exceeded in one period.

    Amounts are in the budget's currency. ``breach_date`` is the median first crossing among the
    sample paths that cross; ``breach_date_p10``/``p90`` bound it. When actual spend has already
    crossed the budget, ``probability`` is 1 and ``breach_date`` is the day it crossed.
    """

    period_start: date
    period_end: date
    budget_amount: Decimal
    spent_to_date: Decimal
    forecast_total: Decimal
    forecast_mean_total: Decimal
    total_lo80: Decimal
    total_hi80: Decimal
    total_lo95: Decimal
    total_hi95: Decimal
    probability: float
    breach_date: date | None
    breach_date_p10: date | None
    breach_date_p90: date | None
    expected_overspend: Decimal
    median_overspend: Decimal
    already_exceeded: bool
