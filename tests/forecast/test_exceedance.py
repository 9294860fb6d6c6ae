"""exceedance on forecasts whose period totals are known."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from costwarden.config import ForecastSettings
from costwarden.domain.budget import PeriodWindow
from costwarden.domain.forecast import Forecast
from costwarden.errors import ForecastError
from costwarden.forecast import exceedance, forecast_series

HISTORY_END = date(2025, 3, 31)
AS_OF = datetime(2025, 4, 1, 6, 30, tzinfo=UTC)
WINDOW = PeriodWindow(date(2025, 3, 20), date(2025, 4, 20))
"""31 days: 12 complete days (20 to 31 March) and 19 forecast days (1 to 19 April)."""


@pytest.fixture
def constant(settings: ForecastSettings) -> Forecast:
    return forecast_series("constant", np.full(60, 100.0), HISTORY_END, 30, AS_OF, settings)


@pytest.fixture
def noisy(settings: ForecastSettings) -> Forecast:
    rng = np.random.default_rng(11)
    values = 100 + np.cumsum(rng.normal(0, 3, 90)) + rng.normal(0, 8, 90)
    return forecast_series("noisy", values, HISTORY_END, 30, AS_OF, settings)


def _deterministic_crossing(spent: float, daily: float, budget: float) -> date:
    """Return the first forecast day on which spent plus a constant daily amount passes budget."""
    days = [HISTORY_END + timedelta(days=offset) for offset in range(1, 20)]
    cumulative = spent + np.cumsum(np.full(len(days), daily))
    return days[int(np.argmax(cumulative > budget))]


def test_budget_far_above_never_breaches(constant: Forecast) -> None:
    result = exceedance(constant, WINDOW, Decimal("1200.00"), Decimal("10000"))

    assert result.probability == 0.0
    assert result.breach_date is None
    assert result.breach_date_p10 is None
    assert result.breach_date_p90 is None
    assert result.forecast_total == Decimal("3100.00")
    assert result.forecast_mean_total == Decimal("3100.00")
    assert result.expected_overspend == Decimal("0.00")
    assert result.median_overspend == Decimal("0.00")
    assert not result.already_exceeded


def test_budget_far_below_breaches_on_known_day(constant: Forecast) -> None:
    expected_day = _deterministic_crossing(1200.0, 100.0, 2050.0)

    result = exceedance(constant, WINDOW, Decimal("1200.00"), Decimal("2050"))

    assert expected_day == date(2025, 4, 9)
    assert result.probability == 1.0
    assert result.breach_date == expected_day
    assert result.breach_date_p10 == expected_day
    assert result.breach_date_p90 == expected_day
    assert result.forecast_total == Decimal("3100.00")
    assert result.expected_overspend == Decimal("1050.00")
    assert result.median_overspend == Decimal("1050.00")
    assert result.total_lo95 == result.total_hi95 == Decimal("3100.00")


def test_already_exceeded_uses_actual_date(constant: Forecast) -> None:
    crossed = date(2025, 3, 30)

    result = exceedance(
        constant, WINDOW, Decimal("2500.00"), Decimal("2000"), actual_breach_date=crossed
    )

    assert result.already_exceeded
    assert result.probability == 1.0
    assert result.breach_date == crossed
    assert result.breach_date_p10 == crossed
    assert result.breach_date_p90 == crossed
    assert result.forecast_total == Decimal("4400.00")
    assert result.expected_overspend == Decimal("2400.00")
    assert result.median_overspend == Decimal("2400.00")


def test_past_period_total_is_actual(constant: Forecast) -> None:
    march = PeriodWindow(date(2025, 3, 1), date(2025, 4, 1))

    under = exceedance(constant, march, Decimal("3100.00"), Decimal("5000"))
    over = exceedance(
        constant, march, Decimal("3100.00"), Decimal("3000"), actual_breach_date=date(2025, 3, 31)
    )

    assert under.forecast_total == under.total_lo95 == under.total_hi95 == Decimal("3100.00")
    assert under.probability == 0.0
    assert under.breach_date is None
    assert over.probability == 1.0
    assert over.breach_date == date(2025, 3, 31)
    assert over.median_overspend == Decimal("100.00")


def test_future_period_counts_only_its_days(constant: Forecast) -> None:
    later = PeriodWindow(date(2025, 4, 10), date(2025, 4, 20))

    result = exceedance(constant, later, Decimal("0"), Decimal("950"))

    assert result.forecast_total == Decimal("1000.00")
    assert result.probability == 1.0
    assert result.breach_date == date(2025, 4, 19)


def test_short_forecast_is_rejected(constant: Forecast) -> None:
    may = PeriodWindow(date(2025, 5, 1), date(2025, 6, 1))

    with pytest.raises(ForecastError) as caught:
        exceedance(constant, may, Decimal("0"), Decimal("1000"))

    assert "ends on 2025-04-30" in str(caught.value)
    assert "forecast at least 61 days ahead" in str(caught.value)


def test_uncertain_budget_matches_paths(noisy: Forecast) -> None:
    spent = Decimal("1250.40")
    inside = [i for i, day in enumerate(noisy.days.dates) if day in WINDOW]
    totals = float(spent) + noisy.paths[:, inside].sum(axis=1)
    budget = Decimal(str(round(float(np.median(totals)) + 50, 2)))

    result = exceedance(noisy, WINDOW, spent, budget)

    excess = np.maximum(totals - float(budget), 0.0)
    assert 0.2 < result.probability < 0.5
    assert result.probability == pytest.approx(float(np.mean(totals > float(budget))))
    assert result.expected_overspend == Decimal(str(round(float(np.mean(excess)), 2)))
    assert result.median_overspend == Decimal("0.00")
    assert result.total_lo95 < result.total_lo80 < result.forecast_total
    assert result.forecast_total < result.total_hi80 < result.total_hi95
    assert result.breach_date is not None
    assert result.breach_date_p10 is not None and result.breach_date_p90 is not None
    assert result.breach_date_p10 <= result.breach_date <= result.breach_date_p90
    assert result.breach_date_p90 <= date(2025, 4, 19)


def test_money_is_rounded_to_cents(noisy: Forecast) -> None:
    result = exceedance(noisy, WINDOW, Decimal("1250.40"), Decimal("3000"))

    for amount in (
        result.forecast_total,
        result.forecast_mean_total,
        result.total_lo80,
        result.total_hi95,
        result.expected_overspend,
    ):
        assert amount.as_tuple().exponent == -2
