"""Restated FOCUS exports: which stored facts a new export covers, overlaps or supersedes.

Providers restate month-to-date exports. A corrected row has a new fingerprint, so it is stored
next to the old fact unless the ingest replaces the stored facts that the export covers. An
export's scope is the set of (provider, sub-account) pairs in its rows, with NULL as a value of
its own, and the span from its first to its last charge day. Only facts with source ``focus``
are in scope.

Every function here runs inside the caller's transaction. "Stored before" means an id at or
below the high-water mark, the largest fact id when the ingest began. A new fact gets an id above
every stored one (SQLite takes the largest rowid plus one, PostgreSQL a sequence), so facts
inserted since then have larger ids.

NOTE: another process that writes FOCUS facts of the same scope while an ingest runs breaks this
split: its inserts count as new here, so a replacement keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import ColumnElement, and_, case, delete, func, select
from sqlalchemy.orm import Session

from costwarden.store.tables import CostFact

SOURCE = "focus"

RESTATED_NEW_SHARE = 0.5
"""An export looks restated when more than this share of its rows on already stored days is new."""

MAX_ACCOUNTS_PER_QUERY = 500
"""Sub-accounts per IN list, well below the bound-parameter limits of SQLite and PostgreSQL."""

DELETE_CHUNK = 1000
SCAN_BATCH = 5000

Pair = tuple[str | None, str | None]
"""A fact's ``(cloud, account_id)``."""


@dataclass
class ExportScope:
    """The provider and sub-account pairs of an export and the span of its charge days."""

    pairs: set[Pair] = field(default_factory=set)
    first_day: date | None = None
    last_day: date | None = None

    def add(self, cloud: str | None, account_id: str | None, day: date) -> None:
        self.pairs.add((cloud, account_id))
        if self.first_day is None or day < self.first_day:
            self.first_day = day
        if self.last_day is None or day > self.last_day:
            self.last_day = day

    def covers(self, cloud: str | None, account_id: str | None, day: date) -> bool:
        if self.first_day is None or self.last_day is None:
            return False
        return self.first_day <= day <= self.last_day and (cloud, account_id) in self.pairs

    @classmethod
    def union(cls, scopes: Iterable[ExportScope]) -> ExportScope:
        merged = cls()
        for scope in scopes:
            merged.pairs |= scope.pairs
            for day in (scope.first_day, scope.last_day):
                if day is not None:
                    merged.first_day = min(merged.first_day or day, day)
                    merged.last_day = max(merged.last_day or day, day)
        return merged

    def conditions(self) -> Iterator[ColumnElement[bool]]:
        """Yield WHERE conditions whose union selects the stored FOCUS facts in scope.

        Each condition selects one provider and at most ``MAX_ACCOUNTS_PER_QUERY`` sub-accounts, so
        a query runs once per condition and the results are added up. An empty scope yields none.
        """
        if self.first_day is None or self.last_day is None:
            return
        base = and_(
            CostFact.source == SOURCE,
            CostFact.grain == "resource",
            CostFact.day.between(self.first_day, self.last_day),
        )
        for cloud, accounts in _accounts_by_cloud(self.pairs).items():
            cloud_condition = CostFact.cloud.is_(None) if cloud is None else CostFact.cloud == cloud
            for account_condition in _account_conditions(accounts):
                yield and_(base, cloud_condition, account_condition)


def _accounts_by_cloud(pairs: set[Pair]) -> dict[str | None, list[str | None]]:
    grouped: dict[str | None, list[str | None]] = {}
    for cloud, account_id in sorted(pairs, key=lambda pair: (pair[0] or "", pair[1] or "")):
        grouped.setdefault(cloud, []).append(account_id)
    return grouped


def _account_conditions(accounts: list[str | None]) -> Iterator[ColumnElement[bool]]:
    named = [account for account in accounts if account is not None]
    if None in accounts:
        yield CostFact.account_id.is_(None)
    for start in range(0, len(named), MAX_ACCOUNTS_PER_QUERY):
        yield CostFact.account_id.in_(named[start : start + MAX_ACCOUNTS_PER_QUERY])


