"""Decide what each channel receives about the alerts of a pass, and queue it in the outbox.

``enqueue_notices`` runs inside the transaction that records the alerts, so an alert and its
outbox rows are committed or rolled back together. It keeps one ``NotificationRecord`` per alert
and channel: what was last sent to the channel, whether the alert waits for a digest, and whether
it is snoozed. The delivery worker sends the rows; it reads ``NotificationRecord.external_ref``
(keyed by the row's ``alert_id`` and ``channel``) to update or resolve in place.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from costwarden.config import NotifySettings
from costwarden.errors import ConfigError
from costwarden.notify.build import (
    FleetLabels,
    notice_from_anomaly_payload,
    notice_from_budget_payload,
    notice_from_quota_payload,
    notices_from_recommendations,
    recommendation_alert_id,
)
from costwarden.notify.noise import (
    goes_to_digest,
    latest_digest_time,
    material_change,
    split_leading,
)
from costwarden.notify.notice import SEVERITY_RANK, Notice
from costwarden.notify.registry import CHANNELS, DeliveryEvent
from costwarden.notify.routing import Router
from costwarden.store.tables import Cluster, Namespace, NotificationRecord, OutboxRecord

if TYPE_CHECKING:
    from costwarden.store import Store

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class EnqueueReport:
    """Counts of the decisions of one ``enqueue_notices`` call, per (notice, channel) pair."""

    triggered: int = 0
    updated: int = 0
    resolved: int = 0
    """Records moved to resolved, with or without a resolve row."""
    resolve_rows: int = 0
    digest_pending: int = 0
    unchanged: int = 0
    snoozed: int = 0
    unrouted: int = 0
    """Notices that no routing rule sent anywhere."""

    @property
    def queued(self) -> int:
        """Outbox rows written."""
        return self.triggered + self.updated + self.resolve_rows


class _DigestChannels:
    """Whether each configured channel takes digests, read from its validated settings."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._cache: dict[str, bool] = {}

    def takes_digest(self, channel: str) -> bool:
        if channel not in self._cache:
            try:
                options = CHANNELS.validate(channel, self.settings.channels[channel])
                self._cache[channel] = options.digest
            except (ConfigError, KeyError):
                self._cache[channel] = False
        return self._cache[channel]


def enqueue_notices(
    session: Session,
    settings: NotifySettings,
    notices: Sequence[Notice],
    *,
    evaluated_kinds: Collection[str],
    evaluated_budgets: Collection[str] = (),
    now: datetime,
    router: Router | None = None,
) -> EnqueueReport:
    """Update the notification records of a pass's notices and queue the outbox rows they need.

    ``evaluated_kinds`` names the notice kinds this pass evaluated; a firing record of such a
    kind whose notice is absent is resolved. Budget records are resolved only for the budgets in
    ``evaluated_budgets``, so a budget without data keeps its alerts. Notices in state
    ``resolved`` count as absent. A record of an alert that still fires but no longer routes to
    the record's channel is left as it is: the channel gets nothing while the alert fires, and
    its resolve notice when the alert stops. ``router`` carries the routing warnings across the
    calls of one pass.
    """
    router = router or Router(settings)
    digests = _DigestChannels(settings)
    report = EnqueueReport()
    present: set[tuple[str, str]] = set()

    firing = [notice for notice in notices if notice.state == "firing"]
    leading, covered = split_leading(firing)
    for notice in leading:
        targets = router.route(notice)
        if not targets:
            report.unrouted += 1
        for channel, route in targets:
            present.add((notice.alert_id, channel))
            _notify(session, settings, notice, channel, route, now, digests, report)
    for notice in covered:
        for channel, _route in router.route(notice):
            present.add((notice.alert_id, channel))
            _touch(session, notice, channel, now)

    still_firing = {notice.alert_id for notice in firing}
    _resolve_absent(
        session, settings, present, still_firing, evaluated_kinds, evaluated_budgets, now, report
    )
    session.flush()
    logger.debug("notifications queued: %s", report)
    return report


