"""The pagerduty channel end to end against the fake Events API v2 over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime

import httpx
import pytest
from fakes.pagerduty import OTHER_ROUTING_KEY, ROUTING_KEY, FakePagerDuty

from costwarden.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import CHANNELS, ChannelContext, Delivery, Notice
from costwarden.notify.notice import NoticeAction, NoticeContributor
from costwarden.notify.pagerduty import MAX_EVENT_BYTES, dedup_key

ALERT_ID = "3f9c2e1d7a60b4c23f9c2e1d7a60b4c2"
PUBLIC_URL = "https://costwarden.example.com"


def make_notice(severity: str = "critical", **changes: object) -> Notice:
    notice = Notice(
        alert_id=ALERT_ID,
        kind="budget",
        severity=severity,  # type: ignore[arg-type]
        title="prod-analytics will exceed its monthly budget on 2026-11-24",
        generated_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        budget="prod-analytics",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        currency="USD",
        labels={"team": "data"},
        owners=("data-platform@example.com",),
        facts=(("Budget", "10,000.00 USD"), ("Spent", "9,214.07 USD")),
        probability=0.93,
        contributors=(NoticeContributor("prod-eu-1", "cluster", "1,204.50 USD", 0.4),),
        actions=(NoticeAction("rightsize-1", "Rightsize gpu-pool", "310.00 USD"),),
        palette_url="https://console.spectrocloud.com/projects/p1/clusters/c1",
        alert_url=f"{PUBLIC_URL}/api/v1/alerts/{ALERT_ID}",
    )
    return replace(notice, **changes)  # type: ignore[arg-type]


def delivery(
    event: str = "trigger", notice: Notice | None = None, ref: str | None = None, row: str = "row-1"
) -> Delivery:
    return Delivery(
        id=row,
        channel="pager",
        event=event,  # type: ignore[arg-type]
        notices=(notice or make_notice(),),
        created_at=datetime(2026, 11, 20, 9, 0, 5, tzinfo=UTC),
        external_ref=ref,
    )


@pytest.fixture
def fake() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


def make_channel(fake: FakePagerDuty, **options: object):  # type: ignore[no-untyped-def]
    settings = {
        "type": "pagerduty",
        "routing_key": ROUTING_KEY,
        "events_url": fake.events_url,
        "group": "finops",
    }
    settings.update(options)
    return CHANNELS.create("pager", settings, ChannelContext(public_url=PUBLIC_URL))


def test_trigger_opens_alert(fake: FakePagerDuty, client: httpx.Client) -> None:
    result = make_channel(fake).send(delivery(), client)

    assert result.external_ref == f"costwarden-{ALERT_ID}"
    assert len(fake.alerts) == 1
    event = fake.received[0]
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == f"costwarden-{ALERT_ID}"
    payload = event["payload"]
    assert payload["severity"] == "critical"
    assert payload["summary"] == make_notice().title
    assert payload["group"] == "finops"
    assert payload["component"] == "prod-analytics"
    assert payload["class"] == "budget"
    assert payload["custom_details"]["Spent"] == "9,214.07 USD"
    assert payload["custom_details"]["contributors"] == ["cluster prod-eu-1: 1,204.50 USD"]
    assert {link["text"] for link in event["links"]} == {
        "Open in Palette",
        "Full alert in costwarden",
    }
    assert event["client"] == "costwarden"
    assert event["client_url"] == make_notice().alert_url


def test_trigger_twice_one_alert(fake: FakePagerDuty, client: httpx.Client) -> None:
    channel = make_channel(fake)

    first = channel.send(delivery(), client)
    channel.send(
        delivery("update", make_notice(title="now 97% likely"), ref=first.external_ref), client
    )

    assert len(fake.alerts) == 1
    assert fake.alerts[0].triggers == 2
    assert fake.alerts[0].summary == "now 97% likely"


def test_resolve_closes_alert(fake: FakePagerDuty, client: httpx.Client) -> None:
    channel = make_channel(fake)
    ref = channel.send(delivery(), client).external_ref

    result = channel.send(delivery("resolve", make_notice(state="resolved"), ref=ref), client)

    assert result.detail == "resolve accepted"
    assert fake.received[-1] == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": ref,
    }
    assert fake.alerts[0].status == "resolved"


def test_trigger_after_resolve_reopens(fake: FakePagerDuty, client: httpx.Client) -> None:
    channel = make_channel(fake)
    ref = channel.send(delivery(), client).external_ref
    channel.send(delivery("resolve", ref=ref), client)

    channel.send(delivery(ref=ref), client)

    assert [alert.status for alert in fake.alerts] == ["resolved", "triggered"]


def test_below_min_severity_skipped(fake: FakePagerDuty, client: httpx.Client) -> None:
    result = make_channel(fake).send(delivery(notice=make_notice("warning")), client)

    assert result.detail == "below min_severity"
    assert result.external_ref is None
    assert fake.received == []


def test_lower_min_severity_pages(fake: FakePagerDuty, client: httpx.Client) -> None:
    channel = make_channel(fake, min_severity="warning")

    channel.send(delivery(notice=make_notice("warning")), client)

    assert fake.received[0]["payload"]["severity"] == "warning"


def test_downgraded_alert_still_resolves(fake: FakePagerDuty, client: httpx.Client) -> None:
    channel = make_channel(fake)
    ref = channel.send(delivery(), client).external_ref

    channel.send(delivery("resolve", make_notice("warning", state="resolved"), ref=ref), client)

    assert fake.alerts[0].status == "resolved"


def test_new_trigger_below_min_skipped(fake: FakePagerDuty, client: httpx.Client) -> None:
    notice = make_notice("warning")

    result = make_channel(fake).send(delivery("trigger", notice, ref="costwarden-old"), client)

    assert result.detail == "below min_severity"
    assert fake.received == []


def test_digest_sends_nothing(fake: FakePagerDuty, client: httpx.Client) -> None:
    result = make_channel(fake).send(delivery("digest"), client)

    assert result.detail == "pagerduty takes no digests"
    assert fake.received == []


def test_429_retry_after_header(fake: FakePagerDuty, client: httpx.Client) -> None:
    fake.fail_next(429, retry_after="120")

    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(fake).send(delivery(), client)

    assert caught.value.status == 429
    assert caught.value.retry_after == 120


def test_429_without_header_waits_minutes(fake: FakePagerDuty, client: httpx.Client) -> None:
    fake.fail_next(429)
    channel = make_channel(fake, rate_limited_wait_seconds=180)

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(delivery(), client)

    assert caught.value.retry_after == 180


def test_500_retryable_then_succeeds(fake: FakePagerDuty, client: httpx.Client) -> None:
    fake.fail_next(500)
    channel = make_channel(fake)

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(delivery(), client)
    channel.send(delivery(), client)

    assert caught.value.status == 500
    assert len(fake.alerts) == 1


def test_retry_after_lost_answer_no_duplicate(fake: FakePagerDuty, client: httpx.Client) -> None:
    channel = make_channel(fake)

    channel.send(delivery(), client)
    channel.send(delivery(), client)

    assert len(fake.received) == 2
    assert len(fake.alerts) == 1


def test_unknown_routing_key_permanent(fake: FakePagerDuty, client: httpx.Client) -> None:
    channel = make_channel(fake, routing_key="9" * 32)

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(delivery(), client)

    assert caught.value.status == 400
    assert "'routing_key' is invalid" in str(caught.value)
    assert "9" * 32 not in str(caught.value)


def test_other_routing_key_cannot_resolve(fake: FakePagerDuty, client: httpx.Client) -> None:
    ref = make_channel(fake).send(delivery(), client).external_ref

    make_channel(fake, routing_key=OTHER_ROUTING_KEY).send(delivery("resolve", ref=ref), client)

    assert fake.alerts[0].status == "triggered"
    assert len(fake.state.dropped) == 1


def test_unreachable_endpoint_retryable(client: httpx.Client) -> None:
    with FakePagerDuty() as stopped:
        url = stopped.events_url
    channel = CHANNELS.create(
        "pager",
        {"type": "pagerduty", "routing_key": ROUTING_KEY, "events_url": url},
        ChannelContext(),
    )

    with pytest.raises(RetryableDeliveryError):
        channel.send(delivery(), client)


def test_long_summary_trimmed(fake: FakePagerDuty, client: httpx.Client) -> None:
    notice = make_notice(title="word " * 400)

    make_channel(fake).send(delivery(notice=notice), client)

    summary = fake.received[0]["payload"]["summary"]
    assert len(summary) <= 1024
    assert summary.endswith("…")


def test_huge_details_fit_limit(fake: FakePagerDuty, client: httpx.Client) -> None:
    contributors = tuple(
        NoticeContributor(f"namespace-{i}-" + "x" * 200, "namespace", "1.00 USD")
        for i in range(4000)
    )
    notice = make_notice(contributors=contributors)

    make_channel(fake).send(delivery(notice=notice), client)

    event = fake.received[0]
    assert len(json.dumps(event).encode()) <= MAX_EVENT_BYTES
    details = event["payload"]["custom_details"]
    assert details["truncated"] is True
    assert details["full_alert"] == notice.alert_url
    assert len(details["contributors"]) == 5


def test_dedup_key_of_long_alert_id() -> None:
    key = dedup_key("a" * 300)

    assert len(key) <= 255
    assert key.startswith("costwarden-")
    assert key == dedup_key("a" * 300)


def test_routing_key_length_checked() -> None:
    with pytest.raises(ConfigError) as caught:
        CHANNELS.validate("pager", {"type": "pagerduty", "routing_key": "short-key"})

    assert "notify.channels.pager.routing_key" in str(caught.value)
    assert "short-key" not in str(caught.value)


def test_plain_http_only_on_loopback() -> None:
    options = {"type": "pagerduty", "routing_key": ROUTING_KEY}

    with pytest.raises(ConfigError) as caught:
        CHANNELS.validate("pager", {**options, "events_url": "http://pd.example.com/v2/enqueue"})
    CHANNELS.validate("pager", {**options, "events_url": "http://127.0.0.1:9/v2/enqueue"})

    assert "HTTPS only" in str(caught.value)


def test_routing_key_hidden_in_repr() -> None:
    settings = CHANNELS.validate("pager", {"type": "pagerduty", "routing_key": ROUTING_KEY})

    assert ROUTING_KEY not in repr(settings)
    assert settings.digest is False  # type: ignore[attr-defined]
