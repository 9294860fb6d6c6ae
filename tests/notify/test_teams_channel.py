"""The teams channel end to end against the fake Workflows webhook over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from chat_samples import (
    ALERT_ID,
    ALERT_URL,
    PALETTE_URL,
    PUBLIC_URL,
    huge_notice,
    make_delivery,
    sample_notice,
)
from fakes.teams import MAX_BYTES, SIG, FakeTeams, card_problems

from costwarden.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import CHANNELS, ChannelContext
from costwarden.notify.links import LinkSigner
from costwarden.notify.registry import Channel
from costwarden.notify.teams import fitted_alert_message, message_size

SIGNER = LinkSigner("teams-test-link-secret", PUBLIC_URL, 24)


@pytest.fixture
def fake() -> Iterator[FakeTeams]:
    with FakeTeams(max_per_second=100) as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


def make_channel(options: dict[str, Any], *, links: bool = True) -> Channel:
    context = ChannelContext(public_url=PUBLIC_URL,
                             sign_links=SIGNER.links_for if links else None)
    return CHANNELS.create("teams-finops", options, context)


def _actions(card: dict[str, Any]) -> dict[str, str]:
    return {action["title"]: action["url"] for action in card.get("actions", [])}


def test_trigger_accepted_202(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings())

    result = channel.send(make_delivery(channel="teams-finops"), client)

    assert result.detail == "accepted with 202"
    [card] = fake.state.cards
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Spent"] == "9,214.07 USD"
    assert facts["Alert"] == ALERT_ID
    text = json.dumps(card)
    assert "prod-eu-1 (cluster): 1,204.50 USD, 41% of the total" in text
    assert "saves 310.00 USD per month" in text


def test_links_from_delivery(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings())
    links = SIGNER.links_for(ALERT_ID, "teams-finops")

    channel.send(make_delivery(channel="teams-finops", links={ALERT_ID: links}), client)

    actions = _actions(fake.state.cards[0])
    assert actions["View in Palette"] == PALETTE_URL
    assert actions["Approve"] == links.approve
    assert actions["Reject"] == links.reject
    assert actions["Snooze"] == links.snooze
    assert actions["Full alert"] == ALERT_URL


def test_links_signed_when_missing(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings())

    channel.send(make_delivery(channel="teams-finops"), client)

    actions = _actions(fake.state.cards[0])
    for action in ("approve", "reject", "snooze"):
        token = actions[action.capitalize()].rsplit("/", 1)[-1]
        claims = SIGNER.verify(token)
        assert (claims.alert_id, claims.channel, claims.action) == (
            ALERT_ID, "teams-finops", action)


def test_links_off_no_decisions(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings(), links=False)

    channel.send(make_delivery(channel="teams-finops"), client)

    assert sorted(_actions(fake.state.cards[0])) == ["Full alert", "View in Palette"]


def test_wrong_sig_permanent(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings(workflow_url=fake.workflow_url(sig="expired")))

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == 401
    assert "expired" not in str(caught.value)
    assert SIG not in str(caught.value)


def test_429_retry_after(fake: FakeTeams, client: httpx.Client) -> None:
    fake.fail_next(429, retry_after="12")
    channel = make_channel(fake.settings())

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == 429
    assert caught.value.retry_after == 12.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_retryable(fake: FakeTeams, client: httpx.Client, status: int) -> None:
    fake.fail_next(status)
    channel = make_channel(fake.settings())

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == status


@pytest.mark.parametrize("status", [400, 403, 404])
def test_4xx_permanent(fake: FakeTeams, client: httpx.Client, status: int) -> None:
    fake.fail_next(status)
    channel = make_channel(fake.settings())

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == status


def test_deleted_workflow_permanent(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings(workflow_url=fake.workflow_url(workflow="gone")))

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(make_delivery(), client)

    assert caught.value.status == 404


def test_throttled_above_rate(client: httpx.Client) -> None:
    with FakeTeams(max_per_second=1) as fake:
        channel = make_channel(fake.settings())
        channel.send(make_delivery(), client)

        with pytest.raises(RetryableDeliveryError) as caught:
            channel.send(make_delivery(), client)

    assert caught.value.status == 429
    assert caught.value.retry_after == 1.0


def test_huge_alert_trimmed(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings())

    channel.send(make_delivery(notices=(huge_notice(),)), client)

    [card] = fake.state.cards
    text = json.dumps(card, ensure_ascii=False)
    assert f"more in the [full alert]({ALERT_URL})" in text
    assert fake.state.rejected == []


def test_huge_alert_under_limit() -> None:
    body = fitted_alert_message(huge_notice(), SIGNER.links_for(ALERT_ID, "t"))

    assert message_size(body) <= MAX_BYTES
    assert card_problems(body) == []


def test_huge_facts_cut() -> None:
    facts = tuple((f"fact {index}", "9" * 3000) for index in range(40))
    body = fitted_alert_message(huge_notice(facts=facts), None)

    assert message_size(body) <= MAX_BYTES


def test_resolve_card(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings())
    resolved = replace(sample_notice(), state="resolved")

    channel.send(make_delivery("resolve", (resolved,)), client)

    [card] = fake.state.cards
    assert card["body"][0]["text"].startswith("Resolved: ")
    assert list(_actions(card)) == ["Full alert"]


def test_digest_card(fake: FakeTeams, client: httpx.Client) -> None:
    notices = tuple(huge_notice(alert_id=f"ba-{index}", severity="info") for index in range(100))
    channel = make_channel(fake.settings())

    channel.send(make_delivery("digest", notices), client)

    [card] = fake.state.cards
    text = json.dumps(card, ensure_ascii=False)
    assert card["body"][0]["text"] == "Cost alert digest: 100 alerts"
    assert "more; the costwarden API lists every alert" in text
    assert "Approve" not in text


def test_update_card_marked(fake: FakeTeams, client: httpx.Client) -> None:
    channel = make_channel(fake.settings())

    channel.send(make_delivery("update"), client)

    assert fake.state.cards[0]["body"][0]["text"].startswith("Updated: ")


def test_settings_hide_url() -> None:
    with pytest.raises(ConfigError) as caught:
        CHANNELS.validate("t", {"type": "teams", "workflow_url": "sig=s3cr3t"})

    assert "s3cr3t" not in str(caught.value)
    assert "workflow_url" in str(caught.value)


def test_link_expiry_in_card(fake: FakeTeams, client: httpx.Client) -> None:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    links = SIGNER.links_for(ALERT_ID, "teams-finops", now=now)
    channel = make_channel(fake.settings())

    channel.send(make_delivery(links={ALERT_ID: links}), client)

    token = _actions(fake.state.cards[0])["Approve"].rsplit("/", 1)[-1]
    claims = SIGNER.verify(token, now=now)
    assert claims.expires_at == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_names_cannot_inject_markdown_links() -> None:
    notice = replace(
        sample_notice(),
        title="[click me](https://phish.example)",
        budget="*big*_budget_",
        owners=("[owner](https://phish.example)",),
    )

    text = json.dumps(fitted_alert_message(notice, None), ensure_ascii=False)

    assert "[click me](https" not in text
    assert "\\\\[click me\\\\]\\\\(https://phish.example\\\\)" in text
    assert "\\\\*big\\\\*\\\\_budget\\\\_" in text
    assert "[owner](" not in text
