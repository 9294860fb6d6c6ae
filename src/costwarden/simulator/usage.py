"""Simulated CPU and memory usage, node capacity, namespace quotas and workspaces of the fleet.

A namespace's usage on a day is its share of the cluster's worker compute cost that day, times
the worker nodes' CPU cores or memory. A per-namespace factor below 1 scales it down, because
pods rarely use all of the capacity their cost share pays for. Within a day, usage follows a
daily cycle that peaks at 14:00 UTC. Capacity follows the pools' daily average node counts.

About half of the namespaces other than kube-system get a Palette resource allocation (quota)
of 1.6 to 2.5 times their highest usage in the history, so those quotas are never reached. The
planted namespace ``payments-prod/ledger`` gets a memory quota that its growing usage reaches
two to three days after ``as_of``. Three workspaces group the namespaces of the payments,
data-science and storefront projects, with quotas of twice their highest usage.

A namespace's resource requests are ``REQUEST_FACTOR`` times its usage, except for the planted
cryptominer of ``anomalies.py``: from its start, the namespace uses most of the worker cores
while its requests stay as they were. The namespaces that planted anomalies make grow get no
quota, because a quota would have stopped the growth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np

from costwarden.simulator import anomalies
from costwarden.simulator.model import HOURS_PER_DAY, Cluster, Fleet
from costwarden.simulator.planted import PLANTED, STABLE_CLUSTER

SECONDS_PER_HOUR = 3600
CPU_DAILY_AMPLITUDE = 0.10
MEMORY_DAILY_AMPLITUDE = 0.04
PEAK_HOUR_UTC = 14
REQUEST_FACTOR = 1.2
"""Resource requests of a namespace relative to its average usage of the day."""

QUOTA_MARGIN = (1.6, 2.5)
WORKSPACE_MARGIN = 2.0
WORKSPACE_PROJECTS = ("payments", "data-science", "storefront")

PLANTED_QUOTA_CLUSTER = STABLE_CLUSTER
PLANTED_QUOTA_NAMESPACE = "ledger"
PLANTED_BREACH_DAYS_AFTER_AS_OF = 2
PLANTED_GROWTH_PER_DAY = 0.015
"""Daily growth of the planted namespace's memory peak, as a fraction of its quota."""
PLANTED_RAMP_DAYS = 24
UNLIMITED_NAMESPACES = frozenset(
    {
        (anomalies.NEW_NAMESPACE_CLUSTER, anomalies.NEW_NAMESPACE),
        (anomalies.HPA_CLUSTER, anomalies.HPA_NAMESPACE),
        (anomalies.GPU_MISUSE_CLUSTER, anomalies.GPU_MISUSE_NAMESPACE),
    }
)
"""Cluster and namespace names of the namespaces that planted anomalies make grow."""


@dataclass(frozen=True, slots=True)
class NamespaceQuota:
    """A namespace's Palette resource allocation: CPU cores, memory MiB and a GPU limit."""

    namespace: str
    cpu_cores: float
    memory_mib: float
    gpu_limit: int | None = None


@dataclass(frozen=True, eq=False)
class ClusterUsage:
    """Daily average usage and capacity of one cluster.

    ``namespace_cpu[n, d]`` (cores) and ``namespace_memory[n, d]`` (GiB) follow the order of
    ``cluster.namespaces``. ``request_basis_cpu`` is the CPU usage that the namespaces'
    requests were sized for: ``REQUEST_FACTOR`` times it are the requests. It equals
    ``namespace_cpu`` except for a planted cryptominer. The ``capacity`` arrays are the worker
    nodes' cores and GiB per day, and the ``control_plane`` arrays those of the control-plane
    nodes.
    """

    cluster: Cluster
    namespace_cpu: np.ndarray
    namespace_memory: np.ndarray
    request_basis_cpu: np.ndarray
    control_plane_cpu: np.ndarray
    control_plane_memory: np.ndarray
    capacity_cpu: np.ndarray
    capacity_memory: np.ndarray
    cp_capacity_cpu: np.ndarray
    cp_capacity_memory: np.ndarray
    quotas: tuple[NamespaceQuota, ...]

    def namespace_index(self, name: str) -> int:
        """Return the row of namespace ``name``; raise KeyError when the cluster has none."""
        for index, namespace in enumerate(self.cluster.namespaces):
            if namespace.name == name:
                return index
        raise KeyError(f"cluster {self.cluster.name} has no namespace {name!r}")


