"""Fixtures for the Palette client and ingestion tests: the simulator over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from palette_helpers import AS_OF, FakeTime, RecordingTransport

from costwarden.config import PaletteSettings
from costwarden.simulator.app import SimulatorSettings
from costwarden.simulator.server import SimulatorServer
from costwarden.sources.palette.client import PaletteClient

ClientAndTransport = tuple[PaletteClient, RecordingTransport]


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., Any]]:
    """Start simulators on loopback. Each call takes ``SimulatorSettings`` overrides."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> Any:
            options: dict[str, Any] = {
                "seed": 7,
                "as_of": AS_OF,
                "cluster_count": 12,
                "history_days": 20,
            }
            options.update(overrides)
            return stack.enter_context(SimulatorServer(SimulatorSettings(**options)))

        yield start


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(
    fake_time: FakeTime,
) -> Iterator[Callable[..., tuple[PaletteClient, RecordingTransport]]]:
    """Build blocking clients with a recording transport and the fake clock and sleep."""
    with ExitStack() as stack:

        def make(
            settings: PaletteSettings, rewrite: Callable[..., bytes] | None = None
        ) -> ClientAndTransport:
            transport = RecordingTransport(clock=fake_time.clock, rewrite=rewrite)
            client = PaletteClient(
                settings, transport=transport, sleep=fake_time.sleep, clock=fake_time.clock
            )
            stack.enter_context(client)
            return client, transport

        yield make