def high_water_mark(session: Session) -> int:
    """Return the largest fact id stored now, or 0 for an empty table."""
    return int(session.scalar(select(func.max(CostFact.id))) or 0)


@dataclass(frozen=True, slots=True)
class Overlap:
    """The overlap between one export's rows and the facts stored before the ingest began."""

    days: int = 0
    stored: int = 0
    rows: int = 0
    new_rows: int = 0
    first_day: date | None = None
    last_day: date | None = None

    @property
    def looks_restated(self) -> bool:
        return self.rows > 0 and self.new_rows > self.rows * RESTATED_NEW_SHARE


def measure_overlap(
    session: Session,
    scope: ExportScope,
    rows_per_day: dict[date, int],
    batch_id: str,
    high_water: int,
) -> Overlap:
    """Compare an export that was just upserted under ``batch_id`` with the facts stored before.

    An overlapping day is a charge day on which facts in scope were stored before the ingest.
    ``rows`` counts the export's kept rows on those days, and ``new_rows`` those of them that
    the upsert inserted because no stored fact had their fingerprint.
    """
    stored_per_day: dict[date, int] = {}
    new_per_day: dict[date, int] = {}
    stored_before = CostFact.id <= high_water
    inserted_now = and_(CostFact.id > high_water, CostFact.batch_id == batch_id)
    for condition in scope.conditions():
        query = (
            select(
                CostFact.day,
                func.sum(case((stored_before, 1), else_=0)),
                func.sum(case((inserted_now, 1), else_=0)),
            )
            .where(condition)
            .group_by(CostFact.day)
        )
        for day, stored, new in session.execute(query):
            stored_per_day[day] = stored_per_day.get(day, 0) + int(stored or 0)
            new_per_day[day] = new_per_day.get(day, 0) + int(new or 0)

    overlapping = sorted(day for day, stored in stored_per_day.items() if stored)
    if not overlapping:
        return Overlap()
    return Overlap(
        days=len(overlapping),
        stored=sum(stored_per_day[day] for day in overlapping),
        rows=sum(rows_per_day.get(day, 0) for day in overlapping),
        new_rows=sum(new_per_day.get(day, 0) for day in overlapping),
        first_day=overlapping[0],
        last_day=overlapping[-1],
    )


def delete_superseded(
    session: Session,
    scopes: list[ExportScope],
    high_water: int,
    is_in_export: Callable[[str], bool],
) -> list[int]:
    """Delete the facts stored before the ingest that are in scope but not in the export.

    ``scopes`` are the scopes of the export's files and ``is_in_export`` returns whether a fact key
    belongs to one of its rows. A fact that the export still contains is kept, so replacing with
    the same file deletes nothing. Returns the number of deleted facts per file: each deleted
    fact counts for the first file whose own scope covers it.
    """
    merged = ExportScope.union(scopes)
    superseded: list[int] = []
    per_file = [0] * len(scopes)
    for condition in merged.conditions():
        query = select(
            CostFact.id, CostFact.fact_key, CostFact.cloud, CostFact.account_id, CostFact.day
        ).where(condition, CostFact.id <= high_water)
        for fact_id, fact_key, cloud, account_id, day in session.execute(
            query.execution_options(yield_per=SCAN_BATCH)
        ):
            if is_in_export(fact_key):
                continue
            superseded.append(fact_id)
            _attribute(per_file, scopes, cloud, account_id, day)

    for start in range(0, len(superseded), DELETE_CHUNK):
        chunk = superseded[start : start + DELETE_CHUNK]
        session.execute(
            delete(CostFact).where(CostFact.id.in_(chunk)).execution_options(
                synchronize_session=False
            )
        )
    return per_file


def _attribute(
    per_file: list[int],
    scopes: list[ExportScope],
    cloud: str | None,
    account_id: str | None,
    day: date,
) -> None:
    for index, scope in enumerate(scopes):
        if scope.covers(cloud, account_id, day):
            per_file[index] += 1
            return
    # Outside every file's own scope but inside the union (another file's pair on a day only
    # a third file spans): counted for the first file.
    per_file[0] += 1
