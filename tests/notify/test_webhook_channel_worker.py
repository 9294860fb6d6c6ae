"""Outbox row to delivery worker to fake service: webhooks and PagerDuty over loopback HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from delivery_helpers import START, FakeClock, add_rows, outbox_rows
from fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from fakes.webhook_receiver import WebhookReceiver, start

from costwarden.config import NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.worker import DeliveryWorker
from costwarden.store import Store
from costwarden.store.tables import NotificationRecord

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with start(SECRET) as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START + timedelta(seconds=5))


def make_worker(
    store: Store, channels: dict[str, dict[str, Any]], clock: FakeClock
) -> Iterator[DeliveryWorker]:
    settings = NotifySettings(channels=channels)
    worker = DeliveryWorker(
        store,
        settings,
        build_channels(settings),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(3),
    )
    try:
        yield worker
    finally:
        worker.close()


@pytest.fixture
def hook_worker(
    sqlite_store: Store, receiver: WebhookReceiver, clock: FakeClock
) -> Iterator[DeliveryWorker]:
    channels = {"hooks": {"type": "webhook", "url": receiver.url, "secret": SECRET}}
    yield from make_worker(sqlite_store, channels, clock)


def test_row_delivered_and_verified(
    sqlite_store: Store, hook_worker: DeliveryWorker, receiver: WebhookReceiver
) -> None:
    [row_id] = add_rows(sqlite_store, "hooks")

    report = hook_worker.run_once()

    assert report.sent == 1
    [received] = receiver.received
    assert received.id == row_id
    assert received.payload["type"] == "alert.triggered"
    assert received.payload["data"]["alert_id"] == "hooks-alert-0"
    assert outbox_rows(sqlite_store)[0].status == "sent"


def test_503_retried_with_same_id(
    sqlite_store: Store,
    hook_worker: DeliveryWorker,
    receiver: WebhookReceiver,
    clock: FakeClock,
) -> None:
    [row_id] = add_rows(sqlite_store, "hooks")
    receiver.respond_next(503, retry_after="40")

    first = hook_worker.run_once()
    [row] = outbox_rows(sqlite_store)
    clock.advance(41)
    second = hook_worker.run_once()

    assert first.retried == 1
    assert row.status == "pending"
    assert row.last_status == 503
    retry_at = row.next_attempt_at.replace(tzinfo=UTC)
    assert retry_at >= START + timedelta(seconds=5 + 40)
    assert second.sent == 1
    assert receiver.requests == 2
    assert [item.id for item in receiver.received] == [row_id]


def test_410_dead_letter(
    sqlite_store: Store, hook_worker: DeliveryWorker, receiver: WebhookReceiver
) -> None:
    add_rows(sqlite_store, "hooks")
    receiver.respond_next(410)

    report = hook_worker.run_once()

    assert report.dead == 1
    [row] = outbox_rows(sqlite_store)
    assert row.status == "dead"
    assert row.last_status == 410
    assert "receiver disabled this endpoint" in row.last_error
    assert SECRET not in row.last_error


def test_pagerduty_trigger_then_resolve(sqlite_store: Store, clock: FakeClock) -> None:
    with FakePagerDuty() as fake:
        channels = {
            "pager": {
                "type": "pagerduty",
                "routing_key": ROUTING_KEY,
                "events_url": fake.events_url,
            }
        }
        add_rows(sqlite_store, "pager", severity="critical", alert_prefix="cpu")
        add_rows(
            sqlite_store,
            "pager",
            severity="critical",
            alert_prefix="cpu",
            event="resolve",
            created_at=START + timedelta(seconds=1),
        )

        for worker in make_worker(sqlite_store, channels, clock):
            report = worker.run_once()

        assert report.sent == 2
        [alert] = fake.alerts
        assert alert.dedup_key == "costwarden-cpu-0"
        assert alert.status == "resolved"
        with sqlite_store.transaction() as session:
            record = session.get(NotificationRecord, ("cpu-0", "pager"))
            assert record is not None
            assert record.external_ref == "costwarden-cpu-0"
