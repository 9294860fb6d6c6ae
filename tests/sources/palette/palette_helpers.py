"""Helpers shared by the Palette tests: a recording transport, fake time and client settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from costwarden.config import PaletteSettings

AS_OF = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)


@dataclass
class Exchange:
    method: str
    path: str
    params: dict[str, str]
    status: int | None
    sent_at: float


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """Send requests over real HTTP and record each one with the fake clock time it left at."""

    clock: Callable[[], float] = lambda: 0.0
    rewrite: Callable[[httpx.Request, httpx.Response, bytes], bytes] | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        exchange = Exchange(
            request.method, request.url.path, dict(request.url.params), None, self.clock()
        )
        self.exchanges.append(exchange)
        response = await self.inner.handle_async_request(request)
        exchange.status = response.status_code
        if self.rewrite is None:
            return response

        content = await response.aread()
        await response.aclose()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=self.rewrite(request, response, content),
        )

    async def aclose(self) -> None:
        await self.inner.aclose()

    def statuses(self, path_prefix: str = "") -> list[int | None]:
        return [item.status for item in self.exchanges if item.path.startswith(path_prefix)]


class FakeTime:
    """A monotonic clock and an async sleep that advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def palette_settings(sim: Any, **overrides: Any) -> PaletteSettings:
    options: dict[str, Any] = {
        "url": sim.url,
        "api_key": sim.api_key,
        "max_retries": 3,
        "backoff_base_seconds": 0.5,
        "backoff_max_seconds": 4.0,
        "timeout_seconds": 10.0,
    }
    options.update(overrides)
    return PaletteSettings(**options)
