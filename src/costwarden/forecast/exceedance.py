"""The probability, timing and size of a budget overrun, read from a forecast's sample paths."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from costwarden.domain.budget import PeriodWindow
from costwarden.domain.cost import quantize_money
from costwarden.domain.forecast import Exceedance, Forecast
from costwarden.errors import ForecastError

TOTAL_QUANTILES = (0.5, 0.1, 0.9, 0.025, 0.975)
"""Quantiles of the period total: median, then the 80% and the 95% interval bounds."""


def exceedance(
    forecast: Forecast,
    window: PeriodWindow,
    spent_to_date: Decimal,
    budget_amount: Decimal,
    *,
    actual_breach_date: date | None = None,
) -> Exceedance:
    """Estimate whether and when spend in ``window`` exceeds ``budget_amount``.

    ``spent_to_date`` is the actual spend on the complete days of the window up to
    ``forecast.history_end``. Each sample path gives one period total: that spend plus the path's
    forecast days inside the window. A budget is exceeded when the total is strictly greater.
    When actual spend already exceeds it, ``actual_breach_date`` is reported as the breach date.
    Raises ForecastError when the forecast ends before the window does.
    """
    days = _forecast_days_in_window(forecast, window)
    budget = float(budget_amount)
    spent = float(spent_to_date)
    already_exceeded = spent_to_date > budget_amount

    cumulative = spent + np.cumsum(forecast.paths[:, days], axis=1)
    totals = cumulative[:, -1] if days.size else np.full(len(forecast.paths), spent)
    first_day = forecast.days.dates[days[0]] if days.size else None

    if already_exceeded:
        probability = 1.0
        breach = (actual_breach_date, actual_breach_date, actual_breach_date)
    else:
        probability = float(np.mean(totals > budget))
        breach = _breach_dates(cumulative, budget, first_day)

    median, lo80, hi80, lo95, hi95 = np.quantile(totals, TOTAL_QUANTILES)
    return Exceedance(
        period_start=window.start,
        period_end=window.end,
        budget_amount=budget_amount,
        spent_to_date=spent_to_date,
        forecast_total=quantize_money(float(median)),
        forecast_mean_total=quantize_money(float(np.mean(totals))),
        total_lo80=quantize_money(float(lo80)),
        total_hi80=quantize_money(float(hi80)),
        total_lo95=quantize_money(float(lo95)),
        total_hi95=quantize_money(float(hi95)),
        probability=probability,
        breach_date=breach[0],
        breach_date_p10=breach[1],
        breach_date_p90=breach[2],
        expected_overspend=quantize_money(float(np.mean(np.maximum(totals - budget, 0.0)))),
        median_overspend=quantize_money(max(float(median) - budget, 0.0)),
        already_exceeded=already_exceeded,
    )


def _forecast_days_in_window(forecast: Forecast, window: PeriodWindow) -> np.ndarray:
    """Return the indices of the forecast days inside ``window``, none for a past period."""
    last_day = window.end - timedelta(days=1)
    if last_day <= forecast.history_end:
        return np.array([], dtype=np.intp)

    dates = forecast.days.dates
    if not dates or dates[-1] < last_day:
        last_forecast = dates[-1] if dates else forecast.history_end
        missing = (last_day - last_forecast).days
        raise ForecastError(
            f"forecast of series {forecast.series_id!r} ends on {last_forecast}, {missing} days "
            f"before the period's last day {last_day}; forecast at least "
            f"{(last_day - forecast.history_end).days} days ahead"
        )
    return np.array([i for i, day in enumerate(dates) if day in window], dtype=np.intp)


def _breach_dates(
    cumulative: np.ndarray, budget: float, first_day: date | None
) -> tuple[date | None, date | None, date | None]:
    """Return the median, 10th and 90th percentile first day over budget, among crossing paths."""
    if first_day is None:
        return None, None, None

    over = cumulative > budget
    crossed = over.any(axis=1)
    if not crossed.any():
        return None, None, None

    first_index = np.argmax(over[crossed], axis=1)
    # inverted_cdf picks an index some path actually crossed on, never a fraction of a day.
    offsets = np.quantile(first_index, (0.5, 0.1, 0.9), method="inverted_cdf")
    median, p10, p90 = (first_day + timedelta(days=int(offset)) for offset in offsets)
    return median, p10, p90
