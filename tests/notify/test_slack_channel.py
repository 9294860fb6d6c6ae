"""The slack channel end to end against the fake Slack over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from chat_samples import ALERT_ID, ALERT_URL, PALETTE_URL, make_delivery, sample_notice
from fakes.slack import (
    BOT_TOKEN,
    CHANNEL_ID,
    SIGNING_SECRET,
    WEBHOOK_PATH,
    FakeSlack,
    block_problems,
)

from costwarden.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import CHANNELS, ChannelContext
from costwarden.notify.registry import Channel
from costwarden.notify.slack import ACTION_IDS, VIEW_ACTION_ID

CONTEXT = ChannelContext(public_url="https://costwarden.example.com")


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(post_interval=0) as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


def make_channel(options: dict[str, Any]) -> Channel:
    return CHANNELS.create("finops", options, CONTEXT)


def _buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    for block in message["blocks"]:
        if block["type"] == "actions":
            return {element["action_id"]: element for element in block["elements"]}
    return {}


def _all_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "either webhook_url or bot_token"),
        ({"webhook_url": "https://hooks.slack.com/services/T/B/s", "bot_token": "xoxb-1",
          "channel": "C0FINOPS1"}, "either webhook_url or bot_token"),
        ({"bot_token": "xoxb-1"}, "needs channel"),
        ({"bot_token": "xoxb-1", "channel": "#finops"}, "not a channel ID"),
        ({"webhook_url": "hooks.slack.com/services/T/B/s"}, "https:// URL"),
        ({"webhook_url": "https://h/s", "mention_owners": {"data": "alice"}}, "mention_owners"),
    ],
)
def test_settings_rejected(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CHANNELS.validate("finops", {"type": "slack", **options})

    assert expected in str(caught.value)
    assert "notify.channels.finops" in str(caught.value)


def test_settings_hide_webhook_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        CHANNELS.validate("finops", {"type": "slack", "webhook_url": "ftp://s3cr3t-hook"})

    assert "s3cr3t" not in str(caught.value)


# -- incoming webhook --------------------------------------------------------------------------


def test_webhook_trigger_posts_blocks(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.webhook_settings(mention_owners={"data": "U0DATA",
                                                                "finops": "S0FINOPS"}))

    result = channel.send(make_delivery(), client)

    assert result.external_ref is None
    [message] = fake.state.webhook_messages
    assert message["text"].startswith("Critical budget alert: prod-analytics")
    assert block_problems(message["blocks"]) == []
    text = _all_text(message)
    assert "<@U0DATA>" in text
    assert "<!subteam^S0FINOPS>" in text
    assert "9,214.07 USD" in text
    assert "prod-eu-1" in text
    assert "saves 310.00 USD per month" in text
    assert ALERT_ID in text


def test_webhook_buttons(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.webhook_settings(snooze_hours=8))

    channel.send(make_delivery(), client)

    buttons = _buttons(fake.state.webhook_messages[0])
    assert buttons[VIEW_ACTION_ID]["url"] == PALETTE_URL
    for action in ("approve", "reject", "snooze"):
        assert buttons[ACTION_IDS[action]]["value"] == ALERT_ID
    assert buttons[ACTION_IDS["approve"]]["style"] == "primary"
    assert buttons[ACTION_IDS["reject"]]["style"] == "danger"
    assert "confirm" in buttons[ACTION_IDS["reject"]]
    assert buttons[ACTION_IDS["snooze"]]["text"]["text"] == "Snooze 8 h"


def test_webhook_without_signing_secret(fake: FakeSlack, client: httpx.Client) -> None:
    options = fake.webhook_settings()
    del options["signing_secret"]
    channel = make_channel(options)

    channel.send(make_delivery(), client)

    assert list(_buttons(fake.state.webhook_messages[0])) == [VIEW_ACTION_ID]


def test_webhook_429_retry_after(fake: FakeSlack, client: httpx.Client) -> None:
    fake.fail_webhook(429, "rate_limited", retry_after="7")
    channel = make_channel(fake.webhook_settings())

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == 429
    assert caught.value.retry_after == 7.0
    assert fake.state.webhook_messages == []


def test_webhook_5xx_retryable(fake: FakeSlack, client: httpx.Client) -> None:
    fake.fail_webhook(500, "rollup_error")
    channel = make_channel(fake.webhook_settings())

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == 500
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, "invalid_payload"), (403, "action_prohibited"), (404, "no_service"),
     (410, "channel_is_archived")],
)
def test_webhook_4xx_permanent(
    fake: FakeSlack, client: httpx.Client, status: int, error: str
) -> None:
    fake.fail_webhook(status, error)
    channel = make_channel(fake.webhook_settings())

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == status
    assert error in str(caught.value)
    assert WEBHOOK_PATH.rsplit("/", 1)[-1] not in str(caught.value)


def test_webhook_update_posts_again(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.webhook_settings())

    channel.send(make_delivery(), client)
    channel.send(make_delivery("update"), client)
    channel.send(make_delivery("resolve"), client)

    first, update, resolve = fake.state.webhook_messages
    assert update["blocks"][0]["text"]["text"].startswith("Updated: ")
    assert resolve["text"].startswith("Resolved: ")
    assert _buttons(resolve) == {}


def test_transport_failure_retryable(client: httpx.Client) -> None:
    with FakeSlack() as stopped:
        url = stopped.webhook_url
    channel = make_channel({"type": "slack", "webhook_url": url})

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert "fakeWebhookSecret" not in str(caught.value)


# -- bot token ---------------------------------------------------------------------------------


def test_bot_trigger_keeps_ts(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.bot_settings())

    result = channel.send(make_delivery(), client)

    [message] = fake.channel_messages()
    assert result.external_ref == f"{CHANNEL_ID}:{message['ts']}"
    assert message["text"].startswith("Critical budget alert")
    method, body = fake.state.api_calls[0]
    assert method == "chat.postMessage"
    assert body["channel"] == CHANNEL_ID


def test_bot_update_edits_message(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.bot_settings())
    ref = channel.send(make_delivery(), client).external_ref
    changed = sample_notice(facts=(("Probability", "99%"),))

    result = channel.send(make_delivery("update", (changed,), ref=ref), client)

    [message] = fake.channel_messages()
    assert result.external_ref == ref
    assert fake.state.api_calls[-1][0] == "chat.update"
    assert message["edited"] is True
    assert message["blocks"][0]["text"]["text"].startswith("Updated: ")
    assert "99%" in _all_text(message)


def test_bot_resolve_removes_buttons(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.bot_settings())
    ref = channel.send(make_delivery(), client).external_ref
    resolved = replace(sample_notice(), state="resolved")

    result = channel.send(make_delivery("resolve", (resolved,), ref=ref), client)

    [message] = fake.channel_messages()
    assert result.external_ref == ref
    assert message["text"].startswith("Resolved: ")
    assert _buttons(message) == {}


def test_bot_update_lost_message_reposts(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.bot_settings())

    result = channel.send(make_delivery("update", ref=f"{CHANNEL_ID}:1.000001"), client)

    methods = [method for method, _ in fake.state.api_calls]
    assert methods == ["chat.update", "chat.postMessage"]
    [message] = fake.channel_messages()
    assert result.external_ref == f"{CHANNEL_ID}:{message['ts']}"


def test_bot_rate_limited_429() -> None:
    with FakeSlack(post_interval=60) as fake, httpx.Client() as client:
        channel = make_channel(fake.bot_settings())
        channel.send(make_delivery(), client)

        with pytest.raises(RetryableDeliveryError) as caught:
            channel.send(make_delivery(), client)

    assert caught.value.status == 429
    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize("error", ["rate_limited", "ratelimited", "internal_error"])
def test_bot_ok_false_retryable(fake: FakeSlack, client: httpx.Client, error: str) -> None:
    fake.fail_api("chat.postMessage", error)
    channel = make_channel(fake.bot_settings())

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert error in str(caught.value)


@pytest.mark.parametrize(
    "error", ["channel_not_found", "not_in_channel", "is_archived", "missing_scope"]
)
def test_bot_ok_false_permanent(fake: FakeSlack, client: httpx.Client, error: str) -> None:
    fake.fail_api("chat.postMessage", error)
    channel = make_channel(fake.bot_settings())

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == 200
    assert error in str(caught.value)


def test_bot_wrong_token_permanent(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.bot_settings(bot_token="xoxb-revoked-token"))

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert "invalid_auth" in str(caught.value)
    assert "xoxb-revoked-token" not in str(caught.value)
    assert BOT_TOKEN not in str(caught.value)


def test_bot_http_5xx_retryable(fake: FakeSlack, client: httpx.Client) -> None:
    fake.fail_api("chat.postMessage", "upstream", status=503, retry_after="30")
    channel = make_channel(fake.bot_settings())

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == 503
    assert caught.value.retry_after == 30.0


def test_bot_unknown_channel(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.bot_settings(channel="C0MISSING"))

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert "channel_not_found" in str(caught.value)


def test_bot_digest_one_message(fake: FakeSlack, client: httpx.Client) -> None:
    notices = tuple(
        sample_notice(alert_id=f"ba-{index:04d}", title=f"Budget {index} at 80%",
                      severity="info")
        for index in range(60)
    )
    channel = make_channel(fake.bot_settings())

    result = channel.send(make_delivery("digest", notices), client)

    [message] = fake.channel_messages()
    assert result.external_ref is None
    assert block_problems(message["blocks"]) == []
    assert message["blocks"][0]["text"]["text"] == "Cost alert digest: 60 alerts"
    assert "more; the costwarden API lists every alert" in _all_text(message)
    assert "Budget 0 at 80%" in _all_text(message)


def test_signing_secret_in_settings_only(fake: FakeSlack, client: httpx.Client) -> None:
    channel = make_channel(fake.bot_settings())

    channel.send(make_delivery(), client)

    sent = json.dumps(fake.state.api_calls)
    assert SIGNING_SECRET not in sent
    assert BOT_TOKEN not in sent
    assert SIGNING_SECRET not in repr(channel.settings)
    assert ALERT_URL in sent
