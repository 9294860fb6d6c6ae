"""Checks before every simulated route: rate limits, API keys and injected faults.

Errors leave as ``ApiError`` and become Palette's ``V1Error`` body
``{"code", "message", "ref"}``. Injected 502, 503 and 504 faults get a small HTML page
instead, as a load balancer in front of the API would send. Clients must cope with a body that
is not JSON.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi.responses import HTMLResponse, JSONResponse, Response

from costwarden.simulator.settings import RateLimitRule, SimulatorSettings

Clock = Callable[[], float]

GATEWAY_REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class ApiError(Exception):
    """An error response: the HTTP status, a ``V1Error`` code and message, and extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        gateway_page: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.gateway_page = gateway_page

    def response(self) -> Response:
        """Render the error as Palette (or the gateway in front of it) would."""
        if self.gateway_page:
            reason = GATEWAY_REASONS.get(self.status, "Error")
            page = f"<html><body><h1>{self.status} {reason}</h1></body></html>\n"
            return HTMLResponse(page, status_code=self.status, headers=self.headers)
        body = {"code": self.code, "message": self.message, "ref": uuid.uuid4().hex}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


@dataclass
class Stats:
    """Counters of what the simulator did, for tests and the shutdown log line."""

    requests: int = 0
    rate_limited: int = 0
    unauthorized: int = 0
    faults: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


class RateLimiter:
    """Token buckets per client address and path prefix, as Palette limits its API.

    A path counts toward the longest rule prefix it falls under. A path under no rule counts
    toward its first two segments, such as ``/v1/users``, with the default rate and burst.
    """

    def __init__(
        self,
        rules: tuple[RateLimitRule, ...],
        default_rate: float,
        default_burst: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self._rules = sorted(rules, key=lambda rule: len(rule.prefix), reverse=True)
        self._default_rate = default_rate
        self._default_burst = default_burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def rule_for(self, path: str) -> RateLimitRule:
        """Return the rule that limits ``path``."""
        for rule in self._rules:
            if path == rule.prefix or path.startswith(rule.prefix.rstrip("/") + "/"):
                return rule
        prefix = "/" + "/".join(path.strip("/").split("/")[:2])
        return RateLimitRule(
            prefix=prefix, rate_per_second=self._default_rate, burst=self._default_burst
        )

    def allow(self, client: str, path: str) -> tuple[bool, RateLimitRule]:
        """Take a token for ``client`` on the prefix of ``path``; False when none is left."""
        rule = self.rule_for(path)
        key = (client, rule.prefix)
        with self._lock:
            now = self._clock()
            tokens, updated = self._buckets.get(key, (float(rule.burst), now))
            tokens = min(float(rule.burst), tokens + (now - updated) * rule.rate_per_second)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        return allowed, rule


class FaultInjector:
    """Seeded choice of the calls that get an injected error status, for client retry tests."""

    def __init__(self, seed: int, rate: float, statuses: tuple[int, ...]) -> None:
        self._random = random.Random(seed)
        self._rate = rate
        self._statuses = statuses
        self._lock = threading.Lock()

    def draw(self) -> int | None:
        """Return the status to inject into this call, or None to serve it normally."""
        if self._rate <= 0:
            return None
        with self._lock:
            if self._random.random() >= self._rate:
                return None
            return self._statuses[self._random.randrange(len(self._statuses))]


def too_many_requests(message: str, settings: SimulatorSettings) -> ApiError:
    headers = {}
    if settings.retry_after_seconds is not None:
        headers["Retry-After"] = str(settings.retry_after_seconds)
    return ApiError(429, "TooManyRequests", message, headers=headers)


def fault_error(status: int, settings: SimulatorSettings) -> ApiError:
    """Build the error response of an injected fault."""
    if status == 429:
        return too_many_requests("too many requests (injected fault)", settings)
    if status == 500:
        return ApiError(500, "InternalError", "internal server error (injected fault)")
    return ApiError(status, GATEWAY_REASONS[status], "injected fault", gateway_page=True)


def check_api_key(
    api_key: str | None, authorization: str | None, settings: SimulatorSettings
) -> None:
    """Raise a 401 ``ApiError`` unless ``api_key`` is one of the configured keys."""
    if api_key is None:
        if authorization:
            message = (
                "JWT authorization is not supported by the simulator; send the API key "
                "in the ApiKey header"
            )
        else:
            message = "missing ApiKey header; send ApiKey: <key>"
        raise ApiError(401, "Unauthorized", message)
    if api_key not in settings.api_keys:
        raise ApiError(401, "Unauthorized", "invalid API key in the ApiKey header")
