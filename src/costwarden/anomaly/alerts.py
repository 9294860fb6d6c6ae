"""Anomaly alert severity, titles and the payload of ``docs/schemas/anomaly-alert.schema.json``.

The payload belongs to the same family as the budget and quota alerts: ``schema_version``,
``alert_id``, ``kind``, ``severity``, ``title``, ``scope``, ``contributors``, ``links``,
``data_window``, ``model`` and ``generated_at`` mean the same in all three.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from costwarden.config import AnomalySettings
from costwarden.domain.anomaly import Anomaly
from costwarden.domain.cost import quantize_money
from costwarden.domain.event import ClusterEvent

ANOMALY_SCHEMA_VERSION = "1.0"
ALERT_KIND = "anomaly"
CRITICAL_CAUSES = frozenset({"cryptomining"})
"""Causes that are critical whatever their cost, because they point at a security problem."""


def severity(anomaly: Anomaly, settings: AnomalySettings) -> str:
    """Return ``critical`` for a large cost impact or a security cause, else ``warning``."""
    if anomaly.cause in CRITICAL_CAUSES:
        return "critical"
    impact = anomaly.impact_per_day
    if impact is not None and impact >= settings.critical_impact_per_day:
        return "critical"
    return "warning"


def title(anomaly: Anomaly) -> str:
    """Return one line: the scope, expected against actual per day, and the likely cause."""
    cause = anomaly.triage.likely_cause if anomaly.triage else "cause unknown"
    since = f"since {anomaly.first_day.isoformat()}"
    if anomaly.status == "resolved":
        since = f"from {anomaly.first_day.isoformat()} to {anomaly.last_day.isoformat()}"
    if anomaly.metric == "cost":
        percent = f" ({anomaly.percent:+.0%})" if anomaly.percent is not None else ""
        return (
            f"{anomaly.scope.describe()}: {_money(anomaly.actual)} {anomaly.currency}/day "
            f"against {_money(anomaly.expected)} expected {since}{percent}; {cause}"
        )
    return (
        f"{anomaly.scope.describe()}: {anomaly.metric} {float(anomaly.actual):,.1f} {anomaly.unit} "
        f"against {float(anomaly.expected):,.1f} expected {since}; {cause}"
    )


def anomaly_payload(
    anomaly: Anomaly, settings: AnomalySettings, generated_at: datetime
) -> dict[str, Any]:
    """Serialise an anomaly to the versioned anomaly alert payload."""
    triage = anomaly.triage
    return {
        "schema_version": ANOMALY_SCHEMA_VERSION,
        "alert_id": anomaly.anomaly_id,
        "kind": ALERT_KIND,
        "anomaly_kind": anomaly.kind,
        "metric": anomaly.metric,
        "severity": severity(anomaly, settings),
        "title": title(anomaly),
        "currency": anomaly.currency,
        "status": anomaly.status,
        "suppressed_by": anomaly.suppressed_by,
        "scope": _scope(anomaly),
        "first_day": anomaly.first_day.isoformat(),
        "last_day": anomaly.last_day.isoformat(),
        "days": anomaly.days,
        "first_seen": _utc(anomaly.first_seen or generated_at),
        "values": {
            "unit": anomaly.unit,
            "expected_per_day": _number(anomaly.expected, anomaly.metric),
            "actual_per_day": _number(anomaly.actual, anomaly.metric),
            "lower_per_day": _number(anomaly.lower, anomaly.metric),
            "upper_per_day": _number(anomaly.upper, anomaly.metric),
        },
        "impact": {
            "per_day": _cents(anomaly.impact_per_day),
            "total": _cents(anomaly.impact_total),
            "percent": None if anomaly.percent is None else round(anomaly.percent, 4),
        },
        "score": round(anomaly.score, 3),
        "triage": {
            "cause": anomaly.cause,
            "likely_cause": triage.likely_cause if triage else "cause unknown",
            "evidence": list(triage.evidence) if triage else [],
            "next_step": triage.next_step if triage else "",
            "confidence": triage.confidence if triage else "low",
            "link": triage.link if triage else None,
        },
        "contributors": [_contributor(item, anomaly.metric) for item in anomaly.contributors],
        "drivers": [
            {
                "name": driver.name,
                "side": driver.side,
                "amount": _cents(driver.amount),
                "share": None if driver.share is None else round(driver.share, 4),
                "detail": driver.detail,
            }
            for driver in anomaly.drivers
        ],
        "events": [_event(event) for event in anomaly.events],
        "related": [
            {
                "anomaly_id": related.anomaly_id,
                "scope": related.scope.describe(),
                "impact_per_day": _cents(related.impact_per_day),
            }
            for related in anomaly.related
        ],
        "daily": [
            {
                "day": day.day.isoformat(),
                "expected": round(day.expected, 2),
                "actual": round(day.actual, 2),
                "lower": round(day.lower, 2),
                "upper": round(day.upper, 2),
                "score": round(day.score, 3),
            }
            for day in anomaly.daily
        ],
        "links": {"palette": triage.link if triage else None},
        "data_window": {
            "start": anomaly.data_start.isoformat(),
            "end": anomaly.data_end.isoformat(),
            "as_of": _utc(anomaly.as_of),
        },
        "model": {
            "name": str(anomaly.params.get("method", "")),
            "version": str(anomaly.params.get("version", "1")),
            "params": {key: value for key, value in anomaly.params.items() if key != "method"},
        },
        "generated_at": _utc(generated_at),
    }


def _scope(anomaly: Anomaly) -> dict[str, Any]:
    scope = anomaly.scope
    cluster = None
    if scope.cluster_uid is not None:
        cluster = {"uid": scope.cluster_uid, "name": scope.cluster_name}
    return {
        "kind": scope.kind,
        "key": scope.key,
        "description": scope.describe(),
        "cluster": cluster,
        "namespace": scope.namespace,
        "project_uid": scope.project_uid,
        "clusters": len(scope.cluster_uids),
    }


def _contributor(item: Any, metric: str) -> dict[str, Any]:
    return {
        "dimension": item.dimension,
        "value": item.value,
        "expected": _number(item.expected, metric),
        "actual": _number(item.actual, metric),
        "delta": _number(item.delta, metric),
        "share": None if item.share is None else round(item.share, 4),
    }


def _event(event: ClusterEvent) -> dict[str, Any]:
    return {
        "uid": event.uid,
        "cluster_uid": event.cluster_uid,
        "cluster_name": event.cluster_name,
        "created_at": _utc(event.created_at),
        "reason": event.reason,
        "message": event.message,
        "severity": event.severity,
        "involved_kind": event.involved_kind,
        "involved_name": event.involved_name,
    }


def _number(value: Decimal | None, metric: str) -> float | None:
    if value is None:
        return None
    if metric == "cost":
        return float(quantize_money(value))
    return round(float(value), 3)


def _cents(value: Decimal | None) -> float | None:
    return None if value is None else float(quantize_money(value))


def _money(value: Decimal) -> str:
    return f"{quantize_money(value):,.2f}"


def _utc(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
