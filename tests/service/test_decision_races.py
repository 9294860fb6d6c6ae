"""First decision wins under concurrency, double submits answer as duplicates, unknown alerts
record nothing: Slack clicks and signed links through the service, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fakes.slack import FakeSlack, InteractionDriver
from sqlalchemy import select

from costwarden.notify.links import LinkSigner
from costwarden.notify.registry import InboundResponse
from costwarden.notify.responses import store_response
from costwarden.notify.slack import ACTION_IDS
from costwarden.store import Store
from costwarden.store.tables import AlertResponseRecord, NotificationRecord

if TYPE_CHECKING:
    from conftest import RunningService

ALERT_ID = "ba-7e21c4d09a3f5b68"
PUBLIC_URL = "https://costwarden.example.com"
LINK_SECRET = "race-test-link-secret-8c41f2a9d03b7e65"
SIGNER = LinkSigner(LINK_SECRET, PUBLIC_URL, 24)
CLICKS = 10
WAIT_SECONDS = 10.0


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def add_notification(store: Store, channel: str) -> None:
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(NotificationRecord(
            alert_id=ALERT_ID, channel=channel, kind="budget", budget="prod", period_key="p",
            state="firing", severity="warning", notice={"title": "prod at 95%"},
            first_notified_at=now, last_notified_at=now, last_seen_at=now,
        ))


@pytest.fixture
def service(
    start_service: Callable[..., RunningService], fake: FakeSlack, store: Store
) -> RunningService:
    add_notification(store, "finops")
    add_notification(store, "teams-finops")
    channels = {
        "finops": fake.bot_settings(),
        "teams-finops": {"type": "teams", "workflow_url": "http://127.0.0.1:9/invoke?sig=1"},
    }
    return start_service(notify={"public_url": PUBLIC_URL, "link_secret": LINK_SECRET,
                                 "channels": channels})


@pytest.fixture
def driver(service: RunningService) -> InteractionDriver:
    return InteractionDriver(f"{service.url}/callbacks/slack")


def decisions(store: Store) -> list[AlertResponseRecord]:
    with store.transaction() as session:
        return list(session.scalars(select(AlertResponseRecord)))


def follow_ups(fake: FakeSlack, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(fake.state.follow_ups) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(fake.state.follow_ups)


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def local(service: RunningService, link: str) -> str:
    return service.url + link.removeprefix(PUBLIC_URL)


def test_concurrent_approve_and_reject_one_wins(
    store: Store, fake: FakeSlack, driver: InteractionDriver
) -> None:
    payloads = [
        driver.payload(ACTION_IDS["approve" if index % 2 else "reject"], ALERT_ID,
                       user=f"U0USER{index}", response_url=fake.response_url())
        for index in range(CLICKS)
    ]

    replies = at_once([lambda p=payload: driver.click(p) for payload in payloads])

    assert [reply.status_code for reply in replies] == [200] * CLICKS
    [winner] = decisions(store)
    texts = [item["text"] for item in follow_ups(fake, CLICKS)]
    assert len(texts) == CLICKS
    late = [text for text in texts if "already" in text]
    assert len(late) == CLICKS - 1
    assert all(f"by <@{winner.actor}>" in text for text in late)


def test_same_click_ten_times_recorded_once(
    store: Store, fake: FakeSlack, driver: InteractionDriver
) -> None:
    payload = driver.payload(ACTION_IDS["snooze"], ALERT_ID, response_url=fake.response_url())

    replies = at_once([lambda: driver.click(payload)] * CLICKS)

    assert [reply.status_code for reply in replies] == [200] * CLICKS
    assert len(decisions(store)) == 1
    texts = [item["text"] for item in follow_ups(fake, CLICKS)]
    assert sum("already recorded" in text for text in texts) == CLICKS - 1


def test_same_link_ten_times_one_success(store: Store, service: RunningService) -> None:
    url = local(service, SIGNER.links_for(ALERT_ID, "teams-finops").approve)

    replies = at_once([lambda: httpx.post(url, timeout=30)] * CLICKS)

    codes = sorted(reply.status_code for reply in replies)
    assert codes == [200] + [409] * (CLICKS - 1)
    assert len(decisions(store)) == 1


def test_link_reject_after_slack_approve(
    store: Store, fake: FakeSlack, driver: InteractionDriver, service: RunningService
) -> None:
    driver.click(driver.payload(ACTION_IDS["approve"], ALERT_ID, user="U0ALICE"))

    late = httpx.post(local(service, SIGNER.links_for(ALERT_ID, "teams-finops").reject))

    assert late.status_code == 409
    assert "already approved by U0ALICE" in late.text
    assert [record.action for record in decisions(store)] == ["approve"]


def test_unknown_alert_click_records_nothing(
    store: Store, fake: FakeSlack, driver: InteractionDriver
) -> None:
    payload = driver.payload(ACTION_IDS["approve"], "ba-0000000000000000",
                             response_url=fake.response_url())

    reply = driver.click(payload)

    assert reply.status_code == 200
    [message] = follow_ups(fake, 1)
    assert message["response_type"] == "ephemeral"
    assert "not an alert costwarden sent" in message["text"]
    assert decisions(store) == []


@pytest.mark.parametrize(
    ("alert_id", "channel"),
    [("ba-0000000000000000", "teams-finops"), (ALERT_ID, "no-such-channel")],
    ids=["unknown-alert", "unknown-channel"],
)
def test_link_for_unknown_alert_or_channel_404(
    store: Store, service: RunningService, alert_id: str, channel: str
) -> None:
    url = local(service, SIGNER.links_for(alert_id, channel).approve)

    page = httpx.get(url)
    post = httpx.post(url)

    assert (page.status_code, post.status_code) == (404, 404)
    assert "never sent" in post.text
    assert decisions(store) == []


def test_jira_decline_after_link_approval(store: Store) -> None:
    add_notification(store, "teams-finops")
    add_notification(store, "jira-fin")
    now = datetime.now(UTC)

    def response(channel: str, action: str, key: str) -> InboundResponse:
        return InboundResponse(alert_id=ALERT_ID, channel=channel, action=action,  # type: ignore[arg-type]
                               actor="someone", dedupe_key=key, received_at=now)

    first = store_response(store, response("teams-finops", "approve", "link:t1"))
    decline = store_response(store, response("jira-fin", "reject", "jira:hook-1"))
    redelivery = store_response(store, response("jira-fin", "reject", "jira:hook-2"))

    assert first.status == "recorded"
    assert (decline.status, redelivery.status) == ("decided", "decided")
    assert [record.action for record in decisions(store)] == ["approve"]
