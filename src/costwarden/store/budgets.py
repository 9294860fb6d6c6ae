"""Budgets kept in the database, written by the budget file sync and by the REST API.

Each row stores the budget's canonical spec (its budget file entry with defaults written out), so
a stored budget is validated by the same rules as the budget file. Every function works inside
the caller's session and transaction; none commits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from costwarden.budgets.loader import parse_budget_spec
from costwarden.domain.budget import Budget
from costwarden.errors import BudgetFileError, ConflictError, PreconditionFailedError
from costwarden.store.tables import BudgetStatusRecord, StoredBudget

logger = logging.getLogger(__name__)

Origin = Literal["file", "api"]
ORIGINS: tuple[str, ...] = ("file", "api")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Names of the budgets an import created, changed, left as they were and deleted."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


def stored_budgets(session: Session) -> list[Budget]:
    """Return every stored budget, ordered by name."""
    rows = session.scalars(select(StoredBudget).order_by(StoredBudget.name))
    return [parse_budget_spec(row.spec, f"stored budget {row.name!r}")[0] for row in rows]


def get_budget_spec(session: Session, name: str) -> StoredBudget | None:
    """Return the stored row of the budget called ``name``, or None."""
    return session.get(StoredBudget, name)


def put_budget(
    session: Session, spec: dict[str, Any], origin: str, *, expected_version: int | None = None
) -> StoredBudget:
    """Create or replace one budget and return its row.

    The version grows by one when the spec or the origin changes. Raises ``BudgetFileError``
    naming the field and value when the spec breaks a rule of the budget file, and
    ``PreconditionFailedError`` when ``expected_version`` is given and is not the stored version
    (or the budget does not exist).
    """
    _check_origin(origin)
    _, canonical = parse_budget_spec(spec)
    if expected_version is not None:
        check_version(session, canonical["name"], expected_version)
    row, _ = _write(session, canonical, origin, datetime.now(UTC))
    return row


def delete_budget(session: Session, name: str) -> bool:
    """Delete the budget called ``name`` and its stored status; return False when there was none."""
    row = session.get(StoredBudget, name)
    if row is None:
        return False

    _delete_rows(session, [row])
    return True


def import_budgets(
    session: Session,
    specs: Sequence[dict[str, Any]],
    origin: str,
    replace_origin: bool = False,
) -> ImportResult:
    """Create or replace many budgets; every spec is validated before the first write.

    With ``replace_origin``, budgets of the same origin that are not in ``specs`` are deleted, so
    the stored set of that origin matches ``specs``. Budgets of the other origin are kept, except
    those that a spec names: they take the new origin.
    Raises ``BudgetFileError`` (naming the item, budget, field and value) and writes nothing when
    one spec is invalid or two specs share a name.
    """
    _check_origin(origin)
    canonical = _validate_all(specs)
    now = datetime.now(UTC)

    outcomes: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    for spec in canonical:
        _, outcome = _write(session, spec, origin, now)
        outcomes[outcome].append(spec["name"])

    deleted: list[str] = []
    if replace_origin:
        deleted = _delete_missing(session, origin, {spec["name"] for spec in canonical})

    result = ImportResult(
        created=tuple(outcomes["created"]),
        updated=tuple(outcomes["updated"]),
        unchanged=tuple(outcomes["unchanged"]),
        deleted=tuple(deleted),
    )
    logger.info(
        "imported %d %s budgets: %d created, %d updated, %d unchanged, %d deleted",
        len(canonical),
        origin,
        len(result.created),
        len(result.updated),
        len(result.unchanged),
        len(result.deleted),
    )
    return result


def _check_origin(origin: str) -> None:
    if origin not in ORIGINS:
        raise ValueError(f"unknown budget origin {origin!r}; use one of {', '.join(ORIGINS)}")


def _validate_all(specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    canonical: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, spec in enumerate(specs, start=1):
        _, normalised = parse_budget_spec(spec, f"item {index}")
        name = normalised["name"]
        if name in seen:
            error = BudgetFileError(
                f"item {index}",
                f"budget {name!r}, field name: duplicate budget name; names must be unique",
                field="name",
                value=name,
            )
            error.budget = name
            raise error
        seen.add(name)
        canonical.append(normalised)
    return canonical


def check_version(session: Session, name: str, expected: int) -> None:
    """Raise ``PreconditionFailedError`` unless the budget exists at version ``expected``."""
    row = session.get(StoredBudget, name)
    if row is None:
        raise PreconditionFailedError(
            f"budget {name!r} does not exist, so If-Match {expected} cannot match; "
            "send the request without If-Match to create it"
        )
    if row.version != expected:
        raise PreconditionFailedError(
            f"budget {name!r} is at version {row.version}, not {expected}; read it again "
            "and retry with the current version"
        )


def _write(
    session: Session, spec: dict[str, Any], origin: str, now: datetime
) -> tuple[StoredBudget, str]:
    """Insert or update one canonical spec; return the row and created, updated or unchanged."""
    row = session.get(StoredBudget, spec["name"])
    if row is None:
        row = StoredBudget(
            name=spec["name"], spec=spec, origin=origin, version=1, created_at=now, updated_at=now
        )
        session.add(row)
        session.flush()
        return row, "created"

    if row.spec == spec and row.origin == origin:
        return row, "unchanged"

    # The version condition makes a concurrent writer that read the same version fail here
    # instead of silently overwriting this change.
    changed = session.execute(
        update(StoredBudget)
        .where(StoredBudget.name == row.name, StoredBudget.version == row.version)
        .values(spec=spec, origin=origin, version=row.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        raise ConflictError(
            f"budget {row.name!r} was changed by another request at the same time; retry"
        )
    session.refresh(row)
    return row, "updated"


def _delete_missing(session: Session, origin: str, keep: set[str]) -> list[str]:
    rows = session.scalars(select(StoredBudget).where(StoredBudget.origin == origin))
    missing = [row for row in rows if row.name not in keep]
    _delete_rows(session, missing)
    return sorted(row.name for row in missing)


def _delete_rows(session: Session, rows: Sequence[StoredBudget]) -> None:
    """Delete budgets with their latest status, so a budget created later under the same name
    does not show an evaluation of the old one."""
    names = [row.name for row in rows]
    for row in rows:
        session.delete(row)
    if names:
        session.execute(delete(BudgetStatusRecord).where(BudgetStatusRecord.budget.in_(names)))
    session.flush()
