"""The fake Teams Workflows webhook itself: what it accepts and how it rejects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.teams import CARD_CONTENT_TYPE, MAX_BYTES, FakeTeams


@pytest.fixture
def fake() -> Iterator[FakeTeams]:
    with FakeTeams(max_per_second=100) as server:
        yield server


def _body(card: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    content = {"type": "AdaptiveCard", "version": "1.4",
               "body": [{"type": "TextBlock", "text": "hello"}]}
    content.update(card or {})
    attachment = {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": content}
    return {"type": "message", "attachments": [attachment], **changes}


def test_valid_card_202_empty(fake: FakeTeams) -> None:
    response = httpx.post(fake.workflow_url(), json=_body())

    assert response.status_code == 202
    assert response.content == b""
    assert fake.state.cards[0]["body"][0]["text"] == "hello"


def test_wrong_sig_401(fake: FakeTeams) -> None:
    response = httpx.post(fake.workflow_url(sig="other"), json=_body())

    assert response.status_code == 401
    assert fake.state.cards == []


def test_over_28_kb_413(fake: FakeTeams) -> None:
    big = _body({"body": [{"type": "TextBlock", "text": "x" * MAX_BYTES}]})

    response = httpx.post(fake.workflow_url(), json=big)

    assert response.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        _body(type="MessageCard"),
        {"type": "message", "attachments": []},
        {"type": "message", "attachments": [{"contentType": "application/json", "content": {}}]},
        _body({"type": "HeroCard"}),
        _body({"version": "1.5"}),
        _body({"actions": [{"type": "Action.Submit", "title": "Approve"}]}),
        _body({"actions": [{"type": "Action.OpenUrl", "title": "x", "url": "javascript:1"}]}),
    ],
)
def test_invalid_bodies_400(fake: FakeTeams, body: dict[str, Any]) -> None:
    response = httpx.post(fake.workflow_url(), json=body)

    assert response.status_code == 400
    assert fake.state.cards == []


def test_throttle_429() -> None:
    with FakeTeams(max_per_second=2) as fake:
        statuses = [httpx.post(fake.workflow_url(), json=_body()).status_code for _ in range(3)]

    assert statuses[:2] == [202, 202]
    assert statuses[2] == 429
