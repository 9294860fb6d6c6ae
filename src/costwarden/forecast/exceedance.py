"""The probability, timing and size of a budget overrun, read from a forecast's sample paths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from costwarden.domain.budget import PeriodWindow
from costwarden.domain.cost import quantize_money
from costwarden.domain.forecast import Exceedance, Forecast
from costwarden.errors import ForecastError
from costwarden.forecast import kernels
from costwarden.forecast.candidates import run_in_threads
from costwarden.forecast.paths import path_rows

if TYPE_CHECKING:
    from costwarden.forecast.batch import BatchForecast

TOTAL_QUANTILES = (0.5, 0.1, 0.9, 0.025, 0.975)
"""Quantiles of the period total: median, then the 80% and the 95% interval bounds."""

BREACH_QUANTILES = (0.5, 0.1, 0.9)
"""Quantiles of the first day over budget: median, 10th and 90th percentile."""

CHUNK_SERIES = 512
"""Series whose path totals ``exceedance_many`` keeps in memory at once (512 x 2,000 is 8 MB)."""


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
    days = _forecast_days_in_window(
        forecast.series_id, forecast.days.dates, forecast.history_end, window
    )
    budget = float(budget_amount)
    spent = float(spent_to_date)

    cumulative = spent + np.cumsum(forecast.paths[:, days], axis=1)
    totals = cumulative[:, -1] if days.size else np.full(len(forecast.paths), spent)
    over = cumulative > budget
    crossed = over.any(axis=1)
    first_index = np.argmax(over[crossed], axis=1) if days.size else np.empty(0, np.intp)
    first_day = forecast.days.dates[days[0]] if days.size else None
    return _result(
        window,
        spent_to_date,
        budget_amount,
        totals,
        np.quantile(totals, TOTAL_QUANTILES),
        first_index,
        first_day,
        actual_breach_date,
    )


def exceedance_many(
    batch: BatchForecast,
    window: PeriodWindow,
    spent_to_date: Sequence[Decimal],
    budget_amounts: Sequence[Decimal],
    *,
    actual_breach_dates: Sequence[date | None] | None = None,
) -> list[Exceedance]:
    """Return ``exceedance`` of every series of a batch in one period, one budget per series.

    The paths are streamed: a kernel computes each path's period total and first crossing day
    and keeps nothing else, ``CHUNK_SERIES`` series at a time. The results equal those of
    ``exceedance`` on each ``batch[i]``.
    """
    n = len(batch)
    if len(spent_to_date) != n or len(budget_amounts) != n:
        raise ForecastError(
            f"exceedance of {n} series needs one spent amount and one budget per series, got "
            f"{len(spent_to_date)} and {len(budget_amounts)}"
        )
    breach_dates = list(actual_breach_dates) if actual_breach_dates is not None else [None] * n
    days = _forecast_days_in_window("batch", batch.dates, batch.history_end, window)
    first_day = batch.dates[days[0]] if days.size else None
    day_range = (int(days[0]), int(days[-1]) + 1) if days.size else (0, 0)

    results: list[Exceedance] = []
    for low in range(0, n, CHUNK_SERIES):
        high = min(low + CHUNK_SERIES, n)
        spent = np.array([float(amount) for amount in spent_to_date[low:high]])
        budgets = np.array([float(amount) for amount in budget_amounts[low:high]])
        totals, crossings = _stream_totals(batch, low, high, day_range, spent, budgets)
        summary = _TotalsSummary.of(totals, crossings, budgets, day_range[1] - day_range[0])
        for k in range(high - low):
            results.append(
                _summary_result(
                    window,
                    spent_to_date[low + k],
                    budget_amounts[low + k],
                    summary,
                    k,
                    first_day,
                    breach_dates[low + k],
                )
            )
    return results


@dataclass(frozen=True, slots=True, eq=False)
class _TotalsSummary:
    """Statistics of the path totals of a chunk of series, one row per series.

    ``breach_offsets[:, j]`` is the ``BREACH_QUANTILES[j]`` quantile of the first crossing
    offset among the crossing paths, -1 where no path crosses. It equals NumPy's
    ``inverted_cdf`` quantile: the ``ceil(q * n)``-th smallest offset.
    """

    quantiles: np.ndarray
    mean: np.ndarray
    exceeded: np.ndarray
    overspend: np.ndarray
    breach_offsets: np.ndarray

    @classmethod
    def of(
        cls, totals: np.ndarray, crossings: np.ndarray, budgets: np.ndarray, days: int
    ) -> _TotalsSummary:
        rows = np.arange(len(totals))[:, None]
        counts = np.bincount(
            (crossings + 1 + rows * (days + 1)).ravel(), minlength=len(totals) * (days + 1)
        ).reshape(len(totals), days + 1)
        cumulative = np.cumsum(counts[:, 1:], axis=1)
        crossed = cumulative[:, -1] if days else np.zeros(len(totals), dtype=np.int64)
        offsets = np.full((len(totals), len(BREACH_QUANTILES)), -1)
        for j, q in enumerate(BREACH_QUANTILES):
            rank = np.maximum(np.ceil(q * crossed), 1)
            found = np.argmax(cumulative >= rank[:, None], axis=1) if days else crossed
            offsets[:, j] = np.where(crossed > 0, found, -1)
        return cls(
            quantiles=np.quantile(totals, TOTAL_QUANTILES, axis=1),
            mean=np.mean(totals, axis=1),
            exceeded=np.mean(totals > budgets[:, None], axis=1),
            overspend=np.mean(np.maximum(totals - budgets[:, None], 0.0), axis=1),
            breach_offsets=offsets,
        )


def _summary_result(
    window: PeriodWindow,
    spent_to_date: Decimal,
    budget_amount: Decimal,
    summary: _TotalsSummary,
    k: int,
    first_day: date | None,
    actual_breach_date: date | None,
) -> Exceedance:
    """Build the Exceedance of series ``k`` of a chunk from its summary."""
    already_exceeded = spent_to_date > budget_amount
    if already_exceeded:
        probability = 1.0
        breach = (actual_breach_date, actual_breach_date, actual_breach_date)
    else:
        probability = float(summary.exceeded[k])
        offsets = summary.breach_offsets[k]
        if first_day is None or offsets[0] < 0:
            breach = (None, None, None)
        else:
            median, p10, p90 = (first_day + timedelta(days=int(offset)) for offset in offsets)
            breach = (median, p10, p90)

    median_total, lo80, hi80, lo95, hi95 = (float(value) for value in summary.quantiles[:, k])
    budget = float(budget_amount)
    return Exceedance(
        period_start=window.start,
        period_end=window.end,
        budget_amount=budget_amount,
        spent_to_date=spent_to_date,
        forecast_total=quantize_money(median_total),
        forecast_mean_total=quantize_money(float(summary.mean[k])),
        total_lo80=quantize_money(lo80),
        total_hi80=quantize_money(hi80),
        total_lo95=quantize_money(lo95),
        total_hi95=quantize_money(hi95),
        probability=probability,
        breach_date=breach[0],
        breach_date_p10=breach[1],
        breach_date_p90=breach[2],
        expected_overspend=quantize_money(float(summary.overspend[k])),
        median_overspend=quantize_money(max(median_total - budget, 0.0)),
        already_exceeded=already_exceeded,
    )


def _stream_totals(
    batch: BatchForecast,
    low: int,
    high: int,
    day_range: tuple[int, int],
    spent: np.ndarray,
    budgets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the period total and first crossing offset of every path of rows low..high."""
    inputs = batch.path_inputs
    innovations = batch.innovations()
    n_paths = innovations.shape[0]
    totals = np.empty((high - low, n_paths))
    crossings = np.empty((high - low, n_paths), dtype=np.int64)

    def work(first: int, last: int) -> None:
        for k in range(first, last):
            row = low + k
            kernels.window_totals(
                innovations,
                path_rows(batch.settings.seed, batch.ids[row], n_paths),
                float(inputs.noise_sd[row]),
                inputs.level_sd[row],
                inputs.error_sd[row],
                inputs.z_knots,
                inputs.y_knots[row],
                inputs.slopes[row],
                day_range[0],
                day_range[1],
                float(spent[k]),
                float(budgets[k]),
                totals[k],
                crossings[k],
            )

    run_in_threads(high - low, work)
    return totals, crossings


