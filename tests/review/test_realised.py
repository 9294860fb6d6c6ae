"""Realised savings of applied actions, on seeded spend series with a planted change."""

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from review_helpers import (
    CHANGE_DAY,
    DROP,
    NOISE_SD,
    NOW,
    add_request,
    add_run,
    seed_fleet,
)
from sqlalchemy import select

from costwarden.config import load_settings
from costwarden.domain.recommendation import DAYS_PER_MONTH
from costwarden.review import record_realised_savings
from costwarden.store.tables import RealisedSavingsRecord

TRUE_MONTHLY = float(DAYS_PER_MONTH) * DROP


def _tolerance(days: int) -> float:
    """Return four standard deviations of the realised monthly figure over a ``days`` window.

    The counterfactual's level is fitted on about 100 days, so its error is small next to the
    day-to-day noise of the window itself: NOISE_SD a day, so NOISE_SD / sqrt(days) on the
    window's daily mean, times 30.4375 for a month.
    """
    return 4 * NOISE_SD * float(DAYS_PER_MONTH) / math.sqrt(days)


def _rows(store):
    with store.transaction() as session:
        query = select(RealisedSavingsRecord).order_by(
            RealisedSavingsRecord.scope, RealisedSavingsRecord.window_end
        )
        return [
            (
                row.id,
                row.scope,
                row.window_start,
                row.window_end,
                row.forecast_without_change,
                row.actual,
                row.estimated_per_month,
                row.realised_per_month,
                row.detail,
            )
            for row in session.scalars(query)
        ]


def _record(store, now=NOW, **kwargs):
    with store.transaction() as session:
        return record_realised_savings(session, load_settings(), now, **kwargs)


def test_planted_drop_is_realised(store):
    seed_fleet(store, drops={"c1": CHANGE_DAY})
    with store.transaction() as session:
        request = add_request(
            session,
            evidence={"estimated_savings_per_month": "1100.00", "currency": "USD"},
            created=NOW - timedelta(days=45),
        )
        add_run(session, cluster_uid="c1", day=CHANGE_DAY, request_id=request.id)

    outcome = _record(store)

    assert outcome.recorded == 3
    assert outcome.skipped == {}
    rows = _rows(store)
    assert [row[3] for row in rows] == [CHANGE_DAY + timedelta(days=d) for d in (7, 14, 30)]
    for _, scope, start, end, _, _, estimated, realised, detail in rows:
        days = (end - start).days + 1
        assert scope == "cluster:c1"
        assert start == CHANGE_DAY + timedelta(days=1)
        assert estimated == Decimal("1100.00")
        assert float(realised) == pytest.approx(TRUE_MONTHLY, abs=_tolerance(days))
        assert detail["within_noise"] is False
        low, high = (float(value) for value in detail["realised_per_month_interval_95"])
        assert low <= TRUE_MONTHLY <= high
        assert detail["estimate"]["source"] == "approval_request.evidence"
        assert detail["data_window"]["end"] == (CHANGE_DAY - timedelta(days=1)).isoformat()


def test_unchanged_scope_is_within_noise(sqlite_store):
    seed_fleet(sqlite_store, drops={"c2": None})
    with sqlite_store.transaction() as session:
        add_run(session, cluster_uid="c2", day=CHANGE_DAY, params={})

    _record(sqlite_store)

    rows = _rows(sqlite_store)
    assert len(rows) == 3
    for _, _, start, end, _, _, estimated, realised, detail in rows:
        days = (end - start).days + 1
        assert float(realised) == pytest.approx(0.0, abs=_tolerance(days))
        assert detail["within_noise"] is True
        assert estimated is None
        assert "neither" in detail["estimate"]["note"]


