"""Record the decisions people make in channels, once each.

Approve and reject are recorded against the alert for the approval workflow to act on, and the
first of them wins, whichever channel it came from (Slack, a signed link, Jira, ServiceNow).
Each approval or rejection is stored under an id derived from the alert id alone, so the
database's primary key refuses a second decision even when two arrive at the same moment on
different replicas. Snooze also silences the alert on every channel until the snooze ends; it
can be repeated.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from costwarden.notify.registry import InboundResponse
from costwarden.store.tables import AlertResponseRecord, NotificationRecord, OutboxRecord

if TYPE_CHECKING:
    from costwarden.store import Store

logger = logging.getLogger(__name__)

DEFAULT_SNOOZE_HOURS = 24
MAX_SNOOZE_HOURS = 720
"""Longest snooze, 30 days; a longer request is refused."""
DECISIONS = ("approve", "reject")
DECISION_NAMESPACE = uuid.UUID("6f1d3c2e-8a47-4b0f-9d35-2c7e51a9b804")
STORE_ATTEMPTS = 2
"""A write that loses a race is read back once; the winner is then visible."""

OutcomeStatus = Literal["recorded", "duplicate", "decided", "unknown"]


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """The result of recording a decision.

    ``status`` is recorded, duplicate (this callback was recorded before), decided (the alert
    already has an approval or a rejection) or unknown (no notification of this alert, or of
    this alert on this channel, exists, so nothing is recorded). ``record`` is the new record,
    the earlier one with the same key, or the earlier decision; ``None`` when unknown.
    """

    status: OutcomeStatus
    record: AlertResponseRecord | None

    @property
    def created(self) -> bool:
        return self.status == "recorded"


def decision_id(alert_id: str) -> str:
    """Return the id of an alert's approval or rejection: the same for every channel."""
    return str(uuid.uuid5(DECISION_NAMESPACE, alert_id))


def snooze_hours_error(hours: int) -> str | None:
    """Return why ``hours`` is not a valid snooze, or ``None`` when it is."""
    if 1 <= hours <= MAX_SNOOZE_HOURS:
        return None
    return f"a snooze lasts 1 to {MAX_SNOOZE_HOURS} hours (30 days), not {hours}"


def record_response(
    session: Session, response: InboundResponse
) -> tuple[AlertResponseRecord, bool]:
    """Store a decision and return it with ``True``, or the earlier record with ``False``.

    A decision whose ``dedupe_key`` was seen before changes nothing, and neither does an
    approve or reject of an alert that already has one. A concurrent writer that wins the race
    makes the flush raise ``IntegrityError``; ``store_response`` handles that.
    """
    earlier = _earlier(session, response)
    if earlier is not None:
        return earlier, False

    snoozed_until = None
    if response.action == "snooze":
        hours = response.snooze_hours or DEFAULT_SNOOZE_HOURS
        problem = snooze_hours_error(hours)
        if problem is not None:
            raise ValueError(problem)
        snoozed_until = response.received_at + timedelta(hours=hours)
        session.execute(
            update(NotificationRecord)
            .where(NotificationRecord.alert_id == response.alert_id)
            .values(snoozed_until=snoozed_until)
        )
        session.execute(
            update(OutboxRecord)
            .where(
                OutboxRecord.alert_id == response.alert_id,
                OutboxRecord.status == "pending",
                OutboxRecord.event.in_(("trigger", "update")),
            )
            .values(status="cancelled", updated_at=response.received_at, last_error="snoozed")
        )

    record = AlertResponseRecord(
        id=decision_id(response.alert_id) if response.action in DECISIONS else str(uuid.uuid4()),
        alert_id=response.alert_id,
        channel=response.channel,
        action=response.action,
        actor=response.actor,
        dedupe_key=response.dedupe_key,
        received_at=response.received_at,
        snoozed_until=snoozed_until,
        detail=dict(response.detail),
    )
    session.add(record)
    session.flush()
    logger.info(
        "%s of alert %s by %s from channel %s recorded",
        response.action, response.alert_id, response.actor, response.channel,
    )
    return record, True


def store_response(
    store: Store, response: InboundResponse, *, same_channel: bool = False
) -> ResponseOutcome:
    """Record a decision in its own transaction and say what happened.

    The alert must have a notification: on the response's channel when ``same_channel`` (a
    signed link names its channel), on any channel otherwise. When a concurrent request
    records the same callback or the alert's first decision first, the losing write is rolled
    back and the winner is returned as duplicate or decided.
    """
    for attempt in range(STORE_ATTEMPTS):
        try:
            with store.transaction() as session:
                return outcome_of(session, response, same_channel=same_channel)
        except IntegrityError:
            if attempt + 1 == STORE_ATTEMPTS:
                raise
            logger.info(
                "%s of alert %s lost a race with a concurrent decision; reading the winner",
                response.action, response.alert_id,
            )
    raise AssertionError("unreachable")


def outcome_of(
    session: Session, response: InboundResponse, *, same_channel: bool = False
) -> ResponseOutcome:
    """Record a decision in the caller's transaction; see ``store_response``."""
    used = session.scalar(
        select(AlertResponseRecord).where(AlertResponseRecord.dedupe_key == response.dedupe_key)
    )
    if used is not None:
        return ResponseOutcome("duplicate", used)
    if not alert_known(session, response.alert_id, response.channel if same_channel else None):
        logger.warning(
            "%s of unknown alert %s from channel %s refused", response.action,
            response.alert_id, response.channel,
        )
        return ResponseOutcome("unknown", None)
    if response.action in DECISIONS:
        decided = decision_of(session, response.alert_id)
        if decided is not None:
            return ResponseOutcome("decided", decided)
    record, created = record_response(session, response)
    if created:
        return ResponseOutcome("recorded", record)
    same = record.dedupe_key == response.dedupe_key
    return ResponseOutcome("duplicate" if same else "decided", record)


def alert_known(session: Session, alert_id: str, channel: str | None = None) -> bool:
    """Return whether a notification of the alert exists (on ``channel``, when given)."""
    query = select(NotificationRecord.alert_id).where(NotificationRecord.alert_id == alert_id)
    if channel is not None:
        query = query.where(NotificationRecord.channel == channel)
    return session.scalar(query.limit(1)) is not None


def decision_of(session: Session, alert_id: str) -> AlertResponseRecord | None:
    """Return the first approval or rejection of an alert, or ``None``."""
    return session.scalar(
        select(AlertResponseRecord)
        .where(
            AlertResponseRecord.alert_id == alert_id,
            AlertResponseRecord.action.in_(DECISIONS),
        )
        .order_by(AlertResponseRecord.received_at)
        .limit(1)
    )


def _earlier(session: Session, response: InboundResponse) -> AlertResponseRecord | None:
    """Return the record of the same callback, or the alert's decision for approve and reject."""
    same_key = AlertResponseRecord.dedupe_key == response.dedupe_key
    if response.action not in DECISIONS:
        return session.scalar(select(AlertResponseRecord).where(same_key))
    decided = AlertResponseRecord.alert_id == response.alert_id
    return session.scalar(
        select(AlertResponseRecord)
        .where(or_(same_key, decided & AlertResponseRecord.action.in_(DECISIONS)))
        .order_by(AlertResponseRecord.received_at)
        .limit(1)
    )
