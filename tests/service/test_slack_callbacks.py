"""Slack button clicks through the service app: signatures, replay window, decisions, follow-ups."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fakes.slack import OTHER_CHANNEL_ID, FakeSlack, InteractionDriver, sign
from sqlalchemy import select

from costwarden.notify.slack import ACTION_IDS, VIEW_ACTION_ID
from costwarden.store import Store
from costwarden.store.tables import AlertResponseRecord, NotificationRecord, OutboxRecord

if TYPE_CHECKING:
    from conftest import RunningService

ALERT_ID = "ba-5d1c0e9a7b3f2468"
OTHER_SECRET = "platform-signing-secret-93af"
FOLLOW_UP_WAIT_SECONDS = 10.0


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def add_notification(store: Store, alert_id: str = ALERT_ID, channel: str = "finops") -> None:
    """Store the notification that the clicked message stands for."""
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(NotificationRecord(
            alert_id=alert_id, channel=channel, kind="budget", budget="prod", period_key="p",
            state="firing", severity="warning", notice={"title": "prod at 91%"},
            first_notified_at=now, last_notified_at=now, last_seen_at=now,
        ))


@pytest.fixture
def service(
    start_service: Callable[..., RunningService], fake: FakeSlack, store: Store
) -> RunningService:
    add_notification(store)
    channels = {
        "finops": fake.bot_settings(snooze_hours=8),
        "platform": fake.bot_settings(channel=OTHER_CHANNEL_ID, signing_secret=OTHER_SECRET),
        "shared-app": fake.bot_settings(channel="C0SHARED"),
        "teams-finops": {"type": "teams", "workflow_url": "http://127.0.0.1:9/invoke?sig=1"},
    }
    return start_service(notify={"public_url": "https://costwarden.example.com",
                                 "channels": channels})


@pytest.fixture
def driver(service: RunningService) -> InteractionDriver:
    return InteractionDriver(f"{service.url}/callbacks/slack")


def responses(store: Store) -> list[AlertResponseRecord]:
    with store.transaction() as session:
        return list(session.scalars(
            select(AlertResponseRecord).order_by(AlertResponseRecord.received_at)
        ))


def wait_for_follow_ups(fake: FakeSlack, count: int) -> list[dict[str, Any]]:
    """Wait until the fake received ``count`` follow-ups; they are sent after the response."""
    deadline = time.monotonic() + FOLLOW_UP_WAIT_SECONDS
    while len(fake.state.follow_ups) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(fake.state.follow_ups)


def click(
    driver: InteractionDriver, fake: FakeSlack, action: str, **options: Any
) -> httpx.Response:
    payload = driver.payload(ACTION_IDS[action], ALERT_ID, response_url=fake.response_url(),
                             **options)
    return driver.click(payload)


def test_approve_recorded(
    store: Store, fake: FakeSlack, driver: InteractionDriver
) -> None:
    response = click(driver, fake, "approve")

    assert response.status_code == 200
    assert response.content == b""
    [record] = responses(store)
    assert record.alert_id == ALERT_ID
    assert record.action == "approve"
    assert record.actor == "U0ALICE"
    assert record.channel == "finops"
    assert record.dedupe_key.startswith("slack:U0ALICE:")
    assert record.detail["user_name"] == "u0alice"
    [follow_up] = wait_for_follow_ups(fake, 1)
    assert follow_up["response_type"] == "in_channel"
    assert follow_up["text"] == f"<@U0ALICE> approved alert `{ALERT_ID}`."


def test_second_click_records_nothing(
    store: Store, fake: FakeSlack, driver: InteractionDriver
) -> None:
    click(driver, fake, "approve")
    again = click(driver, fake, "approve", user="U0BOB")
    reject = click(driver, fake, "reject", user="U0BOB")

    assert again.status_code == 200
    assert reject.status_code == 200
    [record] = responses(store)
    assert record.actor == "U0ALICE"
    follow_ups = wait_for_follow_ups(fake, 3)
    late = [item for item in follow_ups if item["response_type"] == "ephemeral"]
    assert len(late) == 2
    assert all("already approved by <@U0ALICE>" in item["text"] for item in late)


def test_redelivered_click_once(store: Store, fake: FakeSlack, driver: InteractionDriver) -> None:
    payload = driver.payload(ACTION_IDS["reject"], ALERT_ID, response_url=fake.response_url())

    first = driver.click(payload)
    second = driver.click(payload)

    assert (first.status_code, second.status_code) == (200, 200)
    [record] = responses(store)
    assert record.action == "reject"
    texts = [item["text"] for item in wait_for_follow_ups(fake, 2)]
    assert any("was already recorded" in text for text in texts)


def _seed_alert(store: Store) -> None:
    now = datetime.now(UTC)
    with store.transaction() as session:
        for event in ("update", "resolve"):
            session.add(OutboxRecord(
                id=f"row-{event}", channel="finops", alert_id=ALERT_ID, event=event,
                notices=[], status="pending", attempts=0, next_attempt_at=now + timedelta(days=1),
                created_at=now, updated_at=now,
            ))


def test_snooze_silences_alert(
    store: Store, fake: FakeSlack, driver: InteractionDriver
) -> None:
    _seed_alert(store)
    before = datetime.now(UTC)

    response = click(driver, fake, "snooze")

    assert response.status_code == 200
    [record] = responses(store)
    assert record.action == "snooze"
    assert record.snoozed_until is not None
    assert before + timedelta(hours=8) <= record.snoozed_until
    assert record.snoozed_until <= datetime.now(UTC) + timedelta(hours=8)
    with store.transaction() as session:
        notification = session.get(NotificationRecord, (ALERT_ID, "finops"))
        rows = {row.event: row.status for row in session.scalars(select(OutboxRecord))}
    assert notification is not None
    assert notification.snoozed_until == record.snoozed_until
    assert rows == {"update": "cancelled", "resolve": "pending"}
    [follow_up] = wait_for_follow_ups(fake, 1)
    assert "snoozed" in follow_up["text"]
    assert "pause until" in follow_up["text"]


def test_snooze_then_approve(store: Store, fake: FakeSlack, driver: InteractionDriver) -> None:
    click(driver, fake, "snooze")
    click(driver, fake, "approve")

    assert [record.action for record in responses(store)] == ["snooze", "approve"]


def test_stale_timestamp_rejected(store: Store, driver: InteractionDriver) -> None:
    payload = driver.payload(ACTION_IDS["approve"], ALERT_ID)

    stale = driver.click(payload, timestamp=int(time.time()) - 301)
    future = driver.click(payload, timestamp=int(time.time()) + 400)

    assert stale.status_code == 401
    assert "300 s" in stale.json()["detail"]
    assert future.status_code == 401
    assert responses(store) == []


def test_old_timestamp_in_window(store: Store, driver: InteractionDriver) -> None:
    payload = driver.payload(ACTION_IDS["approve"], ALERT_ID)

    response = driver.click(payload, timestamp=int(time.time()) - 240)

    assert response.status_code == 200
    assert len(responses(store)) == 1


def test_bad_signature_rejected(store: Store, driver: InteractionDriver) -> None:
    payload = driver.payload(ACTION_IDS["approve"], ALERT_ID)

    wrong_key = driver.click(payload, secret="not-the-signing-secret")
    tampered = driver.click(payload, tamper=True)
    unsigned = httpx.post(driver.callback_url, content=b"payload=%7B%7D",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert wrong_key.status_code == 401
    assert tampered.status_code == 401
    assert unsigned.status_code == 401
    assert responses(store) == []


def test_second_channel_secret(store: Store, driver: InteractionDriver) -> None:
    payload = driver.payload(ACTION_IDS["reject"], ALERT_ID, user="U0CAROL")

    response = driver.click(payload, secret=OTHER_SECRET)

    assert response.status_code == 200
    [record] = responses(store)
    assert record.channel == "platform"


def test_shared_secret_channel_by_id(store: Store, driver: InteractionDriver) -> None:
    payload = driver.payload(ACTION_IDS["approve"], ALERT_ID)
    payload["container"]["channel_id"] = "C0SHARED"

    response = driver.click(payload)

    assert response.status_code == 200
    [record] = responses(store)
    assert record.channel == "shared-app"
    assert record.detail["channel_id"] == "C0SHARED"


def test_follow_up_only_to_slack_host(
    store: Store, fake: FakeSlack, driver: InteractionDriver, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeSlack() as elsewhere, caplog.at_level(logging.WARNING):
        forbidden = driver.payload(ACTION_IDS["approve"], ALERT_ID,
                                   response_url=elsewhere.response_url())
        driver.click(forbidden)
        allowed = driver.payload(ACTION_IDS["approve"], ALERT_ID, user="U0BOB",
                                 response_url=fake.response_url())
        driver.click(allowed)
        wait_for_follow_ups(fake, 1)

    assert elsewhere.state.follow_ups == []
    assert len(fake.state.follow_ups) == 1
    assert "no follow-up sent" in caplog.text
    assert len(responses(store)) == 1


def test_view_button_ignored(store: Store, driver: InteractionDriver) -> None:
    response = driver.click(driver.payload(VIEW_ACTION_ID, ALERT_ID))

    assert response.status_code == 200
    assert responses(store) == []


def test_other_payload_types_ignored(store: Store, driver: InteractionDriver) -> None:
    payload = {"type": "view_submission", "user": {"id": "U0ALICE"}}

    response = driver.click(payload)

    assert response.status_code == 200
    assert responses(store) == []


def test_malformed_payload_400(driver: InteractionDriver) -> None:
    body = b"payload=not-json"
    stamp = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": sign(driver.secret, stamp, body),
               "Content-Type": "application/x-www-form-urlencoded"}

    response = httpx.post(driver.callback_url, content=body, headers=headers)

    assert response.status_code == 400


def test_not_configured_404(start_service: Callable[..., RunningService]) -> None:
    service = start_service()

    response = InteractionDriver(f"{service.url}/callbacks/slack").click(
        {"type": "block_actions"}
    )

    assert response.status_code == 404
