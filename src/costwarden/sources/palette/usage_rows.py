"""Turn Palette consumption data, machine pools and quotas into daily usage rows and limits.

Units: CPU amounts become cores and memory amounts GiB, after the unit names that each response
carries. A day's peak is the highest data point that starts on that UTC day.

Machine pool node counts: Palette reports only a pool's current size. For earlier days, the node
counts of the autoscaled pools are solved from the cluster's allotted CPU and memory minus the
capacity of its fixed-size pools. That needs the pools' shapes to be linearly independent, which
always holds for a cluster with one autoscaled pool.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from costwarden.errors import PaletteApiError, PriceNotFoundError
from costwarden.sources.palette.models import (
    ConsumptionSeries,
    DashboardWorkspaces,
    MachinePoolConfig,
    NamespaceConfig,
)
from costwarden.sources.prices import PriceCatalog

logger = logging.getLogger(__name__)

Warn = Callable[[str], None]

CPU_UNITS: dict[str, float] = {
    "cores": 1.0,
    "core": 1.0,
    "cpu": 1.0,
    "cpus": 1.0,
    "vcpu": 1.0,
    "vcpus": 1.0,
    "millicores": 1e-3,
    "millicore": 1e-3,
    "m": 1e-3,
    "nanocores": 1e-9,
    "n": 1e-9,
}
"""Factors that turn each CPU unit name (lower case) into cores."""

MEMORY_UNITS: dict[str, float] = {
    "b": 2.0**-30,
    "bytes": 2.0**-30,
    "kib": 2.0**-20,
    "ki": 2.0**-20,
    "mib": 2.0**-10,
    "mi": 2.0**-10,
    "gib": 1.0,
    "gi": 1.0,
    "tib": 2.0**10,
    "ti": 2.0**10,
    "kb": 1e3 * 2.0**-30,
    "mb": 1e6 * 2.0**-30,
    "gb": 1e9 * 2.0**-30,
    "tb": 1e12 * 2.0**-30,
}
"""Factors that turn each memory unit name (lower case) into GiB."""

DEFAULT_CPU_UNIT = "cores"
DEFAULT_MEMORY_UNIT = "MiB"
DECIMALS = 6
SIZE_TOLERANCE_NODES = 2.0
SIZE_TOLERANCE_FRACTION = 0.2
SHAPE_MISMATCH = 0.1
"""Largest relative residual of the node-count solve before the derivation is rejected."""


@dataclass(frozen=True, slots=True)
class Units:
    """Factors that turn a response's amounts into cores and GiB."""

    cpu: float
    memory: float


@dataclass(frozen=True, slots=True)
class UsageRow:
    scope_kind: str
    scope_id: str
    cluster_uid: str | None
    name: str
    resource: str
    day: date
    value: float
    source: str

    def key(self) -> tuple[str, str, str, date]:
        return (self.scope_kind, self.scope_id, self.resource, self.day)


@dataclass(frozen=True, slots=True)
class LimitRow:
    scope_kind: str
    scope_id: str
    resource: str
    limit_kind: str
    limit_value: float
    cluster_uid: str | None
    name: str
    details: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, str, str]:
        return (self.scope_kind, self.scope_id, self.resource)


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """A worker machine pool with its size limits and the shape of one node."""

    name: str
    instance_type: str
    size: int
    min_size: int | None
    max_size: int | None
    vcpus: float | None
    memory_gib: float | None
    gpus: int | None

    @property
    def autoscaled(self) -> bool:
        return (
            self.min_size is not None
            and self.max_size is not None
            and self.min_size < self.max_size
        )

    @property
    def has_shape(self) -> bool:
        return self.vcpus is not None and self.memory_gib is not None


@dataclass(frozen=True, slots=True)
class ClusterMeta:
    """One cluster as the usage ingestion reads it: names, worker pools and quotas."""

    uid: str
    name: str
    project_uid: str | None
    cloud_type: str
    pools: tuple[PoolInfo, ...] = ()
    quotas: tuple[NamespaceConfig, ...] = ()

    def details(self, **extra: Any) -> dict[str, Any]:
        return {"cluster_name": self.name, "project_uid": self.project_uid, **extra}


