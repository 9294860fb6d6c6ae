"""End to end on the demo fleet: a pass queues outbox rows with its alerts, an identical pass
queues none, and a failing pass leaves no rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from notify_samples import WEBHOOK
from sqlalchemy import func, select

from costwarden.budgets import load_budgets
from costwarden.cli.run import DEMO_AS_OF, DEMO_SEED, demo_budgets_file, demo_calendar_file
from costwarden.config import NotifySettings, PaletteSettings, Settings
from costwarden.notify import outbox
from costwarden.notify.build import recommendation_alert_id
from costwarden.notify.notice import Notice
from costwarden.pipeline import RunResult, run_pass
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.store import Store
from costwarden.store.tables import AlertRecord, NotificationRecord, OutboxRecord, Run

PUBLIC_URL = "https://costwarden.example.com"
NOTIFY = {
    "public_url": PUBLIC_URL,
    "channels": {"ops": dict(WEBHOOK), "pager": dict(WEBHOOK)},
    "routes": [
        {"name": "pages", "min_severity": "critical", "channels": ["pager"]},
        {"name": "everything", "channels": ["ops"]},
    ],
    # Every alert is sent at once, so the second pass does not depend on whether a digest time
    # passed between the two passes. Digests are tested in test_noise.
    "noise": {"digest_below": None},
}


@pytest.fixture
def demo_store(database_url: str) -> Iterator[tuple[Store, Settings]]:
    """A store with the demo fleet ingested by a pass without notification routes."""
    simulator = SimulatorServer(
        SimulatorSettings(seed=DEMO_SEED, as_of=DEMO_AS_OF, rate_limit_enabled=False)
    )
    store = Store.open(database_url)
    with simulator:
        settings = Settings(
            database_url=database_url,
            palette=PaletteSettings(url=simulator.url, api_key=simulator.api_key),
            calendar_file=demo_calendar_file(),
        )
        run_pass(store, settings, load_budgets(demo_budgets_file()), DEMO_AS_OF)
        # The simulator keeps running: later passes read machine pools from it to recommend.
        yield store, settings.model_copy(update={"notify": NotifySettings.model_validate(NOTIFY)})
    store.close()


def count(store: Store, table: Any) -> int:
    with store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def outbox_rows(store: Store) -> list[OutboxRecord]:
    with store.transaction() as session:
        rows = list(session.scalars(select(OutboxRecord)))
        session.expunge_all()
        return rows


def notify_pass(store: Store, settings: Settings) -> RunResult:
    return run_pass(store, settings, load_budgets(demo_budgets_file()), DEMO_AS_OF, ingest=False)


def expected_alert_ids(result: RunResult) -> set[str]:
    """Alert ids a pass must notify: one per budget and period, every quota alert, every
    ongoing anomaly and every recommendation with savings."""
    by_budget: dict[str, Any] = {}
    for alert in result.alerts:
        name = alert.status.budget.name
        rank = {"info": 0, "warning": 1, "critical": 2}
        if name not in by_budget or rank[alert.severity] > rank[by_budget[name].severity]:
            by_budget[name] = alert
    ids = {alert.alert_id for alert in by_budget.values()}
    ids |= {alert.alert_id for alert in result.quota_alerts}
    ids |= {
        str(payload["alert_id"])
        for payload in result.anomaly_alerts
        if payload["status"] != "resolved"
    }
    if result.recommendations is not None:
        ids |= {
            recommendation_alert_id(item.id)
            for item in result.recommendations.items
            if item.savings.per_month > 0
        }
    return ids


def fail_after_enqueue(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the first enqueue of a pass raise after writing its rows; return the row counts."""
    written: list[int] = []
    real_enqueue = outbox.enqueue_notices

    def enqueue_then_fail(session, notify, notices, **options):  # type: ignore[no-untyped-def]
        real_enqueue(session, notify, notices, **options)
        session.flush()
        written.append(int(session.scalar(select(func.count()).select_from(OutboxRecord)) or 0))
        raise RuntimeError("the database went away after the outbox rows were written")

    monkeypatch.setattr(outbox, "enqueue_notices", enqueue_then_fail)
    return written


def test_demo_passes_queue_outbox_rows(demo_store, monkeypatch):
    store, settings = demo_store
    # The ingesting pass had no routes: alerts, but no notifications.
    assert count(store, AlertRecord) > 0
    assert count(store, OutboxRecord) == 0
    assert count(store, NotificationRecord) == 0

    # A pass that fails after queueing rolls back the alerts and the rows together.
    with store.transaction() as session:
        session.execute(AlertRecord.__table__.delete())
    with monkeypatch.context() as patch:
        written = fail_after_enqueue(patch)
        with pytest.raises(RuntimeError, match="went away"):
            notify_pass(store, settings)
    assert written and written[0] > 0
    assert count(store, OutboxRecord) == 0
    assert count(store, NotificationRecord) == 0
    assert count(store, AlertRecord) == 0
    with store.transaction() as session:
        assert Counter(session.scalars(select(Run.status)))["failed"] == 1

    # The next pass queues one trigger per alert and channel.
    first = notify_pass(store, settings)

    rows = outbox_rows(store)
    assert first.queued == len(rows) > 0
    assert {row.event for row in rows} == {"trigger"}
    assert {row.status for row in rows} == {"pending"}
    ops = [row.alert_id for row in rows if row.channel == "ops"]
    assert len(ops) == len(set(ops))
    assert set(ops) == expected_alert_ids(first)
    notices = [Notice.from_json(row.notices[0]) for row in rows]
    assert {notice.kind for notice in notices} >= {"budget", "quota", "anomaly"}
    pages = {row.alert_id for row in rows if row.channel == "pager"}
    assert pages
    assert pages == {notice.alert_id for notice in notices if notice.severity == "critical"}
    budget_notices = [notice for notice in notices if notice.kind == "budget"]
    assert all(
        notice.alert_url == f"{PUBLIC_URL}/api/v1/alerts/{notice.alert_id}"
        for notice in budget_notices
    )
    assert all(dict(notice.facts)["Budget"].endswith(" USD") for notice in budget_notices)
    assert count(store, NotificationRecord) == len(rows)

    # An identical pass queues nothing.
    second = notify_pass(store, settings)

    assert second.queued == 0
    assert len(outbox_rows(store)) == len(rows)
    assert count(store, NotificationRecord) == len(rows)