def _result(
    window: PeriodWindow,
    spent_to_date: Decimal,
    budget_amount: Decimal,
    totals: np.ndarray,
    quantiles: np.ndarray,
    first_index: np.ndarray,
    first_day: date | None,
    actual_breach_date: date | None,
) -> Exceedance:
    """Build the Exceedance from the path totals and the first crossing offsets."""
    budget = float(budget_amount)
    already_exceeded = spent_to_date > budget_amount
    if already_exceeded:
        probability = 1.0
        breach = (actual_breach_date, actual_breach_date, actual_breach_date)
    else:
        probability = float(np.mean(totals > budget))
        breach = _breach_dates(first_index, first_day)

    median, lo80, hi80, lo95, hi95 = (float(value) for value in quantiles)
    return Exceedance(
        period_start=window.start,
        period_end=window.end,
        budget_amount=budget_amount,
        spent_to_date=spent_to_date,
        forecast_total=quantize_money(median),
        forecast_mean_total=quantize_money(float(np.mean(totals))),
        total_lo80=quantize_money(lo80),
        total_hi80=quantize_money(hi80),
        total_lo95=quantize_money(lo95),
        total_hi95=quantize_money(hi95),
        probability=probability,
        breach_date=breach[0],
        breach_date_p10=breach[1],
        breach_date_p90=breach[2],
        expected_overspend=quantize_money(float(np.mean(np.maximum(totals - budget, 0.0)))),
        median_overspend=quantize_money(max(median - budget, 0.0)),
        already_exceeded=already_exceeded,
    )


def _forecast_days_in_window(
    series_id: str, dates: tuple[date, ...], history_end: date, window: PeriodWindow
) -> np.ndarray:
    """Return the indices of the forecast days inside ``window``, none for a past period."""
    last_day = window.end - timedelta(days=1)
    if last_day <= history_end:
        return np.array([], dtype=np.intp)

    if not dates or dates[-1] < last_day:
        last_forecast = dates[-1] if dates else history_end
        missing = (last_day - last_forecast).days
        raise ForecastError(
            f"forecast of series {series_id!r} ends on {last_forecast}, {missing} days "
            f"before the period's last day {last_day}; forecast at least "
            f"{(last_day - history_end).days} days ahead"
        )
    return np.array([i for i, day in enumerate(dates) if day in window], dtype=np.intp)


def _breach_dates(
    first_index: np.ndarray, first_day: date | None
) -> tuple[date | None, date | None, date | None]:
    """Return the median, 10th and 90th percentile first day over budget, among crossing paths."""
    if first_day is None or first_index.size == 0:
        return None, None, None

    # inverted_cdf picks an index some path actually crossed on, never a fraction of a day.
    offsets = np.quantile(first_index, BREACH_QUANTILES, method="inverted_cdf")
    median, p10, p90 = (first_day + timedelta(days=int(offset)) for offset in offsets)
    return median, p10, p90
