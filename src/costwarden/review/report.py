"""The periodic governance review: how well alerts, estimates, approvals and actions worked.

``build_review`` reads the store and returns the review as a JSON-ready dict whose shape
``docs/review.md`` documents and ``REVIEW_SCHEMA_VERSION`` versions. Money is a decimal string
in the currency named beside it; ratios are floats rounded to 4 places.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.anomaly.feedback import load_feedback, precision
from costwarden.domain.budget import Budget
from costwarden.review.alerts import AlertOutcome, alert_outcomes
from costwarden.review.realised import APPLY_MODE, ROLLBACK_MODE, SUCCEEDED
from costwarden.store.tables import (
    ActionRunRecord,
    ApprovalRequestRecord,
    RealisedSavingsRecord,
)

REVIEW_SCHEMA_VERSION = "1.0"
DEFAULT_DAYS = 90
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ReviewRange:
    """The days a review covers, both inclusive, as UTC calendar days."""

    since: date
    until: date

    @classmethod
    def default(
        cls, now: datetime, since: date | None = None, until: date | None = None
    ) -> ReviewRange:
        """Return ``since`` to ``until``, by default the 90 days that end yesterday."""
        until = until or now.astimezone(UTC).date() - timedelta(days=1)
        since = since or until - timedelta(days=DEFAULT_DAYS - 1)
        return cls(since, until)

    def __contains__(self, day: date) -> bool:
        return self.since <= day <= self.until


def build_review(
    session: Session,
    budgets: Iterable[Budget],
    review_range: ReviewRange,
    now: datetime,
) -> dict[str, Any]:
    """Build the review of ``review_range`` from the stored alerts, runs, approvals and feedback.

    ``budgets`` are the current budget definitions; an alert whose budget is not among them
    counts as ``unknown``.
    """
    today = now.astimezone(UTC).date()
    by_name = {budget.name: budget for budget in budgets}
    outcomes = alert_outcomes(session, by_name, review_range.since, review_range.until, today)

    sections = {
        "alerts": _alerts_section(outcomes),
        "savings": _savings_section(session, review_range),
        "approvals": _approvals_section(session, review_range, now),
        "actions": _actions_section(session, review_range),
        "anomaly_feedback": _anomaly_section(session, review_range),
    }
    empty = all(section["count"] == 0 for section in sections.values())
    notes = []
    if empty:
        notes.append(
            f"Nothing to review from {review_range.since} to {review_range.until}: no budget "
            "period ended with alerts, and no action, approval or anomaly verdict was recorded."
        )
    return {
        "schema_version": REVIEW_SCHEMA_VERSION,
        "generated_at": _time(now),
        "since": review_range.since.isoformat(),
        "until": review_range.until.isoformat(),
        "empty": empty,
        "notes": notes,
        **sections,
    }


def _alerts_section(outcomes: Sequence[AlertOutcome]) -> dict[str, Any]:
    counts = Counter(outcome.outcome for outcome in outcomes)
    kinds = sorted({outcome.kind for outcome in outcomes})
    return {
        "count": len(outcomes),
        **_precision(outcomes),
        "pending": counts["pending"],
        "unknown": counts["unknown"],
        "lead_days": _lead_days(outcomes),
        "by_kind": [
            {
                "kind": kind,
                "count": sum(outcome.kind == kind for outcome in outcomes),
                **_precision([outcome for outcome in outcomes if outcome.kind == kind]),
                "lead_days": _lead_days([outcome for outcome in outcomes if outcome.kind == kind]),
            }
            for kind in kinds
        ],
        "periods": _periods(outcomes),
        "items": [_alert_item(outcome) for outcome in outcomes],
    }


def _precision(outcomes: Sequence[AlertOutcome]) -> dict[str, Any]:
    true_positives = sum(outcome.outcome == "true_positive" for outcome in outcomes)
    false_positives = sum(outcome.outcome == "false_positive" for outcome in outcomes)
    evaluated = true_positives + false_positives
    return {
        "evaluated": evaluated,
        "true_positives": true_positives,
        "false_positives": false_positives,
        "precision": _ratio(true_positives, evaluated),
    }


def _lead_days(outcomes: Sequence[AlertOutcome]) -> dict[str, Any]:
    """Summarise the lead times of the true positives."""
    leads = [outcome.lead_days for outcome in outcomes if outcome.lead_days is not None]
    if not leads:
        return {"count": 0, "median": None, "min": None, "max": None}
    return {
        "count": len(leads),
        "median": float(statistics.median(leads)),
        "min": min(leads),
        "max": max(leads),
    }


def _periods(outcomes: Sequence[AlertOutcome]) -> list[dict[str, Any]]:
    """Group the alerts by budget period: spend against the budget, and the first alert."""
    groups: dict[tuple[str, date], list[AlertOutcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[(outcome.budget, outcome.period_start)].append(outcome)

    periods = []
    for (budget, start), items in sorted(groups.items()):
        first = items[0]
        actual = first.actual_total
        periods.append(
            {
                "budget": budget,
                "start": start.isoformat(),
                "end": first.period_end.isoformat(),
                "currency": first.currency,
                "budget_amount": _money(first.budget_amount),
                "actual_total": _money(actual),
                "exceeded": None if actual is None else actual > first.budget_amount,
                "status": _period_status(items),
                "alerts": len(items),
                "true_positives": sum(item.outcome == "true_positive" for item in items),
                "first_alert": _time(min(item.first_alert for item in items)),
            }
        )
    return periods


def _period_status(items: Sequence[AlertOutcome]) -> str:
    outcome = items[0].outcome
    if outcome in ("pending", "unknown"):
        return outcome
    return "ended"


def _alert_item(outcome: AlertOutcome) -> dict[str, Any]:
    return {
        "alert_id": outcome.alert_id,
        "budget": outcome.budget,
        "kind": outcome.kind,
        "threshold": outcome.threshold,
        "period_start": outcome.period_start.isoformat(),
        "period_end": outcome.period_end.isoformat(),
        "currency": outcome.currency,
        "limit": _money(outcome.limit),
        "actual_total": _money(outcome.actual_total),
        "first_alert": _time(outcome.first_alert),
        "crossing_day": outcome.crossing_day.isoformat() if outcome.crossing_day else None,
        "lead_days": outcome.lead_days,
        "outcome": outcome.outcome,
        "note": outcome.note,
    }


def _savings_section(session: Session, review_range: ReviewRange) -> dict[str, Any]:
    """Compare realised with estimated savings, one entry per applied run on its longest window."""
    runs = _applied_runs_in(session, review_range)
    rows = session.scalars(
        select(RealisedSavingsRecord).where(
            RealisedSavingsRecord.action_run_id.in_([run.id for run in runs])
        )
    )
    longest: dict[str, RealisedSavingsRecord] = {}
    for row in rows:
        current = longest.get(row.action_run_id)
        if current is None or row.window_end > current.window_end:
            longest[row.action_run_id] = row

    items = [_savings_item(run, longest[run.id]) for run in runs if run.id in longest]
    waiting = [run.id for run in runs if run.id not in longest]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    overall: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[(item["action"], item["currency"])].append(item)
        overall[item["currency"]].append(item)

    return {
        "count": len(items),
        "runs_without_result": waiting,
        "overall": [
            {"currency": currency, **_accuracy(group)}
            for currency, group in sorted(overall.items())
        ],
        "by_action": [
            {"action": action, "currency": currency, **_accuracy(group)}
            for (action, currency), group in sorted(groups.items())
        ],
        "items": items,
    }


def _applied_runs_in(session: Session, review_range: ReviewRange) -> list[ActionRunRecord]:
    query = select(ActionRunRecord).where(
        ActionRunRecord.mode == APPLY_MODE, ActionRunRecord.status == SUCCEEDED
    )
    runs = session.scalars(query.order_by(ActionRunRecord.started_at, ActionRunRecord.id))
    return [run for run in runs if _run_day(run) in review_range]


def _savings_item(run: ActionRunRecord, row: RealisedSavingsRecord) -> dict[str, Any]:
    estimated = row.estimated_per_month
    realised = row.realised_per_month
    error = None
    if estimated is not None and estimated != 0:
        error = float(abs(realised - estimated) / abs(estimated))
    detail = row.detail or {}
    return {
        "action_run_id": run.id,
        "action": run.action,
        "scope": row.scope,
        "change_day": detail.get("change_day"),
        "window_days": detail.get("window_days"),
        "window_start": row.window_start.isoformat(),
        "window_end": row.window_end.isoformat(),
        "currency": row.currency,
        "forecast_without_change": _money(row.forecast_without_change),
        "actual": _money(row.actual),
        "estimated_per_month": _money(estimated),
        "realised_per_month": _money(realised),
        "realised_per_month_interval_95": detail.get("realised_per_month_interval_95"),
        "within_noise": bool(detail.get("within_noise")),
        "absolute_percentage_error": None if error is None else round(error, 4),
        "rolled_back_on": detail.get("rolled_back_on"),
        "estimate_note": (detail.get("estimate") or {}).get("note"),
    }


def _accuracy(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Return the sums, the sum ratio and the median absolute percentage error of a group.

    Only runs with an estimate enter the sums and the ratio; only runs with a non-zero estimate
    enter the median absolute percentage error.
    """
    estimated_items = [item for item in items if item["estimated_per_month"] is not None]
    estimated = sum((Decimal(item["estimated_per_month"]) for item in estimated_items), ZERO)
    realised = sum((Decimal(item["realised_per_month"]) for item in estimated_items), ZERO)
    errors = [
        item["absolute_percentage_error"]
        for item in estimated_items
        if item["absolute_percentage_error"] is not None
    ]
    return {
        "runs": len(items),
        "runs_with_estimate": len(estimated_items),
        "estimated_per_month": _money(estimated),
        "realised_per_month": _money(realised),
        "sum_ratio": None if estimated == 0 else round(float(realised / estimated), 4),
        "median_absolute_percentage_error": round(statistics.median(errors), 4) if errors else None,
        "within_noise": sum(item["within_noise"] for item in items),
    }


