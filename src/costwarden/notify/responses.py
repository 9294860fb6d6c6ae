"""Record the decisions people make in channels, once each.

Approve and reject are recorded against the alert for the approval workflow to act on; snooze
also silences the alert on every channel until the snooze ends.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from costwarden.notify.registry import InboundResponse
from costwarden.store.tables import AlertResponseRecord, NotificationRecord, OutboxRecord

logger = logging.getLogger(__name__)

DEFAULT_SNOOZE_HOURS = 24


def record_response(session: Session, response: InboundResponse) -> tuple[AlertResponseRecord, bool]:
    """Store a decision and return it with ``True``, or the earlier record with ``False``.

    A decision whose ``dedupe_key`` was seen before changes nothing.
    """
    existing = session.scalar(
        select(AlertResponseRecord).where(AlertResponseRecord.dedupe_key == response.dedupe_key)
    )
    if existing is not None:
        return existing, False

    snoozed_until = None
    if response.action == "snooze":
        hours = response.snooze_hours or DEFAULT_SNOOZE_HOURS
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
        id=str(uuid.uuid4()),
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