@dataclass(frozen=True, slots=True)
class Workspace:
    """A Palette workspace: namespaces of several clusters under one quota."""

    uid: str
    name: str
    project_uid: str
    cluster_uids: tuple[str, ...]
    namespaces: tuple[str, ...]
    cpu_cores: float
    memory_mib: float
    gpu_limit: int | None
    created_at: datetime


@dataclass(frozen=True, eq=False)
class FleetUsage:
    """Usage, quotas and workspaces of a whole simulated fleet."""

    fleet: Fleet
    clusters: dict[str, ClusterUsage]
    workspaces: tuple[Workspace, ...]

    def members(self, workspace: Workspace) -> list[tuple[ClusterUsage, int]]:
        """Return the (cluster usage, namespace row) pairs that belong to ``workspace``."""
        pairs = []
        for uid in workspace.cluster_uids:
            usage = self.clusters[uid]
            for index, namespace in enumerate(usage.cluster.namespaces):
                if namespace.name in workspace.namespaces:
                    pairs.append((usage, index))
        return pairs


@lru_cache(maxsize=8)
def fleet_usage(fleet: Fleet) -> FleetUsage:
    """Derive the usage, quotas and workspaces of ``fleet``; cached per fleet object."""
    clusters = {}
    for index, cluster in enumerate(fleet.clusters):
        rng = np.random.default_rng([fleet.seed, *_usage_stream(index, cluster)])
        clusters[cluster.uid] = _cluster_usage(fleet, cluster, rng)
    return FleetUsage(fleet, clusters, _workspaces(fleet, clusters))


def _usage_stream(position: int, cluster: Cluster) -> tuple[int, int]:
    """Return the random stream of a cluster's usage, which does not depend on the fleet size.

    The fleet lists the planted clusters, then the anomaly clusters, then the random ones. The
    planted and random clusters keep the streams ``[5, index]`` that they had before the
    anomaly clusters were added, and the anomaly clusters use ``[9, index]``.
    """
    if cluster.name in anomalies.ANOMALY_CLUSTERS:
        return 9, anomalies.ANOMALY_CLUSTERS.index(cluster.name)
    if position < len(PLANTED):
        return 5, position
    return 5, position - len(anomalies.ANOMALY_CLUSTERS)


