"""Retention of the audit trail: delete old entries and keep the chain verifiable.

A prune deletes the oldest entries, up to the first entry recorded at or after the cutoff, and
stores the last deleted entry's seq and hash in ``audit_checkpoints``. The oldest kept entry links
to that hash, so verification starts from the checkpoint. A prune first verifies the entries it
deletes, so that a tampered prefix never becomes a trusted checkpoint. It then appends a
``retention`` entry that records what it removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from costwarden.audit.trail import SYSTEM_ACTOR, append
from costwarden.audit.verify import verify
from costwarden.errors import AuditIntegrityError
from costwarden.store.tables import AuditCheckpointRecord, AuditEntryRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PruneResult:
    """The outcome of one prune; ``checkpoint_seq`` is None when no entry was old enough."""

    tenant: str
    cutoff: datetime
    deleted: int
    checkpoint_seq: int | None = None
    checkpoint_hash: str | None = None


def prune(
    session: Session,
    tenant: str,
    *,
    retention_days: int,
    now: datetime,
    actor: str = SYSTEM_ACTOR,
) -> PruneResult:
    """Delete ``tenant``'s entries recorded more than ``retention_days`` days before ``now``.

    Raises AuditIntegrityError, deleting nothing, when the entries to delete do not verify.
    Runs in the caller's transaction.
    """
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    cutoff = now - timedelta(days=retention_days)
    first_kept = _first_kept_seq(session, tenant, cutoff)
    last = _last_prunable(session, tenant, first_kept)
    if last is None:
        return PruneResult(tenant, cutoff, 0)

    report = verify(session, tenant, through_seq=first_kept if first_kept is not None else last.seq)
    if not report.ok:
        first = report.problems[0]
        raise AuditIntegrityError(
            f"cannot prune the audit trail of tenant {tenant!r}: the entries to delete do not "
            f"verify at seq {first.seq}: {first.message}. Nothing was deleted; investigate with "
            "'costwarden audit verify' before pruning"
        )

    deleted = session.execute(
        delete(AuditEntryRecord).where(
            AuditEntryRecord.tenant == tenant, AuditEntryRecord.seq <= last.seq
        )
    ).rowcount
    _store_checkpoint(session, tenant, last.seq, last.entry_hash, cutoff, deleted, now)
    append(
        session,
        tenant=tenant,
        kind="retention",
        subject=f"audit:{tenant}",
        actor=actor,
        summary=f"pruned {deleted} audit entries recorded before {cutoff.isoformat()}",
        detail={
            "deleted": deleted,
            "retention_days": retention_days,
            "cutoff": cutoff,
            "checkpoint": {"seq": last.seq, "entry_hash": last.entry_hash},
        },
        recorded_at=now,
    )
    logger.info(
        "pruned %d audit entries of tenant %s through seq %d (before %s)",
        deleted, tenant, last.seq, cutoff.isoformat(),
    )
    return PruneResult(tenant, cutoff, deleted, last.seq, last.entry_hash)


def _first_kept_seq(session: Session, tenant: str, cutoff: datetime) -> int | None:
    """Return the seq of the first entry recorded at or after ``cutoff``, or None.

    Entries are deleted as a prefix of the chain, so an old entry after a newer one (clock skew
    between writers) stays until the newer one is old enough too.
    """
    return session.scalar(
        select(func.min(AuditEntryRecord.seq)).where(
            AuditEntryRecord.tenant == tenant, AuditEntryRecord.recorded_at >= cutoff
        )
    )


def _last_prunable(
    session: Session, tenant: str, first_kept: int | None
) -> AuditEntryRecord | None:
    """Return the newest entry before ``first_kept`` (any entry when it is None)."""
    statement = select(AuditEntryRecord).where(AuditEntryRecord.tenant == tenant)
    if first_kept is not None:
        statement = statement.where(AuditEntryRecord.seq < first_kept)
    return session.scalars(statement.order_by(AuditEntryRecord.seq.desc()).limit(1)).first()


def _store_checkpoint(
    session: Session,
    tenant: str,
    seq: int,
    entry_hash: str,
    cutoff: datetime,
    deleted: int,
    now: datetime,
) -> None:
    checkpoint = session.get(AuditCheckpointRecord, tenant)
    if checkpoint is None:
        checkpoint = AuditCheckpointRecord(tenant=tenant, pruned_count=0)
        session.add(checkpoint)
    checkpoint.seq = seq
    checkpoint.entry_hash = entry_hash
    checkpoint.pruned_before = cutoff
    checkpoint.pruned_count = (checkpoint.pruned_count or 0) + deleted
    checkpoint.updated_at = now
    session.flush()
