"""Shared fixtures of the notification tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from delivery_helpers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback HTTP receiver that records every POST by path."""
    with Receiver() as running:
        yield running
