"""Decide which projections become quota alerts, and build and record the alert payload.

The payload follows ``docs/schemas/quota-alert.schema.json``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from costwarden.config import QuotaSettings
from costwarden.quota.model import LIMIT_NAMES, QuotaAlert, QuotaProjection, QuotaTarget
from costwarden.store.tables import AlertRecord

QUOTA_SCHEMA_VERSION = "1.0"
ALERT_KIND = "quota"
STATISTIC = "daily_peak"


def quota_fingerprint(target: QuotaTarget) -> str:
    """Return the stable alert id of a target: its scope, resource and kind of limit.

    The dates and values are left out, so the same breach seen on later passes keeps its id.
    """
    parts = (ALERT_KIND, target.scope_kind, target.scope_id, target.resource, target.limit_kind)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def decide_alerts(
    projections: Sequence[QuotaProjection],
    quota: QuotaSettings,
    generated_at: datetime,
    ui_url_template: str,
) -> list[QuotaAlert]:
    """Return an alert for each projection at its limit or with a median breach in the window."""
    alerts = []
    for projection in projections:
        if projection.status not in ("at_limit", "breach_in_window"):
            continue
        alerts.append(
            QuotaAlert(
                alert_id=quota_fingerprint(projection.target),
                projection=projection,
                severity=_severity(projection, quota),
                title=alert_title(projection, quota.window_days),
                generated_at=generated_at,
                link=palette_link(projection.target, ui_url_template),
            )
        )
    alerts.sort(key=lambda alert: (alert.severity != "critical", alert.projection.breach_date))
    return alerts


def _severity(projection: QuotaProjection, quota: QuotaSettings) -> str:
    if projection.status == "at_limit" or projection.breach_date is None:
        return "critical"
    last_critical_day = projection.window_start + timedelta(days=quota.critical_days - 1)
    return "critical" if projection.breach_date <= last_critical_day else "warning"


def palette_link(target: QuotaTarget, template: str) -> str | None:
    """Return the Palette console link of the target's cluster; workspaces have none."""
    if target.cluster_uid is None:
        return None
    project_uid = target.details.get("project_uid") or ""
    return template.format(
        cluster_uid=target.cluster_uid,
        project_uid=project_uid,
        cluster_name=target.cluster_name or "",
    )


def _amount(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = (
        f"{value:,.0f}" if unit in ("nodes", "GPUs") and value == round(value) else f"{value:,.1f}"
    )
    return f"{text} {unit}"


def alert_title(projection: QuotaProjection, window_days: int) -> str:
    target = projection.target
    limit_name = LIMIT_NAMES[target.limit_kind]
    used = _amount(projection.current, target.unit).rsplit(" ", 1)[0]
    text = (
        f"{target.describe()}: {target.resource} {used} of {_amount(target.limit, target.unit)} "
        f"({limit_name})"
    )
    if projection.status == "at_limit":
        return f"{text}; at the limit since {_iso(projection.breach_date)}"
    return (
        f"{text}; projected to reach the limit on {_iso(projection.breach_date)} "
        f"({projection.probability:.0%} probability within {window_days} days)"
    )


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _utc(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def quota_payload(alert: QuotaAlert) -> dict[str, Any]:
    """Serialise an alert to the versioned quota alert payload."""
    projection = alert.projection
    target = projection.target
    return {
        "schema_version": QUOTA_SCHEMA_VERSION,
        "alert_id": alert.alert_id,
        "kind": ALERT_KIND,
        "severity": alert.severity,
        "title": alert.title,
        "scope": _scope(target),
        "resource": target.resource,
        "unit": target.unit,
        "limit": {
            "value": _round(target.limit),
            "kind": target.limit_kind,
        },
        "current_usage": {
            "value": _round(projection.current),
            "day": _iso(projection.current_day),
            "statistic": STATISTIC,
            "utilisation": _round(projection.utilisation),
        },
        "already_at_limit": projection.status == "at_limit",
        "breach_date": _iso(projection.breach_date),
        "breach_date_p10": _iso(projection.breach_date_p10),
        "breach_date_p90": _iso(projection.breach_date_p90),
        "probability": round(projection.probability, 4),
        "window": {
            "days": (projection.window_end - projection.window_start).days + 1,
            "start": projection.window_start.isoformat(),
            "end": projection.window_end.isoformat(),
        },
        "pool": _pool(target),
        "links": {"palette": alert.link},
        "data_window": {
            "start": _iso(projection.history_start),
            "end": _iso(projection.history_end),
            "as_of": _utc(projection.as_of),
        },
        "model": {
            "name": projection.model,
            "version": projection.model_version,
            "fallback_reason": projection.fallback_reason,
            "method": projection.params.get("method"),
        },
        "generated_at": _utc(alert.generated_at),
    }


def _scope(target: QuotaTarget) -> dict[str, Any]:
    details = target.details
    workspace = None
    if target.scope_kind == "workspace":
        workspace = {"uid": target.scope_id, "name": target.name}
    cluster = None
    if target.cluster_uid is not None:
        cluster = {"uid": target.cluster_uid, "name": target.cluster_name}
    return {
        "kind": target.scope_kind,
        "description": target.describe(),
        "cluster": cluster,
        "project_uid": details.get("project_uid"),
        "namespace": target.name if target.scope_kind == "namespace" else None,
        "pool": target.name if target.scope_kind == "pool" else None,
        "workspace": workspace,
    }


def _pool(target: QuotaTarget) -> dict[str, Any] | None:
    if target.scope_kind != "pool":
        return None
    details = target.details
    return {
        "instance_type": details.get("instance_type"),
        "size": details.get("size"),
        "min_size": details.get("min_size"),
        "max_size": details.get("max_size"),
        "gpus_per_node": details.get("gpus_per_node"),
    }


def record_quota_alerts(session: Session, run_id: str, alerts: Sequence[QuotaAlert]) -> None:
    """Upsert each alert on its stable id, keeping the time it was first seen."""
    for alert in alerts:
        target = alert.projection.target
        record = session.get(AlertRecord, alert.alert_id)
        if record is None:
            record = AlertRecord(
                alert_id=alert.alert_id,
                budget=f"quota {target.describe()}"[:255],
                period_start=alert.projection.window_start,
                kind=f"{ALERT_KIND}:{target.resource}:{target.limit_kind}",
                first_seen=alert.generated_at,
            )
            session.add(record)
        record.severity = alert.severity
        record.payload = quota_payload(alert)
        record.last_seen = alert.generated_at
        record.run_id = run_id
