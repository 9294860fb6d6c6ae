"""The schedule of passes: an asyncio task that requests a pass at each cron fire time (UTC)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from croniter import croniter

from costwarden.service.state import Runner

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def next_fire(expression: str, after: datetime) -> datetime:
    """Return the first fire time of a cron expression strictly after ``after``, in UTC."""
    moment = croniter(expression, after.astimezone(UTC)).get_next(datetime)
    return moment.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


async def run_schedule(
    expression: str,
    runner: Runner,
    stop: asyncio.Event,
    *,
    clock: Clock = _now,
    sleep: Sleep | None = None,
) -> None:
    """Request a ``schedule`` pass at every fire time of ``expression`` until ``stop`` is set.

    A fire time missed while the process was down is not made up; the next one counts. A
    request that fails is logged and the schedule continues. ``clock`` and ``sleep`` replace the
    wall clock and the wait (tests pass fakes).
    """
    due = next_fire(expression, clock())
    logger.info("schedule %r: next pass at %s", expression, due.isoformat())
    while not stop.is_set():
        wait = (due - clock()).total_seconds()
        if wait > 0:
            if await _wait(stop, wait, sleep):
                return
            continue

        try:
            # The fire time keys the run id, so replicas ticking together share one run.
            run_id = await asyncio.to_thread(runner.request, "schedule", key=due.isoformat())
            logger.info("scheduled pass requested: run %s", run_id)
        except Exception:
            logger.exception("requesting the scheduled pass due at %s failed", due.isoformat())
        due = next_fire(expression, max(due, clock()))
        logger.info("schedule %r: next pass at %s", expression, due.isoformat())


async def _wait(stop: asyncio.Event, seconds: float, sleep: Sleep | None) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; return whether it was set."""
    if sleep is not None:
        await sleep(seconds)
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
