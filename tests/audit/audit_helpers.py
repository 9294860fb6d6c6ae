"""Helpers shared by the audit tests: fill a trail and tamper with it through plain SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from costwarden.audit import append
from costwarden.store import Store
from costwarden.store.tables import AuditEntryRecord

TENANT = "acme"


def fill(
    store: Store,
    count: int,
    *,
    tenant: str = TENANT,
    kind: str = "alert",
    recorded_at: datetime | None = None,
) -> list[int]:
    """Append ``count`` entries in one transaction and return their seqs."""
    seqs = []
    with store.transaction() as session:
        for index in range(count):
            record = append(
                session,
                tenant=tenant,
                kind=kind,
                subject=f"alert:{index}",
                actor="costwarden",
                summary=f"entry {index}",
                detail={"index": index, "probability": 0.25 + index / 100},
                recorded_at=recorded_at,
            )
            seqs.append(record.seq)
    return seqs


def execute(store: Store, sql: str, **params: Any) -> None:
    """Run one SQL statement in its own transaction, as someone with database access would."""
    with store.transaction() as session:
        session.execute(text(sql), params)


def stored(store: Store, seq: int) -> AuditEntryRecord:
    with store.transaction() as session:
        record = session.get(AuditEntryRecord, seq)
        assert record is not None
        session.expunge(record)
        return record
