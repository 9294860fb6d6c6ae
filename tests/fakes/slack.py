"""A fake Slack on 127.0.0.1: an incoming webhook, chat.postMessage, chat.update, response URLs.

- ``POST /services/T0FAKE/B0FAKE/<secret>`` is the incoming webhook. It responds 200 with the
  plain text ``ok``; errors are plain-text error strings: 400 ``invalid_payload``, ``no_text``
  or ``invalid_blocks``, 404 ``no_service`` for an unknown URL. ``fail_webhook`` scripts 429
  with ``Retry-After``, 5xx, or 400/403/404/410 with their error strings.
- ``POST /api/chat.postMessage`` and ``/api/chat.update`` check ``Authorization: Bearer``
  (``not_authed``, ``invalid_auth``) and respond with HTTP 200 with ``ok`` true or false:
  ``channel_not_found``, ``no_text``, ``invalid_blocks`` for a body over a Block Kit limit,
  ``msg_blocks_too_long`` over 13,000 characters of block text, ``message_not_found``.
  postMessage hands out increasing ``ts`` values and allows one message per second per channel
  (``post_interval``), responding 429 with ``Retry-After: 1`` above it. ``fail_api`` scripts
  HTTP errors or ``ok:false`` errors.
- ``POST /actions/T0FAKE/<id>/<token>`` is a response URL; it records follow-up messages.

``InteractionDriver`` plays Slack's side of a button click: it signs a form-encoded
``payload`` with the v0 scheme, can send a stale timestamp or a bad signature, and gives up
after 3 seconds, as Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

BOT_TOKEN = "xoxb-fake-1111-2222-abcdefabcdef"
SIGNING_SECRET = "fake-slack-signing-secret-6c1e"
CHANNEL_ID = "C0FINOPS1"
OTHER_CHANNEL_ID = "C0PLATFORM"
WEBHOOK_PATH = "/services/T0FAKE/B0FAKE/fakeWebhookSecret4a9b"
TEAM_ID = "T0FAKE"
ACK_TIMEOUT_SECONDS = 3.0
"""Slack shows the user an error when the Request URL takes longer than this."""

MAX_BLOCKS = 50
MAX_BLOCK_ID = 255
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTION_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_URL = 3000
MAX_BLOCK_TEXT_TOTAL = 13_000
"""Total block text at which Slack has been seen to return ``msg_blocks_too_long``."""
WEBHOOK_ERROR_STATUS = {
    "invalid_payload": 400, "user_not_found": 400, "invalid_blocks": 400, "no_text": 400,
    "action_prohibited": 403, "invalid_token": 403,
    "channel_not_found": 404, "no_service": 404,
    "channel_is_archived": 410,
    "rollup_error": 500,
}


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """Return Slack's ``X-Slack-Signature``: ``v0=`` and the hex HMAC-SHA256 of
    ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def block_problems(blocks: Any) -> list[str]:
    """Return every way ``blocks`` breaks a Block Kit limit; an empty list means valid."""
    if not isinstance(blocks, list):
        return ["blocks is not an array"]
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks, at most {MAX_BLOCKS}")
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        if not isinstance(block, dict):
            problems.append(f"{where} is not an object")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > MAX_BLOCK_ID or block_id in block_ids:
                problems.append(f"{where}.block_id is too long or not unique")
            block_ids.add(block_id)
        checker = _BLOCK_CHECKS.get(block.get("type"))
        if checker is None:
            problems.append(f"{where}.type {block.get('type')!r} is unknown")
            continue
        problems += [f"{where}.{problem}" for problem in checker(block)]
    return problems


