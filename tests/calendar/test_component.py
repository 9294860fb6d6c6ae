"""Spreading an occurrence's cost over UTC days, and adding the component to a forecast."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from costwarden.domain.forecast import DailyForecast, Forecast
from costwarden.domain.schedule import JobScope, Occurrence, ScheduledJob
from costwarden.errors import ForecastError
from costwarden.forecast.scheduled import add_scheduled_cost, daily_cost_array

HISTORY_END = date(2026, 11, 15)


def _job(cost: str) -> ScheduledJob:
    return ScheduledJob("job", "Job", Decimal(cost), "USD", JobScope(cluster="c1"), "jobs.ics")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_cost_spread_pro_rata_by_hours():
    occurrence = Occurrence(_job("120"), _utc(2026, 11, 15, 18), _utc(2026, 11, 16, 6))

    assert occurrence.daily_cost() == {
        date(2026, 11, 15): Decimal(60),
        date(2026, 11, 16): Decimal(60),
    }


def test_multi_day_spread_adds_up_exactly():
    occurrence = Occurrence(_job("100"), _utc(2026, 11, 20, 16), _utc(2026, 11, 23, 8))

    shares = occurrence.daily_cost()

    # 8 + 24 + 24 + 8 hours out of 64.
    assert list(shares) == [date(2026, 11, 20 + i) for i in range(4)]
    assert shares[date(2026, 11, 21)] == Decimal("37.5")
    assert shares[date(2026, 11, 20)] == Decimal("12.5")
    assert sum(shares.values()) == Decimal(100)


def test_uneven_split_keeps_total():
    occurrence = Occurrence(_job("100"), _utc(2026, 11, 20, 16), _utc(2026, 11, 21, 1))

    shares = occurrence.daily_cost()

    assert sum(shares.values()) == Decimal(100)
    assert shares[date(2026, 11, 20)] > shares[date(2026, 11, 21)] > 0


def test_zero_length_costs_start_day():
    occurrence = Occurrence(_job("7"), _utc(2026, 11, 20, 23), _utc(2026, 11, 20, 23))

    assert occurrence.daily_cost() == {date(2026, 11, 20): Decimal(7)}


def test_run_ending_at_midnight_stays_on_one_day():
    occurrence = Occurrence(_job("10"), _utc(2026, 11, 20), _utc(2026, 11, 21))

    assert occurrence.daily_cost() == {date(2026, 11, 20): Decimal(10)}


def _forecast(days: int = 5, paths: int = 50) -> Forecast:
    rng = np.random.default_rng(1)
    mean = np.full(days, 100.0)
    return Forecast(
        series_id="b",
        as_of=_utc(2026, 11, 16, 9),
        history_start=date(2026, 9, 1),
        history_end=HISTORY_END,
        days=DailyForecast(
            dates=tuple(HISTORY_END + timedelta(days=i) for i in range(1, days + 1)),
            mean=mean,
            lo80=mean - 10,
            hi80=mean + 10,
            lo95=mean - 20,
            hi95=mean + 20,
        ),
        paths=100.0 + rng.normal(0, 10, size=(paths, days)),
        model="auto-ets",
        model_version="test",
        params={"alpha": 0.3},
    )


def test_component_added_to_mean_intervals_paths():
    forecast = _forecast()
    cost = np.array([0.0, 60.0, 0.0, 200.0, 0.0])

    scheduled = add_scheduled_cost(forecast, cost)

    for name in ("mean", "lo80", "hi80", "lo95", "hi95"):
        expected = getattr(forecast.days, name) + cost
        np.testing.assert_allclose(getattr(scheduled.days, name), expected)
    np.testing.assert_allclose(scheduled.paths, forecast.paths + cost)
    totals = scheduled.paths.sum(axis=1)
    np.testing.assert_allclose(totals, forecast.paths.sum(axis=1) + 260)
    assert scheduled.params["alpha"] == 0.3
    assert scheduled.params["scheduled"] == {
        "total": 260.0,
        "days": {"2026-11-17": 60.0, "2026-11-19": 200.0},
    }
    assert "scheduled" not in forecast.params
    assert scheduled.days.dates == forecast.days.dates


def test_daily_cost_array_ignores_days_outside():
    forecast = _forecast()
    shares = {
        HISTORY_END: Decimal(999),
        date(2026, 11, 16): Decimal("12.5"),
        date(2026, 11, 20): Decimal(3),
        date(2026, 12, 31): Decimal(999),
    }

    np.testing.assert_allclose(daily_cost_array(forecast, shares), [12.5, 0, 0, 0, 3])


@pytest.mark.parametrize(
    ("cost", "hint"),
    [
        (np.zeros(4), "shape (4,)"),
        (np.array([0, 0, -1.0, 0, 0]), "-1.0 on 2026-11-18"),
        (np.array([0, np.nan, 0, 0, 0]), "not a finite"),
    ],
)
def test_invalid_component_is_rejected(cost, hint):
    with pytest.raises(ForecastError, match=hint.replace("(", r"\(").replace(")", r"\)")):
        add_scheduled_cost(_forecast(), cost)


def test_component_added_twice_is_rejected():
    once = add_scheduled_cost(_forecast(), np.ones(5))

    with pytest.raises(ForecastError, match="already includes a scheduled component"):
        add_scheduled_cost(once, np.ones(5))
