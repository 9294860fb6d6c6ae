"""Client-side token buckets that keep calls under Palette's per-prefix rate limits.

Palette limits requests per source address and per path prefix, and returns 429 above the limit.
The buckets here hand out reservations: ``reserve()`` takes a token at once and returns how long
the caller must wait before sending. A thread or task that reserves later is therefore scheduled
later, and callers sleep outside the lock, so the buckets work from threads and from asyncio tasks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

Clock = Callable[[], float]


class TokenBucket:
    """A token bucket of ``burst`` tokens refilled at ``rate_per_second``.

    Over any interval of ``t`` seconds the bucket grants at most ``burst + rate_per_second * t``
    reservations.
    """

    def __init__(self, rate_per_second: float, burst: int, clock: Clock = time.monotonic) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token and return the seconds to wait before using it (0 when one is free)."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_second)
            self._updated = now

            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate_per_second


class PrefixRateLimiter:
    """Token buckets keyed by path prefix; a path under no configured prefix is not limited.

    A prefix matches the path itself and every sub-path (``/v1/dashboard`` matches
    ``/v1/dashboard/spectroclusters/cost``), which is how Palette counts requests to a parent
    resource. The longest matching prefix applies.
    """

    def __init__(self, buckets: Mapping[str, TokenBucket]) -> None:
        self._buckets = sorted(
            ((prefix.rstrip("/"), bucket) for prefix, bucket in buckets.items()),
            key=lambda item: len(item[0]),
            reverse=True,
        )

    def bucket_for(self, path: str) -> TokenBucket | None:
        for prefix, bucket in self._buckets:
            if path == prefix or path.startswith(prefix + "/"):
                return bucket
        return None

    def reserve(self, path: str) -> float:
        """Reserve a call to ``path`` and return the seconds to wait before sending it."""
        bucket = self.bucket_for(path)
        if bucket is None:
            return 0.0
        return bucket.reserve()
