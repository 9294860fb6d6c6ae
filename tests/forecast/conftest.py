"""Fixtures of the forecast tests."""

from __future__ import annotations

import pytest

from costwarden.config import ForecastSettings


@pytest.fixture
def settings() -> ForecastSettings:
    return ForecastSettings(sample_paths=2000, seed=7)
