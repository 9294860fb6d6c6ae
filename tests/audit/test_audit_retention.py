"""Retention: pruning old entries behind a checkpoint that verification starts from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from audit_helpers import TENANT, execute, fill, stored
from sqlalchemy import select

from costwarden.audit import Anchor, head, prune, verify
from costwarden.errors import AuditIntegrityError
from costwarden.store import Store
from costwarden.store.tables import AuditCheckpointRecord, AuditEntryRecord

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _seed(store: Store) -> tuple[list[int], list[int]]:
    """Three entries 100 days old and two 5 days old."""
    old = fill(store, 3, recorded_at=NOW - timedelta(days=100))
    new = fill(store, 2, recorded_at=NOW - timedelta(days=5))
    return old, new


def test_prune_keeps_chain_verifiable(store: Store) -> None:
    old, new = _seed(store)
    last_old = stored(store, old[-1])

    with store.transaction() as session:
        result = prune(session, TENANT, retention_days=30, now=NOW)

    assert result.deleted == 3
    assert result.checkpoint_seq == old[-1]
    assert result.checkpoint_hash == last_old.entry_hash
    with store.transaction() as session:
        checkpoint = session.get(AuditCheckpointRecord, TENANT)
        kinds = session.scalars(select(AuditEntryRecord.kind).order_by(AuditEntryRecord.seq)).all()
        report = verify(session, TENANT)
    assert checkpoint is not None
    assert checkpoint.seq == old[-1]
    assert checkpoint.pruned_count == 3
    assert kinds == ["alert", "alert", "retention"]
    assert report.ok, report.problems
    assert report.checkpoint_seq == old[-1]
    assert report.first_seq == new[0]


def test_prune_nothing_old(store: Store) -> None:
    fill(store, 2, recorded_at=NOW - timedelta(days=1))

    with store.transaction() as session:
        result = prune(session, TENANT, retention_days=30, now=NOW)
        count = len(session.scalars(select(AuditEntryRecord.seq)).all())

    assert result.deleted == 0
    assert result.checkpoint_seq is None
    assert count == 2


def test_prune_everything_then_append(sqlite_store: Store) -> None:
    old = fill(sqlite_store, 2, recorded_at=NOW - timedelta(days=100))

    with sqlite_store.transaction() as session:
        result = prune(session, TENANT, retention_days=30, now=NOW)
    fill(sqlite_store, 1)

    assert result.deleted == 2
    with sqlite_store.transaction() as session:
        report = verify(session, TENANT)
    assert report.ok, report.problems
    assert report.entries == 2
    assert report.checkpoint_seq == old[-1]


def test_second_prune_adds_counts(sqlite_store: Store) -> None:
    fill(sqlite_store, 2, recorded_at=NOW - timedelta(days=100))
    with sqlite_store.transaction() as session:
        prune(session, TENANT, retention_days=30, now=NOW)
    fill(sqlite_store, 2, recorded_at=NOW + timedelta(days=1))

    with sqlite_store.transaction() as session:
        second = prune(session, TENANT, retention_days=30, now=NOW + timedelta(days=60))
        checkpoint = session.get(AuditCheckpointRecord, TENANT)
        report = verify(session, TENANT)

    assert second.deleted == 3
    assert checkpoint is not None and checkpoint.pruned_count == 5
    assert report.ok, report.problems
    assert report.entries == 1


def test_prune_rejects_tampered_prefix(sqlite_store: Store) -> None:
    old, _ = _seed(sqlite_store)
    execute(sqlite_store, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = :seq",
            seq=old[1])

    with sqlite_store.transaction() as session, pytest.raises(
        AuditIntegrityError, match=f"cannot prune.*seq {old[1]}.*Nothing was deleted"
    ):
        prune(session, TENANT, retention_days=30, now=NOW)

    with sqlite_store.transaction() as session:
        assert session.get(AuditEntryRecord, old[0]) is not None
        assert session.get(AuditCheckpointRecord, TENANT) is None


def test_edited_checkpoint_detected(sqlite_store: Store) -> None:
    _, new = _seed(sqlite_store)
    with sqlite_store.transaction() as session:
        prune(session, TENANT, retention_days=30, now=NOW)
    execute(sqlite_store, "UPDATE audit_checkpoints SET entry_hash = :hash", hash="e" * 64)

    with sqlite_store.transaction() as session:
        report = verify(session, TENANT)

    assert [(problem.seq, problem.kind) for problem in report.problems] == [(new[0], "link")]
    assert "retention checkpoint" in report.problems[0].message


def test_anchors_across_checkpoint(sqlite_store: Store) -> None:
    old, _ = _seed(sqlite_store)
    first_old = stored(sqlite_store, old[0])
    last_old = stored(sqlite_store, old[-1])
    with sqlite_store.transaction() as session:
        prune(session, TENANT, retention_days=30, now=NOW)
        current = Anchor.parse(head(session, TENANT).anchor())
        report = verify(
            session,
            TENANT,
            anchors=[
                Anchor(first_old.seq, first_old.entry_hash),
                Anchor(last_old.seq, last_old.entry_hash),
                current,
            ],
        )

    assert report.ok, report.problems
    assert report.anchors_checked == 2
    assert report.anchors_skipped == (f"{first_old.seq}:{first_old.entry_hash}",)
