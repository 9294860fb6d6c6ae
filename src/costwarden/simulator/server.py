"""Run the simulator with uvicorn in a background thread, for tests and the demo.

with SimulatorServer(SimulatorSettings(seed=7, as_of=as_of)) as sim:
    client = httpx.Client(base_url=sim.url, headers={"ApiKey": sim.api_key})
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI

from costwarden.simulator.app import SimulatorState, create_app
from costwarden.simulator.settings import SimulatorSettings

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket on an IPv4 or IPv6 address; port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit TCP_NODELAY. Without it, a response written in two parts
        # waits for the client's delayed ACK: about 40 ms per request, measured on Linux.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_config(app: FastAPI, *, access_log: bool = False) -> uvicorn.Config:
    """Configure uvicorn to leave logging to costwarden's own setup."""
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=access_log,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )


class SimulatorServer:
    """A running simulator on 127.0.0.1, as a context manager.

    ``url`` is the base URL without ``/v1`` and ``api_key`` the first configured key. Leaving the
    context stops the server and joins its thread.
    """

    def __init__(self, settings: SimulatorSettings | None = None, *, port: int = 0) -> None:
        self.settings = settings or SimulatorSettings()
        self.app = create_app(self.settings)
        self._port = port
        self._socket: socket.socket | None = None
        self._bound_port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._thread is None or self._bound_port is None:
            raise RuntimeError("the simulator is not running; use it as a context manager")
        return f"http://{LOOPBACK}:{self._bound_port}"

    @property
    def api_key(self) -> str:
        return self.settings.api_keys[0]

    @property
    def state(self) -> SimulatorState:
        """The app's fleet, settings and counters."""
        state: SimulatorState = self.app.state.simulator
        return state

    def __enter__(self) -> Self:
        self._socket = bind_socket(LOOPBACK, self._port)
        self._bound_port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn_config(self.app))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"palette-simulator-{self._bound_port}",
            daemon=True,
        )
        self._thread.start()
        self._wait_until_started()
        logger.info("Palette simulator listening on %s", self.url)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server and wait for its thread; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS)
            if self._thread.is_alive():
                logger.error(
                    "Palette simulator thread did not stop within %.0f s", STOP_TIMEOUT_SECONDS
                )
        if self._socket is not None:
            self._socket.close()
            self._socket = None

        stats = self.state.stats
        if self._thread is not None:
            logger.info(
                "Palette simulator stopped: %d requests, %d rate-limited, %d unauthorized, "
                "%d faults injected",
                stats.requests,
                stats.rate_limited,
                stats.unauthorized,
                stats.faults,
            )
        self._server = None
        self._thread = None

    def _wait_until_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the Palette simulator failed to start; see the log")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the Palette simulator did not start within {START_TIMEOUT_SECONDS:.0f} s"
                )
            time.sleep(0.01)
