"""A webhook receiver on 127.0.0.1 that verifies Standard Webhooks signatures.

Usage::

    receiver = start("whsec_...")        # or start(["whsec_new", "whsec_old"])
    ...post events to receiver.url...
    receiver.received                     # verified deliveries, the first one per webhook-id
    receiver.attempts["msg_1"]            # verified deliveries of that id, repeats included
    receiver.set_down(True)               # respond 503 with Retry-After until set_down(False)
    receiver.set_down(True, refuse=True)  # stop listening, so connections are refused
    receiver.stop()

It is also a context manager that stops on exit. A request passes when the standardwebhooks
library verifies one of its signatures with one of the receiver's secrets, which includes the
library's five-minute timestamp window; otherwise it gets 401 and lands in ``rejected``. A
repeated ``webhook-id`` gets 200 again without a second entry in ``received``.
``respond_next(410)`` scripts the responses to the next requests, before verification.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

DOWN_RETRY_AFTER = "2"


@dataclass(frozen=True)
class ReceivedWebhook:
    """One verified delivery."""

    id: str
    timestamp: int
    headers: dict[str, str]
    body: bytes
    payload: Any


class WebhookReceiver(LoopbackFake):
    """The receiver; create it with ``start``."""

    server_name = "the webhook receiver"

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = list(secrets)
        self.received: list[ReceivedWebhook] = []
        self.attempts: Counter[str] = Counter()
        self.rejected: list[str] = []
        self.requests = 0
        self._script: deque[tuple[int, dict[str, str]]] = deque()
        self._down = False
        self._lock = threading.Lock()
        self.app = self._create_app()

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/costwarden"

    def respond_next(
        self,
        status: int,
        count: int = 1,
        retry_after: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Respond to the next ``count`` requests with ``status``, without verification."""
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = retry_after
        with self._lock:
            self._script.extend([(status, extra)] * count)

    def set_down(self, down: bool, *, refuse: bool = False) -> None:
        """Respond 503 with Retry-After while down, or with ``refuse`` stop listening."""
        if refuse and down:
            self.stop()
        elif not down:
            self.start()
        self._down = down and not refuse

    def _create_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/costwarden")
        async def receive(request: Request) -> Response:
            body = await request.body()
            return self._handle(dict(request.headers), body)

        return app

    def _handle(self, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            self.requests += 1
            if self._script:
                status, extra = self._script.popleft()
                return Response(status_code=status, headers=extra)
            if self._down:
                return Response(status_code=503, headers={"Retry-After": DOWN_RETRY_AFTER})

            reason = self._verify(headers, body)
            if reason:
                self.rejected.append(reason)
                return JSONResponse({"error": reason}, 401)
            message_id = headers["webhook-id"]
            self.attempts[message_id] += 1
            if self.attempts[message_id] == 1:
                self.received.append(
                    ReceivedWebhook(
                        message_id,
                        int(headers["webhook-timestamp"]),
                        headers,
                        body,
                        json.loads(body),
                    )
                )
        return JSONResponse({"status": "ok"}, 200)

    def _verify(self, headers: dict[str, str], body: bytes) -> str:
        """Return why the signature fails with every secret, or an empty string when it passes."""
        reason = "no secret configured"
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers, json_parse=False)
            except WebhookVerificationError as exc:
                reason = str(exc)
            else:
                return ""
        return reason


def start(secret: str | Sequence[str]) -> WebhookReceiver:
    """Start a receiver that accepts signatures made with ``secret`` (or any of several)."""
    receiver = WebhookReceiver([secret] if isinstance(secret, str) else secret)
    receiver.start()
    return receiver
