"""A simulator per test module, served over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings

AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""Mid-month at noon: the planted overrun is visible and the day of as_of is half over."""


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    """A simulator without rate limits, so functional tests can call it freely."""
    settings = SimulatorSettings(seed=7, as_of=AS_OF, rate_limit_enabled=False)
    with SimulatorServer(settings) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"ApiKey": sim.api_key}, timeout=10) as http:
        yield http


@pytest.fixture
def as_of() -> datetime:
    return AS_OF