def _notify(
    session: Session,
    settings: NotifySettings,
    notice: Notice,
    channel: str,
    route: str,
    now: datetime,
    digests: _DigestChannels,
    report: EnqueueReport,
) -> None:
    """Apply one notice to one channel's record: trigger, update, digest or nothing."""
    record = session.get(NotificationRecord, (notice.alert_id, channel))
    digest = goes_to_digest(notice, settings.noise, digests.takes_digest(channel))
    same_period = record is not None and record.period_key == notice.period_key

    if record is not None and same_period and _snoozed(record, now):
        record.last_seen_at = now
        report.snoozed += 1
        return

    if record is None or not same_period or record.state != "firing":
        record = _start(session, record, notice, channel, route, now)
        _first_notice(session, record, notice, route, now, digest, report)
        return

    record.last_seen_at = now
    record.notice = notice.to_json()
    if record.digest_pending:
        _pending_digest(session, record, notice, route, now, digest, report)
        return

    if not material_change(record, notice, settings.noise):
        report.unchanged += 1
        return

    _remember(record, notice, now)
    if _was_sent(session, record):
        _queue(session, channel, "update", [notice], route, notice.alert_id, now)
        report.updated += 1
    elif digest:
        record.digest_pending = True
        report.digest_pending += 1
    else:
        _queue(session, channel, "trigger", [notice], route, notice.alert_id, now)
        report.triggered += 1


def _first_notice(
    session: Session,
    record: NotificationRecord,
    notice: Notice,
    route: str,
    now: datetime,
    digest: bool,
    report: EnqueueReport,
) -> None:
    if digest:
        record.digest_pending = True
        report.digest_pending += 1
        return
    _queue(session, record.channel, "trigger", [notice], route, notice.alert_id, now)
    report.triggered += 1


def _pending_digest(
    session: Session,
    record: NotificationRecord,
    notice: Notice,
    route: str,
    now: datetime,
    digest: bool,
    report: EnqueueReport,
) -> None:
    """Refresh an alert that waits for a digest; a severity above the digest sends it now."""
    _remember(record, notice, now)
    if digest:
        report.unchanged += 1
        return
    record.digest_pending = False
    _queue(session, record.channel, "trigger", [notice], route, notice.alert_id, now)
    report.triggered += 1


def _start(
    session: Session,
    record: NotificationRecord | None,
    notice: Notice,
    channel: str,
    route: str,
    now: datetime,
) -> NotificationRecord:
    """Insert the record of a new alert on a channel, or reset one from an earlier period."""
    if record is None:
        record = NotificationRecord(alert_id=notice.alert_id, channel=channel)
        session.add(record)
    record.kind = notice.kind
    record.budget = notice.budget
    record.period_key = notice.period_key
    record.route = route
    record.state = "firing"
    record.external_ref = None
    record.digest_pending = False
    record.snoozed_until = None
    record.first_notified_at = now
    record.last_seen_at = now
    record.notice = notice.to_json()
    _remember(record, notice, now)
    return record


def _remember(record: NotificationRecord, notice: Notice, now: datetime) -> None:
    """Store the values sent to the channel now, which the next pass compares against."""
    record.severity = notice.severity
    record.probability = notice.probability
    record.breach_date = notice.breach_date
    record.overspend = notice.overspend
    record.last_notified_at = now


def _touch(session: Session, notice: Notice, channel: str, now: datetime) -> None:
    """Keep the record of a covered notice firing without telling the channel anything."""
    record = session.get(NotificationRecord, (notice.alert_id, channel))
    if record is not None and record.state == "firing":
        record.last_seen_at = now
        record.notice = notice.to_json()


def _snoozed(record: NotificationRecord, now: datetime) -> bool:
    return record.snoozed_until is not None and record.snoozed_until > now


def _was_sent(session: Session, record: NotificationRecord) -> bool:
    """Return True when a trigger row of the record's current firing went, or is going, out."""
    found = session.scalar(
        select(OutboxRecord.id)
        .where(
            OutboxRecord.alert_id == record.alert_id,
            OutboxRecord.channel == record.channel,
            OutboxRecord.event == "trigger",
            OutboxRecord.status != "cancelled",
            OutboxRecord.created_at >= record.first_notified_at,
        )
        .limit(1)
    )
    return found is not None


