"""The blocking side of the async HTTP sources: an event loop in a background thread."""

from __future__ import annotations

from contextlib import ExitStack
from types import TracebackType
from typing import Protocol, Self

from anyio.from_thread import start_blocking_portal


class AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


class BlockingFacade:
    """A base for blocking facades: runs an async client's calls on its own event loop thread.

    Use a subclass as a context manager, or call ``close()``, to close the async client and stop
    that thread. Several threads may share one facade.
    """

    def __init__(self, inner: AsyncClosable) -> None:
        self._inner = inner
        self._exit_stack = ExitStack()
        self._portal = self._exit_stack.enter_context(start_blocking_portal())
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections and stop the event loop thread. Later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._portal.call(self._inner.aclose)
        finally:
            self._exit_stack.close()
