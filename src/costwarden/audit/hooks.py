"""Audit entries for the stages of a pass and for notification deliveries.

Each function appends inside the caller's transaction, so an entry commits together with the
rows it describes. They write one entry per ingestion, per pass's forecasts, per alert, per
recommendation and per delivery outcome, never one per cost row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.audit.evidence import evidence
from costwarden.audit.trail import SYSTEM_ACTOR, append
from costwarden.store.tables import AuditEntryRecord

if TYPE_CHECKING:
    from costwarden.config import ForecastSettings
    from costwarden.domain.alert import BudgetStatus
    from costwarden.domain.cost import IngestReport

MAX_WARNINGS = 20
"""Ingestion warnings copied into an entry; the count covers all of them."""

BULKY_ALERT_KEYS = frozenset(
    {"schema_version", "contributors", "drivers", "links", "recommended_actions"}
)
"""Alert payload keys left out of alert entries: the notifications carry them in full."""

POLICY_SET_SUBJECT = "policy-set"
"""Subject of the entries that record a new policy set digest."""


def record_ingest(session: Session, tenant: str, report: IngestReport, run_id: str) -> None:
    """Append an ``ingest`` entry: source, batch, row counts and the data window."""
    append(
        session,
        tenant=tenant,
        kind="ingest",
        subject=f"batch:{report.batch_id}",
        actor=SYSTEM_ACTOR,
        summary=(
            f"ingested {report.rows_read} rows from {report.source} ({report.inserted} new, "
            f"{report.updated} updated, {report.unchanged} unchanged)"
        ),
        detail=evidence(
            window=(report.window_start, report.window_end),
            run_id=run_id,
            source=report.source,
            origin=report.origin,
            batch_id=report.batch_id,
            rows={
                "read": report.rows_read,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
            },
            warnings_count=len(report.warnings),
            warnings=list(report.warnings[:MAX_WARNINGS]),
        ),
    )


def record_forecasts(
    session: Session,
    tenant: str,
    run_id: str,
    statuses: Sequence[BudgetStatus],
    settings: ForecastSettings,
) -> None:
    """Append one ``forecast`` entry for a pass: models used, series counts and data window."""
    forecasts = [status.forecast for status in statuses if status.forecast is not None]
    models = Counter(f"{item.model}@{item.model_version}" for item in forecasts)
    fallbacks = [
        {"series": item.series_id, "model": item.model, "reason": item.fallback_reason}
        for item in forecasts
        if item.fallback_reason
    ]
    starts = [item.history_start for item in forecasts]
    ends = [item.history_end for item in forecasts]
    names = sorted({item.model for item in forecasts})
    append(
        session,
        tenant=tenant,
        kind="forecast",
        subject=f"run:{run_id}",
        actor=SYSTEM_ACTOR,
        summary=f"forecast {len(forecasts)} of {len(statuses)} budgets",
        detail=evidence(
            window=(min(starts) if starts else None, max(ends) if ends else None),
            model=names[0] if len(names) == 1 else ",".join(names) or None,
            model_version=forecasts[0].model_version if len(models) == 1 else None,
            parameters=settings.model_dump(mode="json"),
            run_id=run_id,
            series={
                "budgets": len(statuses),
                "forecast": len(forecasts),
                "without_data": sum(1 for status in statuses if status.problem is not None),
                "fallbacks": len(fallbacks),
            },
            models=dict(sorted(models.items())),
            fallbacks=fallbacks[:MAX_WARNINGS],
            budgets=[
                {
                    "budget": status.budget.name,
                    "model": status.forecast.model if status.forecast else None,
                    "probability": (
                        round(status.exceedance.probability, 4) if status.exceedance else None
                    ),
                    "problem": status.problem,
                }
                for status in statuses
            ],
        ),
    )


def record_alerts(
    session: Session, tenant: str, run_id: str, payloads: Iterable[Mapping[str, Any]]
) -> int:
    """Append one ``alert`` entry per alert payload (budget, quota or anomaly); return the count.

    The entry keeps the payload's evidence (probability, forecast, threshold, data window,
    model) and leaves out the bulky parts that the notifications carry.
    """
    count = 0
    for payload in payloads:
        detail = {key: value for key, value in payload.items() if key not in BULKY_ALERT_KEYS}
        if "data_window" in payload:
            detail["window"] = payload["data_window"]
        detail["run_id"] = run_id
        budget = payload.get("budget")
        append(
            session,
            tenant=tenant,
            kind="alert",
            subject=f"alert:{payload.get('alert_id')}",
            actor=SYSTEM_ACTOR,
            summary=str(payload.get("title") or payload.get("kind") or "alert"),
            detail={
                **detail,
                "budget_name": budget.get("name") if isinstance(budget, Mapping) else None,
                "probability": _probability(payload),
            },
        )
        count += 1
    return count


def _probability(payload: Mapping[str, Any]) -> Any:
    for key in ("exceedance_probability", "probability"):
        if key in payload:
            return payload[key]
    return None


def record_recommendations(
    session: Session, tenant: str, run_id: str, items: Iterable[Mapping[str, Any]]
) -> int:
    """Append one ``recommendation`` entry per recommendation dict, with savings and evidence."""
    count = 0
    for item in items:
        savings = item.get("savings") or {}
        append(
            session,
            tenant=tenant,
            kind="recommendation",
            subject=f"recommendation:{item.get('id')}",
            actor=SYSTEM_ACTOR,
            summary=(
                f"{item.get('title')} (saves {savings.get('per_month')} "
                f"{savings.get('currency')}/month)"
            ),
            detail={**item, "run_id": run_id},
        )
        count += 1
    return count


def record_delivery(
    session: Session,
    tenant: str,
    *,
    delivery_id: str,
    channel: str,
    event: str,
    alert_id: str | None,
    outcome: str,
    attempts: int,
    external_ref: str | None = None,
    status: int | None = None,
    error: str | None = None,
) -> None:
    """Append a ``notification`` entry for a delivery that was sent or went dead.

    ``error`` must already be redacted; channel settings (URLs, tokens) never belong here.
    """
    summary = f"{event} notification {outcome} to {channel}"
    if alert_id:
        summary += f" for alert {alert_id}"
    append(
        session,
        tenant=tenant,
        kind="notification",
        subject=f"alert:{alert_id}" if alert_id else f"delivery:{delivery_id}",
        actor=SYSTEM_ACTOR,
        summary=summary,
        detail={
            "delivery_id": delivery_id,
            "channel": channel,
            "event": event,
            "alert_id": alert_id,
            "outcome": outcome,
            "attempts": attempts,
            "external_ref": external_ref,
            "status": status,
            "error": error,
        },
    )


def record_policy_change(
    session: Session,
    tenant: str,
    digest: str,
    files: Sequence[str],
    *,
    actor: str = SYSTEM_ACTOR,
    policies: Sequence[str] = (),
) -> bool:
    """Append a ``policy`` entry when ``digest`` differs from the last recorded policy digest.

    Returns whether an entry was appended. Call it whenever the policy set is loaded; an
    unchanged set writes nothing.
    """
    last = session.scalars(
        select(AuditEntryRecord.detail)
        .where(
            AuditEntryRecord.tenant == tenant,
            AuditEntryRecord.kind == "policy",
            AuditEntryRecord.subject == POLICY_SET_SUBJECT,
        )
        .order_by(AuditEntryRecord.seq.desc())
        .limit(1)
    ).first()
    previous = last.get("digest") if isinstance(last, Mapping) else None
    if previous == digest:
        return False

    append(
        session,
        tenant=tenant,
        kind="policy",
        subject=POLICY_SET_SUBJECT,
        actor=actor,
        summary=f"policy set changed: {len(files)} files, digest {digest[:12]}",
        detail={
            "digest": digest,
            "previous_digest": previous,
            "files": [str(path) for path in files],
            "policies": list(policies),
        },
    )
    return True
