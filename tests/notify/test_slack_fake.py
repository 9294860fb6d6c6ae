"""The fake Slack itself: the signing test vector, Block Kit checks, auth and rate limits."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fakes.slack import (
    BOT_TOKEN,
    CHANNEL_ID,
    FakeSlack,
    block_problems,
    block_text_length,
    sign,
)

from costwarden.service.callbacks.slack import signature

VECTOR_SECRET = "test-signing-secret"
VECTOR_TIMESTAMP = "1700000000"
VECTOR_BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
VECTOR_SIGNATURE = "v0=8ff64a276b74f3bfc205d8b1fdf8b29d2be346bc136af509b33bab6d090ef061"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def test_signing_vector_fake() -> None:
    assert sign(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_signing_vector_service() -> None:
    assert signature(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def _button(text: str = "Approve", **extra: object) -> dict[str, object]:
    return {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": text},
            **extra}


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        ([{"type": "divider"}] * 51, "51 blocks"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "3001"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "11 items"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}], "2001"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "151"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "plain_text"),
        ([{"type": "actions", "elements": [_button("b" * 76)]}], "76"),
        ([{"type": "actions", "elements": [_button(value="v" * 2001)]}], "value"),
        ([{"type": "actions", "elements": [_button(), _button()]}], "not unique"),
        ([{"type": "actions", "elements": [_button(style="green")]}], "style"),
        ([{"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": "a"}},
          {"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": "b"}}],
         "not unique"),
        ([{"type": "video"}], "unknown"),
    ],
)
def test_block_limits_rejected(blocks: list[object], problem: str) -> None:
    problems = block_problems(blocks)

    assert problems
    assert any(problem in item for item in problems), problems


def test_block_limits_accept_valid() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}},
        {"type": "actions", "elements": [_button("b" * 75, value="v" * 2000)]},
    ]

    assert block_problems(blocks) == []
    assert block_text_length(blocks) == 150 + 3000 + 75 + 2000


def test_post_message_checks_token(fake: FakeSlack) -> None:
    url = f"{fake.api_url}/chat.postMessage"
    body = {"channel": CHANNEL_ID, "text": "hello"}

    missing = httpx.post(url, json=body)
    wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer xoxb-wrong"})

    assert missing.status_code == 200
    assert missing.json() == {"ok": False, "error": "not_authed"}
    assert wrong.json() == {"ok": False, "error": "invalid_auth"}


def test_post_message_rate_limit(fake: FakeSlack) -> None:
    url = f"{fake.api_url}/chat.postMessage"
    headers = {"Authorization": f"Bearer {BOT_TOKEN}"}
    body = {"channel": CHANNEL_ID, "text": "hello"}

    first = httpx.post(url, json=body, headers=headers)
    second = httpx.post(url, json=body, headers=headers)

    assert first.json()["ok"] is True
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "1"


def test_post_message_ts_increase() -> None:
    with FakeSlack(post_interval=0) as fake:
        headers = {"Authorization": f"Bearer {BOT_TOKEN}"}
        stamps = [
            httpx.post(f"{fake.api_url}/chat.postMessage", headers=headers,
                       json={"channel": CHANNEL_ID, "text": str(index)}).json()["ts"]
            for index in range(3)
        ]

    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 3


def test_webhook_unknown_url(fake: FakeSlack) -> None:
    response = httpx.post(f"{fake.url}/services/T0FAKE/B0FAKE/revoked", json={"text": "x"})

    assert response.status_code == 404
    assert response.text == "no_service"
