"""Fixtures of the approval tests: the Palette simulator that receives the approved changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from approval_helpers import simulator_settings

from costwarden.simulator import SimulatorServer


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(simulator_settings()) as server:
        yield server