def resolve_units(cpu_unit: str, memory_unit: str, where: str, warn: Warn) -> Units:
    """Return the factors for a response's unit names; raise PaletteApiError for unknown ones.

    An empty unit name is read as cores or MiB, with a warning, because Palette does not
    document its units.
    """
    names = []
    for unit, default, table, kind in (
        (cpu_unit, DEFAULT_CPU_UNIT, CPU_UNITS, "cpuUnit"),
        (memory_unit, DEFAULT_MEMORY_UNIT, MEMORY_UNITS, "memoryUnit"),
    ):
        text = unit.strip()
        if not text:
            warn(f"{where}: {kind} is empty; reading the amounts as {default}")
            text = default
        if text.lower() not in table:
            known = ", ".join(sorted(table))
            raise PaletteApiError(
                f"{where}: unknown {kind} {unit!r}; costwarden knows {known}",
                code="UnknownUnit",
            )
        names.append(text.lower())
    return Units(CPU_UNITS[names[0]], MEMORY_UNITS[names[1]])


def pool_info(cloud_type: str, pool: MachinePoolConfig, warn: Warn, where: str) -> PoolInfo:
    """Build a ``PoolInfo``; the node shape comes from ``instanceConfig``, else the catalogue.

    GPUs per node always come from the packaged catalogue's shape table, because Palette's
    cloud config does not report them.
    """
    config = pool.instance_config
    vcpus = float(config.num_cpus) if config and config.num_cpus else None
    memory = config.memory_mib / 1024 if config and config.memory_mib else None
    gpus: int | None = None
    try:
        shape = PriceCatalog.packaged().shape(cloud_type, pool.instance_type)
    except PriceNotFoundError as exc:
        warn(f"{where}, pool {pool.name}: {exc}; its GPUs are unknown")
    else:
        vcpus = vcpus if vcpus is not None else float(shape.vcpus)
        memory = memory if memory is not None else shape.memory_gib
        gpus = shape.gpus
    return PoolInfo(
        name=pool.name,
        instance_type=pool.instance_type,
        size=pool.size,
        min_size=pool.min_size,
        max_size=pool.max_size,
        vcpus=vcpus,
        memory_gib=memory,
        gpus=gpus,
    )


@dataclass(frozen=True, slots=True)
class Point:
    """One consumption data point in cores and GiB."""

    moment: datetime
    cpu: float
    memory: float
    allotted_cpu: float
    allotted_memory: float


def points(series: ConsumptionSeries, units: Units, start: date, end: date) -> list[Point]:
    """Return the series' points that start on a day in ``[start, end)``, in cores and GiB."""
    found = []
    for point in series.data:
        if not start <= point.timestamp.date() < end:
            continue
        found.append(
            Point(
                point.timestamp,
                point.usage.cpu * units.cpu,
                point.usage.memory * units.memory,
                point.allotted.cpu * units.cpu,
                point.allotted.memory * units.memory,
            )
        )
    return found


def daily_peaks(values: Iterable[tuple[datetime, float]]) -> dict[date, float]:
    """Return the highest value of each UTC day."""
    peaks: dict[date, float] = {}
    for moment, value in values:
        day = moment.date()
        peaks[day] = max(peaks.get(day, value), value)
    return peaks


def usage_rows(
    scope_kind: str, scope_id: str, cluster_uid: str | None, name: str, found: list[Point]
) -> list[UsageRow]:
    """Return the daily CPU and memory peaks of one consumption series."""
    rows = []
    for resource, values in (
        ("cpu", [(p.moment, p.cpu) for p in found]),
        ("memory", [(p.moment, p.memory) for p in found]),
    ):
        for day, peak in sorted(daily_peaks(values).items()):
            rows.append(
                UsageRow(
                    scope_kind,
                    scope_id,
                    cluster_uid,
                    name,
                    resource,
                    day,
                    round(peak, DECIMALS),
                    "consumption",
                )
            )
    return rows


def derive_pool_rows(cluster: ClusterMeta, found: list[Point], warn: Warn) -> list[UsageRow]:
    """Solve the autoscaled pools' node counts from the cluster's allotted capacity.

    Returns node-count rows, and GPU rows for pools with GPUs, one peak per day. Returns nothing
    when the pools cannot be distinguished, when a shape is unknown, or when the solve does not
    match the pools' shapes or current sizes, which happens if ``allotted`` is not capacity.
    """
    autoscaled = [pool for pool in cluster.pools if pool.autoscaled]
    if not autoscaled or not found:
        return []
    if not all(pool.has_shape for pool in cluster.pools):
        warn(f"cluster {cluster.name}: a pool has no known shape; pool node counts not derived")
        return []

    shapes = np.array([[p.vcpus for p in autoscaled], [p.memory_gib for p in autoscaled]], float)
    if np.linalg.matrix_rank(shapes) < len(autoscaled):
        logger.info(
            "cluster %s: %d autoscaled pools share one shape; their history is not derived",
            cluster.name,
            len(autoscaled),
        )
        return []

    # NOTE: Palette does not document ``allotted``. It is read here as the worker nodes'
    # capacity, and the size check below rejects the result when that reading does not hold.
    counts = _solve_counts(cluster, autoscaled, shapes, found)
    if counts is None or not _matches_sizes(cluster, autoscaled, counts, found, warn):
        return []
    return _pool_rows(cluster, autoscaled, counts, found)


