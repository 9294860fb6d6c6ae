"""Typed results of the quota pass: targets, usage histories, projections and alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import numpy as np

ScopeKind = Literal["namespace", "workspace", "pool", "cluster"]
Resource = Literal["cpu", "memory", "gpu", "nodes"]
LimitKind = Literal["namespace_quota", "workspace_quota", "autoscaler_max"]
ProjectionStatus = Literal[
    "at_limit",
    "breach_in_window",
    "breach_later",
    "clear",
    "screened",
    "insufficient_history",
    "no_usage",
]

UNITS: Mapping[str, str] = {"cpu": "cores", "memory": "GiB", "gpu": "GPUs", "nodes": "nodes"}
"""Unit of each resource in usage facts, limits and alerts."""

LIMIT_NAMES: Mapping[str, str] = {
    "namespace_quota": "namespace quota",
    "workspace_quota": "workspace quota",
    "autoscaler_max": "autoscaler maximum",
}


@dataclass(frozen=True, slots=True)
class QuotaTarget:
    """A usage series and the limit it is projected against.

    ``scope_id`` is ``cluster_uid/namespace`` for a namespace, ``cluster_uid/pool`` for a
    machine pool, the cluster uid for a cluster and the workspace uid for a workspace.
    ``details`` contains the names and pool sizes recorded when the limit was read.
    """

    scope_kind: ScopeKind
    scope_id: str
    resource: Resource
    limit: float
    limit_kind: LimitKind
    name: str
    cluster_uid: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scope_kind, self.scope_id, self.resource)

    @property
    def unit(self) -> str:
        return UNITS[self.resource]

    @property
    def cluster_name(self) -> str | None:
        name = self.details.get("cluster_name")
        return str(name) if name else None

    def describe(self) -> str:
        """Return a label such as ``namespace payments-prod/ledger`` or ``workspace ml``."""
        if self.scope_kind == "workspace" or self.scope_kind == "cluster":
            return f"{self.scope_kind} {self.name}"
        return f"{self.scope_kind} {self.cluster_name or self.cluster_uid}/{self.name}"


@dataclass(frozen=True, eq=False)
class UsageHistory:
    """Daily peaks of one series from ``start`` to ``end``, one value per day.

    Days missing inside the range are filled by linear interpolation. ``current`` is the latest
    value known at ``current_day``: a same-day snapshot (a pool's size now) when there is one,
    else the value of ``end``.
    """

    start: date
    end: date
    values: np.ndarray
    current: float
    current_day: date
    filled_days: int = 0


@dataclass(frozen=True, eq=False)
class QuotaProjection:
    """The position of one usage series against its limit, with the evidence behind it.

    Breach dates are quantiles, over all paths, of the first day each sample path reaches the
    limit. ``breach_date`` is the median, and ``None`` when fewer than half of the paths reach the
    limit within the forecast horizon. ``breach_date_p10`` and ``breach_date_p90`` are the 10th
    and 90th percentiles, ``None`` beyond the horizon. ``probability`` is the share of paths that
    reach the limit by ``window_end`` (inclusive). With usage already at or over the limit, the
    dates are the day it got there and ``probability`` is 1.
    """

    target: QuotaTarget
    status: ProjectionStatus
    as_of: datetime
    window_start: date
    window_end: date
    current: float | None = None
    current_day: date | None = None
    history_start: date | None = None
    history_end: date | None = None
    breach_date: date | None = None
    breach_date_p10: date | None = None
    breach_date_p90: date | None = None
    probability: float = 0.0
    horizon_end: date | None = None
    model: str | None = None
    model_version: str | None = None
    fallback_reason: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def utilisation(self) -> float | None:
        if self.current is None or self.target.limit <= 0:
            return None
        return self.current / self.target.limit


@dataclass(frozen=True, eq=False)
class QuotaAlert:
    """A projection that reaches its limit within the window, or already has."""

    alert_id: str
    projection: QuotaProjection
    severity: Literal["warning", "critical"]
    title: str
    generated_at: datetime
    link: str | None = None

    @property
    def kind(self) -> str:
        return "quota"


@dataclass(frozen=True, eq=False)
class QuotaReport:
    """Every projection of one quota pass and the alerts among them."""

    as_of: datetime
    window_days: int
    projections: tuple[QuotaProjection, ...] = ()
    alerts: tuple[QuotaAlert, ...] = ()

    def count(self, status: ProjectionStatus) -> int:
        return sum(projection.status == status for projection in self.projections)
