"""The hash rule of the audit trail, and the normalisation that makes it round-trip.

An entry's hash is SHA-256 over the previous entry's hash (64 hex digits) followed by the
canonical JSON of the entry's body: ``id``, ``tenant``, ``time``, ``kind``, ``subject``,
``actor``, ``summary`` and ``detail``. ``seq`` is not hashed because the database assigns it, and
PostgreSQL sequences skip values when an insert is rolled back. The ``prev_hash`` links fix the
order instead. Values are normalised before they are hashed and stored, so that what the database
returns hashes to the same digest on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from costwarden.domain.governance import canonical_json

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of a tenant's first entry when no retention checkpoint exists."""

HASHED_FIELDS = ("id", "tenant", "time", "kind", "subject", "actor", "summary", "detail")
"""The body fields an entry's hash covers, by their names in the JSON Lines export."""

TEXT_LIMIT = 255
"""Maximum characters of ``subject`` and ``actor`` (the column width)."""


def render_time(value: datetime) -> str:
    """Render a timestamp as hashed and exported: UTC with microseconds and a Z suffix.

    For example ``2026-01-02T03:04:05.000006Z``.
    """
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: audit timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clean_text(value: str) -> str:
    """Replace NUL characters, which PostgreSQL text columns cannot store, with U+FFFD."""
    return value.replace("\x00", "\ufffd")


def json_safe(value: Any, path: str = "detail") -> Any:
    """Convert ``value`` to plain JSON values that survive a database round trip unchanged.

    Decimals become decimal strings (``format(value, "f")``), datetimes their ISO 8601 text in
    UTC, dates and times their ISO text, UUIDs and enums their value, tuples and sets lists (sets
    sorted), dataclasses and mappings objects with string keys. Non-finite floats become the
    strings ``NaN``, ``Infinity`` and ``-Infinity`` because JSON has no literal for them.
    Any other object raises TypeError naming its path, so evidence never depends on a ``repr``.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return json_safe(value.value, path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {item.name: getattr(value, item.name) for item in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {
            clean_text(str(key)): json_safe(item, f"{path}.{key}") for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [json_safe(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [json_safe(item, f"{path}[]") for item in value]
        return sorted(items, key=canonical_json)
    raise TypeError(
        f"audit {path} has a {type(value).__name__} value, which has no JSON form; convert it "
        "to a string, number, list or mapping first"
    )


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def entry_body(
    *,
    id: str,
    tenant: str,
    recorded_at: datetime,
    kind: str,
    subject: str,
    actor: str,
    summary: str,
    detail: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the hashed body of an entry, keyed as in the JSON Lines export."""
    return {
        "id": id,
        "tenant": tenant,
        "time": render_time(recorded_at),
        "kind": kind,
        "subject": subject,
        "actor": actor,
        "summary": summary,
        "detail": dict(detail),
    }


def chain_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    """Return the SHA-256 hex digest of ``prev_hash`` + canonical JSON of ``body``, as UTF-8."""
    text = prev_hash + canonical_json(dict(body))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
