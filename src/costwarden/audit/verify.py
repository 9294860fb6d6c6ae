"""Verification of the audit trail: recompute every hash and follow every link.

The chain alone detects an edited entry (its hash no longer matches its content), a deleted,
inserted or forged entry in the middle and reordered entries (a ``prev_hash`` link breaks).
It cannot detect deleted newest entries, nor a trail rewritten as a whole by someone who can
write the database, because the hash has no secret. Anchors close that gap: a user keeps
``SEQ:HASH`` of the head outside the database (``costwarden audit head``) and passes it back to
verify, which then checks that the entry still exists with that hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.audit.hashing import GENESIS_HASH, chain_hash, entry_body
from costwarden.errors import AuditIntegrityError, ConfigError
from costwarden.store.tables import AuditCheckpointRecord, AuditEntryRecord

ProblemKind = Literal["edited", "link", "checkpoint", "anchor"]

MAX_PROBLEMS = 100
"""Problems listed in a report; verification stops collecting after this many."""

YIELD_ROWS = 1000
"""Rows fetched per round trip while walking the trail."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """A ``SEQ:HASH`` pair that a user kept outside the database."""

    seq: int
    entry_hash: str

    @classmethod
    def parse(cls, text: str, source: str = "--expect-head") -> Anchor:
        """Read ``SEQ:HASH``; raise ConfigError naming ``source`` when it is malformed."""
        seq_text, _, hash_text = text.strip().partition(":")
        hash_text = hash_text.strip().lower()
        if not seq_text.strip().isdigit() or len(hash_text) != 64 or not _is_hex(hash_text):
            raise ConfigError(
                f"{source}: anchor {text.strip()!r} is invalid; expected SEQ:HASH as printed by "
                "'costwarden audit head', e.g. 42:3f5a... with 64 hex digits"
            )
        return cls(int(seq_text), hash_text)

    def __str__(self) -> str:
        return f"{self.seq}:{self.entry_hash}"


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdef" for char in text)


def read_anchor_file(path: Path) -> list[Anchor]:
    """Read one ``SEQ:HASH`` anchor per line; blank lines and lines starting with # are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read anchor file {path}: {exc.strerror or exc}") from exc
    anchors = []
    for number, line in enumerate(lines, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            anchors.append(Anchor.parse(line, f"{path}, line {number}"))
    return anchors


@dataclass(frozen=True, slots=True)
class Problem:
    """One integrity failure; ``seq`` is the entry where it shows."""

    seq: int
    kind: ProblemKind
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of verifying one tenant's trail.

    ``checkpoint_seq`` is the last entry removed by retention, whose hash the oldest kept entry
    must link to. ``anchors_skipped`` lists anchors older than the checkpoint, which retention
    removed and which therefore cannot be checked.
    """

    tenant: str
    entries: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    checkpoint_seq: int | None
    anchors_checked: int = 0
    anchors_skipped: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise AuditIntegrityError naming the first bad entry, when there is one."""
        if self.ok:
            return
        first = self.problems[0]
        more = f" ({len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        raise AuditIntegrityError(
            f"audit trail of tenant {self.tenant!r} does not verify at seq {first.seq}: "
            f"{first.message}{more}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "ok": self.ok,
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_hash": self.head_hash,
            "checkpoint_seq": self.checkpoint_seq,
            "anchors_checked": self.anchors_checked,
            "anchors_skipped": list(self.anchors_skipped),
            "problems": [
                {"seq": problem.seq, "kind": problem.kind, "message": problem.message}
                for problem in self.problems
            ],
        }


def verify(
    session: Session,
    tenant: str,
    *,
    anchors: Iterable[Anchor] = (),
    through_seq: int | None = None,
) -> VerifyReport:
    """Recompute every hash of ``tenant``'s trail, follow every link and check the anchors.

    The walk starts at the retention checkpoint when there is one, else at the genesis hash.
    ``through_seq`` stops the walk after that entry (retention verifies what it removes).
    """
    checkpoint = session.get(AuditCheckpointRecord, tenant)
    walk = _Walk(
        tenant,
        start_hash=checkpoint.entry_hash if checkpoint is not None else GENESIS_HASH,
        start_seq=checkpoint.seq if checkpoint is not None else None,
        anchors={anchor.seq: anchor for anchor in anchors},
    )
    for row in _rows(session, tenant, through_seq):
        walk.step(row)
    walk.finish_anchors(through_seq)

    return VerifyReport(
        tenant=tenant,
        entries=walk.entries,
        first_seq=walk.first_seq,
        last_seq=walk.last_seq,
        head_hash=walk.expected_prev,
        checkpoint_seq=walk.start_seq,
        anchors_checked=walk.anchors_checked,
        anchors_skipped=tuple(walk.anchors_skipped),
        problems=tuple(walk.problems),
    )