def test_namespace_action_measures_namespace(sqlite_store):
    seed_fleet(sqlite_store, drops={"c1": CHANGE_DAY})
    with sqlite_store.transaction() as session:
        add_run(
            session,
            cluster_uid="c1",
            day=CHANGE_DAY,
            kind="namespace",
            namespace="web",
            action="kubernetes.pause_namespace",
            params={"savings": {"per_month": "400", "currency": "USD"}},
        )

    _record(sqlite_store)

    rows = _rows(sqlite_store)
    assert {row[1] for row in rows} == {"namespace:c1/web"}
    longest = rows[-1]
    assert float(longest[7]) == pytest.approx(TRUE_MONTHLY / 3, abs=_tolerance(30) / 3)
    assert longest[6] == Decimal("400")
    assert longest[8]["estimate"]["source"] == "action_run.params"


def test_second_pass_writes_same_rows(sqlite_store):
    seed_fleet(sqlite_store, drops={"c1": CHANGE_DAY})
    with sqlite_store.transaction() as session:
        add_run(session, cluster_uid="c1", day=CHANGE_DAY)

    first = _record(sqlite_store)
    rows_before = _rows(sqlite_store)
    second = _record(sqlite_store)
    again = _record(sqlite_store, recompute=True)

    assert first.recorded == 3
    assert second.recorded == 0
    assert again.recorded == 3
    rows_after = _rows(sqlite_store)
    assert [row[:8] for row in rows_after] == [row[:8] for row in rows_before]


def test_incomplete_windows_wait(sqlite_store):
    seed_fleet(sqlite_store, drops={"c1": CHANGE_DAY})
    with sqlite_store.transaction() as session:
        add_run(session, cluster_uid="c1", day=CHANGE_DAY)
    # On this day the 7-day window ended yesterday and the 14-day one ends today.
    now = NOW.replace(month=11, day=18)

    outcome = _record(sqlite_store, now=now)

    assert outcome.recorded == 1
    assert outcome.waiting == 2
    assert [row[3] for row in _rows(sqlite_store)] == [CHANGE_DAY + timedelta(days=7)]


def test_rollback_ends_windows(sqlite_store):
    seed_fleet(sqlite_store, drops={"c1": CHANGE_DAY})
    with sqlite_store.transaction() as session:
        applied = add_run(session, cluster_uid="c1", day=CHANGE_DAY)
        add_run(
            session,
            cluster_uid="c1",
            day=CHANGE_DAY + timedelta(days=10),
            mode="rollback",
            rollback_of=applied.id,
        )

    _record(sqlite_store)

    rows = _rows(sqlite_store)
    assert [row[3] for row in rows] == [CHANGE_DAY + timedelta(days=7)]
    assert rows[0][8]["rolled_back_on"] == (CHANGE_DAY + timedelta(days=10)).isoformat()


def test_runs_without_spend_are_skipped(sqlite_store):
    seed_fleet(sqlite_store, drops={"c1": None})
    with sqlite_store.transaction() as session:
        repository = add_run(session, cluster_uid="", day=CHANGE_DAY, action="gitops.pull_request")
        young = add_run(session, cluster_uid="c1", day=CHANGE_DAY.replace(month=8, day=10))
        failed = add_run(session, cluster_uid="c1", day=CHANGE_DAY, status="failed")

    outcome = _record(sqlite_store)

    assert "no cluster" in outcome.skipped[repository.id]
    assert "fewer than the 14" in outcome.skipped[young.id]
    assert failed.id not in outcome.skipped
    assert _rows(sqlite_store) == []


def test_estimate_in_other_currency_not_compared(sqlite_store):
    seed_fleet(sqlite_store, drops={"c1": CHANGE_DAY})
    with sqlite_store.transaction() as session:
        add_run(
            session,
            cluster_uid="c1",
            day=CHANGE_DAY,
            params={"estimated_savings_per_month": 900, "currency": "EUR"},
        )

    _record(sqlite_store)

    rows = _rows(sqlite_store)
    assert all(row[6] is None for row in rows)
    assert "EUR" in rows[0][8]["estimate"]["note"]
