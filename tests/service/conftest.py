"""Fixtures of the service tests: the service app on a real uvicorn server on 127.0.0.1.

``start_service`` builds settings for the ``store`` fixture's database (SQLite and PostgreSQL),
a ``PassRunner``, runs the app with its lifespan in a thread and returns a ``RunningService``.
``service_app`` is the default service's base URL. Helpers of other test files may add fixtures
at the end of this file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from service_helpers import service_settings

from costwarden.service.app import create_app
from costwarden.service.runner import PassRunner
from costwarden.service.state import Runner, ServiceState
from costwarden.simulator.server import bind_socket
from costwarden.store import Store

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass
class RunningService:
    """A service app served on 127.0.0.1: its base URL, state, FastAPI app and a stop function."""

    url: str
    state: ServiceState
    app: FastAPI
    stop: Callable[[], None]


class _Server:
    """Uvicorn running an app with its lifespan on a thread, on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = bind_socket("127.0.0.1", 0)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the service app failed to start; see the log")
            if time.monotonic() > deadline:
                raise RuntimeError("the service app did not start in time")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server and run the app's shutdown; calling it again does nothing."""
        if self._socket.fileno() == -1:
            return
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_SECONDS)
        self._socket.close()


@pytest.fixture
def start_service(store: Store, database_url: str) -> Iterator[Callable[..., RunningService]]:
    """Start service apps on the ``store`` database; each call takes settings overrides.

    ``runner`` replaces the ``PassRunner`` (any object with ``request``); the store stays open
    after the app stops, because the ``store`` fixture owns it.
    """
    with ExitStack() as stack:

        def start(*, runner: Runner | None = None, **overrides: Any) -> RunningService:
            settings = service_settings(database_url, **overrides)
            state = ServiceState(
                settings=settings, store=store, runner=runner or PassRunner(settings, store)
            )
            app = create_app(state)
            server = _Server(app)
            server.start()
            stack.callback(server.stop)
            return RunningService(f"http://127.0.0.1:{server.port}", state, app, server.stop)

        yield start


@pytest.fixture
def service_app(start_service: Callable[..., RunningService]) -> str:
    """Base URL of a running service with default test settings."""
    return start_service().url
