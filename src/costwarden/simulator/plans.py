"""Clusters and machine pools before pricing, as the fleet generator plans them.

A plan fixes a cluster's shape and its daily average node counts. Planted anomalies add nodes
(``extra_levels``), change a pool's capacity type part way through the history
(``capacity_switch``), create namespaces late (``late_namespaces``) and record the Palette
events that go with them (``events``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from costwarden.simulator.templates import ProjectTemplate
from costwarden.sources.prices import CapacityType


@dataclass(frozen=True, slots=True)
class CapacitySwitch:
    """A pool's change of capacity type: ``before`` until ``day``, a fractional day index."""

    day: float
    before: CapacityType


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A Palette event of a planned cluster, before it gets a uid."""

    at: datetime
    reason: str
    message: str
    involved_kind: str
    involved_name: str
    severity: str = "Normal"
    component: str = "palette"


@dataclass(slots=True)
class PoolPlan:
    """A machine pool before pricing: its shape and its average node count per day.

    ``extra_levels`` is the part of ``levels`` that a planted anomaly added, and its cost goes to
    ``extra_namespace``. ``capacity_type`` is the type on the day of ``as_of``.
    """

    name: str
    instance_type: str
    levels: np.ndarray
    min_size: int
    max_size: int
    disk_gib: int
    is_control_plane: bool = False
    is_system_pool: bool = False
    capacity_type: CapacityType = "on-demand"
    extra_levels: np.ndarray | None = None
    extra_namespace: str | None = None
    capacity_switch: CapacitySwitch | None = None

    def base_levels(self) -> np.ndarray:
        """Return the node counts without the nodes a planted anomaly added."""
        if self.extra_levels is None:
            return self.levels
        return self.levels - self.extra_levels


@dataclass(slots=True)
class ClusterPlan:
    """A cluster before pricing.

    ``late_namespaces`` maps the namespaces created inside the history to their creation time.
    They get no share of the pools' base cost, only the cost of nodes added for them.
    """

    name: str
    project: ProjectTemplate
    cloud_type: str
    region: str
    env: str
    created_at: datetime
    pools: list[PoolPlan]
    namespaces: list[str]
    gpu_weights: dict[str, float]
    utilisation: tuple[float, float]
    late_namespaces: dict[str, datetime] = field(default_factory=dict)
    events: list[EventSpec] = field(default_factory=list)
