"""Notices, deliveries and outbox rows of the Jira and ServiceNow tests."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from costwarden.config import DeliverySettings, NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.notice import Notice, NoticeAction, NoticeContributor
from costwarden.notify.registry import ActionLinks, Delivery, DeliveryEvent
from costwarden.notify.worker import DeliveryWorker
from costwarden.store import Store
from costwarden.store.tables import NotificationRecord, OutboxRecord

GENERATED_AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def budget_notice(**changes: Any) -> Notice:
    """Return a firing budget notice of prod-analytics for November 2026."""
    notice = Notice(
        alert_id="ba-3f9c2e1d7a60b4c2",
        kind="budget",
        severity="critical",
        title="Budget prod-analytics: forecast 11,380.00 USD exceeds 10,000.00 USD",
        generated_at=GENERATED_AT,
        budget="prod-analytics",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        currency="USD",
        labels={"team": "analytics"},
        owners=("analytics",),
        facts=(
            ("Budget", "10,000.00 USD"),
            ("Spent", "9,214.07 USD"),
            ("Forecast", "11,380.00 USD"),
            ("Probability of exceeding", "92%"),
        ),
        probability=0.92,
        breach_date=date(2026, 11, 24),
        overspend=1380.0,
        contributors=(
            NoticeContributor("prod-eu-1", "cluster", "1,204.50 USD", 0.61),
            NoticeContributor("spark-jobs", "namespace", "402.10 USD", 0.2),
        ),
        actions=(
            NoticeAction(
                "rightsize-spark",
                "Rightsize spark-jobs requests",
                "310.00 USD",
                "https://palette.example.com/clusters/prod-eu-1",
            ),
        ),
        palette_url="https://palette.example.com/projects/analytics",
        alert_url="https://costwarden.example.com/api/v1/alerts/ba-3f9c2e1d7a60b4c2",
    )
    return replace(notice, **changes)


def delivery(
    channel: str,
    event: DeliveryEvent,
    notice: Notice,
    external_ref: str | None = None,
    links: ActionLinks | None = None,
) -> Delivery:
    """Return a ``Delivery`` of ``notice``: one outbox row as the worker passes it to a channel."""
    return Delivery(
        id=str(uuid.uuid4()),
        channel=channel,
        event=event,
        notices=(notice,),
        created_at=GENERATED_AT,
        external_ref=external_ref,
        links={notice.alert_id: links} if links else {},
    )


class Clock:
    """The wall clock plus an offset that a test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def make_worker(
    store: Store,
    channels: dict[str, dict[str, Any]],
    built: list[DeliveryWorker],
    clock: Clock | None = None,
) -> DeliveryWorker:
    settings = NotifySettings(
        channels=channels, delivery=DeliverySettings(max_attempts=3, approval_poll_minutes=1)
    )
    worker = DeliveryWorker(
        store, settings, build_channels(settings), clock=clock or Clock(), sleep=lambda _: None
    )
    built.append(worker)
    return worker


def queue(store: Store, channel: str, event: str, notice: Notice) -> str:
    """Insert a due outbox row and the alert's notification row, as the outbox writer does."""
    now = datetime.now(UTC)
    row_id = str(uuid.uuid4())
    with store.transaction() as session:
        session.add(OutboxRecord(
            id=row_id, channel=channel, alert_id=notice.alert_id, event=event, route="test",
            notices=[notice.to_json()], status="pending", attempts=0, next_attempt_at=now,
            created_at=now, updated_at=now,
        ))
        if session.get(NotificationRecord, (notice.alert_id, channel)) is None:
            session.add(NotificationRecord(
                alert_id=notice.alert_id, channel=channel, kind=notice.kind,
                budget=notice.budget, period_key=notice.period_key, route="test",
                state="firing", severity=notice.severity, notice=notice.to_json(),
                digest_pending=False, first_notified_at=now, last_notified_at=now,
                last_seen_at=now,
            ))
    return row_id


def row(store: Store, row_id: str) -> OutboxRecord:
    with store.transaction() as session:
        record = session.get(OutboxRecord, row_id)
        assert record is not None
        session.expunge(record)
        return record


def external_ref(store: Store, alert_id: str, channel: str) -> str | None:
    with store.transaction() as session:
        record = session.get(NotificationRecord, (alert_id, channel))
        assert record is not None
        return record.external_ref
