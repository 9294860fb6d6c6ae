"""Helpers shared by the quota tests: the clock and Palette client settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from costwarden.config import PaletteSettings
from costwarden.simulator.server import SimulatorServer

AS_OF = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
"""The demo clock: the planted quota breaches fall one to three days after it."""


def palette_settings(sim: SimulatorServer, **overrides: Any) -> PaletteSettings:
    options: dict[str, Any] = {
        "url": sim.url,
        "api_key": sim.api_key,
        "max_retries": 2,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "timeout_seconds": 30.0,
    }
    options.update(overrides)
    return PaletteSettings(**options)