def _solve_counts(
    cluster: ClusterMeta, autoscaled: list[PoolInfo], shapes: np.ndarray, found: list[Point]
) -> np.ndarray | None:
    # NOTE: fixed pools count at their current size on every day, so a past resize of a fixed
    # pool shifts the derived node counts of the days before it.
    fixed = [pool for pool in cluster.pools if not pool.autoscaled]
    fixed_cpu = sum(pool.size * (pool.vcpus or 0.0) for pool in fixed)
    fixed_memory = sum(pool.size * (pool.memory_gib or 0.0) for pool in fixed)
    targets = np.array(
        [
            [p.allotted_cpu - fixed_cpu for p in found],
            [p.allotted_memory - fixed_memory for p in found],
        ]
    )
    counts, *_ = np.linalg.lstsq(shapes, targets, rcond=None)

    residual = np.abs(shapes @ counts - targets).max(axis=0)
    scale = np.maximum(np.abs(targets).max(axis=0), 1.0)
    if float((residual / scale).max()) > SHAPE_MISMATCH:
        logger.warning(
            "cluster %s: allotted CPU and memory do not fit its pools' shapes; "
            "pool node counts not derived",
            cluster.name,
        )
        return None
    return np.clip(counts, 0.0, None)


def _matches_sizes(
    cluster: ClusterMeta,
    autoscaled: list[PoolInfo],
    counts: np.ndarray,
    found: list[Point],
    warn: Warn,
) -> bool:
    """Check the last day's derived node counts against the pools' current sizes."""
    last_day = max(point.moment.date() for point in found)
    last = [i for i, point in enumerate(found) if point.moment.date() == last_day]
    for index, pool in enumerate(autoscaled):
        derived = float(counts[index, last].max())
        tolerance = max(SIZE_TOLERANCE_NODES, SIZE_TOLERANCE_FRACTION * pool.size)
        if abs(derived - pool.size) > tolerance:
            warn(
                f"cluster {cluster.name}, pool {pool.name}: allotted capacity implies "
                f"{derived:.1f} nodes on {last_day} but the pool has {pool.size}; "
                "pool node counts not derived"
            )
            return False
    return True


def _pool_rows(
    cluster: ClusterMeta, autoscaled: list[PoolInfo], counts: np.ndarray, found: list[Point]
) -> list[UsageRow]:
    rows = []
    for index, pool in enumerate(autoscaled):
        scope_id = f"{cluster.uid}/{pool.name}"
        peaks = daily_peaks(
            (point.moment, float(counts[index, i])) for i, point in enumerate(found)
        )
        for day, nodes in sorted(peaks.items()):
            rows.append(
                UsageRow(
                    "pool",
                    scope_id,
                    cluster.uid,
                    pool.name,
                    "nodes",
                    day,
                    round(nodes, DECIMALS),
                    "derived",
                )
            )
            if pool.gpus:
                rows.append(
                    UsageRow(
                        "pool",
                        scope_id,
                        cluster.uid,
                        pool.name,
                        "gpu",
                        day,
                        round(nodes * pool.gpus, DECIMALS),
                        "derived",
                    )
                )
    return rows


def snapshot_rows(cluster: ClusterMeta, day: date) -> list[UsageRow]:
    """Return today's node and GPU counts of the autoscaled pools, from their current size."""
    rows = []
    for pool in cluster.pools:
        if not pool.autoscaled:
            continue
        scope_id = f"{cluster.uid}/{pool.name}"
        rows.append(
            UsageRow(
                "pool", scope_id, cluster.uid, pool.name, "nodes", day, float(pool.size), "snapshot"
            )
        )
        if pool.gpus:
            rows.append(
                UsageRow(
                    "pool",
                    scope_id,
                    cluster.uid,
                    pool.name,
                    "gpu",
                    day,
                    float(pool.size * pool.gpus),
                    "snapshot",
                )
            )
    return rows