def _rows(session: Session, tenant: str, through_seq: int | None) -> Iterator[Any]:
    """Yield the tenant's entries in ``seq`` order without loading them all at once."""
    table = AuditEntryRecord.__table__
    statement = select(table).where(table.c.tenant == tenant).order_by(table.c.seq)
    if through_seq is not None:
        statement = statement.where(table.c.seq <= through_seq)
    result = session.execute(statement.execution_options(yield_per=YIELD_ROWS))
    yield from result


class _Walk:
    """State of one walk along the chain, from the checkpoint or genesis to the head."""

    def __init__(
        self, tenant: str, *, start_hash: str, start_seq: int | None, anchors: dict[int, Anchor]
    ) -> None:
        self.tenant = tenant
        self.start_seq = start_seq
        self.start_hash = start_hash
        self.expected_prev = start_hash
        self.previous_seq = start_seq
        self.anchors = anchors
        self.anchors_checked = 0
        self.anchors_skipped: list[str] = []
        self.entries = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.problems: list[Problem] = []

    def step(self, row: Any) -> None:
        self.entries += 1
        self.first_seq = row.seq if self.first_seq is None else self.first_seq
        self.last_seq = row.seq

        if self.start_seq is not None and row.seq <= self.start_seq:
            self._problem(
                row.seq, "checkpoint",
                f"entry is at or before the retention checkpoint (seq {self.start_seq}) but is "
                "still stored; it was inserted after the prune or the checkpoint was changed",
            )
        if row.prev_hash != self.expected_prev:
            self._problem(row.seq, "link", self._link_message(row.prev_hash))

        body = entry_body(
            id=row.id, tenant=row.tenant, recorded_at=row.recorded_at, kind=row.kind,
            subject=row.subject, actor=row.actor, summary=row.summary, detail=row.detail,
        )
        computed = chain_hash(row.prev_hash, body)
        if computed != row.entry_hash:
            self._problem(
                row.seq, "edited",
                f"entry was changed after it was written: its content hashes to {computed[:16]}… "
                f"but its stored hash is {row.entry_hash[:16]}…",
            )

        anchor = self.anchors.pop(row.seq, None)
        if anchor is not None:
            self._check_anchor(anchor, row.entry_hash)
        self.expected_prev = row.entry_hash
        self.previous_seq = row.seq

    def _link_message(self, prev_hash: str) -> str:
        if self.previous_seq is None:
            where = "the genesis hash (the trail has no retention checkpoint)"
        elif self.entries == 1 and self.start_seq is not None:
            where = f"the hash of the retention checkpoint (seq {self.start_seq})"
        else:
            where = f"the hash of the entry before it (seq {self.previous_seq})"
        return (
            f"prev_hash {prev_hash[:16]}… does not match {where}, {self.expected_prev[:16]}…; "
            "an entry before it was deleted, inserted or moved"
        )

    def _check_anchor(self, anchor: Anchor, entry_hash: str) -> None:
        self.anchors_checked += 1
        if entry_hash != anchor.entry_hash:
            self._problem(
                anchor.seq, "anchor",
                f"anchor {anchor} does not match the stored hash {entry_hash[:16]}…; the trail "
                "was rewritten from this entry or earlier",
            )

    def finish_anchors(self, through_seq: int | None) -> None:
        """Check the anchors whose entry the walk did not meet."""
        for seq, anchor in sorted(self.anchors.items()):
            if through_seq is not None and seq > through_seq:
                continue
            if seq == 0 and anchor.entry_hash == GENESIS_HASH:
                self.anchors_checked += 1
                continue
            if self.start_seq is not None and seq == self.start_seq:
                self._check_anchor(anchor, self.start_hash)
            elif self.start_seq is not None and seq < self.start_seq:
                self.anchors_skipped.append(str(anchor))
            else:
                self.anchors_checked += 1
                head = f"seq {self.last_seq}" if self.last_seq is not None else "empty"
                self._problem(
                    seq, "anchor",
                    f"anchor {anchor} names an entry that no longer exists (the head is {head}); "
                    "entries were deleted",
                )
        self.anchors.clear()

    def _problem(self, seq: int, kind: ProblemKind, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(seq, kind, message))
