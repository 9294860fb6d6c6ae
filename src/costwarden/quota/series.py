"""Read quota targets and daily usage histories from the store."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.quota.model import QuotaTarget, UsageHistory
from costwarden.store.tables import QuotaLimit, UsageFact


def load_targets(session: Session) -> list[QuotaTarget]:
    """Return every stored limit as a target, ordered by scope and resource."""
    query = select(QuotaLimit).order_by(
        QuotaLimit.scope_kind, QuotaLimit.scope_id, QuotaLimit.resource
    )
    return [
        QuotaTarget(
            scope_kind=limit.scope_kind,  # type: ignore[arg-type]
            scope_id=limit.scope_id,
            resource=limit.resource,  # type: ignore[arg-type]
            limit=limit.limit_value,
            limit_kind=limit.limit_kind,  # type: ignore[arg-type]
            name=limit.name,
            cluster_uid=limit.cluster_uid,
            details=dict(limit.details or {}),
        )
        for limit in session.scalars(query)
    ]


def load_histories(
    session: Session, first_day: date, today: date
) -> dict[tuple[str, str, str], UsageHistory]:
    """Return the usage history of every series with data from ``first_day`` to ``today``.

    Days before ``today`` form the history. A value on ``today`` itself is a snapshot of the
    current state, such as a pool's size now, and only sets ``current``.
    """
    query = select(
        UsageFact.scope_kind, UsageFact.scope_id, UsageFact.resource, UsageFact.day, UsageFact.value
    ).where(UsageFact.day >= first_day, UsageFact.day <= today)

    days: dict[tuple[str, str, str], dict[date, float]] = defaultdict(dict)
    for kind, scope_id, resource, day, value in session.execute(query):
        days[(kind, scope_id, resource)][day] = float(value)

    histories = {}
    for key, values in days.items():
        history = build_history(values, today)
        if history is not None:
            histories[key] = history
    return histories


def build_history(values: dict[date, float], today: date) -> UsageHistory | None:
    """Turn daily values into a dense history; ``None`` when there is no value at all."""
    past = {day: value for day, value in values.items() if day < today}
    snapshot = values.get(today)
    if not past:
        if snapshot is None:
            return None
        empty = np.zeros(0)
        return UsageHistory(today, today - timedelta(days=1), empty, snapshot, today)

    start, end = min(past), max(past)
    offsets = np.array([(day - start).days for day in sorted(past)], dtype=float)
    known = np.array([past[day] for day in sorted(past)], dtype=float)
    length = (end - start).days + 1
    dense = np.interp(np.arange(length, dtype=float), offsets, known)

    current, current_day = (snapshot, today) if snapshot is not None else (float(dense[-1]), end)
    return UsageHistory(start, end, dense, current, current_day, filled_days=length - len(past))
