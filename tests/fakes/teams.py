"""A fake Microsoft Teams Workflows webhook on 127.0.0.1.

``POST /powerautomate/automations/direct/workflows/<id>/triggers/manual/paths/invoke`` with
``api-version``, ``sp``, ``sv`` and ``sig`` query parameters, like the URLs that the Workflows
template "Send webhook alerts to a channel" hands out. The fake:

- responds 404 for an unknown workflow and 401 when ``sig`` does not match;
- responds 413 for a body over 28 KB and 400 for invalid JSON, a ``type`` other than
  ``message``, no attachments, an attachment whose ``contentType`` is not an Adaptive Card, a
  card whose ``type`` is not ``AdaptiveCard`` or whose ``version`` is above 1.4, or an
  ``Action.Submit``/``Action.Execute`` (webhook cards cannot submit);
- responds 429 with ``Retry-After`` above ``max_per_second`` requests in one second;
- responds 202 Accepted with an empty body otherwise, and records the card;
- can be scripted with ``fail_next`` to respond 429, 5xx or other errors.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

WORKFLOW_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SIG = "fakeSas-4JbVtQ1kZc8sO2mWn7rY0eXg"
MAX_BYTES = 28 * 1024
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_VERSION = (1, 4)
SUBMIT_ACTIONS = ("Action.Submit", "Action.Execute")


@dataclass
class FakeTeamsState:
    max_per_second: int
    cards: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    script: deque[tuple[int, str | None]] = field(default_factory=deque)
    recent: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)


def card_problems(body: Any) -> list[str]:
    """Return why a Workflows webhook body is invalid; an empty list means it is accepted."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return ["type is not 'message'"]
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["attachments is missing or empty"]
    problems = []
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_CONTENT_TYPE:
            problems.append(f"{where}.contentType is not {CARD_CONTENT_TYPE}")
            continue
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            problems.append(f"{where}.content is not an AdaptiveCard")
            continue
        problems += [f"{where}.content.{problem}" for problem in _card_problems(card)]
    return problems


def _card_problems(card: dict[str, Any]) -> list[str]:
    problems = []
    try:
        version = tuple(int(part) for part in str(card.get("version")).split("."))
    except ValueError:
        version = ()
    if not version or version > MAX_VERSION:
        problems.append(f"version {card.get('version')!r} is missing or above 1.4")
    if not isinstance(card.get("body"), list) or not card["body"]:
        problems.append("body is missing or empty")
    for action in _all_actions(card):
        if action.get("type") in SUBMIT_ACTIONS:
            problems.append(f"{action['type']} cannot work in a card posted by a webhook")
        if action.get("type") == "Action.OpenUrl" and not str(action.get("url", "")).startswith(
            ("https://", "http://")
        ):
            problems.append("Action.OpenUrl has no http(s) url")
    return problems


def _all_actions(value: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(value, dict):
        if str(value.get("type", "")).startswith("Action."):
            found.append(value)
        for item in value.values():
            found += _all_actions(item)
    elif isinstance(value, list):
        for item in value:
            found += _all_actions(item)
    return found


def create_app(state: FakeTeamsState) -> FastAPI:
    app = FastAPI()
    path = "/powerautomate/automations/direct/workflows/{workflow}/triggers/manual/paths/invoke"

    @app.post(path)
    async def invoke(workflow: str, request: Request) -> Response:
        if workflow != WORKFLOW_ID:
            return _error(404, "WorkflowNotFound", "The workflow does not exist or is off.")
        if request.query_params.get("sig") != SIG:
            return _error(401, "DirectApiAuthorizationRequired", "The sig parameter is invalid.")

        scripted = _scripted(state)
        if scripted is not None:
            return scripted
        if _throttled(state):
            return _error(429, "TooManyRequests", "Rate limit exceeded.", retry_after="1")

        raw = await request.body()
        if len(raw) > MAX_BYTES:
            return _reject(state, 413, "MessageSizeExceeded", f"{len(raw)} bytes, at most 28 KB")
        try:
            body = json.loads(raw)
        except ValueError:
            return _reject(state, 400, "InvalidRequestContent", "the body is not JSON")
        problems = card_problems(body)
        if problems:
            return _reject(state, 400, "InvalidRequestContent", "; ".join(problems))

        with state.lock:
            state.cards.extend(item["content"] for item in body["attachments"])
        return Response(status_code=202)

    return app


def _scripted(state: FakeTeamsState) -> Response | None:
    with state.lock:
        if not state.script:
            return None
        status, retry_after = state.script.popleft()
    return _error(status, "Scripted", "scripted failure", retry_after=retry_after)


def _throttled(state: FakeTeamsState) -> bool:
    now = time.monotonic()
    with state.lock:
        while state.recent and now - state.recent[0] >= 1.0:
            state.recent.popleft()
        if len(state.recent) >= state.max_per_second:
            return True
        state.recent.append(now)
    return False


def _reject(state: FakeTeamsState, status: int, code: str, message: str) -> Response:
    with state.lock:
        state.rejected.append((status, message))
    return _error(status, code, message)


def _error(status: int, code: str, message: str, retry_after: str | None = None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


class FakeTeams(LoopbackFake):
    """A running fake Workflows webhook as a context manager; ``workflow_url`` is its URL."""

    server_name = "the fake Teams webhook"

    def __init__(self, *, max_per_second: int = 4) -> None:
        self.state = FakeTeamsState(max_per_second=max_per_second)
        self.app = create_app(self.state)

    @property
    def url(self) -> str:
        return self.base_url

    def workflow_url(self, sig: str = SIG, workflow: str = WORKFLOW_ID) -> str:
        return (
            f"{self.url}/powerautomate/automations/direct/workflows/{workflow}/triggers/manual"
            f"/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"
        )

    def settings(self, **options: Any) -> dict[str, Any]:
        """Settings of a teams channel posting to this fake."""
        return {"type": "teams", "workflow_url": self.workflow_url(), **options}

    def fail_next(self, status: int, retry_after: str | None = None) -> None:
        """Respond to the next request with ``status`` (and ``Retry-After``)."""
        self.state.script.append((status, retry_after))
