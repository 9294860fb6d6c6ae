"""Shared state of one service process: settings, the store and the pass runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import Request

from costwarden.config import Settings
from costwarden.store import Store


@dataclass(frozen=True, slots=True)
class RefreshScope:
    """Clusters that a targeted refresh fetches again. Empty means the whole fleet."""

    cluster_uids: tuple[str, ...] = ()
    cluster_names: tuple[str, ...] = ()
    days: int = 3

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster_uids": list(self.cluster_uids),
            "cluster_names": list(self.cluster_names),
            "days": self.days,
        }


class Runner(Protocol):
    """Starts passes of the main job, one at a time per tenant."""

    def request(
        self, trigger: str, scope: RefreshScope | None = None, *, key: str | None = None
    ) -> str:
        """Queue a pass (or join the one already queued) and return its run id.

        ``key`` identifies a scheduled pass (its fire time): requests with one key get one run.
        """
        ...


@dataclass(slots=True)
class ServiceState:
    settings: Settings
    store: Store
    runner: Runner
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ready: bool = False


def service_state(request: Request) -> ServiceState:
    """FastAPI dependency: the state of the process that serves the request."""
    return request.app.state.service
