"""Read and repair outbox rows: the queries behind ``costwarden deliveries`` and the API.

Stored rows contain no secrets: channel settings never enter a row, and the worker redacts
secret values from error texts before it stores them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from costwarden.errors import ConflictError, NotFoundError
from costwarden.notify.notice import Notice
from costwarden.store.service_queries import Page
from costwarden.store.tables import OutboxRecord

DeliveryStatus = Literal["pending", "sending", "sent", "dead", "cancelled"]
STATUSES: tuple[str, ...] = ("pending", "sending", "sent", "dead", "cancelled")


def list_deliveries(
    session: Session,
    *,
    status: str | None = None,
    channel: str | None = None,
    alert_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[OutboxRecord]:
    """Return one page of outbox rows, newest first, and the number that match the filters."""
    query = _filtered(select(OutboxRecord), status=status, channel=channel, alert_id=alert_id)
    ordered = query.order_by(OutboxRecord.created_at.desc(), OutboxRecord.id)
    items = list(session.scalars(ordered.limit(limit).offset(offset)))
    counted = query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
    total = session.scalar(counted) or 0
    return Page(items, int(total))


def find_delivery(session: Session, delivery_id: str) -> OutboxRecord:
    """Return the row with this id, or the only row whose id starts with it.

    Raises ``NotFoundError`` when none or several rows match.
    """
    record = session.get(OutboxRecord, delivery_id)
    if record is not None:
        return record
    matches = session.scalars(
        select(OutboxRecord).where(OutboxRecord.id.startswith(delivery_id, autoescape=True))
        .limit(2)
    ).all()
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(
            f"no delivery with id {delivery_id!r}; 'costwarden deliveries list' or "
            "GET /api/v1/deliveries lists them"
        )
    raise NotFoundError(f"delivery id prefix {delivery_id!r} matches several rows; give more of it")


def retry_delivery(session: Session, delivery_id: str, now: datetime) -> OutboxRecord:
    """Move one dead row back to pending with its attempts reset; it is due at ``now``.

    Raises ``ConflictError`` for a row that is not dead. The row keeps its creation time, so
    a row older than ``delivery.max_age_hours`` is dead again after its next failed attempt.
    """
    record = find_delivery(session, delivery_id)
    if record.status != "dead":
        raise ConflictError(
            f"delivery {record.id} is {record.status}, not dead; only dead deliveries can be "
            "retried"
        )
    _reset(record, now)
    session.flush()
    return record


def retry_dead(session: Session, now: datetime, *, channel: str | None = None) -> int:
    """Move every dead row (of one channel, if given) back to pending; return how many."""
    statement = update(OutboxRecord).where(OutboxRecord.status == "dead")
    if channel is not None:
        statement = statement.where(OutboxRecord.channel == channel)
    result = session.execute(
        statement.values(
            status="pending", attempts=0, next_attempt_at=now, updated_at=now,
            claimed_by=None, claimed_until=None,
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def queue_test_notice(session: Session, channel: str, now: datetime) -> OutboxRecord:
    """Queue one sample notice to ``channel``, to check its settings end to end."""
    alert_id = f"test-{uuid.uuid4().hex[:12]}"
    notice = Notice(
        alert_id=alert_id,
        kind="budget",
        severity="info",
        title="costwarden test notice: this channel is set up",
        generated_at=now,
        budget="example-budget",
        currency="USD",
        facts=(("Budget", "1,000.00 USD"), ("Spent", "420.00 USD"), ("Forecast", "950.00 USD")),
        probability=0.05,
    )
    record = OutboxRecord(
        id=str(uuid.uuid4()), channel=channel, alert_id=alert_id, event="trigger",
        route="test", notices=[notice.to_json()], status="pending", attempts=0,
        next_attempt_at=now, created_at=now, updated_at=now,
    )
    session.add(record)
    session.flush()
    return record


def delivery_summary(record: OutboxRecord) -> dict[str, Any]:
    """Return the fields of a row that lists show."""
    return {
        "id": record.id,
        "channel": record.channel,
        "alert_id": record.alert_id,
        "event": record.event,
        "route": record.route,
        "status": record.status,
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "sent_at": record.sent_at,
        "last_status": record.last_status,
        "last_error": record.last_error,
        "external_ref": record.external_ref,
    }


def delivery_detail(record: OutboxRecord) -> dict[str, Any]:
    """Return every field of a row, notices included."""
    return {
        **delivery_summary(record),
        "claimed_by": record.claimed_by,
        "claimed_until": record.claimed_until,
        "notices": list(record.notices),
    }


def _reset(record: OutboxRecord, now: datetime) -> None:
    record.status = "pending"
    record.attempts = 0
    record.next_attempt_at = now
    record.updated_at = now
    record.claimed_by = None
    record.claimed_until = None


def _filtered(
    query: Select[Any], *, status: str | None, channel: str | None, alert_id: str | None
) -> Select[Any]:
    if status is not None:
        query = query.where(OutboxRecord.status == status)
    if channel is not None:
        query = query.where(OutboxRecord.channel == channel)
    if alert_id is not None:
        query = query.where(OutboxRecord.alert_id == alert_id)
    return query