def _pool_capacity(cluster: Cluster, control_plane: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return the cores and GiB of the worker pools (or the control-plane pools) per day."""
    cores = np.zeros(cluster.node_counts.shape[1])
    memory = np.zeros(cluster.node_counts.shape[1])
    for index, pool in enumerate(cluster.pools):
        if pool.is_control_plane != control_plane:
            continue
        cores += cluster.node_counts[index] * pool.vcpus
        memory += cluster.node_counts[index] * pool.memory_gib
    return cores, memory


def _pool_cost(cluster: Cluster, control_plane: bool) -> np.ndarray:
    cost = np.zeros(cluster.node_counts.shape[1])
    for index, pool in enumerate(cluster.pools):
        if pool.is_control_plane == control_plane:
            cost += cluster.pool_compute[index]
    return cost


def _shares(namespace_cost: np.ndarray, pool_cost: np.ndarray) -> np.ndarray:
    shares = np.zeros_like(namespace_cost)
    np.divide(namespace_cost, pool_cost[None, :], out=shares, where=pool_cost[None, :] > 0)
    return shares


def _cluster_usage(fleet: Fleet, cluster: Cluster, rng: np.random.Generator) -> ClusterUsage:
    count = len(cluster.namespaces)
    capacity_cpu, capacity_memory = _pool_capacity(cluster, control_plane=False)
    cp_cpu, cp_memory = _pool_capacity(cluster, control_plane=True)
    worker_shares = _shares(cluster.namespace_compute, _pool_cost(cluster, control_plane=False))
    cp_shares = _shares(cluster.namespace_control_plane, _pool_cost(cluster, control_plane=True))

    cpu_factor = rng.uniform(0.45, 0.8, count)[:, None]
    memory_factor = rng.uniform(0.45, 0.8, count)[:, None]
    namespace_cpu = worker_shares * capacity_cpu * cpu_factor
    namespace_memory = worker_shares * capacity_memory * memory_factor
    request_basis_cpu = namespace_cpu
    if cluster.name == anomalies.MINING_CLUSTER:
        request_basis_cpu = namespace_cpu.copy()
        _plant_cryptomining(fleet, cluster, namespace_cpu, capacity_cpu)

    quotas = _quotas(rng, cluster, namespace_cpu, namespace_memory)
    quotas = tuple(q for q in quotas if (cluster.name, q.namespace) not in UNLIMITED_NAMESPACES)
    if cluster.name == PLANTED_QUOTA_CLUSTER:
        quotas = _plant_memory_growth(fleet, cluster, rng, namespace_cpu, namespace_memory, quotas)

    return ClusterUsage(
        cluster=cluster,
        namespace_cpu=namespace_cpu,
        namespace_memory=namespace_memory,
        request_basis_cpu=request_basis_cpu,
        control_plane_cpu=cp_shares * cp_cpu * cpu_factor,
        control_plane_memory=cp_shares * cp_memory * memory_factor,
        capacity_cpu=capacity_cpu,
        capacity_memory=capacity_memory,
        cp_capacity_cpu=cp_cpu,
        cp_capacity_memory=cp_memory,
        quotas=quotas,
    )


def _plant_cryptomining(
    fleet: Fleet, cluster: Cluster, cpu: np.ndarray, capacity: np.ndarray
) -> None:
    """Let the planted miner take the idle worker cores from its start on, changing ``cpu``.

    The namespace's daily average rises until the namespaces together use
    ``MINING_CPU_UTILISATION`` of the worker cores. Its first day is raised by the part of the
    day the miner ran.
    """
    index = next(
        i for i, ns in enumerate(cluster.namespaces) if ns.name == anomalies.MINING_NAMESPACE
    )
    started = anomalies.MINING_START.resolve(fleet.as_of)
    begin = (started - fleet.start).total_seconds() / 86_400
    day = np.arange(fleet.days, dtype=np.float64)
    running = np.clip(day + 1.0 - begin, 0.0, 1.0)

    others = cpu.sum(axis=0) - cpu[index]
    mined = np.maximum(capacity * anomalies.MINING_CPU_UTILISATION - others, cpu[index])
    cpu[index] = cpu[index] + running * (mined - cpu[index])


def _quotas(
    rng: np.random.Generator, cluster: Cluster, cpu: np.ndarray, memory: np.ndarray
) -> tuple[NamespaceQuota, ...]:
    """Give about half of the namespaces a quota well above their highest usage."""
    gpus = sum(pool.max_size * pool.gpus for pool in cluster.pools)
    quotas = []
    for index, namespace in enumerate(cluster.namespaces):
        draw = rng.uniform(*QUOTA_MARGIN, size=2)
        chosen = rng.random() < 0.5
        if namespace.name == "kube-system" or not chosen:
            continue
        peak_cpu = float(cpu[index].max()) * (1 + CPU_DAILY_AMPLITUDE)
        peak_memory = float(memory[index].max()) * (1 + MEMORY_DAILY_AMPLITUDE)
        cores = max(0.5, np.ceil(peak_cpu * draw[0] * 2) / 2)
        mebibytes = max(512.0, np.ceil(peak_memory * draw[1] * 2) * 512)
        gpu_limit = gpus if gpus and namespace.name in ("training", "inference") else None
        quotas.append(NamespaceQuota(namespace.name, float(cores), float(mebibytes), gpu_limit))
    return tuple(quotas)


def _plant_memory_growth(
    fleet: Fleet,
    cluster: Cluster,
    rng: np.random.Generator,
    cpu: np.ndarray,
    memory: np.ndarray,
    quotas: tuple[NamespaceQuota, ...],
) -> tuple[NamespaceQuota, ...]:
    """Make the planted namespace's memory peak grow into its quota.

    The daily peak is flat at 61% of the quota until 24 days before ``as_of``, then grows by
    1.5% of the quota a day, so it reaches the quota two days after the day of ``as_of``.
    ``memory`` is changed in place.
    """
    index = next(i for i, ns in enumerate(cluster.namespaces) if ns.name == PLANTED_QUOTA_NAMESPACE)
    base = float(memory[index].mean())
    quota_gib = float(np.ceil(base * 1.7 / 4) * 4)

    days_before = (fleet.days - 1) - np.arange(fleet.days)
    to_breach = np.minimum(days_before, PLANTED_RAMP_DAYS) + PLANTED_BREACH_DAYS_AFTER_AS_OF
    peak = quota_gib * (1.0 - PLANTED_GROWTH_PER_DAY * to_breach)
    peak = peak * (1.0 + 0.005 * rng.standard_normal(fleet.days))
    memory[index] = peak / (1.0 + MEMORY_DAILY_AMPLITUDE)

    cores = float(np.ceil(cpu[index].max() * (1 + CPU_DAILY_AMPLITUDE) * 2 * 2) / 2)
    kept = [quota for quota in quotas if quota.namespace != PLANTED_QUOTA_NAMESPACE]
    return (*kept, NamespaceQuota(PLANTED_QUOTA_NAMESPACE, cores, quota_gib * 1024))


def _workspaces(fleet: Fleet, clusters: dict[str, ClusterUsage]) -> tuple[Workspace, ...]:
    workspaces = []
    for number, project_name in enumerate(WORKSPACE_PROJECTS):
        project = next(project for project in fleet.projects if project.name == project_name)
        members = [usage for usage in clusters.values() if usage.cluster.project.uid == project.uid]
        if not members:
            continue
        names = _project_namespaces(members)
        cpu_peak, memory_peak = _summed_peaks(members, names)
        gpus = sum(pool.max_size * pool.gpus for u in members for pool in u.cluster.pools)
        rng = np.random.default_rng([fleet.seed, 6, number])
        workspaces.append(
            Workspace(
                uid=rng.bytes(12).hex(),
                name=f"{project_name}-workspace",
                project_uid=project.uid,
                cluster_uids=tuple(usage.cluster.uid for usage in members),
                namespaces=names,
                cpu_cores=float(np.ceil(cpu_peak * WORKSPACE_MARGIN)),
                memory_mib=float(np.ceil(memory_peak * WORKSPACE_MARGIN) * 1024),
                gpu_limit=gpus or None,
                created_at=min(usage.cluster.created_at for usage in members),
            )
        )
    return tuple(workspaces)


def _project_namespaces(members: list[ClusterUsage]) -> tuple[str, ...]:
    """Return the namespaces of the project's own workloads, leaving out the shared ones."""
    shared = {"kube-system", "monitoring", "ingress-nginx", "cert-manager"}
    names = {ns.name for usage in members for ns in usage.cluster.namespaces} - shared
    return tuple(sorted(names))


def _summed_peaks(members: list[ClusterUsage], names: Sequence[str]) -> tuple[float, float]:
    cpu = np.zeros(members[0].capacity_cpu.shape)
    memory = np.zeros(members[0].capacity_cpu.shape)
    for usage in members:
        for index, namespace in enumerate(usage.cluster.namespaces):
            if namespace.name in names:
                cpu += usage.namespace_cpu[index]
                memory += usage.namespace_memory[index]
    return float(cpu.max()) * 1.2, float(memory.max()) * 1.2


def daily_cycle(amplitude: float) -> np.ndarray:
    """Return the 24 hourly factors of the daily cycle, which average 1 and peak at 14:00 UTC."""
    hours = np.arange(HOURS_PER_DAY)
    return 1.0 + amplitude * np.cos(2 * np.pi * (hours - PEAK_HOUR_UTC) / HOURS_PER_DAY)


def hourly(daily: np.ndarray, amplitude: float) -> np.ndarray:
    """Spread daily averages ``daily[k, d]`` over the hours of each day, shape (k, days * 24)."""
    cycle = daily_cycle(amplitude)
    return (daily[:, :, None] * cycle[None, None, :]).reshape(daily.shape[0], -1)


def bucket_means(
    values: np.ndarray, origin: datetime, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Average hourly values ``values[k, h]`` over each interval ``[lower, upper)`` (epoch s).

    Hour ``h`` starts at ``origin + h hours``; an interval may cover parts of hours.
    """
    hours = values.shape[1]
    cumulative = np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(values, axis=1)], axis=1)
    start = origin.timestamp()

    def accrued(moments: np.ndarray) -> np.ndarray:
        position = np.clip((moments - start) / SECONDS_PER_HOUR, 0.0, hours)
        index = np.minimum(np.floor(position).astype(np.int64), hours - 1)
        return cumulative[:, index] + (position - index) * values[:, index]

    span = (upper - lower) / SECONDS_PER_HOUR
    totals = accrued(upper) - accrued(lower)
    return np.divide(totals, span, out=np.zeros_like(totals), where=span > 0)
