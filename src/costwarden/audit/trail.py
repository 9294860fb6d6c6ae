"""Appending to the hash-chained audit trail, and reading it back.

Every entry stores the hash of the entry before it (``prev_hash``) and its own hash
(``entry_hash``, see ``costwarden.audit.hashing``). The unique ``(tenant, prev_hash)`` constraint
lets only one entry follow each entry: when two writers read the same head, the second insert
conflicts, inserts nothing, and the writer reads the new head and tries again. The insert uses
``ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite and a SAVEPOINT elsewhere, so a lost race
never rolls back the caller's transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from costwarden.audit.hashing import (
    GENESIS_HASH,
    TEXT_LIMIT,
    chain_hash,
    clean_text,
    entry_body,
    json_safe,
)
from costwarden.errors import NotFoundError, StoreError
from costwarden.store.tables import AuditCheckpointRecord, AuditEntryRecord

logger = logging.getLogger(__name__)

AuditKind = Literal[
    "ingest",
    "forecast",
    "alert",
    "recommendation",
    "notification",
    "approval",
    "action",
    "rollback",
    "policy",
    "retention",
]

KINDS: tuple[AuditKind, ...] = get_args(AuditKind)
"""Entry kinds; ``retention`` records a prune of old entries."""

SYSTEM_ACTOR = "costwarden"
"""Actor of the entries that costwarden writes on its own, such as those of a scheduled pass."""

MAX_APPEND_ATTEMPTS = 50
"""Times ``append`` reads the head again after losing a race to another writer."""


@dataclass(frozen=True, slots=True)
class Head:
    """The newest entry of a tenant's trail, or its retention checkpoint when no entry is left.

    ``seq`` is None and ``entry_hash`` the genesis hash when the tenant has no entry at all.
    """

    tenant: str
    seq: int | None
    entry_hash: str

    def anchor(self) -> str:
        """Return ``SEQ:HASH``, the form ``audit verify --expect-head`` reads."""
        return f"{self.seq if self.seq is not None else 0}:{self.entry_hash}"


def append(
    session: Session,
    *,
    tenant: str,
    kind: str,
    subject: str,
    actor: str,
    summary: str,
    detail: Mapping[str, Any] | None,
    recorded_at: datetime | None = None,
) -> AuditEntryRecord:
    """Append one entry to ``tenant``'s trail inside the caller's transaction and return it.

    ``detail`` contains the evidence (see ``costwarden.audit.evidence``); it is normalised by
    ``json_safe`` and raises TypeError for values without a JSON form. ``subject`` and ``actor``
    are cut to 255 characters. Raises ValueError for an unknown ``kind`` and StoreError when
    other writers kept winning the race for the head ``MAX_APPEND_ATTEMPTS`` times.
    """
    if kind not in KINDS:
        raise ValueError(f"audit kind {kind!r} is invalid; use one of {', '.join(KINDS)}")
    when = (recorded_at or datetime.now(UTC)).astimezone(UTC)
    body = entry_body(
        id=str(uuid.uuid4()),
        tenant=tenant,
        recorded_at=when,
        kind=kind,
        subject=clean_text(subject)[:TEXT_LIMIT],
        actor=clean_text(actor)[:TEXT_LIMIT],
        summary=clean_text(summary),
        detail=json_safe(dict(detail or {})),
    )

    for attempt in range(1, MAX_APPEND_ATTEMPTS + 1):
        prev_hash = head(session, tenant).entry_hash
        values = {
            "id": body["id"],
            "tenant": tenant,
            "recorded_at": when,
            "kind": kind,
            "subject": body["subject"],
            "actor": body["actor"],
            "summary": body["summary"],
            "detail": body["detail"],
            "prev_hash": prev_hash,
            "entry_hash": chain_hash(prev_hash, body),
        }
        record = _insert(session, values)
        if record is not None:
            return record
        logger.debug(
            "audit append for tenant %s lost the race for the head (attempt %d)", tenant, attempt
        )

    raise StoreError(
        f"could not append a {kind} audit entry for tenant {tenant!r}: other writers appended "
        f"first {MAX_APPEND_ATTEMPTS} times in a row; retry the operation"
    )


def _insert(session: Session, values: dict[str, Any]) -> AuditEntryRecord | None:
    """Insert one entry; return None when another entry already follows ``prev_hash``."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        statement = (
            module.insert(AuditEntryRecord)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(AuditEntryRecord)
        )
        return session.scalars(statement).first()

    try:
        with session.begin_nested():
            session.execute(insert(AuditEntryRecord).values(**values))
    except IntegrityError:
        return None
    statement = select(AuditEntryRecord).where(AuditEntryRecord.id == values["id"])
    return session.scalars(statement).one()


def head(session: Session, tenant: str) -> Head:
    """Return the newest entry of ``tenant``, else its retention checkpoint, else genesis."""
    row = session.execute(
        select(AuditEntryRecord.seq, AuditEntryRecord.entry_hash)
        .where(AuditEntryRecord.tenant == tenant)
        .order_by(AuditEntryRecord.seq.desc())
        .limit(1)
    ).first()
    if row is not None:
        return Head(tenant, row.seq, row.entry_hash)

    checkpoint = session.get(AuditCheckpointRecord, tenant)
    if checkpoint is not None:
        return Head(tenant, checkpoint.seq, checkpoint.entry_hash)
    return Head(tenant, None, GENESIS_HASH)


@dataclass(frozen=True, slots=True)
class EntryPage:
    items: list[AuditEntryRecord]
    total: int


def list_entries(
    session: Session,
    tenant: str,
    *,
    kinds: Sequence[str] = (),
    subject: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> EntryPage:
    """Return entries of ``tenant`` matching the filters, newest first; ``until`` is exclusive."""
    conditions = [AuditEntryRecord.tenant == tenant]
    if kinds:
        conditions.append(AuditEntryRecord.kind.in_(list(kinds)))
    if subject is not None:
        conditions.append(AuditEntryRecord.subject == subject)
    if actor is not None:
        conditions.append(AuditEntryRecord.actor == actor)
    if since is not None:
        conditions.append(AuditEntryRecord.recorded_at >= since)
    if until is not None:
        conditions.append(AuditEntryRecord.recorded_at < until)

    total = session.scalar(select(func.count()).select_from(AuditEntryRecord).where(*conditions))
    items = session.scalars(
        select(AuditEntryRecord)
        .where(*conditions)
        .order_by(AuditEntryRecord.seq.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return EntryPage(list(items), int(total or 0))


def find_entry(session: Session, tenant: str, seq: int) -> AuditEntryRecord:
    """Return entry ``seq`` of ``tenant``, or raise NotFoundError."""
    record = session.get(AuditEntryRecord, seq)
    if record is None or record.tenant != tenant:
        raise NotFoundError(
            f"no audit entry with seq {seq} for tenant {tenant!r}; 'costwarden audit list' "
            "shows the newest entries"
        )
    return record


def entry_json(record: AuditEntryRecord | Any) -> dict[str, Any]:
    """Return an entry as exported: the hashed body plus ``seq``, ``prev_hash`` and ``entry_hash``.

    Accepts an ORM record or a Core row with the same column names.
    """
    body = entry_body(
        id=record.id,
        tenant=record.tenant,
        recorded_at=record.recorded_at,
        kind=record.kind,
        subject=record.subject,
        actor=record.actor,
        summary=record.summary,
        detail=record.detail,
    )
    return {
        "seq": record.seq,
        **body,
        "prev_hash": record.prev_hash,
        "entry_hash": record.entry_hash,
    }
