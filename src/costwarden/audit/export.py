"""The JSON Lines export of the audit trail, for a SIEM or an independent verification."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.audit.trail import entry_json
from costwarden.store.tables import AuditEntryRecord

YIELD_ROWS = 1000
"""Rows fetched per round trip, so a large trail never sits in memory at once."""


def iter_entries(
    session: Session,
    tenant: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Sequence[str] = (),
) -> Iterator[dict[str, Any]]:
    """Yield the tenant's entries oldest first as export dicts; ``until`` is exclusive."""
    table = AuditEntryRecord.__table__
    statement = select(table).where(table.c.tenant == tenant).order_by(table.c.seq)
    if since is not None:
        statement = statement.where(table.c.recorded_at >= since)
    if until is not None:
        statement = statement.where(table.c.recorded_at < until)
    if kinds:
        statement = statement.where(table.c.kind.in_(list(kinds)))
    for row in session.execute(statement.execution_options(yield_per=YIELD_ROWS)):
        yield entry_json(row)


def write_jsonl(entries: Iterator[dict[str, Any]], stream: IO[str]) -> int:
    """Write one JSON object per line to ``stream`` and return how many were written."""
    count = 0
    for entry in entries:
        stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
        count += 1
    return count
