"""Serve an ASGI app with uvicorn in a daemon thread on a free port of 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from costwarden.simulator.server import LOOPBACK, bind_socket, uvicorn_config


class LoopbackServer:
    """An ASGI app on 127.0.0.1, as a context manager or with ``start`` and ``stop``.

    The port is bound when the object is created, so ``port`` and ``url`` are known before the
    server starts. ``config`` replaces costwarden's ``uvicorn_config(app)``. After ``stop`` a
    later ``start`` binds the same port again.
    """

    def __init__(
        self,
        app: Any,
        name: str,
        *,
        config: uvicorn.Config | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.name = name
        self._config = config
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._socket: socket.socket | None = bind_socket(LOOPBACK, 0)
        self.port = int(self._socket.getsockname()[1])
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Start serving and wait until uvicorn accepts connections.

        Raises ``RuntimeError`` naming the server when it has not started within the start
        timeout or its thread ended first.
        """
        if self._socket is None:
            self._socket = bind_socket(LOOPBACK, self.port)
        self._server = uvicorn.Server(self._config or uvicorn_config(self.app))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"{self.name}-{self.port}",
            daemon=True,
        )
        self._thread.start()

        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving, wait for the thread and close the socket; later calls do nothing."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self._stop_timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class LoopbackFake:
    """A fake service whose ``app`` is served on 127.0.0.1 while it is used as a context manager.

    Subclasses set ``server_name``, which names the server thread and start errors, and build
    ``app`` in ``__init__``. The first ``start`` binds a free port, and a start after ``stop``
    binds the same port again, so ``base_url`` does not change once the fake has started.
    """

    server_name = "a fake service"
    app: Any
    _loopback: LoopbackServer | None = None

    @property
    def base_url(self) -> str:
        return self._started().url

    @property
    def port(self) -> int:
        return self._started().port

    def start(self) -> None:
        """Serve ``app`` and wait until it accepts connections, unless it already runs."""
        if self._loopback is None:
            self._loopback = LoopbackServer(self.app, self.server_name)
        if not self._loopback.running:
            self._loopback.start()

    def stop(self) -> None:
        """Stop serving, so connections to the port are refused until the next ``start``."""
        if self._loopback is not None:
            self._loopback.stop()

    def _started(self) -> LoopbackServer:
        assert self._loopback is not None, f"{self.server_name} has not been started"
        return self._loopback

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
