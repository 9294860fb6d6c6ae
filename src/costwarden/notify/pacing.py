"""When the delivery worker may send: rate limits, retry backoff and quiet hours."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from costwarden.notify.registry import QuietHours

MAX_QUIET_STEPS = 4
"""Quiet windows chained at most (a weekend followed by a night window, for example)."""


class TokenBucket:
    """A token bucket of ``burst`` tokens that refills ``rate`` tokens per second.

    ``reserve`` takes a token at once even when none is left and returns the wait until that
    token is due, so callers that honour the wait never exceed the rate.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp: float | None = None

    def reserve(self, now: float) -> float:
        """Take one token at ``now`` (seconds) and return the seconds to wait before using it."""
        if self._stamp is not None:
            elapsed = max(now - self._stamp, 0.0)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._stamp = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate

    def refund(self) -> None:
        """Give back the token of a reservation that was not used."""
        self._tokens = min(float(self.burst), self._tokens + 1.0)


def retry_delay(
    attempts: int,
    retry_after: float | None,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    retry_after_cap: float | None = None,
) -> float:
    """Return the seconds before attempt ``attempts + 1``.

    The delay is drawn uniformly between 0 and ``base * 2 ** (attempts - 1)`` capped at ``cap``
    ("full jitter"). A longer ``Retry-After`` wins, even above ``cap``, but never above
    ``retry_after_cap``: a receiver asking for years must not freeze the channel.
    """
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None:
        wait = max(retry_after, 0.0)
        if retry_after_cap is not None:
            wait = min(wait, retry_after_cap)
        delay = max(delay, wait)
    return delay


def quiet_until(quiet: QuietHours | None, now: datetime) -> datetime | None:
    """Return the end (UTC) of the quiet hours that ``now`` falls in, or ``None`` outside them.

    A window that ends where the next begins (a weekend followed by a night window) is
    followed to its final end.
    """
    if quiet is None:
        return None
    zone = ZoneInfo(quiet.timezone)
    moment = now.astimezone(zone)
    end: datetime | None = None
    for _ in range(MAX_QUIET_STEPS):
        window_end = _window_end(quiet, moment)
        if window_end is None:
            break
        end = moment = window_end
    return end.astimezone(UTC) if end is not None else None


def _window_end(quiet: QuietHours, local: datetime) -> datetime | None:
    """Return the local end of the quiet window that ``local`` falls in, or ``None``."""
    today = local.date()
    if quiet.weekends and local.weekday() >= 5:
        return _at(today + timedelta(days=7 - local.weekday()), time(0), local)

    clock = local.time().replace(tzinfo=None)
    start = quiet.start.replace(tzinfo=None)
    end = quiet.end.replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        return _at(today, end, local) if start <= clock < end else None
    if clock >= start:
        return _at(today + timedelta(days=1), end, local)
    if clock < end:
        return _at(today, end, local)
    return None


def _at(day: date, clock: time, local: datetime) -> datetime:
    return datetime.combine(day, clock, tzinfo=local.tzinfo)
