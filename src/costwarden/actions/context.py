"""The settings, clients, tenant and clock that actions use to read and change other systems.

``PaletteActionsClient`` adds the raw reads and writes that actions need to the Palette client
of ``costwarden.sources.palette``, so writes get the same ``ApiKey`` and ``ProjectUid`` headers,
client-side rate limits, and retries of 429, 5xx and transport errors (honouring
``Retry-After``). Reads return the JSON as sent, because a machine pool ``PUT`` must send back
every field of the pool, including those costwarden does not model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
import httpx

from costwarden.actions.jsonbody import json_object
from costwarden.config import Settings
from costwarden.errors import PaletteApiError
from costwarden.sources.blocking import BlockingFacade
from costwarden.sources.palette.client import AsyncPaletteClient, Sleep
from costwarden.sources.palette.ratelimit import Clock


def utc_now() -> datetime:
    return datetime.now(UTC)


class AsyncPaletteActionsClient(AsyncPaletteClient):
    """The Palette client with untyped JSON reads and the write calls of the actions."""

    async def get_json(self, path: str) -> dict[str, Any]:
        """Return the JSON object at ``path``."""
        response = await self._send("GET", path, json=None, params=None)
        return _json_object(response, "GET", path)

    async def get_text(self, path: str) -> str:
        """Return the body at ``path`` as text, such as a kubeconfig."""
        response = await self._send("GET", path, json=None, params=None)
        return response.text

    async def put_json(self, path: str, body: dict[str, Any]) -> None:
        """Send ``body`` with PUT; Palette responds 204 without a body."""
        await self._send("PUT", path, json=body, params=None)

    async def patch_json(self, path: str, body: dict[str, Any]) -> None:
        """Send ``body`` with PATCH; Palette responds 204 without a body."""
        await self._send("PATCH", path, json=body, params=None)


def _json_object(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
    try:
        return json_object(response)
    except ValueError as exc:
        raise PaletteApiError(
            f"Palette {method} {path} returned {exc}",
            method=method,
            url=path,
            status=response.status_code,
            code="InvalidResponse",
        ) from exc


class PaletteActionsClient(BlockingFacade):
    """A blocking facade over ``AsyncPaletteActionsClient``."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self._client = AsyncPaletteActionsClient(
            settings.palette, transport=transport, sleep=sleep, clock=clock
        )
        super().__init__(self._client)

    def get_json(self, path: str) -> dict[str, Any]:
        return self._portal.call(self._client.get_json, path)

    def get_text(self, path: str) -> str:
        return self._portal.call(self._client.get_text, path)

    def put_json(self, path: str, body: dict[str, Any]) -> None:
        self._portal.call(partial(self._client.put_json, path, body))

    def patch_json(self, path: str, body: dict[str, Any]) -> None:
        self._portal.call(partial(self._client.patch_json, path, body))


@dataclass
class ActionContext:
    """The clients and settings an action uses, built once per runner call or CLI command.

    The Palette client is created on first use, so actions that never call Palette (a ticket, a
    pull request) run without a Palette API key. ``sleep`` is the wait between Kubernetes
    retries; tests pass a recorder. Close the context to close its clients.
    """

    settings: Settings
    tenant: str
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    palette_transport: httpx.AsyncBaseTransport | None = None
    _palette: PaletteActionsClient | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ActionContext:
        """Build a context for the tenant named in ``service.tenant``."""
        return cls(settings=settings, tenant=settings.service.tenant, **options)

    @property
    def palette(self) -> PaletteActionsClient:
        if self._palette is None:
            self._palette = PaletteActionsClient(self.settings, transport=self.palette_transport)
        return self._palette

    def close(self) -> None:
        if self._palette is not None:
            self._palette.close()
            self._palette = None

    def __enter__(self) -> ActionContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


ContextFactory = Callable[[Settings, str], ActionContext]
"""Builds the action context of a tenant; tests pass one with a simulator transport."""


def default_context(settings: Settings, tenant: str) -> ActionContext:
    """Return a context that reaches Palette at ``palette.url`` for ``tenant``."""
    return ActionContext(settings=settings, tenant=tenant)
