"""The webhook channel end to end against a verifying receiver over loopback HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fakes.webhook_receiver import WebhookReceiver, start
from standardwebhooks.webhooks import Webhook

from costwarden.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import CHANNELS, ChannelContext, Delivery, Notice
from costwarden.notify.notice import NoticeAction, NoticeContributor
from costwarden.notify.webhook import MAX_BODY_BYTES, WebhookChannel, build_event, encode_event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_" + "c2VjcmV0LXJvdGF0aW9uLW5ldy1rZXktMzJieXRlcyE="
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "webhook-event.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(
    json.loads(SCHEMA_FILE.read_text()),
    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
)
PUBLIC_URL = "https://costwarden.example.com"


def make_notice(alert_id: str = "a" * 32, **changes: Any) -> Notice:
    notice = Notice(
        alert_id=alert_id,
        kind="budget",
        severity="warning",
        title="ml-training-monthly: forecast 17,250.00 USD for the period",
        generated_at=datetime(2026, 11, 15, 10, 0, tzinfo=UTC),
        budget="ml-training-monthly",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        currency="USD",
        labels={"team": "ml"},
        owners=("ml-platform@example.com",),
        facts=(("Budget", "15,000.00 USD"), ("Forecast", "17,250.00 USD")),
        probability=0.81,
        breach_date=date(2026, 11, 26),
        overspend=2250.0,
        contributors=(NoticeContributor("gpu-train", "namespace", "1,900.00 USD", 0.6),),
        actions=(NoticeAction("act-1", "Scale down idle GPU nodes", "820.00 USD"),),
        palette_url="https://console.spectrocloud.com/projects/p1",
    )
    return replace(notice, **changes)


def make_delivery(
    event: str = "trigger", notices: tuple[Notice, ...] | None = None, row: str = "msg_row_1"
) -> Delivery:
    return Delivery(
        id=row,
        channel="hooks",
        event=event,  # type: ignore[arg-type]
        notices=notices or (make_notice(),),
        created_at=datetime(2026, 11, 15, 10, 0, 3, tzinfo=UTC),
    )


def make_channel(url: str, **options: Any) -> WebhookChannel:
    settings = {"type": "webhook", "url": url, "secret": SECRET, **options}
    channel = CHANNELS.create("hooks", settings, ChannelContext(public_url=PUBLIC_URL))
    assert isinstance(channel, WebhookChannel)
    return channel


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with start(SECRET) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


def test_standard_webhooks_vector() -> None:
    channel = make_channel("https://hooks.example.com/x")
    stamp = datetime.fromtimestamp(1614265330, tz=UTC)

    headers = channel.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", stamp, b'{"test": 2432232314}')

    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"


def test_delivery_verified_by_receiver(receiver: WebhookReceiver, client: httpx.Client) -> None:
    result = make_channel(receiver.url).send(make_delivery(), client)

    assert result.detail == "webhook-id msg_row_1 got 200"
    assert receiver.rejected == []
    [received] = receiver.received
    assert received.id == "msg_row_1"
    assert received.payload["type"] == "alert.triggered"
    assert received.payload["timestamp"] == "2026-11-15T10:00:03Z"
    assert received.payload["data"]["alert_id"] == "a" * 32
    assert received.payload["data"]["alert_url"] == f"{PUBLIC_URL}/api/v1/alerts/{'a' * 32}"
    assert received.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ("trigger", "alert.triggered"),
        ("update", "alert.updated"),
        ("resolve", "alert.resolved"),
        ("digest", "alert.digest"),
    ],
)
def test_payload_matches_schema(event: str, kind: str) -> None:
    notices = (make_notice(), make_notice("b" * 32, severity="info", state="resolved"))

    payload = build_event(make_delivery(event, notices if event == "digest" else notices[:1]))

    VALIDATOR.validate(payload)
    assert payload["type"] == kind


def test_sent_payloads_match_schema(receiver: WebhookReceiver, client: httpx.Client) -> None:
    channel = make_channel(receiver.url)
    notices = (make_notice(), make_notice("b" * 32))

    channel.send(make_delivery("trigger", row="r1"), client)
    channel.send(make_delivery("digest", notices, row="r2"), client)

    assert [item.payload["type"] for item in receiver.received] == [
        "alert.triggered",
        "alert.digest",
    ]
    for item in receiver.received:
        VALIDATOR.validate(item.payload)
    assert len(receiver.received[1].payload["data"]["notices"]) == 2


def test_tampered_body_rejected(receiver: WebhookReceiver) -> None:
    channel = make_channel(receiver.url)
    body = encode_event(build_event(make_delivery()))
    headers = channel.sign("msg_tamper", datetime.now(UTC), body)

    tampered = body.replace(b"17,250.00", b"1,250.00")
    response = httpx.post(receiver.url, content=tampered, headers=headers)

    assert response.status_code == 401
    assert receiver.rejected == ["No matching signature found"]
    assert receiver.received == []


def test_stale_timestamp_rejected(receiver: WebhookReceiver) -> None:
    channel = make_channel(receiver.url)
    body = encode_event(build_event(make_delivery()))
    headers = channel.sign("msg_old", datetime.now(UTC) - timedelta(minutes=10), body)

    response = httpx.post(receiver.url, content=body, headers=headers)

    assert response.status_code == 401
    assert receiver.rejected == ["Message timestamp too old"]


def test_wrong_secret_rejected(client: httpx.Client) -> None:
    with start(NEW_SECRET) as other:
        with pytest.raises(PermanentDeliveryError) as caught:
            make_channel(other.url).send(make_delivery(), client)

        assert caught.value.status == 401
        assert other.received == []


@pytest.mark.parametrize("receiver_secret", [SECRET, NEW_SECRET])
def test_rotation_signs_with_both(receiver_secret: str, client: httpx.Client) -> None:
    channel = make_channel("http://127.0.0.1:1/x", secret=NEW_SECRET, previous_secret=SECRET)

    with start(receiver_secret) as running:
        channel.settings = channel.settings.model_copy(update={"url": running.url})
        channel.send(make_delivery(), client)

        [received] = running.received
        signatures = received.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        assert all(value.startswith("v1,") for value in signatures)


def test_rotation_signatures_match_each_secret() -> None:
    channel = make_channel("https://hooks.example.com/x", secret=NEW_SECRET, previous_secret=SECRET)
    stamp = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)

    headers = channel.sign("msg_1", stamp, b"{}")

    assert headers["webhook-signature"].split(" ") == [
        Webhook(NEW_SECRET).sign("msg_1", stamp, b"{}"),
        Webhook(SECRET).sign("msg_1", stamp, b"{}"),
    ]


def test_retry_keeps_webhook_id(receiver: WebhookReceiver, client: httpx.Client) -> None:
    channel = make_channel(receiver.url)

    channel.send(make_delivery(), client)
    channel.send(make_delivery(), client)

    assert receiver.attempts["msg_row_1"] == 2
    assert len(receiver.received) == 1


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_throttled_retry_after(
    status: int, receiver: WebhookReceiver, client: httpx.Client
) -> None:
    receiver.respond_next(status, retry_after="30")

    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(receiver.url).send(make_delivery(), client)

    assert caught.value.status == status
    assert caught.value.retry_after == 30


def test_500_then_success(receiver: WebhookReceiver, client: httpx.Client) -> None:
    receiver.respond_next(500)
    channel = make_channel(receiver.url)

    with pytest.raises(RetryableDeliveryError):
        channel.send(make_delivery(), client)
    channel.send(make_delivery(), client)

    assert len(receiver.received) == 1


def test_410_disables_endpoint(receiver: WebhookReceiver, client: httpx.Client) -> None:
    receiver.respond_next(410)

    with pytest.raises(PermanentDeliveryError) as caught:
        make_channel(receiver.url).send(make_delivery(), client)

    assert caught.value.status == 410
    assert "receiver disabled this endpoint" in str(caught.value)


def test_redirect_not_followed(receiver: WebhookReceiver) -> None:
    receiver.respond_next(307, headers={"Location": receiver.url})

    with httpx.Client(follow_redirects=True) as following:
        with pytest.raises(PermanentDeliveryError) as caught:
            make_channel(receiver.url).send(make_delivery(), following)

    assert caught.value.status == 307
    assert receiver.requests == 1
    assert receiver.received == []


def test_other_4xx_permanent(receiver: WebhookReceiver, client: httpx.Client) -> None:
    receiver.respond_next(404)

    with pytest.raises(PermanentDeliveryError) as caught:
        make_channel(receiver.url).send(make_delivery(), client)

    assert caught.value.status == 404


def test_down_receiver_503(receiver: WebhookReceiver, client: httpx.Client) -> None:
    channel = make_channel(receiver.url)
    receiver.set_down(True)

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)
    receiver.set_down(False)
    channel.send(make_delivery(), client)

    assert caught.value.status == 503
    assert caught.value.retry_after == 2
    assert len(receiver.received) == 1


def test_refusing_receiver_retryable(receiver: WebhookReceiver) -> None:
    channel = make_channel(receiver.url)
    receiver.set_down(True, refuse=True)

    with httpx.Client() as client:
        with pytest.raises(RetryableDeliveryError) as caught:
            channel.send(make_delivery(), client)
    receiver.set_down(False)
    with httpx.Client() as client:
        channel.send(make_delivery(), client)

    assert caught.value.status is None
    assert "ConnectError" in str(caught.value)
    assert len(receiver.received) == 1


def test_large_body_trimmed(receiver: WebhookReceiver, client: httpx.Client) -> None:
    contributors = tuple(
        NoticeContributor(f"namespace-{i}", "namespace", f"{i}.00 USD", 0.001) for i in range(600)
    )
    notice = make_notice(contributors=contributors)

    make_channel(receiver.url).send(make_delivery(notices=(notice,)), client)

    [received] = receiver.received
    assert len(received.body) <= MAX_BODY_BYTES
    data = received.payload["data"]
    assert data["truncated"] is True
    assert data["alert_url"] == f"{PUBLIC_URL}/api/v1/alerts/{'a' * 32}"
    assert [item["name"] for item in data["contributors"]] == [f"namespace-{i}" for i in range(5)]
    VALIDATOR.validate(received.payload)


def test_huge_text_trimmed_never_rejected() -> None:
    notice = make_notice(title="x" * 50_000, labels={f"k{i}": "v" * 100 for i in range(300)})

    payload = build_event(make_delivery(notices=(notice,)))

    assert len(encode_event(payload)) <= MAX_BODY_BYTES
    assert payload["data"]["truncated"] is True
    VALIDATOR.validate(payload)


def test_large_digest_omits_notices() -> None:
    notices = tuple(make_notice(f"{i:032x}", title="t" * 400) for i in range(120))

    payload = build_event(make_delivery("digest", notices))

    assert len(encode_event(payload)) <= MAX_BODY_BYTES
    kept = len(payload["data"]["notices"])
    assert kept + payload["data"]["omitted"] == 120
    VALIDATOR.validate(payload)


def test_small_body_untouched() -> None:
    payload = build_event(make_delivery())

    assert "truncated" not in payload["data"]
    assert payload["data"]["contributors"][0]["name"] == "gpu-train"


def test_extra_and_github_headers(receiver: WebhookReceiver, client: httpx.Client) -> None:
    channel = make_channel(
        receiver.url, headers={"X-Gateway-Token": "gw-token-1"}, github_signature=True
    )

    channel.send(make_delivery(), client)

    [received] = receiver.received
    assert received.headers["x-gateway-token"] == "gw-token-1"
    expected = hmac.new(SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["x-hub-signature-256"] == f"sha256={expected}"


def test_settings_hide_secrets() -> None:
    settings = CHANNELS.validate(
        "hooks",
        {
            "type": "webhook",
            "url": "https://h.example.com",
            "secret": SECRET,
            "headers": {"Authorization": "Bearer gw-token-2"},
        },
    )

    assert SECRET not in repr(settings)
    assert "gw-token-2" not in repr(settings)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"secret": "whsec_not base64!"}, "is not 'whsec_' followed by base64"),
        ({"url": "http://hooks.example.com/x"}, "HTTPS only"),
        ({"url": "ftp://hooks.example.com/x"}, "is not an http(s) URL"),
        ({"headers": {"webhook-id": "x"}}, "are set by costwarden"),
    ],
)
def test_invalid_settings(options: dict[str, Any], message: str) -> None:
    values = {"type": "webhook", "url": "https://h.example.com/x", "secret": SECRET, **options}

    with pytest.raises(ConfigError) as caught:
        CHANNELS.validate("hooks", values)

    assert message in str(caught.value)
    assert "not base64!" not in str(caught.value)
