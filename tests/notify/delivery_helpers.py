"""Helpers of the delivery tests: a loopback HTTP receiver, outbox rows and a fake clock."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import uvicorn

from costwarden.notify.notice import Notice
from costwarden.simulator.server import LOOPBACK, bind_socket, uvicorn_config
from costwarden.store import Store
from costwarden.store.tables import NotificationRecord, OutboxRecord

WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""A valid Standard Webhooks signing secret (base64 of 24 bytes) for test channels."""

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
"""A Monday noon, UTC: the default creation time of test rows."""


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    """Seconds to wait before the response, to make clients time out."""


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST by path.

    ``script(path, *replies)`` queues replies for the next requests to ``path``. A path in
    ``down`` returns 503 until it is removed, and ``always[prefix]`` is the reply to every request
    to a path with that prefix. Other requests get 200. ``received[path]`` lists the ``webhook-id``
    header of every request, ``accepted[path]`` those answered with 2xx.
    """

    def __init__(self) -> None:
        self.received: dict[str, list[str]] = defaultdict(list)
        self.accepted: dict[str, list[str]] = defaultdict(list)
        self.bodies: dict[str, list[bytes]] = defaultdict(list)
        self.headers: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.down: set[str] = set()
        self.always: dict[str, Reply] = {}
        self._scripts: dict[str, list[Reply]] = defaultdict(list)
        self._lock = threading.Lock()
        config = uvicorn_config(self._app)  # type: ignore[arg-type]
        config.interface = "asgi3"
        self._server = uvicorn.Server(config)
        self._socket = bind_socket(LOOPBACK, 0)
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}/{path.lstrip('/')}"

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts["/" + path.lstrip("/")].extend(replies)

    def _reply(self, path: str) -> Reply:
        with self._lock:
            if path in self.down:
                return Reply(503, body=b"unavailable")
            for prefix, reply in self.always.items():
                if path.startswith(prefix):
                    return reply
            queued = self._scripts.get(path)
            if queued:
                return queued.pop(0)
        return Reply()

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        reply = self._reply(path)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        with self._lock:
            delivery_id = headers.get("webhook-id", "")
            self.received[path].append(delivery_id)
            self.bodies[path].append(body)
            self.headers[path].append(headers)
            if 200 <= reply.status < 300:
                self.accepted[path].append(delivery_id)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(key.encode(), value.encode()) for key, value in reply.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test receiver did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def webhook_channel(url: str, **options: Any) -> dict[str, Any]:
    """Settings of a ``webhook`` channel posting to ``url``."""
    return {"type": "webhook", "url": url, "secret": WEBHOOK_SECRET, **options}


def make_notice(alert_id: str, severity: str = "warning", **fields: Any) -> Notice:
    return Notice(
        alert_id=alert_id,
        kind="budget",
        severity=severity,  # type: ignore[arg-type]
        title=f"Budget alert {alert_id}",
        generated_at=START,
        **fields,
    )


def add_rows(
    store: Store,
    channel: str,
    count: int = 1,
    *,
    severity: str = "warning",
    event: str = "trigger",
    created_at: datetime = START,
    alert_prefix: str | None = None,
    external_ref: str | None = None,
) -> list[str]:
    """Insert ``count`` pending outbox rows for ``channel``, one alert each, and return their ids.

    Each alert also gets a notifications row, as the outbox writer stores one.
    """
    prefix = alert_prefix or f"{channel}-alert"
    ids = []
    with store.transaction() as session:
        for index in range(count):
            alert_id = f"{prefix}-{index}"
            row_id = str(uuid.uuid4())
            notice = make_notice(alert_id, severity).to_json()
            session.add(
                OutboxRecord(
                    id=row_id,
                    channel=channel,
                    alert_id=alert_id,
                    event=event,
                    route="test",
                    notices=[notice],
                    status="pending",
                    attempts=0,
                    next_attempt_at=created_at,
                    updated_at=created_at,
                    created_at=created_at + timedelta(microseconds=index),
                )
            )
            session.merge(
                NotificationRecord(
                    alert_id=alert_id,
                    channel=channel,
                    kind="budget",
                    budget="b",
                    period_key="2026-03-01",
                    route="test",
                    state="firing",
                    severity=severity,
                    notice=notice,
                    external_ref=external_ref,
                    digest_pending=False,
                    first_notified_at=created_at,
                    last_notified_at=created_at,
                    last_seen_at=created_at,
                )
            )
            ids.append(row_id)
    return ids


def outbox_rows(store: Store, **filters: Any) -> list[OutboxRecord]:
    from sqlalchemy import select

    with store.transaction() as session:
        query = select(OutboxRecord).order_by(OutboxRecord.created_at, OutboxRecord.id)
        for name, value in filters.items():
            query = query.where(getattr(OutboxRecord, name) == value)
        return list(session.scalars(query))


class FakeClock:
    """A clock that only moves when ``sleep`` or ``advance`` is called; it records each sleep."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


class IdleRunner:
    """A pass runner that starts no passes; the delivery tests need none."""

    def request(self, trigger: str, scope: Any = None, *, key: str | None = None) -> str:
        raise AssertionError("no pass expected in delivery tests")


class ServiceServer:
    """The costwarden service app with its lifespan, on a free port of 127.0.0.1."""

    def __init__(self, settings: Any, store: Store) -> None:
        from costwarden.service.app import create_app
        from costwarden.service.state import ServiceState

        self.state = ServiceState(settings=settings, store=store, runner=IdleRunner())
        self.app = create_app(self.state)
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._socket = bind_socket(LOOPBACK, 0)
        self.url = f"http://{LOOPBACK}:{self._socket.getsockname()[1]}"
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the service app did not start; see the log")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self._socket.close()


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Poll ``condition()`` every 20 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)
