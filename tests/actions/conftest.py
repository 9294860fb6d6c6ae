"""Fixtures of the Palette and Kubernetes action tests: a fake Kubernetes API server, a
simulator per test whose kubeconfigs point at it, and an action context that reaches both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from action_helpers import NOW, SleepRecorder, action_settings, simulator_settings
from fakes.kubernetes import FakeKubernetes

from costwarden.actions.context import ActionContext
from costwarden.simulator.server import SimulatorServer


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with FakeKubernetes() as server:
        yield server


@pytest.fixture
def sim(kube: FakeKubernetes) -> Iterator[SimulatorServer]:
    """A fresh simulator per test, so writes of one test never leak into another."""
    with SimulatorServer(simulator_settings(kube)) as server:
        yield server


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def context(sim: SimulatorServer, tmp_path: Path, sleeps: SleepRecorder) -> Iterator[ActionContext]:
    settings = action_settings(sim, tmp_path)
    with ActionContext.from_settings(settings, sleep=sleeps, clock=lambda: NOW) as opened:
        yield opened
