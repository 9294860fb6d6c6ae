"""Store the anomalies of a pass and the alerts among them, and read them back.

Every anomaly of a report is upserted into ``anomalies`` on its stable id, keeping the time it
was first seen. Alerting anomalies are also upserted into ``alerts``, like budget and quota
alerts. A stored ongoing anomaly that the pass no longer finds has either settled into the
baseline (a level shift becomes the ``new_normal``) or ended (``resolved``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.anomaly.alerts import ALERT_KIND, anomaly_payload
from costwarden.config import AnomalySettings
from costwarden.domain.anomaly import Anomaly, AnomalyReport
from costwarden.store.tables import AlertRecord, AnomalyRecord


def record_anomalies(
    session: Session,
    run_id: str,
    report: AnomalyReport,
    settings: AnomalySettings,
    generated_at: datetime,
) -> None:
    """Upsert the report's anomalies and alerts, and close stored anomalies no longer found."""
    parents = {
        related.anomaly_id: anomaly.anomaly_id
        for anomaly in report.anomalies + report.suppressed
        for related in anomaly.related
    }
    seen: set[str] = set()
    for role, anomalies in (
        ("alert", report.anomalies),
        ("suppressed", report.suppressed),
        ("related", report.related),
    ):
        for anomaly in anomalies:
            payload = anomaly_payload(anomaly, settings, generated_at)
            parent = parents.get(anomaly.anomaly_id)
            _upsert_anomaly(session, anomaly, role, parent, payload, run_id, generated_at)
            seen.add(anomaly.anomaly_id)
            if role == "alert":
                _upsert_alert(session, anomaly, payload, run_id, generated_at)
    if report.data_end is not None:
        _close_missing(session, seen, report.data_end, run_id)


def _upsert_anomaly(
    session: Session,
    anomaly: Anomaly,
    role: str,
    parent_id: str | None,
    payload: dict[str, Any],
    run_id: str,
    generated_at: datetime,
) -> None:
    record = session.get(AnomalyRecord, anomaly.anomaly_id)
    if record is None:
        record = AnomalyRecord(
            anomaly_id=anomaly.anomaly_id,
            first_seen=anomaly.first_seen or generated_at,
        )
        session.add(record)

    top = anomaly.top_contributor
    record.scope_kind = anomaly.scope.kind
    record.scope_key = anomaly.scope.key
    record.scope_name = anomaly.scope.name[:400]
    record.cluster_uid = anomaly.scope.cluster_uid
    record.metric = anomaly.metric
    record.kind = anomaly.kind
    record.cause = anomaly.cause
    record.status = anomaly.status
    record.severity = payload["severity"]
    record.role = role
    record.parent_id = parent_id

    record.first_day = anomaly.first_day
    record.last_day = anomaly.last_day
    record.unit = anomaly.unit
    record.currency = anomaly.currency
    record.expected = anomaly.expected
    record.actual = anomaly.actual
    record.impact_per_day = anomaly.impact_per_day
    record.impact_total = anomaly.impact_total
    record.percent = anomaly.percent
    record.score = anomaly.score

    record.top_contributor = f"{top.dimension} {top.value}"[:400] if top else None
    record.payload = payload
    record.last_seen = generated_at
    record.run_id = run_id


def _upsert_alert(
    session: Session, anomaly: Anomaly, payload: dict[str, Any], run_id: str, generated_at: datetime
) -> None:
    record = session.get(AlertRecord, anomaly.anomaly_id)
    if record is None:
        record = AlertRecord(
            alert_id=anomaly.anomaly_id,
            budget=f"anomaly {anomaly.scope.describe()}"[:255],
            period_start=anomaly.first_day,
            kind=f"{ALERT_KIND}:{anomaly.metric}:{anomaly.cause}"[:128],
            first_seen=anomaly.first_seen or generated_at,
        )
        session.add(record)
    record.severity = payload["severity"]
    record.payload = payload
    record.last_seen = generated_at
    record.run_id = run_id


def _close_missing(session: Session, seen: set[str], data_end: date, run_id: str) -> None:
    query = select(AnomalyRecord).where(
        AnomalyRecord.status == "ongoing", AnomalyRecord.last_day <= data_end
    )
    for record in session.scalars(query):
        if record.anomaly_id in seen:
            continue
        record.status = "new_normal" if record.kind == "level_shift" else "resolved"
        record.payload = {**record.payload, "status": record.status}
        record.run_id = run_id


def list_anomalies(
    session: Session,
    *,
    roles: Iterable[str] = ("alert", "suppressed"),
    status: str | None = None,
    since: date | None = None,
    limit: int = 50,
) -> list[AnomalyRecord]:
    """Return stored anomalies, latest first day first."""
    query = select(AnomalyRecord).where(AnomalyRecord.role.in_(list(roles)))
    if status is not None:
        query = query.where(AnomalyRecord.status == status)
    if since is not None:
        query = query.where(AnomalyRecord.last_day >= since)
    query = query.order_by(AnomalyRecord.first_day.desc(), AnomalyRecord.anomaly_id).limit(limit)
    return list(session.scalars(query))
