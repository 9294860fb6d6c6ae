"""Helpers for the Prometheus source tests: a recording transport, fake sleep and settings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from costwarden.config import PrometheusSettings

RATE_WINDOW_SECONDS = 1200
"""Four times the 5-minute resolution of the seeded fleet."""


@dataclass
class Exchange:
    """One request as sent, and the number of results its response held."""

    method: str
    path: str
    params: list[tuple[str, str]]
    status: int
    results: int | None

    def param(self, name: str) -> str:
        return next(value for key, value in self.params if key == name)


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """Send requests over real HTTP and record each one, GET query or POST form alike."""

    exchanges: list[Exchange] = field(default_factory=list)
    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        params = list(request.url.params.multi_items())
        if request.method == "POST":
            body = await request.aread()
            params += parse_qsl(body.decode(), keep_blank_values=True)

        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        await response.aclose()
        self.exchanges.append(
            Exchange(request.method, request.url.path, params, response.status_code,
                     _result_count(content))
        )  # fmt: skip
        # The content is already decoded, so the encoding and length headers no longer apply.
        headers = [
            (key, value)
            for key, value in response.headers.items()
            if key.lower() not in ("content-encoding", "content-length")
        ]
        return httpx.Response(response.status_code, headers=headers, content=content)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def to(self, path_suffix: str) -> list[Exchange]:
        return [item for item in self.exchanges if item.path.endswith(path_suffix)]


def _result_count(content: bytes) -> int | None:
    try:
        body: Any = json.loads(content)
        result = body["data"]["result"]
    except (ValueError, KeyError, TypeError):
        return None
    return len(result) if isinstance(result, list) else None


class FakeSleep:
    """An async sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def prometheus_settings(url: str, **overrides: Any) -> PrometheusSettings:
    options: dict[str, Any] = {
        "url": url,
        "rate_window_seconds": RATE_WINDOW_SECONDS,
        "max_retries": 0,
        "timeout_seconds": 30.0,
    }
    options.update(overrides)
    return PrometheusSettings(**options)
