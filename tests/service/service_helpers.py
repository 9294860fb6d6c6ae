"""Helpers shared by the service tests."""

from __future__ import annotations

from typing import Any

from costwarden.config import Settings


def service_settings(database_url: str, **overrides: Any) -> Settings:
    """Return settings for a test service: no schedule, no Palette, plus ``overrides``.

    ``overrides`` are top-level settings; ``service`` is a dict merged over the test defaults.
    """
    service = {"schedule": None, "shutdown_grace_seconds": 5.0, **overrides.pop("service", {})}
    return Settings(database_url=database_url, service=service, **overrides)
