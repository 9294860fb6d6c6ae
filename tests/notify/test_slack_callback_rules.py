"""Rules of the Slack callback that need no server: follow-up hosts and request verification."""

from __future__ import annotations

import time

import pytest
from fakes.slack import sign

from costwarden.errors import CallbackError
from costwarden.notify import CHANNELS
from costwarden.notify.slack import SlackSettings
from costwarden.service.callbacks.slack import follow_up_allowed, pick_channel, verify

API_URL = "https://slack.com/api"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/actions/T0/1/zz", True),
        ("https://slack.com/api/whatever", True),
        ("http://hooks.slack.com/actions/T0/1/zz", False),
        ("https://hooks.slack.com.evil.example/actions", False),
        ("https://evilslack.com/actions", False),
        ("https://hooks.slack.com:8443/actions", False),
        ("https://user:pw@hooks.slack.com/actions", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("file:///etc/passwd", False),
        ("", False),
    ],
)
def test_follow_up_hosts_real_slack(url: str, allowed: bool) -> None:
    assert follow_up_allowed(url, API_URL) is allowed


def test_follow_up_hosts_fake() -> None:
    api_url = "http://127.0.0.1:41234/api"

    assert follow_up_allowed("http://127.0.0.1:41234/actions/T/1/x", api_url)
    assert not follow_up_allowed("http://127.0.0.1:41235/actions/T/1/x", api_url)
    assert not follow_up_allowed("http://localhost:41234/actions/T/1/x", api_url)


def _channels() -> list[tuple[str, SlackSettings]]:
    found = []
    for name, secret, channel in (("a", "secret-a", "C0AAA"), ("b", "secret-b", "C0BBB"),
                                  ("c", "secret-b", "C0CCC")):
        options = {"type": "slack", "bot_token": "xoxb-1", "channel": channel,
                   "signing_secret": secret}
        settings = CHANNELS.validate(name, options)
        assert isinstance(settings, SlackSettings)
        found.append((name, settings))
    return found


def _headers(secret: str, stamp: int, body: bytes) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": str(stamp),
            "X-Slack-Signature": sign(secret, stamp, body)}


def test_verify_finds_channels() -> None:
    now = time.time()
    body = b"payload=%7B%7D"

    matching = verify(_channels(), _headers("secret-b", int(now), body), body, now)

    assert [name for name, _ in matching] == ["b", "c"]


def test_pick_channel_by_id() -> None:
    matching = _channels()[1:]

    by_id, _ = pick_channel(matching, {"container": {"channel_id": "C0CCC"}})
    unknown, _ = pick_channel(matching, {"container": {"channel_id": "C0ZZZ"}})
    missing, _ = pick_channel(matching, {})

    assert by_id == "c"
    assert unknown == "b"
    assert missing == "b"


@pytest.mark.parametrize("skew", [-301, 301, 3600])
def test_verify_replay_window(skew: int) -> None:
    now = 1_800_000_000.0
    body = b"payload=%7B%7D"

    with pytest.raises(CallbackError, match="300 s"):
        verify(_channels(), _headers("secret-a", int(now) + skew, body), body, now)


def test_verify_window_edge_accepted() -> None:
    now = 1_800_000_000.0
    body = b"payload=%7B%7D"

    matching = verify(_channels(), _headers("secret-a", int(now) - 300, body), body, now)

    assert [name for name, _ in matching] == ["a"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Request-Timestamp": "1800000000"},
        {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "1800000000", "X-Slack-Signature": "v0=" + "0" * 64},
    ],
)
def test_verify_rejects_headers(headers: dict[str, str]) -> None:
    with pytest.raises(CallbackError):
        verify(_channels(), headers, b"payload=%7B%7D", 1_800_000_000.0)
