"""The schedule: fire times from cron in UTC, and one pass request per fire time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from costwarden.service.scheduler import next_fire, run_schedule
from costwarden.service.state import RefreshScope


class FakeClock:
    """A clock that only moves when the schedule sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


class CountingRunner:
    def __init__(self, stop: asyncio.Event, limit: int, clock: FakeClock,
                 fail_first: bool = False) -> None:
        self.stop = stop
        self.limit = limit
        self.clock = clock
        self.fail_first = fail_first
        self.requests: list[tuple[str, datetime]] = []
        self.keys: list[str | None] = []

    def request(
        self, trigger: str, scope: RefreshScope | None = None, *, key: str | None = None
    ) -> str:
        self.requests.append((trigger, self.clock.now))
        self.keys.append(key)
        if len(self.requests) >= self.limit:
            self.stop.set()
        if self.fail_first and len(self.requests) == 1:
            raise RuntimeError("database down")
        return f"run-{len(self.requests)}"


def test_next_fire_daily_utc() -> None:
    after = datetime(2026, 3, 15, 7, 0, tzinfo=UTC)
    assert next_fire("0 6 * * *", after) == datetime(2026, 3, 16, 6, 0, tzinfo=UTC)


def test_next_fire_strictly_after() -> None:
    at = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
    assert next_fire("0 6 * * *", at) == datetime(2026, 3, 16, 6, 0, tzinfo=UTC)


def test_next_fire_converts_offset_to_utc() -> None:
    from zoneinfo import ZoneInfo

    after = datetime(2026, 3, 15, 8, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert next_fire("0 9 * * *", after) == datetime(2026, 3, 15, 9, 0, tzinfo=UTC)


def test_schedule_requests_each_fire_time() -> None:
    clock = FakeClock(datetime(2026, 3, 15, 5, 30, tzinfo=UTC))
    stop = asyncio.Event()
    runner = CountingRunner(stop, limit=3, clock=clock)

    asyncio.run(run_schedule("0 6 * * *", runner, stop, clock=clock, sleep=clock.sleep))

    assert [trigger for trigger, _ in runner.requests] == ["schedule"] * 3
    assert [moment for _, moment in runner.requests] == [
        datetime(2026, 3, 15, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 16, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 17, 6, 0, tzinfo=UTC),
    ]
    # The fire time keys each run, so replicas ticking together share it.
    assert runner.keys == [
        "2026-03-15T06:00:00+00:00",
        "2026-03-16T06:00:00+00:00",
        "2026-03-17T06:00:00+00:00",
    ]


def test_schedule_continues_after_failed_request() -> None:
    clock = FakeClock(datetime(2026, 3, 15, 5, 59, 30, tzinfo=UTC))
    stop = asyncio.Event()
    runner = CountingRunner(stop, limit=2, clock=clock, fail_first=True)

    asyncio.run(run_schedule("*/5 * * * *", runner, stop, clock=clock, sleep=clock.sleep))

    assert len(runner.requests) == 2
    assert runner.requests[1][1] == datetime(2026, 3, 15, 6, 5, tzinfo=UTC)


def test_schedule_stops_while_waiting() -> None:
    async def scenario() -> float:
        stop = asyncio.Event()
        runner = CountingRunner(stop, limit=99, clock=FakeClock(datetime.now(UTC)))
        task = asyncio.create_task(run_schedule("0 6 1 1 *", runner, stop))
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        stop.set()
        await asyncio.wait_for(task, 5)
        assert runner.requests == []
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(scenario()) < 5


@pytest.mark.parametrize("expression", ["* * * * * *"])
def test_schedule_every_second_real_clock(expression: str) -> None:
    async def scenario() -> list[tuple[str, datetime]]:
        stop = asyncio.Event()
        runner = CountingRunner(stop, limit=2, clock=FakeClock(datetime.now(UTC)))
        await asyncio.wait_for(run_schedule(expression, runner, stop), 10)
        return runner.requests

    requests = asyncio.run(scenario())
    assert len(requests) == 2