def _resolve_absent(
    session: Session,
    settings: NotifySettings,
    present: set[tuple[str, str]],
    still_firing: set[str],
    evaluated_kinds: Collection[str],
    evaluated_budgets: Collection[str],
    now: datetime,
    report: EnqueueReport,
) -> None:
    """Resolve the firing records of evaluated kinds whose alert this pass did not raise.

    A record whose alert is in ``still_firing`` but was not routed to the record's channel
    (the routes changed) stays firing, untouched: telling that channel "resolved" would be
    false. When the alert later stops firing, the record resolves here and the channel that
    got the trigger gets the resolve, so a PagerDuty incident or a ticket closes.
    """
    if not evaluated_kinds:
        return
    records = session.scalars(
        select(NotificationRecord).where(
            NotificationRecord.state == "firing",
            NotificationRecord.kind.in_(list(evaluated_kinds)),
        )
    ).all()
    for record in records:
        if (record.alert_id, record.channel) in present or record.alert_id in still_firing:
            continue
        # NOTE: a budget deleted from the budget file is never evaluated again, so its firing
        # records stay firing and its channels get no resolve notice.
        if record.kind == "budget" and record.budget not in evaluated_budgets:
            continue
        _resolve(session, settings, record, now, report)


def _resolve(
    session: Session,
    settings: NotifySettings,
    record: NotificationRecord,
    now: datetime,
    report: EnqueueReport,
) -> None:
    record.state = "resolved"
    record.digest_pending = False
    report.resolved += 1
    if not settings.noise.resolve_notices or record.channel not in settings.channels:
        return
    if not _was_sent(session, record):
        return

    notice = replace(Notice.from_json(record.notice), state="resolved", generated_at=now)
    _queue(session, record.channel, "resolve", [notice], record.route, record.alert_id, now)
    report.resolve_rows += 1


