"""The data model of the simulated tenant: projects, clusters, pools, namespaces and series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from costwarden.domain.event import ClusterEvent
from costwarden.sources.prices import CLOUD_TYPE_PROVIDERS, CapacityType, Provider

SECONDS_PER_DAY = 86_400
HOURS_PER_DAY = 24


@dataclass(frozen=True, slots=True)
class Project:
    uid: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    layer: str
    tag: str


@dataclass(frozen=True, slots=True)
class ClusterProfile:
    """A cluster profile: an infrastructure profile (type ``cluster``) or an ``add-on``."""

    uid: str
    name: str
    type: str
    version: int
    cloud_type: str
    scope: str
    packs: tuple[Pack, ...]


@dataclass(frozen=True, slots=True)
class MachinePool:
    """One machine pool; ``size`` is the node count at ``as_of``, rounded.

    ``capacity_type`` and ``hourly_price`` are those at ``as_of``. A pool whose capacity type
    changed inside the history had ``capacity_type_before`` until ``capacity_changed_at``.
    """

    name: str
    instance_type: str
    is_control_plane: bool
    is_system_pool: bool
    capacity_type: CapacityType
    size: int
    min_size: int
    max_size: int
    disk_gib: int
    hourly_price: Decimal
    vcpus: int
    memory_gib: float
    gpus: int
    capacity_type_before: CapacityType | None = None
    capacity_changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Namespace:
    uid: str
    name: str
    labels: Mapping[str, str]
    created_at: datetime


@dataclass(frozen=True, eq=False)
class Cluster:
    """One cluster with its daily series.

    ``node_counts[p, d]`` is the average node count of pool ``p`` on day ``d``, and
    ``pool_compute[p, d]`` that pool's compute cost. ``compute`` and ``storage`` are the
    full-day cloud costs. ``namespace_compute[n, d]`` is the usage-based
    cost of namespace ``n`` on the worker pools, and ``namespace_control_plane[n, d]`` its cost
    on control-plane pools, which Palette counts only with ``includeControlPlaneMachines``.
    ``cpu_share`` is the part of a namespace's compute cost that is CPU; the rest is memory.
    """

    uid: str
    name: str
    project: Project
    cloud_type: str
    region: str
    cloud_config_uid: str
    cloud_account_uid: str
    cloud_account_name: str
    labels: Mapping[str, str]
    profiles: tuple[ClusterProfile, ...]
    created_at: datetime
    pools: tuple[MachinePool, ...]
    namespaces: tuple[Namespace, ...]
    first_day: int
    node_counts: np.ndarray
    pool_compute: np.ndarray
    compute: np.ndarray
    storage: np.ndarray
    namespace_compute: np.ndarray
    namespace_control_plane: np.ndarray
    namespace_storage: np.ndarray
    cpu_share: float
    annotations: Mapping[str, str] = field(default_factory=dict)
    modified_at: datetime | None = None
    """Time of the last change through the simulator's write routes; None when never changed."""

    @property
    def provider(self) -> Provider:
        return CLOUD_TYPE_PROVIDERS[self.cloud_type]


@dataclass(frozen=True, eq=False)
class Fleet:
    """A simulated tenant at one point in time, with the cluster events up to ``as_of``."""

    seed: int
    as_of: datetime
    start: datetime
    days: int
    tenant_uid: str
    user_uid: str
    projects: tuple[Project, ...]
    clusters: tuple[Cluster, ...]
    events: tuple[ClusterEvent, ...] = ()

    def cluster(self, uid: str) -> Cluster | None:
        """Return the cluster with this uid, or None."""
        return self._by_uid().get(uid)

    def cluster_named(self, name: str) -> Cluster:
        """Return the cluster with this name; raise KeyError when there is none."""
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise KeyError(f"no cluster named {name!r} in the simulated fleet")

    def project(self, uid: str) -> Project | None:
        """Return the project with this uid, or None."""
        return next((project for project in self.projects if project.uid == uid), None)

    def day_start(self, day: int) -> datetime:
        """Return the UTC start of day ``day`` of the series."""
        return self.start + timedelta(days=day)

    def elapsed_fraction(self) -> float:
        """Return the part of the last day (the day of ``as_of``) that has elapsed."""
        return (self.as_of - self.day_start(self.days - 1)).total_seconds() / SECONDS_PER_DAY

    def _by_uid(self) -> dict[str, Cluster]:
        cached: dict[str, Cluster] | None = self.__dict__.get("_uid_index")
        if cached is None:
            cached = {cluster.uid: cluster for cluster in self.clusters}
            object.__setattr__(self, "_uid_index", cached)
        return cached
