"""Decide which budget thresholds a status crosses, and build the alert payload."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from costwarden.domain.alert import Alert, BudgetStatus, alert_fingerprint
from costwarden.domain.budget import Threshold
from costwarden.domain.cost import quantize_money
from costwarden.domain.recommendation import Recommendation

PAYLOAD_SCHEMA_VERSION = "1.4"


def crossed_thresholds(status: BudgetStatus, generated_at: datetime) -> list[Alert]:
    """Return one alert per threshold of the budget that the status crosses."""
    if status.problem or status.exceedance is None:
        return []

    alerts = []
    for threshold in status.budget.thresholds:
        limit = threshold.limit(status.budget.amount)
        if not _crossed(status, threshold, limit):
            continue
        kind = f"budget_{threshold.basis}"
        alert_id = alert_fingerprint(status.budget.name, status.window.start, f"{kind}:{threshold.key()}")
        alerts.append(
            Alert(
                alert_id=alert_id,
                kind=kind,  # type: ignore[arg-type]
                threshold=threshold,
                limit=limit,
                status=status,
                generated_at=generated_at,
                title=_title(status, threshold, limit),
            )
        )
    return alerts


def _crossed(status: BudgetStatus, threshold: Threshold, limit: Decimal) -> bool:
    exceedance = status.exceedance
    assert exceedance is not None
    if threshold.basis == "actual":
        return status.spent_to_date >= limit
    if threshold.probability is None:
        return exceedance.forecast_total >= limit
    return _probability_at(status, limit) >= threshold.probability


def _probability_at(status: BudgetStatus, limit: Decimal) -> float:
    """Return the probability that the period total reaches ``limit``, from the sample paths."""
    exceedance = status.exceedance
    assert exceedance is not None
    if limit == status.budget.amount:
        return exceedance.probability
    if status.spent_to_date >= limit:
        return 1.0
    forecast = status.forecast
    assert forecast is not None
    inside = [i for i, day in enumerate(forecast.days.dates) if day in status.window]
    totals = float(status.spent_to_date) + forecast.paths[:, inside].sum(axis=1)
    return float((totals >= float(limit)).mean())


def _money(value: Decimal, currency: str) -> str:
    return f"{quantize_money(value):,.2f} {currency}"


def _title(status: BudgetStatus, threshold: Threshold, limit: Decimal) -> str:
    budget = status.budget
    exceedance = status.exceedance
    assert exceedance is not None
    if threshold.basis == "actual":
        return (
            f"{budget.name}: spent {_money(status.spent_to_date, budget.currency)}, "
            f"past the {_money(limit, budget.currency)} threshold"
        )
    text = f"{budget.name}: forecast {_money(exceedance.forecast_total, budget.currency)} for the period"
    if threshold.probability is None and limit != budget.amount:
        text += f", past the {_money(limit, budget.currency)} threshold"
    text += (
        f"; {exceedance.probability:.0%} probability of exceeding the budget of "
        f"{_money(budget.amount, budget.currency)}"
    )
    if exceedance.breach_date and not exceedance.already_exceeded:
        text += f"; breach expected around {exceedance.breach_date.isoformat()}"
    return text


def _cents(value: Decimal | None) -> float | None:
    return None if value is None else float(quantize_money(value))


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def alert_payload(alert: Alert) -> dict[str, Any]:
    """Serialise an alert to the versioned payload that ``docs/schemas/alert.schema.json`` defines."""
    status = alert.status
    budget = status.budget
    exceedance = status.exceedance
    forecast = status.forecast
    assert exceedance is not None and forecast is not None

    return {
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "title": alert.title,
        "currency": budget.currency,
        "budget": {
            "name": budget.name,
            "amount": _cents(budget.amount),
            "period_kind": budget.period.kind,
            "timezone": budget.period.timezone,
            "owner": budget.owner,
            "description": budget.description,
            "labels": dict(budget.labels),
        },
        "threshold": {
            "type": alert.threshold.basis,
            "percent": None if alert.threshold.percent is None else float(alert.threshold.percent),
            "amount": _cents(alert.threshold.amount),
            "probability": alert.threshold.probability,
            "limit": _cents(alert.limit),
        },
        "scope": _scope(status),
        "period": {
            "start": status.window.start.isoformat(),
            "end": (status.window.end - timedelta(days=1)).isoformat(),
            "days_total": status.window.days,
            "days_elapsed": max(min((status.history_end - status.window.start).days + 1, status.window.days), 0),
        },
        "spend_to_date": _cents(status.spent_to_date),
        "previous_period_total": _cents(status.previous_total),
        "forecast": {
            "total": _cents(exceedance.forecast_total),
            "mean_total": _cents(exceedance.forecast_mean_total),
            "interval_80": {"lower": _cents(exceedance.total_lo80), "upper": _cents(exceedance.total_hi80)},
            "interval_95": {"lower": _cents(exceedance.total_lo95), "upper": _cents(exceedance.total_hi95)},
            "scheduled": _scheduled(status),
        },
        "exceedance_probability": round(exceedance.probability, 4),
        "already_exceeded": exceedance.already_exceeded,
        "breach_date": _iso(exceedance.breach_date),
        "breach_date_p10": _iso(exceedance.breach_date_p10),
        "breach_date_p90": _iso(exceedance.breach_date_p90),
        "overspend": {
            "expected": _cents(exceedance.expected_overspend),
            "at_median": _cents(exceedance.median_overspend),
        },
        "contributors": [
            {
                "name": contributor.name,
                "kind": contributor.kind,
                "previous_total": _cents(contributor.previous_total),
                "forecast_total": _cents(contributor.forecast_total),
                "growth": _cents(contributor.growth),
                "share_of_growth": None
                if contributor.share_of_growth is None
                else round(contributor.share_of_growth, 4),
            }
            for contributor in status.contributors
        ],
        "links": {
            "palette": status.links[0].url if status.links else None,
            "clusters": [{"name": link.name, "url": link.url} for link in status.links],
        },
        "data_window": {
            "start": _iso(status.data_start),
            "end": status.history_end.isoformat(),
            "as_of": status.as_of.isoformat().replace("+00:00", "Z"),
            "missing_days": status.missing_days,
        },
        "model": {
            "name": forecast.model,
            "version": forecast.model_version,
            "fallback_reason": forecast.fallback_reason,
            "interval_adjustment": forecast.params.get("interval_adjustment"),
        },
        "recommended_actions": [_action(item) for item in alert.actions],
        "generated_at": alert.generated_at.isoformat().replace("+00:00", "Z"),
    }


def _action(item: Recommendation) -> dict[str, Any]:
    """Serialise a recommendation for an alert: the change and its savings, without evidence."""
    full = item.to_dict()
    savings = item.savings
    return {
        "id": full["id"],
        "kind": full["kind"],
        "title": full["title"],
        "target": full["target"],
        "before": full["before"],
        "after": full["after"],
        "savings": {
            "per_day": _cents(savings.per_day),
            "per_month": _cents(savings.per_month),
            "currency": savings.currency,
            "method": savings.method,
            "prices": [
                {
                    "item": price.item,
                    "amount": float(price.amount),
                    "unit": price.unit,
                    "currency": price.currency,
                    "source": price.source,
                    "published": price.published.isoformat(),
                }
                for price in savings.prices
            ],
        },
        "confidence": full["confidence"],
        "risk": full["risk"],
        "effort": full["effort"],
        "reversible": full["reversible"],
        "api_call": full["api_call"],
        "manual_change": full["manual_change"],
        "ui_link": full["ui_link"],
    }


def _scheduled(status: BudgetStatus) -> dict[str, Any] | None:
    """Serialise the scheduled jobs of the period, or return None when no scheduled job applies."""
    component = status.scheduled
    if component is None:
        return None
    return {
        "total": _cents(component.total),
        "occurrences": [
            {
                "name": occurrence.name,
                "uid": occurrence.uid,
                "start": _utc_text(occurrence.start),
                "end": _utc_text(occurrence.end),
                "cost": _cents(occurrence.cost),
                "in_history": occurrence.in_history,
            }
            for occurrence in component.occurrences
        ],
    }


def _utc_text(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _scope(status: BudgetStatus) -> dict[str, Any]:
    scope = status.budget.scope
    return {
        "description": scope.describe(),
        "cluster": scope.cluster,
        "project": scope.project,
        "namespace": scope.namespace,
        "labels": scope.selector,
        "provider": scope.provider,
        "account": scope.account,
        "service": scope.service,
        "source": status.source,
        "grain": status.grain,
    }
