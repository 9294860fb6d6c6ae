"""Interval adjustments fitted by backtests: saved per cost source, the latest one read back."""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.forecast.adjustment import IntervalAdjustment
from costwarden.store.tables import IntervalAdjustmentRecord

logger = logging.getLogger(__name__)


def save_adjustment(
    session: Session,
    adjustment: IntervalAdjustment,
    *,
    source: str,
    scope_kind: str,
    now: datetime,
) -> int:
    """Store an adjustment for ``source`` and return its id."""
    record = IntervalAdjustmentRecord(
        source=source,
        scope_kind=scope_kind,
        created_at=now,
        payload=adjustment.model_dump(mode="json"),
    )
    session.add(record)
    session.flush()
    return record.id


def latest_adjustment(session: Session, source: str) -> IntervalAdjustment | None:
    """Return the newest stored adjustment of ``source``, or None.

    A stored payload that no longer validates is logged and skipped, so an old format cannot
    stop a budget pass.
    """
    query = (
        select(IntervalAdjustmentRecord)
        .where(IntervalAdjustmentRecord.source == source)
        .order_by(IntervalAdjustmentRecord.created_at.desc(), IntervalAdjustmentRecord.id.desc())
        .limit(1)
    )
    record = session.scalars(query).first()
    if record is None:
        return None

    try:
        return IntervalAdjustment.model_validate(record.payload)
    except ValidationError as exc:
        logger.warning(
            "interval adjustment %d of source %s is invalid and ignored: %s",
            record.id,
            source,
            exc,
        )
        return None
