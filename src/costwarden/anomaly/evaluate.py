"""The anomaly pass: detect, explain, relate, keep ids across passes, and apply feedback.

Scopes overlap, so one change shows up in a cluster, its namespaces and the groups that contain
it. ``relate`` keeps one alert per change:

1. every cluster anomaly alerts;
2. a namespace anomaly is listed under an overlapping anomaly of its cluster, or alerts alone;
3. a group anomaly (project, profile, label, cloud), smallest group first, is listed under the
   overlapping alerting anomalies of its clusters when they carry at least ``related_share`` of
   its excess, or alerts alone (a change spread thinly over many clusters);
4. a utilisation anomaly is listed under a cost anomaly of the same cluster with the same cause.

Anomalies overlap when their days intersect or touch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.anomaly.cost import find_cost_anomalies
from costwarden.anomaly.feedback import load_feedback, precision, suppression
from costwarden.anomaly.scorers import SeriesScorer
from costwarden.anomaly.utilisation import UsageSource, find_utilisation_anomalies
from costwarden.config import Settings
from costwarden.domain.anomaly import Anomaly, AnomalyReport, RelatedScope
from costwarden.store.tables import AnomalyRecord

logger = logging.getLogger(__name__)

GROUP_KINDS = ("project", "profile", "label", "cloud")


def evaluate_anomalies(
    session: Session,
    settings: Settings,
    as_of: datetime,
    generated_at: datetime,
    *,
    usage_source: UsageSource | None = None,
    scorer: SeriesScorer | None = None,
) -> AnomalyReport:
    """Find the cost and utilisation anomalies of the days before ``as_of`` and decide alerts."""
    started = time.monotonic()
    config = settings.anomaly
    cost = find_cost_anomalies(session, settings, as_of)
    found = list(cost.anomalies)
    if config.utilisation:
        found += find_utilisation_anomalies(
            session, settings, as_of, source=usage_source, scorer=scorer
        )

    found = keep_stored_ids(session, found, generated_at)
    primaries, related = relate(found, config.related_share)
    feedback = load_feedback(session)
    alerting, suppressed = [], []
    for anomaly in primaries:
        reason = suppression(anomaly, feedback, as_of.date())
        if reason is None:
            alerting.append(anomaly)
        else:
            suppressed.append(replace(anomaly, suppressed_by=reason))

    detection = cost.detection
    report = AnomalyReport(
        as_of=as_of,
        data_end=cost.panel.last_day if cost.panel else None,
        anomalies=tuple(sorted(alerting, key=_impact, reverse=True)),
        suppressed=tuple(suppressed),
        related=tuple(related),
        scopes_checked=detection.checked_rows if detection else 0,
        scopes_skipped=(len(cost.panel.scopes) - detection.checked_rows)
        if cost.panel and detection
        else 0,
        scope_days=detection.scope_days if detection else 0,
        precision=precision(feedback),
        notes=(cost.note,) if cost.note else (),
    )
    logger.info(
        "anomaly pass: %d scopes checked, %d skipped for short history, %d scope-days, "
        "%d alerting, %d suppressed, %d related, %.1f s",
        report.scopes_checked,
        report.scopes_skipped,
        report.scope_days,
        len(report.anomalies),
        len(report.suppressed),
        len(report.related),
        time.monotonic() - started,
    )
    return report


def relate(
    anomalies: Sequence[Anomaly], related_share: float
) -> tuple[list[Anomaly], list[Anomaly]]:
    """Return the anomalies that alert, each with its related ones, and the related ones."""
    primaries: dict[str, Anomaly] = {}
    parent: dict[str, str] = {}
    cost = [anomaly for anomaly in anomalies if anomaly.metric == "cost"]

    for anomaly in cost:
        if anomaly.scope.kind == "cluster":
            primaries[anomaly.anomaly_id] = anomaly
    for anomaly in cost:
        if anomaly.scope.kind == "namespace":
            host = _same_cluster(anomaly, primaries.values())
            _place(anomaly, host, primaries, parent)
    groups = [anomaly for anomaly in cost if anomaly.scope.kind in GROUP_KINDS]
    for anomaly in sorted(groups, key=lambda item: len(item.scope.cluster_uids)):
        host = _explaining(anomaly, primaries.values(), related_share)
        _place(anomaly, host, primaries, parent)
    for anomaly in anomalies:
        if anomaly.metric != "cost":
            host = _same_cause(anomaly, primaries.values())
            _place(anomaly, host, primaries, parent)

    related: list[Anomaly] = []
    children: dict[str, list[Anomaly]] = {}
    for anomaly in anomalies:
        if anomaly.anomaly_id in parent:
            related.append(anomaly)
            children.setdefault(parent[anomaly.anomaly_id], []).append(anomaly)
    result = [
        replace(anomaly, related=tuple(_related(child) for child in children.get(key, ())))
        for key, anomaly in primaries.items()
    ]
    return result, related


def keep_stored_ids(
    session: Session, anomalies: Sequence[Anomaly], generated_at: datetime
) -> list[Anomaly]:
    """Give each anomaly the id and first-seen time of the stored anomaly it continues.

    A stored anomaly of the same scope and metric continues when its days overlap or touch the
    new one's. Otherwise the anomaly is new and first seen now.
    """
    keys = {anomaly.scope.key for anomaly in anomalies}
    stored: dict[tuple[str, str], list[AnomalyRecord]] = {}
    if keys:
        query = select(AnomalyRecord).where(AnomalyRecord.scope_key.in_(keys))
        for record in session.scalars(query):
            stored.setdefault((record.scope_key, record.metric), []).append(record)

    used: set[str] = set()
    result = []
    for anomaly in anomalies:
        match = _continued(anomaly, stored.get((anomaly.scope.key, anomaly.metric), []), used)
        if match is None:
            result.append(replace(anomaly, first_seen=generated_at))
            continue
        used.add(match.anomaly_id)
        result.append(replace(anomaly, anomaly_id=match.anomaly_id, first_seen=match.first_seen))
    return result


def _continued(
    anomaly: Anomaly, records: Sequence[AnomalyRecord], used: set[str]
) -> AnomalyRecord | None:
    touching = [
        record
        for record in records
        if record.anomaly_id not in used
        and record.first_day <= anomaly.last_day + timedelta(days=1)
        and record.last_day >= anomaly.first_day - timedelta(days=1)
    ]
    if not touching:
        return None
    return max(touching, key=lambda record: record.last_seen)


def _place(
    anomaly: Anomaly, host: Anomaly | None, primaries: dict[str, Anomaly], parent: dict[str, str]
) -> None:
    if host is None:
        primaries[anomaly.anomaly_id] = anomaly
    else:
        parent[anomaly.anomaly_id] = host.anomaly_id


def _overlap(left: Anomaly, right: Anomaly) -> bool:
    return left.first_day <= right.last_day + timedelta(
        days=1
    ) and right.first_day <= left.last_day + timedelta(days=1)


def _same_cluster(anomaly: Anomaly, primaries: Iterable[Anomaly]) -> Anomaly | None:
    for candidate in primaries:
        if (
            candidate.scope.kind == "cluster"
            and candidate.metric == "cost"
            and candidate.scope.cluster_uids == anomaly.scope.cluster_uids
            and _overlap(candidate, anomaly)
        ):
            return candidate
    return None


def _explaining(anomaly: Anomaly, primaries: Iterable[Anomaly], share: float) -> Anomaly | None:
    """Return the largest contained alerting anomaly when those carry enough of the excess."""
    inside = [
        candidate
        for candidate in primaries
        if candidate.metric == "cost"
        and candidate.scope.cluster_uids <= anomaly.scope.cluster_uids
        and candidate.anomaly_id != anomaly.anomaly_id
        and _overlap(candidate, anomaly)
    ]
    if not inside or anomaly.impact_per_day is None or anomaly.impact_per_day <= 0:
        return None
    carried = sum((_impact(candidate) for candidate in inside), Decimal(0))
    if carried < Decimal(str(share)) * anomaly.impact_per_day:
        return None
    return max(inside, key=_impact)


def _same_cause(anomaly: Anomaly, primaries: Iterable[Anomaly]) -> Anomaly | None:
    for candidate in primaries:
        if (
            candidate.metric == "cost"
            and candidate.scope.cluster_uid is not None
            and candidate.scope.cluster_uid == anomaly.scope.cluster_uid
            and candidate.cause == anomaly.cause
            and _overlap(candidate, anomaly)
        ):
            return candidate
    return None


def _related(anomaly: Anomaly) -> RelatedScope:
    return RelatedScope(anomaly.scope, anomaly.impact_per_day, anomaly.anomaly_id)


def _impact(anomaly: Anomaly) -> Decimal:
    return anomaly.impact_per_day if anomaly.impact_per_day is not None else Decimal(0)