def namespace_limits(cluster: ClusterMeta, namespaces: set[str], warn: Warn) -> list[LimitRow]:
    """Return the CPU, memory and GPU quotas of the cluster's namespaces.

    A regular-expression entry applies its quota to each namespace in ``namespaces`` that it
    matches in full.
    """
    # NOTE: Palette's consumption data has no GPU usage, so GPU quotas are stored but not forecast.
    limits = []
    for config in cluster.quotas:
        allocation = config.spec.resource_allocation
        if allocation is None or not config.name:
            continue
        names = _quota_targets(cluster, config, namespaces, warn)
        values = {
            "cpu": allocation.cpu_cores,
            "memory": allocation.memory_mib / 1024 if allocation.memory_mib else None,
            "gpu": float(allocation.gpu_config.limit)
            if allocation.gpu_config and allocation.gpu_config.limit is not None
            else None,
        }
        for name in names:
            for resource, value in values.items():
                if value is None or value <= 0:
                    continue
                limits.append(
                    LimitRow(
                        "namespace",
                        f"{cluster.uid}/{name}",
                        resource,
                        "namespace_quota",
                        float(value),
                        cluster.uid,
                        name,
                        cluster.details(
                            namespace=name, pattern=config.name if config.spec.is_regex else None
                        ),
                    )
                )
    return limits


def _quota_targets(
    cluster: ClusterMeta, config: NamespaceConfig, namespaces: set[str], warn: Warn
) -> list[str]:
    if not config.spec.is_regex:
        return [config.name]
    try:
        pattern = re.compile(config.name)
    except re.error as exc:
        warn(
            f"cluster {cluster.name}: namespace pattern {config.name!r} is invalid ({exc}); skipped"
        )
        return []
    return sorted(name for name in namespaces if pattern.fullmatch(name))


def workspace_limits(workspaces: DashboardWorkspaces, units: Units) -> list[LimitRow]:
    """Return the CPU, memory and GPU quotas of the workspaces; -1 and 0 mean no limit."""
    limits = []
    for workspace in workspaces.items:
        allocation = workspace.spec.quota.resource_allocation if workspace.spec.quota else None
        meta = workspace.metadata
        if allocation is None or not meta.uid:
            continue
        gpu = allocation.gpu_config.limit if allocation.gpu_config else None
        values = {
            "cpu": allocation.cpu * units.cpu if allocation.cpu else None,
            "memory": allocation.memory * units.memory if allocation.memory else None,
            "gpu": float(gpu) if gpu is not None else None,
        }
        details = {
            "workspace_name": meta.name,
            "clusters": [{"uid": ref.uid, "name": ref.name} for ref in workspace.spec.cluster_refs],
            "namespaces": list(workspace.spec.namespaces),
        }
        for resource, value in values.items():
            if value is not None and value > 0:
                limits.append(
                    LimitRow(
                        "workspace",
                        meta.uid,
                        resource,
                        "workspace_quota",
                        float(value),
                        None,
                        meta.name,
                        details,
                    )
                )
    return limits


def pool_limits(cluster: ClusterMeta) -> list[LimitRow]:
    """Return each autoscaled pool's maximum: GPUs for pools with GPUs, else nodes."""
    limits = []
    for pool in cluster.pools:
        if not pool.autoscaled or pool.max_size is None:
            continue
        resource, value = (
            ("gpu", pool.max_size * pool.gpus) if pool.gpus else ("nodes", pool.max_size)
        )
        details = cluster.details(
            pool=pool.name,
            instance_type=pool.instance_type,
            size=pool.size,
            min_size=pool.min_size,
            max_size=pool.max_size,
            gpus_per_node=pool.gpus,
        )
        limits.append(
            LimitRow(
                "pool",
                f"{cluster.uid}/{pool.name}",
                resource,
                "autoscaler_max",
                float(value),
                cluster.uid,
                pool.name,
                details,
            )
        )
    return limits


def cluster_limits(cluster: ClusterMeta) -> list[LimitRow]:
    """Return the CPU and memory of the worker pools at their maximum sizes.

    Only clusters with an autoscaled pool get these limits, and only when every pool's shape is
    known.
    """
    if not any(pool.autoscaled for pool in cluster.pools):
        return []
    if not all(pool.has_shape for pool in cluster.pools):
        return []
    totals: dict[str, float] = defaultdict(float)
    for pool in cluster.pools:
        nodes = pool.max_size if pool.autoscaled and pool.max_size is not None else pool.size
        totals["cpu"] += nodes * (pool.vcpus or 0.0)
        totals["memory"] += nodes * (pool.memory_gib or 0.0)
    return [
        LimitRow(
            "cluster",
            cluster.uid,
            resource,
            "autoscaler_max",
            round(value, DECIMALS),
            cluster.uid,
            cluster.name,
            cluster.details(),
        )
        for resource, value in totals.items()
    ]
