"""A fake Prometheus HTTP API for the failures a real server does not produce on demand.

The first three path segments pick a behaviour, a key and an amount, for example
``/ratelimit/<key>/2/api/v1/query``. The fake counts requests per key, so each test uses a
fresh key. Every behaviour responds with Prometheus' envelope once it lets a request through.

- ``auth``: 401 unless the request carries ``Bearer <TOKEN>`` or basic ``USER``/``PASSWORD``.
  Like a careless proxy, the 401 body repeats the Authorization header it received.
- ``ratelimit``: 429 with ``Retry-After: 7`` for the first ``amount`` requests.
- ``flaky``: 503 with an ``unavailable`` error body for the first ``amount`` requests.
- ``slow``: waits ``amount`` seconds before it responds.
- ``garbage``: 200 with an HTML body.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from typing import Any

from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

TOKEN = "fake-prometheus-token-5f1e"
USER, PASSWORD = "costwarden", "fake-prometheus-password-9c2d"
RETRY_AFTER_SECONDS = 7
SUCCESS = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {"job": "fake"}, "value": [0, "1"]}]},
}


def create_app() -> FastAPI:
    app = FastAPI()
    counts: Counter[str] = Counter()
    app.state.counts = counts

    @app.api_route("/{behaviour}/{key}/{amount}/api/v1/{endpoint:path}", methods=["GET", "POST"])
    async def api(
        behaviour: str, key: str, amount: float, endpoint: str, request: Request
    ) -> Response:
        counts[key] += 1
        if behaviour == "auth":
            return _auth(request)
        if behaviour == "ratelimit" and counts[key] <= amount:
            return PlainTextResponse(
                "rate limited", 429, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        if behaviour == "flaky" and counts[key] <= amount:
            return JSONResponse(_error("unavailable", "the query engine is overloaded"), 503)
        if behaviour == "slow":
            await asyncio.sleep(amount)
        if behaviour == "garbage":
            return PlainTextResponse("<html>login</html>", 200, media_type="text/html")
        return JSONResponse(SUCCESS)

    return app


def _auth(request: Request) -> Response:
    header = request.headers.get("Authorization", "")
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if header in (f"Bearer {TOKEN}", f"Basic {basic}"):
        return JSONResponse(SUCCESS)
    return PlainTextResponse(f"invalid credentials: {header!r}", 401)


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"status": "error", "errorType": error_type, "error": message}


class FakePrometheus(LoopbackFake):
    """The fake on a free port of 127.0.0.1, as a context manager."""

    server_name = "the fake Prometheus"

    def __init__(self) -> None:
        self.app = create_app()

    def url(self, behaviour: str, key: str, amount: float = 0) -> str:
        return f"{self.base_url}/{behaviour}/{key}/{amount:g}"

    def requests(self, key: str) -> int:
        return int(self.app.state.counts[key])
