"""The normalisation behind the hash: values that round-trip unchanged through both databases."""

from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from audit_helpers import TENANT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costwarden.audit import append, json_safe, verify
from costwarden.audit.hashing import render_time
from costwarden.store import Store
from costwarden.store.tables import AuditEntryRecord


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Window:
    start: date
    end: date


def test_json_safe_converts_types() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    value = {
        1: Decimal("1E+2"),
        "when": moment,
        "day": date(2026, 1, 2),
        "id": uuid.UUID(int=5),
        "colour": Colour.RED,
        "window": Window(date(2026, 1, 1), date(2026, 2, 1)),
        "tags": {"b", "a"},
        "pair": (1, 2.5),
        "nan": math.nan,
        "inf": -math.inf,
        "nul": "a\x00b",
    }

    assert json_safe(value) == {
        "1": "100",
        "when": "2026-01-02T01:04:05+00:00",
        "day": "2026-01-02",
        "id": "00000000-0000-0000-0000-000000000005",
        "colour": "red",
        "window": {"start": "2026-01-01", "end": "2026-02-01"},
        "tags": ["a", "b"],
        "pair": [1, 2.5],
        "nan": "NaN",
        "inf": "-Infinity",
        "nul": "a\ufffdb",
    }


def test_render_time_is_utc_microseconds() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    assert render_time(moment) == "2026-01-02T08:04:05.000000Z"
    with pytest.raises(ValueError, match="naive datetime"):
        render_time(datetime(2026, 1, 2))


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.decimals(allow_nan=False, places=4, min_value=-(10**12), max_value=10**12)
    | st.dates()
    | st.datetimes(timezones=st.just(UTC))
    | TEXT
)


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4)


DETAILS = st.dictionaries(
    TEXT, st.recursive(SCALARS, _containers, max_leaves=12), max_size=6
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    detail=DETAILS,
    summary=TEXT,
    subject=TEXT,
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
)
def test_random_entries_round_trip(
    store: Store, detail: dict, summary: str, subject: str, moment: datetime
) -> None:
    with store.transaction() as session:
        record = append(
            session, tenant=TENANT, kind="recommendation", subject=subject, actor="prop",
            summary=summary, detail=detail, recorded_at=moment,
        )
        seq = record.seq

    with store.transaction() as session:
        reread = session.get(AuditEntryRecord, seq)
        assert reread is not None
        assert reread.recorded_at == moment
        report = verify(session, TENANT)
    assert report.ok, report.problems[:3]
