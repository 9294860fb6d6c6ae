"""Narrowing notify.routes while an alert fires: no false resolve, a resolve once it stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notify_samples import notice, notify_settings
from sqlalchemy import select

from costwarden.notify.notice import Notice
from costwarden.notify.outbox import EnqueueReport, enqueue_notices
from costwarden.store import Store
from costwarden.store.tables import NotificationRecord, OutboxRecord

NOW = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
BOTH = [{"name": "all", "channels": ["ops", "finops"]}]
OPS_ONLY = [{"name": "all", "channels": ["ops"]}]


def enqueue(store: Store, routes: list[dict], notices: list[Notice], now: datetime
            ) -> EnqueueReport:
    settings = notify_settings(routes=routes)
    with store.transaction() as session:
        return enqueue_notices(
            session, settings, notices, evaluated_kinds=("budget",),
            evaluated_budgets=("prod-monthly",), now=now,
        )


def events(store: Store) -> list[tuple[str, str]]:
    with store.transaction() as session:
        rows = session.scalars(select(OutboxRecord).order_by(OutboxRecord.created_at)).all()
        return [(row.channel, row.event) for row in rows]


def state_of(store: Store, channel: str) -> str:
    with store.transaction() as session:
        record = session.get(NotificationRecord, ("b" * 32, channel))
        assert record is not None
        return record.state


def test_narrowed_route_sends_no_resolve_while_firing(store):
    enqueue(store, BOTH, [notice()], NOW)

    report = enqueue(store, OPS_ONLY, [notice()], NOW + timedelta(hours=1))

    assert report.resolved == 0
    assert report.resolve_rows == 0
    assert events(store) == [("ops", "trigger"), ("finops", "trigger")]
    assert state_of(store, "finops") == "firing"


def test_unrouted_channel_gets_resolve_when_alert_stops(store):
    enqueue(store, BOTH, [notice()], NOW)
    enqueue(store, OPS_ONLY, [notice()], NOW + timedelta(hours=1))

    report = enqueue(store, OPS_ONLY, [], NOW + timedelta(hours=2))

    assert report.resolve_rows == 2
    resolves = sorted(channel for channel, event in events(store) if event == "resolve")
    assert resolves == ["finops", "ops"]
    assert state_of(store, "finops") == "resolved"


def test_alert_routed_nowhere_keeps_its_records(store):
    enqueue(store, BOTH, [notice()], NOW)
    elsewhere = [{"name": "other", "budgets": ["staging-*"], "channels": ["ops"]}]

    report = enqueue(store, elsewhere, [notice()], NOW + timedelta(hours=1))

    assert report.resolve_rows == 0
    assert report.unrouted == 1
    assert state_of(store, "ops") == "firing"
