"""The JSON form of a budget's status that the service stores after each pass and serves."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from costwarden.budgets.alerts import _probability_at
from costwarden.domain.alert import BudgetStatus
from costwarden.domain.budget import Threshold


def status_snapshot(status: BudgetStatus, run_id: str) -> dict[str, Any]:
    """Return a budget's status as JSON values: money as decimal strings, days as ISO dates.

    The forecast and exceedance fields are ``None`` when the budget's scope matched no cost
    data, and ``problem`` then gives the reason.
    """
    budget = status.budget
    exceedance = status.exceedance
    snapshot: dict[str, Any] = {
        "budget": budget.name,
        "run_id": run_id,
        "as_of": status.as_of.isoformat(),
        "period_start": status.window.start.isoformat(),
        "period_end": status.window.end.isoformat(),
        "currency": budget.currency,
        "amount": _money(budget.amount),
        "spend_to_date": _money(status.spent_to_date),
        "history_end": status.history_end.isoformat(),
        "problem": status.problem,
        "forecast_total": None,
        "forecast_mean_total": None,
        "interval": None,
        "exceedance_probability": None,
        "breach_date": None,
        "breach_date_p10": None,
        "breach_date_p90": None,
        "days_to_breach": None,
        "expected_overspend": None,
        "median_overspend": None,
        "already_exceeded": None,
        "thresholds": [],
    }
    if exceedance is None:
        return snapshot

    snapshot.update(
        {
            "forecast_total": _money(exceedance.forecast_total),
            "forecast_mean_total": _money(exceedance.forecast_mean_total),
            "interval": {
                "lo80": _money(exceedance.total_lo80),
                "hi80": _money(exceedance.total_hi80),
                "lo95": _money(exceedance.total_lo95),
                "hi95": _money(exceedance.total_hi95),
            },
            "exceedance_probability": exceedance.probability,
            "breach_date": _day(exceedance.breach_date),
            "breach_date_p10": _day(exceedance.breach_date_p10),
            "breach_date_p90": _day(exceedance.breach_date_p90),
            "days_to_breach": days_to_breach(status),
            "expected_overspend": _money(exceedance.expected_overspend),
            "median_overspend": _money(exceedance.median_overspend),
            "already_exceeded": exceedance.already_exceeded,
            "thresholds": [_threshold(status, threshold) for threshold in budget.thresholds],
        }
    )
    return snapshot


def days_to_breach(status: BudgetStatus) -> int | None:
    """Return the days from the status's clock to the predicted breach date, 0 once breached."""
    exceedance = status.exceedance
    if exceedance is None or exceedance.breach_date is None:
        return None
    return max(0, (exceedance.breach_date - status.as_of.date()).days)


def _threshold(status: BudgetStatus, threshold: Threshold) -> dict[str, Any]:
    """Return one threshold with its limit and the probability that the period total reaches it."""
    limit = threshold.limit(status.budget.amount)
    return {
        "key": threshold.key(),
        "basis": threshold.basis,
        "severity": threshold.severity,
        "limit": _money(limit),
        "probability": _probability_at(status, limit),
        "reached": status.spent_to_date >= limit,
    }


def _money(value: Decimal) -> str:
    return format(value, "f")


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