def _queue(
    session: Session,
    channel: str,
    event: DeliveryEvent,
    notices: Sequence[Notice] | Sequence[dict[str, Any]],
    route: str | None,
    alert_id: str | None,
    now: datetime,
) -> OutboxRecord:
    """Add one pending outbox row for the worker to send."""
    row = OutboxRecord(
        id=str(uuid.uuid4()),
        channel=channel,
        alert_id=alert_id,
        event=event,
        route=route,
        notices=[item.to_json() if isinstance(item, Notice) else dict(item) for item in notices],
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def collect_digests(session: Session, settings: NotifySettings, now: datetime) -> int:
    """Queue one digest row per channel whose digest time passed; return the rows written.

    A channel is due when the latest local digest time (``noise.digest_time`` in
    ``noise.digest_timezone``) lies after its last digest row, or after its oldest waiting alert
    when it never had one. Snoozed alerts keep waiting. The digest lists the most severe first.
    """
    due_at = latest_digest_time(now, settings.noise)
    waiting = session.scalars(
        select(NotificationRecord)
        .where(NotificationRecord.digest_pending.is_(True), NotificationRecord.state == "firing")
        .order_by(NotificationRecord.channel, NotificationRecord.first_notified_at)
    ).all()

    by_channel: dict[str, list[NotificationRecord]] = {}
    for record in waiting:
        if not _snoozed(record, now) and record.channel in settings.channels:
            by_channel.setdefault(record.channel, []).append(record)

    written = 0
    for channel, records in by_channel.items():
        since = _last_digest_at(session, channel) or min(r.first_notified_at for r in records)
        if due_at <= since:
            continue
        _queue_digest(session, channel, records, now)
        written += 1
    session.flush()
    return written


def _last_digest_at(session: Session, channel: str) -> datetime | None:
    return session.scalar(
        select(func.max(OutboxRecord.created_at)).where(
            OutboxRecord.channel == channel, OutboxRecord.event == "digest"
        )
    )


def _queue_digest(
    session: Session, channel: str, records: list[NotificationRecord], now: datetime
) -> None:
    ordered = sorted(records, key=lambda r: -SEVERITY_RANK.get(r.severity, 0))
    _queue(session, channel, "digest", [r.notice for r in ordered], None, None, now)
    for record in ordered:
        record.digest_pending = False
        record.last_notified_at = now
    logger.info("digest of %d alerts queued for channel %s", len(ordered), channel)


def load_fleet_labels(session: Session) -> FleetLabels:
    """Read the stored cluster and namespace labels that notices of a scope carry."""
    clusters: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    for uid, name, labels in session.execute(select(Cluster.uid, Cluster.name, Cluster.labels)):
        clusters[uid] = dict(labels or {})
        clusters.setdefault(name, dict(labels or {}))
        names[uid] = name

    namespaces: dict[tuple[str, str], dict[str, str]] = {}
    rows = session.execute(select(Namespace.cluster_uid, Namespace.name, Namespace.labels))
    for cluster_uid, name, labels in rows:
        if not labels:
            continue
        namespaces[(cluster_uid, name)] = dict(labels)
        if cluster_uid in names:
            namespaces.setdefault((names[cluster_uid], name), dict(labels))
    return FleetLabels(clusters=clusters, namespaces=namespaces)


class PassNotifier:
    """Queue the notifications of one pass, stage by stage, each in its stage's transaction.

    It does nothing when ``notify.routes`` is empty. One router serves the whole pass, so a
    routing warning is logged once per pass.
    """

    def __init__(self, settings: NotifySettings, now: datetime) -> None:
        self.settings = settings
        self.now = now
        self.enabled = bool(settings.routes)
        self.router = Router(settings)
        self.queued = 0

    def budgets(
        self,
        session: Session,
        payloads: Sequence[Mapping[str, Any]],
        evaluated_budgets: Collection[str],
        approvals: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """Queue the notices of a pass's budget alerts.

        ``approvals`` maps a recommendation notice's alert id to its pending approval request.
        A budget alert carries the request of its first recommended action that has one, so
        its buttons and links decide that change.
        """
        if not self.enabled:
            return
        notices = [notice_from_budget_payload(payload, self.settings) for payload in payloads]
        if approvals:
            notices = [_with_action_approval(notice, approvals) for notice in notices]
        self._enqueue(session, notices, ("budget",), evaluated_budgets)

    def quota(self, session: Session, payloads: Sequence[Mapping[str, Any]]) -> None:
        if not self.enabled:
            return
        fleet = load_fleet_labels(session)
        notices = [
            notice_from_quota_payload(payload, self.settings, fleet=fleet) for payload in payloads
        ]
        self._enqueue(session, notices, ("quota",))

    def anomalies(self, session: Session, payloads: Sequence[Mapping[str, Any]]) -> None:
        if not self.enabled:
            return
        fleet = load_fleet_labels(session)
        notices = [
            notice_from_anomaly_payload(payload, self.settings, fleet=fleet)
            for payload in payloads
        ]
        self._enqueue(session, notices, ("anomaly",))

    def recommendations(
        self,
        session: Session,
        items: Sequence[Mapping[str, Any]],
        approvals: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """Queue the notices of a pass's recommendations; call it only when a report exists.

        ``approvals`` maps a notice's alert id to its pending approval request (see
        ``Notice.approval``).
        """
        if not self.enabled:
            return
        fleet = load_fleet_labels(session)
        notices = notices_from_recommendations(items, self.settings, self.now, fleet=fleet)
        if approvals:
            notices = [
                replace(notice, approval=approvals[notice.alert_id])
                if notice.alert_id in approvals
                else notice
                for notice in notices
            ]
        self._enqueue(session, notices, ("recommendation",))

    def collect_digests(self, store: Store) -> None:
        if not self.enabled:
            return
        with store.transaction() as session:
            self.queued += collect_digests(session, self.settings, self.now)

    def _enqueue(
        self,
        session: Session,
        notices: Sequence[Notice],
        kinds: Collection[str],
        evaluated_budgets: Collection[str] = (),
    ) -> None:
        report = enqueue_notices(
            session,
            self.settings,
            notices,
            evaluated_kinds=kinds,
            evaluated_budgets=evaluated_budgets,
            now=self.now,
            router=self.router,
        )
        self.queued += report.queued
        logger.info(
            "%s notifications: %d triggers, %d updates, %d resolves, %d waiting for a digest, "
            "%d unchanged, %d snoozed",
            "/".join(kinds), report.triggered, report.updated, report.resolve_rows,
            report.digest_pending, report.unchanged, report.snoozed,
        )


def _with_action_approval(notice: Notice, approvals: Mapping[str, dict[str, Any]]) -> Notice:
    """Return ``notice`` with the approval request of its first recommended action that has one."""
    for action in notice.actions:
        approval = approvals.get(recommendation_alert_id(action.id))
        if approval is not None:
            return replace(notice, approval=approval)
    return notice