DECIDED_STATUSES = ("approved", "executed", "failed", "rejected")
"""Request statuses that people reached by deciding; expired and superseded ones were not."""


def _approvals_section(
    session: Session, review_range: ReviewRange, now: datetime
) -> dict[str, Any]:
    requests = [
        request
        for request in session.scalars(select(ApprovalRequestRecord))
        if _day(request.created_at) in review_range
    ]
    by_status = Counter(request.status for request in requests)
    hours = [
        (request.decided_at - request.created_at).total_seconds() / 3600
        for request in requests
        if request.decided_at is not None and request.status in DECIDED_STATUSES
    ]
    expired = sum(
        request.status == "expired" or (request.status == "pending" and request.expires_at <= now)
        for request in requests
    )
    return {
        "count": len(requests),
        "by_status": dict(sorted(by_status.items())),
        "decided": len(hours),
        "median_hours_to_decision": round(statistics.median(hours), 2) if hours else None,
        "expired": expired,
    }


def _actions_section(session: Session, review_range: ReviewRange) -> dict[str, Any]:
    runs = [
        run
        for run in session.scalars(select(ActionRunRecord))
        if _day(run.started_at) in review_range
    ]
    counts = Counter((run.action, run.mode, run.status) for run in runs)
    rollbacks = Counter(run.status for run in runs if run.mode == ROLLBACK_MODE)
    return {
        "count": len(runs),
        "applied": sum(run.mode == APPLY_MODE and run.status == SUCCEEDED for run in runs),
        "rollbacks": {
            "count": sum(rollbacks.values()),
            "by_status": dict(sorted(rollbacks.items())),
        },
        "by_action": [
            {"action": action, "mode": mode, "status": status, "count": count}
            for (action, mode, status), count in sorted(counts.items())
        ],
    }


def _anomaly_section(session: Session, review_range: ReviewRange) -> dict[str, Any]:
    feedback = [item for item in load_feedback(session) if _day(item.created_at) in review_range]
    result = precision(feedback)
    return {
        "count": result.problems + result.expected,
        "problems": result.problems,
        "expected": result.expected,
        "precision": None if result.value is None else round(result.value, 4),
    }


def _run_day(run: ActionRunRecord) -> date:
    return _day(run.finished_at or run.started_at)


def _day(value: datetime) -> date:
    return value.astimezone(UTC).date()


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def _money(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return format(value.quantize(Decimal("0.01")), "f")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def section_counts(review: Mapping[str, Any]) -> dict[str, int]:
    """Return the item count of each section, for summaries and logs."""
    return {
        name: review[name]["count"]
        for name in ("alerts", "savings", "approvals", "actions", "anomaly_feedback")
    }
