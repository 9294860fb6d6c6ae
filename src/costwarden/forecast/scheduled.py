"""Add the known cost of scheduled jobs to a forecast as a deterministic component."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal

import numpy as np

from costwarden.domain.forecast import DailyForecast, Forecast
from costwarden.errors import ForecastError


def daily_cost_array(forecast: Forecast, daily_cost: Mapping[date, Decimal]) -> np.ndarray:
    """Return one float per forecast day: the cost on that day, 0 for days not in the mapping.

    Days outside the forecast, such as days of the history, are ignored.
    """
    index = {day: position for position, day in enumerate(forecast.days.dates)}
    values = np.zeros(len(index), dtype=np.float64)
    for day, amount in daily_cost.items():
        position = index.get(day)
        if position is not None:
            values[position] += float(amount)
    return values


def add_scheduled_cost(forecast: Forecast, cost: np.ndarray) -> Forecast:
    """Return a copy of ``forecast`` with a known cost per forecast day added to every figure.

    ``cost`` has one non-negative amount per date in ``forecast.days.dates``. It is added to the
    mean, to both bounds of each interval and to every sample path, so totals and crossing dates
    read from the paths include it. The component is recorded in ``params["scheduled"]``. Raises
    ForecastError when ``cost`` has the wrong shape, a negative or non-finite amount, or the
    forecast already has a scheduled component.
    """
    values = _validated_cost(forecast, cost)
    if "scheduled" in forecast.params:
        raise ForecastError(
            f"forecast of series {forecast.series_id!r} already includes a scheduled component; "
            "add all scheduled cost in one call"
        )

    days = forecast.days
    shifted = DailyForecast(
        dates=days.dates,
        mean=days.mean + values,
        lo80=days.lo80 + values,
        hi80=days.hi80 + values,
        lo95=days.lo95 + values,
        hi95=days.hi95 + values,
    )
    nonzero = np.flatnonzero(values)
    component = {
        "total": float(values.sum()),
        "days": {days.dates[i].isoformat(): float(values[i]) for i in nonzero},
    }
    return replace(
        forecast,
        days=shifted,
        paths=forecast.paths + values[np.newaxis, :],
        params={**forecast.params, "scheduled": component},
    )


def _validated_cost(forecast: Forecast, cost: np.ndarray) -> np.ndarray:
    values = np.asarray(cost, dtype=np.float64)
    expected = (len(forecast.days.dates),)
    if values.shape != expected:
        raise ForecastError(
            f"forecast of series {forecast.series_id!r}: scheduled cost has shape {values.shape}, "
            f"expected {expected}, one amount per forecast day"
        )

    invalid = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if invalid.size:
        index = int(invalid[0])
        raise ForecastError(
            f"forecast of series {forecast.series_id!r}: scheduled cost {values[index]} on "
            f"{forecast.days.dates[index]} is not a finite non-negative amount"
        )
    return values
