"""Appending to the audit trail and detecting every kind of tampering.

The tests of appending and the main tampering cases run on SQLite and PostgreSQL; the rest of
the verification logic does not depend on the database and runs on SQLite only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from audit_helpers import TENANT, execute, fill, stored
from sqlalchemy import func, select

from costwarden.audit import (
    GENESIS_HASH,
    Anchor,
    append,
    chain_hash,
    entry_body,
    head,
    verify,
)
from costwarden.errors import AuditIntegrityError
from costwarden.store import Store
from costwarden.store.tables import AuditEntryRecord


def test_append_links_entries(store: Store) -> None:
    seqs = fill(store, 3)

    first, second, third = (stored(store, seq) for seq in seqs)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.entry_hash
    assert third.prev_hash == second.entry_hash
    assert seqs == sorted(seqs)
    with store.transaction() as session:
        current = head(session, TENANT)
        report = verify(session, TENANT)
    assert current.seq == seqs[-1]
    assert current.entry_hash == third.entry_hash
    assert report.ok
    assert report.entries == 3
    assert report.head_hash == third.entry_hash


def test_hash_matches_rule(store: Store) -> None:
    when = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    with store.transaction() as session:
        record = append(
            session, tenant=TENANT, kind="forecast", subject="run:1", actor="costwarden",
            summary="forecast", detail={"total": Decimal("12.50"), "day": when.date()},
            recorded_at=when,
        )
        entry_id = record.id
    entry = stored(store, record.seq)

    body = {
        "id": entry_id, "tenant": TENANT, "time": "2026-03-04T05:06:07.890123Z",
        "kind": "forecast", "subject": "run:1", "actor": "costwarden", "summary": "forecast",
        "detail": {"total": "12.50", "day": "2026-03-04"},
    }
    assert entry.detail == body["detail"]
    assert entry.entry_hash == chain_hash(GENESIS_HASH, body)


def test_append_joins_caller_transaction(store: Store) -> None:
    fill(store, 1)

    with pytest.raises(RuntimeError), store.transaction() as session:
        append(
            session, tenant=TENANT, kind="action", subject="pool:x", actor="alice",
            summary="resize", detail={},
        )
        raise RuntimeError("the caller's work failed")

    with store.transaction() as session:
        count = session.scalar(select(func.count()).select_from(AuditEntryRecord))
        assert verify(session, TENANT).ok
    assert count == 1


def test_unknown_kind_rejected(sqlite_store: Store) -> None:
    invalid = pytest.raises(ValueError, match="'deploy' is invalid")
    with sqlite_store.transaction() as session, invalid:
        append(
            session, tenant=TENANT, kind="deploy", subject="x", actor="y", summary="z", detail={}
        )


def test_detail_without_json_form_rejected(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as session, pytest.raises(TypeError, match=r"detail\.when"):
        append(
            session, tenant=TENANT, kind="alert", subject="x", actor="y", summary="z",
            detail={"when": object()},
        )


def test_edited_entry_detected(store: Store) -> None:
    seqs = fill(store, 4)
    execute(store, "UPDATE audit_entries SET summary = 'nothing happened' WHERE seq = :seq",
            seq=seqs[1])

    with store.transaction() as session:
        report = verify(session, TENANT)

    assert not report.ok
    [problem] = report.problems
    assert problem.seq == seqs[1]
    assert problem.kind == "edited"
    with pytest.raises(AuditIntegrityError, match=f"at seq {seqs[1]}: entry was changed"):
        report.raise_for_problems()


def test_edited_detail_detected(sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3)
    with sqlite_store.transaction() as session:
        record = session.get(AuditEntryRecord, seqs[2])
        assert record is not None
        record.detail = {**record.detail, "probability": 0.01}

    with sqlite_store.transaction() as session:
        report = verify(session, TENANT)

    assert [(problem.seq, problem.kind) for problem in report.problems] == [(seqs[2], "edited")]


def test_rehashed_edit_breaks_next_link(sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3)
    victim = stored(sqlite_store, seqs[1])
    body = entry_body(
        id=victim.id, tenant=victim.tenant, recorded_at=victim.recorded_at, kind=victim.kind,
        subject=victim.subject, actor="mallory", summary=victim.summary, detail=victim.detail,
    )
    forged_hash = chain_hash(victim.prev_hash, body)
    execute(
        sqlite_store,
        "UPDATE audit_entries SET actor = 'mallory', entry_hash = :hash WHERE seq = :seq",
        hash=forged_hash, seq=seqs[1],
    )

    with sqlite_store.transaction() as session:
        report = verify(session, TENANT)

    assert [(problem.seq, problem.kind) for problem in report.problems] == [(seqs[2], "link")]
    assert f"seq {seqs[1]}" in report.problems[0].message


def test_deleted_middle_entry_detected(store: Store) -> None:
    seqs = fill(store, 5)
    execute(store, "DELETE FROM audit_entries WHERE seq = :seq", seq=seqs[2])

    with store.transaction() as session:
        report = verify(session, TENANT)

    assert [(problem.seq, problem.kind) for problem in report.problems] == [(seqs[3], "link")]
    assert "deleted, inserted or moved" in report.problems[0].message


def test_deleted_first_entry_detected(sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3)
    execute(sqlite_store, "DELETE FROM audit_entries WHERE seq = :seq", seq=seqs[0])

    with sqlite_store.transaction() as session:
        report = verify(session, TENANT)

    assert [(problem.seq, problem.kind) for problem in report.problems] == [(seqs[1], "link")]
    assert "genesis" in report.problems[0].message


def test_reordered_entries_detected(store: Store) -> None:
    seqs = fill(store, 4)
    execute(store, "UPDATE audit_entries SET seq = -1 WHERE seq = :seq", seq=seqs[1])
    execute(store, "UPDATE audit_entries SET seq = :old WHERE seq = :new", old=seqs[1], new=seqs[2])
    execute(store, "UPDATE audit_entries SET seq = :new WHERE seq = -1", new=seqs[2])

    with store.transaction() as session:
        report = verify(session, TENANT)

    assert not report.ok
    assert report.problems[0].seq == seqs[1]
    assert {problem.kind for problem in report.problems} == {"link"}


def test_forged_entry_detected(sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3)
    first = stored(sqlite_store, seqs[0])
    body = entry_body(
        id="forged", tenant=TENANT, recorded_at=first.recorded_at, kind="approval",
        subject="approval:1", actor="mallory", summary="approved", detail={},
    )
    execute(
        sqlite_store,
        "INSERT INTO audit_entries (seq, id, tenant, recorded_at, kind, subject, actor, summary, "
        "detail, prev_hash, entry_hash) VALUES (:seq, 'forged', :tenant, :at, 'approval', "
        "'approval:1', 'mallory', 'approved', '{}', :prev, :hash)",
        seq=seqs[-1] + 10, tenant=TENANT, at=first.recorded_at, prev="f" * 64,
        hash=chain_hash("f" * 64, body),
    )

    with sqlite_store.transaction() as session:
        report = verify(session, TENANT)

    assert [(problem.seq, problem.kind) for problem in report.problems] == [
        (seqs[-1] + 10, "link")
    ]


def test_deleted_newest_needs_anchor(sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 4)
    with sqlite_store.transaction() as session:
        anchor = Anchor.parse(head(session, TENANT).anchor())
    execute(sqlite_store, "DELETE FROM audit_entries WHERE seq = :seq", seq=seqs[-1])

    with sqlite_store.transaction() as session:
        without_anchor = verify(session, TENANT)
        with_anchor = verify(session, TENANT, anchors=[anchor])

    assert without_anchor.ok
    assert [(problem.seq, problem.kind) for problem in with_anchor.problems] == [
        (seqs[-1], "anchor")
    ]
    assert "no longer exists" in with_anchor.problems[0].message


def test_rewritten_trail_fails_anchor(sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3)
    with sqlite_store.transaction() as session:
        anchor = Anchor.parse(head(session, TENANT).anchor())
        entries = [session.get(AuditEntryRecord, seq) for seq in seqs]
        prev = GENESIS_HASH
        for record in entries:
            assert record is not None
            record.summary = "rewritten"
            body = entry_body(
                id=record.id, tenant=record.tenant, recorded_at=record.recorded_at,
                kind=record.kind, subject=record.subject, actor=record.actor,
                summary=record.summary, detail=record.detail,
            )
            record.prev_hash = prev
            record.entry_hash = prev = chain_hash(prev, body)

    with sqlite_store.transaction() as session:
        plain = verify(session, TENANT)
        anchored = verify(session, TENANT, anchors=[anchor])

    assert plain.ok
    assert [(problem.seq, problem.kind) for problem in anchored.problems] == [
        (seqs[-1], "anchor")
    ]


def test_matching_anchor_counts(sqlite_store: Store) -> None:
    fill(sqlite_store, 2)
    with sqlite_store.transaction() as session:
        anchor = Anchor.parse(head(session, TENANT).anchor())
        fill_more = append(
            session, tenant=TENANT, kind="alert", subject="a", actor="b", summary="c", detail={}
        )
        report = verify(session, TENANT, anchors=[anchor])
    assert fill_more.prev_hash == anchor.entry_hash
    assert report.ok
    assert report.anchors_checked == 1


def test_empty_trail_and_genesis_anchor(sqlite_store: Store) -> None:
    with sqlite_store.transaction() as session:
        current = head(session, TENANT)
        report = verify(session, TENANT, anchors=[Anchor.parse(current.anchor())])

    assert current.seq is None
    assert current.anchor() == f"0:{GENESIS_HASH}"
    assert report.ok
    assert report.entries == 0


def test_tenants_have_separate_chains(sqlite_store: Store) -> None:
    fill(sqlite_store, 2, tenant="one")
    fill(sqlite_store, 2, tenant="two")
    with sqlite_store.transaction() as session:
        one, two = verify(session, "one"), verify(session, "two")
    assert one.ok and two.ok
    assert one.entries == two.entries == 2


def test_moved_to_other_tenant_detected(sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 2, tenant="one")
    [own] = fill(sqlite_store, 1, tenant="two")
    execute(sqlite_store, "UPDATE audit_entries SET tenant = 'two' WHERE seq = :seq", seq=seqs[1])

    with sqlite_store.transaction() as session:
        report = verify(session, "two")

    assert [(problem.seq, problem.kind) for problem in report.problems] == [
        (seqs[1], "link"), (seqs[1], "edited"), (own, "link"),
    ]


def test_anchor_parse_errors() -> None:
    with pytest.raises(Exception, match="anchor '12' is invalid"):
        Anchor.parse("12")
    with pytest.raises(Exception, match="anchors.txt, line 3"):
        Anchor.parse("x:" + "a" * 64, "anchors.txt, line 3")
    assert Anchor.parse(f" 7:{'AB' * 32} ") == Anchor(7, "ab" * 32)
