"""Signed approval links through the service app: the page, the decision, reuse, expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import select

from costwarden.notify.links import LinkSigner
from costwarden.store import Store
from costwarden.store.tables import AlertResponseRecord, NotificationRecord, OutboxRecord

if TYPE_CHECKING:
    from conftest import RunningService

PUBLIC_URL = "https://costwarden.example.com"
LINK_SECRET = "service-link-secret-51d2-0f9e3a7c4b18d6e2"
ALERT_ID = "ba-0a1b2c3d4e5f6071"
CHANNEL = "teams-finops"
SIGNER = LinkSigner(LINK_SECRET, PUBLIC_URL, 24)


@pytest.fixture
def service(start_service: Callable[..., RunningService], store: Store) -> RunningService:
    add_notification(store)
    return start_service(notify={"public_url": PUBLIC_URL, "link_secret": LINK_SECRET})


def add_notification(store: Store) -> None:
    """Store the notification that the links were sent with."""
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(NotificationRecord(
            alert_id=ALERT_ID, channel=CHANNEL, kind="budget", budget="prod", period_key="p",
            state="firing", severity="warning", notice={"title": "prod-analytics at 91%"},
            first_notified_at=now, last_notified_at=now, last_seen_at=now,
        ))


def local(service: RunningService, link: str) -> str:
    """Return the link on the test server: the same path under the service's loopback URL."""
    assert link.startswith(f"{PUBLIC_URL}/actions/")
    return service.url + link.removeprefix(PUBLIC_URL)


def responses(store: Store) -> list[AlertResponseRecord]:
    with store.transaction() as session:
        return list(session.scalars(
            select(AlertResponseRecord).order_by(AlertResponseRecord.received_at)
        ))


def _seed_alert(store: Store) -> None:
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(OutboxRecord(
            id="row-trigger", channel=CHANNEL, alert_id=ALERT_ID, event="trigger", notices=[],
            status="pending", attempts=0, next_attempt_at=now + timedelta(days=1),
            created_at=now, updated_at=now,
        ))


def test_get_changes_nothing(store: Store, service: RunningService) -> None:
    _seed_alert(store)
    url = local(service, SIGNER.links_for(ALERT_ID, CHANNEL).approve)

    first = httpx.get(url)
    second = httpx.get(url)

    assert first.status_code == 200
    assert second.status_code == 200
    assert "prod-analytics at 91%" in first.text
    assert '<form method="post">' in first.text
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert responses(store) == []


def test_post_records_once(store: Store, service: RunningService) -> None:
    url = local(service, SIGNER.links_for(ALERT_ID, CHANNEL).approve)
    token_id = SIGNER.verify(url.rsplit("/", 1)[-1]).token_id

    first = httpx.post(url)
    second = httpx.post(url)
    page = httpx.get(url)

    assert first.status_code == 200
    assert "is approved" in first.text
    assert second.status_code == 409
    assert "already used" in second.text
    assert page.status_code == 409
    [record] = responses(store)
    assert record.action == "approve"
    assert record.channel == CHANNEL
    assert record.actor == "signed link"
    assert record.dedupe_key == f"link:{token_id}"


def test_reject_after_approve(store: Store, service: RunningService) -> None:
    links = SIGNER.links_for(ALERT_ID, CHANNEL)

    httpx.post(local(service, links.approve))
    page = httpx.get(local(service, links.reject))
    late = httpx.post(local(service, links.reject))
    snooze = httpx.get(local(service, links.snooze))

    assert page.status_code == 409
    assert "Already decided" in page.text
    assert late.status_code == 409
    assert "already approved" in late.text
    assert snooze.status_code == 200
    assert [record.action for record in responses(store)] == ["approve"]


def test_expired_link_401(store: Store, service: RunningService) -> None:
    old = datetime.now(UTC) - timedelta(hours=25)
    url = local(service, SIGNER.links_for(ALERT_ID, CHANNEL, now=old).approve)

    page = httpx.get(url)
    post = httpx.post(url)

    assert page.status_code == 401
    assert "expired" in page.text
    assert post.status_code == 401
    assert responses(store) == []


def test_forged_link_401(store: Store, service: RunningService) -> None:
    forged = LinkSigner("guessed-secret", PUBLIC_URL, 24).links_for(ALERT_ID, CHANNEL).approve

    response = httpx.post(local(service, forged))

    assert response.status_code == 401
    assert "signature" in response.text
    assert responses(store) == []


def test_malformed_link_401(service: RunningService) -> None:
    response = httpx.get(f"{service.url}/actions/not-a-token")

    assert response.status_code == 401


def test_snooze_hours_chosen(store: Store, service: RunningService) -> None:
    _seed_alert(store)
    url = local(service, SIGNER.links_for(ALERT_ID, CHANNEL).snooze)
    before = datetime.now(UTC)

    page = httpx.get(url)
    response = httpx.post(url, data={"hours": "72"})

    assert '<option value="72">' in page.text
    assert response.status_code == 200
    [record] = responses(store)
    assert record.snoozed_until is not None
    assert before + timedelta(hours=72) <= record.snoozed_until
    assert record.snoozed_until <= datetime.now(UTC) + timedelta(hours=72)
    with store.transaction() as session:
        row = session.get(OutboxRecord, "row-trigger")
        assert row is not None
        assert row.status == "cancelled"


def test_snooze_without_hours_uses_noise_default(store: Store, service: RunningService) -> None:
    url = local(service, SIGNER.links_for(ALERT_ID, CHANNEL).snooze)

    httpx.post(url)

    [record] = responses(store)
    assert record.snoozed_until is not None
    assert record.snoozed_until - record.received_at == timedelta(hours=24)


def test_snooze_too_long_refused(store: Store, service: RunningService) -> None:
    url = local(service, SIGNER.links_for(ALERT_ID, CHANNEL).snooze)

    response = httpx.post(url, data={"hours": "99999"})

    assert response.status_code == 400
    assert "1 to 720 hours" in response.text
    assert "not 99999" in response.text
    assert responses(store) == []


def test_links_off_404(start_service: Callable[..., RunningService]) -> None:
    service = start_service()
    url = local(service, SIGNER.links_for(ALERT_ID, CHANNEL).approve)

    response = httpx.get(url)

    assert response.status_code == 404
