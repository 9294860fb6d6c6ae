"""Outbox rows through the delivery worker to the fake Slack and the fake Teams webhook."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from delivery_helpers import START, FakeClock, add_rows, outbox_rows
from fakes.slack import BOT_TOKEN, CHANNEL_ID, FakeSlack
from fakes.teams import FakeTeams
from sqlalchemy import select

from costwarden.config import NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.links import LinkSigner
from costwarden.notify.worker import DeliveryWorker
from costwarden.store import Store
from costwarden.store.tables import NotificationRecord

PUBLIC_URL = "https://costwarden.example.com"
LINK_SECRET = "worker-link-secret-e41a-3c9f7b2d5a18"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(post_interval=0) as server:
        yield server


@pytest.fixture
def workers() -> Iterator[list[DeliveryWorker]]:
    opened: list[DeliveryWorker] = []
    yield opened
    for worker in opened:
        worker.close()


def make_worker(
    store: Store, channels: dict[str, dict[str, Any]], clock: FakeClock,
    opened: list[DeliveryWorker], **notify: Any,
) -> DeliveryWorker:
    settings = NotifySettings(channels=channels, **notify)
    worker = DeliveryWorker(store, settings, build_channels(settings), clock=clock,
                            sleep=clock.sleep, rng=random.Random(5))
    opened.append(worker)
    return worker


def test_trigger_then_update_in_place(
    store: Store, fake: FakeSlack, workers: list[DeliveryWorker]
) -> None:
    clock = FakeClock()
    worker = make_worker(store, {"finops": fake.bot_settings()}, clock, workers)
    add_rows(store, "finops", alert_prefix="ba-slack")

    assert worker.run_once().sent == 1
    [message] = fake.channel_messages()
    ref = f"{CHANNEL_ID}:{message['ts']}"
    with store.transaction() as session:
        notification = session.scalar(select(NotificationRecord))
        assert notification is not None
        assert notification.external_ref == ref

    # The helper rewrites the notification row, so it gets the stored reference back.
    add_rows(store, "finops", event="update", alert_prefix="ba-slack",
             created_at=START + timedelta(minutes=5), external_ref=ref)
    clock.advance(600)
    assert worker.run_once().sent == 1

    assert [method for method, _ in fake.state.api_calls] == ["chat.postMessage", "chat.update"]
    [edited] = fake.channel_messages()
    assert edited["edited"] is True


def test_permanent_failure_dead_letter(
    store: Store, fake: FakeSlack, workers: list[DeliveryWorker]
) -> None:
    fake.fail_api("chat.postMessage", "channel_not_found")
    worker = make_worker(store, {"finops": fake.bot_settings()}, FakeClock(), workers)
    add_rows(store, "finops")

    report = worker.run_once()

    assert report.dead == 1
    [row] = outbox_rows(store)
    assert row.status == "dead"
    assert row.attempts == 1
    assert row.last_error is not None
    assert "channel_not_found" in row.last_error
    assert BOT_TOKEN not in row.last_error
    assert fake.channel_messages() == []


def test_rate_limit_retried_then_sent(
    store: Store, fake: FakeSlack, workers: list[DeliveryWorker]
) -> None:
    fake.fail_webhook(429, "rate_limited", retry_after="5")
    clock = FakeClock()
    worker = make_worker(store, {"finops": fake.webhook_settings()}, clock, workers)
    add_rows(store, "finops")

    assert worker.run_once().retried == 1
    [row] = outbox_rows(store)
    assert row.status == "pending"
    assert row.next_attempt_at == START + timedelta(seconds=5)
    assert row.last_status == 429

    clock.now = row.next_attempt_at
    assert worker.run_once().sent == 1
    assert len(fake.state.webhook_messages) == 1


def test_teams_card_carries_signed_links(store: Store, workers: list[DeliveryWorker]) -> None:
    with FakeTeams() as teams:
        worker = make_worker(
            store, {"teams-finops": teams.settings()}, FakeClock(), workers,
            public_url=PUBLIC_URL, link_secret=LINK_SECRET,
        )
        [row_id] = add_rows(store, "teams-finops", alert_prefix="ba-teams")

        assert worker.run_once().sent == 1

    [card] = teams.state.cards
    urls = {action["title"]: action["url"] for action in card["actions"]}
    claims = LinkSigner(LINK_SECRET, PUBLIC_URL, 24).verify(urls["Approve"].rsplit("/", 1)[-1])
    assert claims.alert_id == "ba-teams-0"
    assert claims.channel == "teams-finops"
    assert claims.action == "approve"
    assert outbox_rows(store)[0].id == row_id
