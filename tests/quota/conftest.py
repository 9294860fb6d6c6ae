"""Fixtures for the quota tests: the simulator over real HTTP on loopback, and Palette's schemas."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from quota_helpers import AS_OF

from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings

SPEC = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "reference"
    / ("palette-openapi-subset.json")
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    """The full demo fleet without rate limits, so functional tests can call it freely."""
    settings = SimulatorSettings(seed=7, as_of=AS_OF, rate_limit_enabled=False)
    with SimulatorServer(settings) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"ApiKey": sim.api_key}, timeout=30) as http:
        yield http


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., SimulatorServer]]:
    """Start small simulators on loopback; each call takes ``SimulatorSettings`` overrides."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> SimulatorServer:
            options: dict[str, Any] = {
                "seed": 7,
                "as_of": AS_OF,
                "cluster_count": 12,
                "history_days": 40,
                "rate_limit_enabled": False,
            }
            options.update(overrides)
            return stack.enter_context(SimulatorServer(SimulatorSettings(**options)))

        yield start


def _closed(definitions: dict[str, Any]) -> dict[str, Any]:
    """Forbid properties that a definition does not declare, so invented fields fail."""
    closed = copy.deepcopy(definitions)
    for definition in closed.values():
        if "properties" in definition:
            definition["additionalProperties"] = False
    return closed


@pytest.fixture(scope="session")
def palette_validator() -> Callable[[str], jsonschema.Draft4Validator]:
    """Return a validator for a named definition of Palette's published OpenAPI 2.0 spec.

    Every object definition is closed, so a response field the spec does not name fails.
    """
    if not SPEC.is_file():
        pytest.skip(f"Palette OpenAPI subset {SPEC} not found")
    definitions = _closed(json.loads(SPEC.read_text())["definitions"])

    def validator(name: str) -> jsonschema.Draft4Validator:
        schema = {"$ref": f"#/definitions/{name}", "definitions": definitions}
        return jsonschema.Draft4Validator(schema)

    return validator
