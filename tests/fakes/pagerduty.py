"""A fake PagerDuty Events API v2 on 127.0.0.1, with PagerDuty's alert rules.

``POST /v2/enqueue`` checks the body the way the documented schema does. ``routing_key`` must
be one of the fake's 32-character keys, and ``event_action`` one of trigger, acknowledge or
resolve. ``dedup_key`` has at most 255 characters and is required for acknowledge and resolve.
A trigger needs ``payload.summary`` (at most 1024 characters), ``payload.source`` and
``payload.severity`` (critical, error, warning or info). The whole event is at most 512 KB. A
failed check gets 400 with ``{"status", "message", "errors"}``.

Alerts are kept per (``routing_key``, ``dedup_key``): a trigger while the alert is open updates
it, a trigger after it resolved opens a new one, and an acknowledge or resolve of a key without
an open alert is dropped. Every accepted event gets 202 with the ``dedup_key``, generated when
a trigger has none. ``fail_next`` scripts 429 (with or without ``Retry-After``) or 5xx responses.

``sign_v3`` computes the ``X-PagerDuty-Signature`` of PagerDuty's v3 webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
OTHER_ROUTING_KEY = "fedcba9876543210fedcba9876543210"
MAX_EVENT_BYTES = 512 * 1024
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class FakeAlert:
    """One PagerDuty alert: opened by a trigger, updated by later triggers until resolved."""

    routing_key: str
    dedup_key: str
    summary: str
    severity: str
    status: str = "triggered"
    triggers: int = 1
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status != "resolved"


@dataclass
class FakeState:
    routing_keys: set[str]
    alerts: list[FakeAlert] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    script: deque[tuple[int, str | None]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open_alert(self, routing_key: str, key: str) -> FakeAlert | None:
        for alert in self.alerts:
            if alert.routing_key == routing_key and alert.dedup_key == key and alert.open:
                return alert
        return None


def create_app(state: FakeState) -> FastAPI:
    app = FastAPI()

    @app.post("/v2/enqueue")
    async def enqueue(request: Request) -> JSONResponse:
        body = await request.body()
        with state.lock:
            if state.script:
                status, retry_after = state.script.popleft()
                headers = {"Retry-After": retry_after} if retry_after else {}
                return JSONResponse({"status": "throttled"}, status, headers=headers)
        if len(body) > MAX_EVENT_BYTES:
            return _invalid([f"event is {len(body)} bytes, over 512 KB"])
        try:
            event = json.loads(body)
        except ValueError:
            return _invalid(["JSON parse error"], status="Unrecognized object")
        errors = validate_event(event, state.routing_keys)
        if errors:
            return _invalid(errors)
        with state.lock:
            state.received.append(event)
            key = _apply(state, event)
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": key}, 202
        )

    return app


def validate_event(event: Any, routing_keys: set[str]) -> list[str]:
    """Return what is wrong with an event as PagerDuty's ``errors`` list, empty when valid."""
    if not isinstance(event, dict):
        return ["event must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32 or key not in routing_keys:
        errors.append("'routing_key' is invalid")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append(f"'event_action' must be one of {', '.join(ACTIONS)}")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not 0 < len(dedup) <= 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        errors.append(f"'dedup_key' is required for {action}")
    if action == "trigger":
        errors += _payload_errors(event.get("payload"))
    errors += _links_errors(event.get("links", []))
    return errors


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is required for trigger"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary:
        errors.append("'payload.summary' is required")
    elif len(summary) > 1024:
        errors.append("'payload.summary' must be at most 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append("'payload.source' is required")
    if payload.get("severity") not in SEVERITIES:
        errors.append(f"'payload.severity' must be one of {', '.join(SEVERITIES)}")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00"))
        except ValueError:
            errors.append("'payload.timestamp' must be ISO 8601")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _links_errors(links: Any) -> list[str]:
    if not isinstance(links, list):
        return ["'links' must be a list"]
    for link in links:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            return ["every entry of 'links' needs an 'href'"]
    return []


def _apply(state: FakeState, event: dict[str, Any]) -> str:
    """Apply an accepted event to the alerts and return its dedup_key."""
    routing_key, action = event["routing_key"], event["event_action"]
    key = event.get("dedup_key") or uuid.uuid4().hex
    alert = state.open_alert(routing_key, key)
    if action == "trigger":
        payload = event["payload"]
        if alert is None:
            alert = FakeAlert(routing_key, key, payload["summary"], payload["severity"])
            state.alerts.append(alert)
        else:
            alert.triggers += 1
            alert.summary, alert.severity = payload["summary"], payload["severity"]
        alert.events.append(event)
    elif alert is None:
        state.dropped.append(event)
    else:
        alert.status = "acknowledged" if action == "acknowledge" else "resolved"
        alert.events.append(event)
    return key


def _invalid(errors: list[str], status: str = "invalid event") -> JSONResponse:
    body = {"status": status, "message": "Event object is invalid", "errors": errors}
    return JSONResponse(body, 400)


def sign_v3(secret: str, body: bytes) -> str:
    """Return the ``X-PagerDuty-Signature`` value of a v3 webhook body: ``v1=<hex>``."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_v3(secret: str, header: str, body: bytes) -> bool:
    """Return whether any comma-separated signature of the header matches the body."""
    expected = sign_v3(secret, body).encode()
    return any(hmac.compare_digest(expected, part.strip().encode()) for part in header.split(","))


class FakePagerDuty(LoopbackFake):
    """The fake on a free port of 127.0.0.1, as a context manager.

    ``events_url`` is the enqueue URL to configure; ``alerts`` lists every alert opened.
    """

    server_name = "the fake PagerDuty"

    def __init__(self, routing_keys: tuple[str, ...] = (ROUTING_KEY, OTHER_ROUTING_KEY)) -> None:
        self.state = FakeState(set(routing_keys))
        self.app = create_app(self.state)

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/v2/enqueue"

    @property
    def alerts(self) -> list[FakeAlert]:
        return list(self.state.alerts)

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every accepted event, in order."""
        return list(self.state.received)

    def fail_next(self, status: int, count: int = 1, retry_after: str | None = None) -> None:
        """Respond to the next ``count`` requests with ``status`` (429, 500), before any check."""
        with self.state.lock:
            self.state.script.extend([(status, retry_after)] * count)
