"""Alert precision: whether the spend of each alerted budget period reached the alert's limit.

A budget alert warns that a period's spend reaches the threshold's limit (the budget amount for
a 100% threshold). Once the period has ended and the cost data covers its last day, the alert is
a true positive when the period's actual spend reached that limit and a false positive when it
did not. Lead time is the number of days from the day the alert was first raised to the day the
cumulative spend reached the limit. It is negative when the alert came after the crossing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.domain.budget import Budget
from costwarden.store.queries import daily_spend, resolve_scope, source_last_day
from costwarden.store.tables import AlertRecord

logger = logging.getLogger(__name__)

BUDGET_ALERT_PREFIX = "budget_"
ZERO = Decimal(0)

Outcome = Literal["true_positive", "false_positive", "pending", "unknown"]


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    """One budget alert and what its period's spend turned out to be.

    ``kind`` is ``budget_forecast`` or ``budget_actual``; ``threshold`` is the threshold key.
    ``actual_total`` and ``crossing_day`` are None until the period is evaluated. ``note``
    gives the reason an alert is ``pending`` or ``unknown``.
    """

    alert_id: str
    budget: str
    kind: str
    threshold: str
    period_start: date
    period_end: date
    limit: Decimal
    budget_amount: Decimal
    currency: str
    first_alert: datetime
    outcome: Outcome
    actual_total: Decimal | None = None
    crossing_day: date | None = None
    lead_days: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class _PeriodSpend:
    total: Decimal | None
    daily: Mapping[date, Decimal]
    pending: str | None = None
    unknown: str | None = None


def alert_outcomes(
    session: Session,
    budgets: Mapping[str, Budget],
    since: date,
    until: date,
    today: date,
) -> list[AlertOutcome]:
    """Return the budget alerts of the periods that overlap ``since`` to ``until``.

    ``today`` is the current UTC day: a period has ended once its last day is before it, and
    the alerts of a period that has not ended are ``pending``.
    """
    query = select(AlertRecord).where(AlertRecord.kind.startswith(BUDGET_ALERT_PREFIX))
    rows = session.scalars(query.order_by(AlertRecord.budget, AlertRecord.period_start))

    cache: dict[tuple[str, date, date], _PeriodSpend] = {}
    outcomes = []
    for record in rows:
        parsed = _parse(record)
        if parsed is None:
            continue
        period_end, limit, amount, currency = parsed
        if period_end < since or record.period_start > until:
            continue

        key = (record.budget, record.period_start, period_end)
        if key not in cache:
            budget = budgets.get(record.budget)
            cache[key] = _period_spend(session, budget, record, period_end, today)
        outcomes.append(_outcome(record, cache[key], period_end, limit, amount, currency))
    return outcomes


def _parse(record: AlertRecord) -> tuple[date, Decimal, Decimal, str] | None:
    """Read the period end, limit, budget amount and currency from a stored alert payload."""
    payload = record.payload or {}
    try:
        period_end = date.fromisoformat(payload["period"]["end"])
        limit = Decimal(str(payload["threshold"]["limit"]))
        amount = Decimal(str(payload["budget"]["amount"]))
        currency = str(payload["currency"])
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        logger.warning(
            "alert %s of budget %s has no usable period, limit or amount in its payload (%s: %s); "
            "left out of the review",
            record.alert_id,
            record.budget,
            type(exc).__name__,
            exc,
        )
        return None
    return period_end, limit, amount, currency


def _period_spend(
    session: Session,
    budget: Budget | None,
    record: AlertRecord,
    period_end: date,
    today: date,
) -> _PeriodSpend:
    if budget is None:
        return _PeriodSpend(None, {}, unknown=f"budget {record.budget!r} is no longer defined")
    if period_end >= today:
        return _PeriodSpend(None, {}, pending=f"the period ends on {period_end}")

    resolved = resolve_scope(session, budget)
    if resolved.problem:
        return _PeriodSpend(None, {}, unknown=resolved.problem)
    last = source_last_day(session, resolved)
    if last is None or last < period_end:
        reached = last.isoformat() if last else "no day"
        note = (
            f"{resolved.source} cost data reaches {reached}, before the period's end {period_end}"
        )
        return _PeriodSpend(None, {}, pending=note)

    daily = daily_spend(session, resolved, record.period_start, period_end + timedelta(days=1))
    return _PeriodSpend(sum(daily.values(), ZERO), daily)


def _outcome(
    record: AlertRecord,
    spend: _PeriodSpend,
    period_end: date,
    limit: Decimal,
    amount: Decimal,
    currency: str,
) -> AlertOutcome:
    kind, _, threshold = record.kind.partition(":")
    base = AlertOutcome(
        alert_id=record.alert_id,
        budget=record.budget,
        kind=kind,
        threshold=threshold,
        period_start=record.period_start,
        period_end=period_end,
        limit=limit,
        budget_amount=amount,
        currency=currency,
        first_alert=record.first_seen,
        outcome="pending",
    )
    if spend.unknown is not None:
        return replace(base, outcome="unknown", note=spend.unknown)
    if spend.total is None:
        return replace(base, outcome="pending", note=spend.pending)

    crossing = crossing_day(spend.daily, record.period_start, period_end, limit)
    if crossing is None:
        return replace(base, outcome="false_positive", actual_total=spend.total)
    lead = (crossing - record.first_seen.date()).days
    return replace(
        base,
        outcome="true_positive",
        actual_total=spend.total,
        crossing_day=crossing,
        lead_days=lead,
    )


def crossing_day(
    daily: Mapping[date, Decimal], start: date, end: date, limit: Decimal
) -> date | None:
    """Return the first day from ``start`` to ``end`` whose cumulative spend reaches ``limit``."""
    total = ZERO
    day = start
    while day <= end:
        total += daily.get(day, ZERO)
        if total >= limit:
            return day
        day += timedelta(days=1)
    return None