def block_text_length(blocks: list[Any]) -> int:
    """Count the characters of every text object and URL in ``blocks``."""
    total = 0
    stack: list[Any] = list(blocks)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("text", "url", "value") and isinstance(value, str):
                    total += len(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return total


def _text_problems(obj: Any, name: str, limit: int, *, plain: bool = False) -> list[str]:
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        return [f"{name} is not a {' or '.join(kinds)} text object"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{name}.text is missing"]
    if len(text) > limit:
        return [f"{name}.text has {len(text)} characters, at most {limit}"]
    return []


def _section(block: dict[str, Any]) -> list[str]:
    problems = []
    if "text" not in block and "fields" not in block:
        problems.append("section has neither text nor fields")
    if "text" in block:
        problems += _text_problems(block["text"], "text", MAX_SECTION_TEXT)
    fields = block.get("fields", [])
    if len(fields) > MAX_FIELDS:
        problems.append(f"fields has {len(fields)} items, at most {MAX_FIELDS}")
    for index, item in enumerate(fields):
        problems += _text_problems(item, f"fields[{index}]", MAX_FIELD_TEXT)
    return problems


def _header(block: dict[str, Any]) -> list[str]:
    return _text_problems(block.get("text"), "text", MAX_HEADER_TEXT, plain=True)


def _context(block: dict[str, Any]) -> list[str]:
    elements = block.get("elements") or []
    if not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
        return [f"elements has {len(elements)} items, expected 1 to {MAX_CONTEXT_ELEMENTS}"]
    problems = []
    for index, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "image":
            continue
        problems += _text_problems(element, f"elements[{index}]", MAX_SECTION_TEXT)
    return problems


def _actions(block: dict[str, Any]) -> list[str]:
    elements = block.get("elements") or []
    if not 0 < len(elements) <= MAX_ACTION_ELEMENTS:
        return [f"elements has {len(elements)} items, expected 1 to {MAX_ACTION_ELEMENTS}"]
    problems: list[str] = []
    action_ids: set[str] = set()
    for index, button in enumerate(elements):
        where = f"elements[{index}]"
        if not isinstance(button, dict) or button.get("type") != "button":
            problems.append(f"{where} is not a button")
            continue
        problems += _text_problems(button.get("text"), f"{where}.text", MAX_BUTTON_TEXT,
                                   plain=True)
        action_id = str(button.get("action_id", ""))
        if len(action_id) > MAX_ACTION_ID or action_id in action_ids:
            problems.append(f"{where}.action_id is too long or not unique in the block")
        action_ids.add(action_id)
        if len(str(button.get("value", ""))) > MAX_BUTTON_VALUE:
            problems.append(f"{where}.value is longer than {MAX_BUTTON_VALUE}")
        if len(str(button.get("url", ""))) > MAX_BUTTON_URL:
            problems.append(f"{where}.url is longer than {MAX_BUTTON_URL}")
        if button.get("style") not in (None, "primary", "danger"):
            problems.append(f"{where}.style {button.get('style')!r} is invalid")
    return problems


_BLOCK_CHECKS = {
    "section": _section,
    "header": _header,
    "context": _context,
    "actions": _actions,
    "divider": lambda block: [],
}


@dataclass
class Failure:
    """A scripted response: an HTTP status with a plain-text or ``ok:false`` error."""

    status: int
    error: str
    retry_after: str | None = None


@dataclass
class FakeSlackState:
    token: str
    channels: set[str]
    post_interval: float
    webhook_messages: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Channel -> ts -> the current message (after updates)."""
    api_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    follow_ups: list[dict[str, Any]] = field(default_factory=list)
    webhook_failures: deque[Failure] = field(default_factory=deque)
    api_failures: dict[str, deque[Failure]] = field(default_factory=lambda: defaultdict(deque))
    last_post: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self.counter):06d}"


def create_app(state: FakeSlackState) -> FastAPI:
    app = FastAPI()

    @app.post("/services/{team}/{bot}/{secret}")
    async def webhook(team: str, bot: str, secret: str, request: Request) -> Response:
        if f"/services/{team}/{bot}/{secret}" != WEBHOOK_PATH:
            return _plain("no_service", 404)
        with state.lock:
            failure = state.webhook_failures.popleft() if state.webhook_failures else None
        if failure is not None:
            return _plain(failure.error, failure.status, failure.retry_after)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _plain("invalid_payload", 400)
        error = _message_error(body)
        if error:
            return _plain(error, 400)
        with state.lock:
            state.webhook_messages.append(body)
        return _plain("ok", 200)

    @app.post("/api/{method}")
    async def api(method: str, request: Request) -> Response:
        body = await _api_body(request)
        with state.lock:
            state.api_calls.append((method, body))
            failures = state.api_failures[method]
            failure = failures.popleft() if failures else None
        if failure is not None:
            if failure.status != 200:
                return _plain(failure.error, failure.status, failure.retry_after)
            return _error(failure.error)
        auth_error = _auth_error(request, state.token)
        if auth_error:
            return _error(auth_error)
        if method == "chat.postMessage":
            return _post_message(state, body)
        if method == "chat.update":
            return _update(state, body)
        return _error("unknown_method")

    @app.post("/actions/{team}/{hook}/{token}")
    async def response_url(team: str, hook: str, token: str, request: Request) -> Response:
        message = json.loads(await request.body())
        with state.lock:
            state.follow_ups.append({"path": request.url.path, **message})
        return JSONResponse({"ok": True})

    return app


async def _api_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(raw)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    form = parse_qs(raw.decode())
    body = {key: values[0] for key, values in form.items()}
    if "blocks" in body:
        body["blocks"] = json.loads(body["blocks"])
    return body


def _auth_error(request: Request, token: str) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return "not_authed"
    if not hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode()):
        return "invalid_auth"
    return None


def _message_error(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "invalid_payload"
    if not body.get("text") and not body.get("blocks"):
        return "no_text"
    if "blocks" in body:
        if block_problems(body["blocks"]):
            return "invalid_blocks"
        if block_text_length(body["blocks"]) > MAX_BLOCK_TEXT_TOTAL:
            return "msg_blocks_too_long"
    return None


def _post_message(state: FakeSlackState, body: dict[str, Any]) -> Response:
    channel = body.get("channel")
    if channel not in state.channels:
        return _error("channel_not_found")
    error = _message_error(body)
    if error:
        return _error(error)
    with state.lock:
        now = time.monotonic()
        last = state.last_post.get(channel)
        if last is not None and now - last < state.post_interval:
            return _plain("rate limited", 429, "1")
        state.last_post[channel] = now
        ts = state.next_ts()
        message = {"ts": ts, "text": body.get("text"), "blocks": body.get("blocks", [])}
        state.messages.setdefault(channel, {})[ts] = message
    return JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": message})


def _update(state: FakeSlackState, body: dict[str, Any]) -> Response:
    channel, ts = body.get("channel"), body.get("ts")
    if channel not in state.channels:
        return _error("channel_not_found")
    error = _message_error(body)
    if error:
        return _error(error)
    with state.lock:
        message = state.messages.get(channel, {}).get(str(ts))
        if message is None:
            return _error("message_not_found")
        message.update(text=body.get("text"), blocks=body.get("blocks", []), edited=True)
    return JSONResponse({"ok": True, "channel": channel, "ts": ts, "text": body.get("text")})


def _plain(text: str, status: int, retry_after: str | None = None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return PlainTextResponse(text, status_code=status, headers=headers)


def _error(error: str) -> Response:
    return JSONResponse({"ok": False, "error": error})


class FakeSlack(LoopbackFake):
    """A running fake Slack as a context manager.

    ``post_interval`` is the minimum time between two postMessage calls to one channel, as
    Slack allows one message per second. Tests that post several messages set it to 0.
    """

    server_name = "the fake Slack"

    def __init__(self, *, post_interval: float = 1.0) -> None:
        self.state = FakeSlackState(
            token=BOT_TOKEN, channels={CHANNEL_ID, OTHER_CHANNEL_ID}, post_interval=post_interval
        )
        self.app = create_app(self.state)

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def response_url(self) -> str:
        return f"{self.url}/actions/{TEAM_ID}/{uuid.uuid4().int % 10**10}/{uuid.uuid4().hex}"

    def fail_webhook(self, status: int, error: str, retry_after: str | None = None) -> None:
        """Respond to the next webhook post with ``status`` and the plain-text ``error``."""
        self.state.webhook_failures.append(Failure(status, error, retry_after))

    def fail_api(
        self, method: str, error: str, *, status: int = 200, retry_after: str | None = None
    ) -> None:
        """Respond to the next call of ``method`` with ``ok:false`` and ``error`` (``status`` 200)
        or with an HTTP error status and a plain-text body."""
        self.state.api_failures[method].append(Failure(status, error, retry_after))

    def channel_messages(self, channel: str = CHANNEL_ID) -> list[dict[str, Any]]:
        return list(self.state.messages.get(channel, {}).values())

    def bot_settings(self, **options: Any) -> dict[str, Any]:
        """Settings of a slack channel that posts with the bot token to ``CHANNEL_ID``."""
        return {"type": "slack", "bot_token": BOT_TOKEN, "channel": CHANNEL_ID,
                "api_url": self.api_url, "signing_secret": SIGNING_SECRET, **options}

    def webhook_settings(self, **options: Any) -> dict[str, Any]:
        """Settings of a slack channel that posts to the fake's incoming webhook."""
        return {"type": "slack", "webhook_url": self.webhook_url, "api_url": self.api_url,
                "signing_secret": SIGNING_SECRET, **options}


class InteractionDriver:
    """Send signed button clicks to a service, the way Slack's interactivity does."""

    def __init__(self, callback_url: str, secret: str = SIGNING_SECRET) -> None:
        self.callback_url = callback_url
        self.secret = secret
        self._ts = itertools.count(int(time.time()) * 1000)

    def payload(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0ALICE",
        response_url: str | None = None,
        action_ts: str | None = None,
    ) -> dict[str, Any]:
        """Return a ``block_actions`` payload for one click on a button of our message."""
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0COSTWARDEN",
            "token": "deprecated-verification-token",
            "container": {"type": "message", "message_ts": "1763629200.000100",
                          "channel_id": CHANNEL_ID, "is_ephemeral": False},
            "trigger_id": f"{next(self._ts)}.1234.abcd",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "channel": {"id": CHANNEL_ID, "name": "finops-alerts"},
            "response_url": response_url or "https://hooks.slack.com/actions/T0FAKE/1/zzzz",
            "actions": [{
                "type": "button", "action_id": action_id, "block_id": "costwarden_actions",
                "value": value, "text": {"type": "plain_text", "text": action_id},
                "action_ts": action_ts or f"{next(self._ts) / 1000:.6f}",
            }],
        }

    def click(
        self,
        payload: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        tamper: bool = False,
    ) -> httpx.Response:
        """POST a signed ``payload=<JSON>`` form; fail if the service takes over 3 seconds.

        ``timestamp`` replaces the current time (a stale click), ``secret`` signs with another
        key, and ``tamper`` changes the body after signing.
        """
        body = urlencode({"payload": json.dumps(payload)}).encode()
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(secret or self.secret, stamp, body),
        }
        if tamper:
            body = body.replace(b"U0", b"U1", 1)
        return httpx.post(self.callback_url, content=body, headers=headers,
                          timeout=ACK_TIMEOUT_SECONDS)
