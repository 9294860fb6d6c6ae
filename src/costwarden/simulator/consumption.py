"""Resource consumption queries over the simulated fleet: CPU and memory used versus allotted.

Each point is the average over its bucket of hourly values, on the same grid of ``period``
minutes as the cost queries. Palette does not document what ``allotted`` means. The simulator
reports the namespaces' resource requests for ``namespace`` and ``workspace`` groups, and the
allocatable capacity of the worker nodes for ``cluster``, ``project``, ``cloud`` and ``tenant``
groups, with the control-plane nodes added when ``includeControlPlaneMachines`` is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from costwarden.simulator.costs import EntityRef, Window
from costwarden.simulator.model import Cluster
from costwarden.simulator.usage import (
    CPU_DAILY_AMPLITUDE,
    MEMORY_DAILY_AMPLITUDE,
    REQUEST_FACTOR,
    ClusterUsage,
    FleetUsage,
    bucket_means,
    hourly,
)

CONSUMPTION_GROUPS = ("tenant", "project", "workspace", "cluster", "namespace", "cloud")
COLUMNS = ("usage_cpu", "usage_memory", "allotted_cpu", "allotted_memory")
CPU_UNIT = "cores"
MEMORY_UNIT = "MiB"
DECIMALS = 4


@dataclass(frozen=True, slots=True)
class ConsumptionSeries:
    """Average cores and GiB of one entity per bucket; ``columns`` is keyed by ``COLUMNS``."""

    entity: EntityRef
    associated: tuple[EntityRef, ...]
    starts: np.ndarray
    columns: dict[str, np.ndarray]


@dataclass(slots=True)
class _Group:
    entity: EntityRef
    associated: tuple[EntityRef, ...]
    active_from: float
    hourly: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, name: str, values: np.ndarray) -> None:
        if name in self.hourly:
            self.hourly[name] = self.hourly[name] + values
        else:
            self.hourly[name] = values.copy()


def consumption(
    usage: FleetUsage,
    clusters: Sequence[Cluster],
    window: Window,
    group_by: str,
    org_name: str,
    *,
    namespaces: Sequence[str] = (),
    include_control_plane: bool = False,
) -> list[ConsumptionSeries]:
    """Return the CPU and memory consumption of ``clusters`` grouped by ``group_by``.

    ``namespaces`` keeps only namespaces with those names; empty keeps all of them.
    """
    fleet = usage.fleet
    wanted = set(namespaces)
    groups: dict[object, _Group] = {}
    for cluster in clusters:
        cluster_usage = usage.clusters[cluster.uid]
        rows = [
            index
            for index, namespace in enumerate(cluster.namespaces)
            if not wanted or namespace.name in wanted
        ]
        active_from = fleet.day_start(cluster.first_day).timestamp()
        arrays = _namespace_hourly(cluster_usage, rows, include_control_plane)
        if group_by == "namespace":
            _add_namespaces(groups, cluster, rows, arrays, active_from)
        elif group_by == "workspace":
            _add_workspaces(groups, usage, cluster, rows, arrays, active_from)
        else:
            key, entity, associated = _cluster_entity(usage, org_name, cluster, group_by)
            group = groups.setdefault(key, _Group(entity, associated, np.inf))
            group.active_from = min(group.active_from, active_from)
            for name in ("usage_cpu", "usage_memory"):
                group.add(name, arrays[name].sum(axis=0))
            capacity = _capacity_hourly(cluster_usage, include_control_plane)
            group.add("allotted_cpu", capacity[0])
            group.add("allotted_memory", capacity[1])
    return _series(usage, groups.values(), window)


def _namespace_hourly(
    usage: ClusterUsage, rows: list[int], include_control_plane: bool
) -> dict[str, np.ndarray]:
    cpu = usage.namespace_cpu[rows]
    memory = usage.namespace_memory[rows]
    requested_cpu = usage.request_basis_cpu[rows]
    if include_control_plane:
        cpu = cpu + usage.control_plane_cpu[rows]
        memory = memory + usage.control_plane_memory[rows]
        requested_cpu = requested_cpu + usage.control_plane_cpu[rows]
    return {
        "usage_cpu": hourly(cpu, CPU_DAILY_AMPLITUDE),
        "usage_memory": hourly(memory, MEMORY_DAILY_AMPLITUDE),
        "allotted_cpu": hourly(requested_cpu * REQUEST_FACTOR, 0.0),
        "allotted_memory": hourly(memory * REQUEST_FACTOR, 0.0),
    }


def _capacity_hourly(usage: ClusterUsage, include_control_plane: bool) -> np.ndarray:
    cpu, memory = usage.capacity_cpu, usage.capacity_memory
    if include_control_plane:
        cpu = cpu + usage.cp_capacity_cpu
        memory = memory + usage.cp_capacity_memory
    return hourly(np.stack([cpu, memory]), 0.0)


def _cluster_ref(cluster: Cluster) -> EntityRef:
    return EntityRef("spectrocluster", cluster.name, cluster.uid)


def _add_namespaces(
    groups: dict[object, _Group],
    cluster: Cluster,
    rows: list[int],
    arrays: dict[str, np.ndarray],
    active_from: float,
) -> None:
    for position, index in enumerate(rows):
        namespace = cluster.namespaces[index]
        entity = EntityRef("namespace", namespace.name, namespace.uid)
        group = groups.setdefault(
            namespace.uid, _Group(entity, (_cluster_ref(cluster),), active_from)
        )
        for name, values in arrays.items():
            group.add(name, values[position])


def _add_workspaces(
    groups: dict[object, _Group],
    usage: FleetUsage,
    cluster: Cluster,
    rows: list[int],
    arrays: dict[str, np.ndarray],
    active_from: float,
) -> None:
    for workspace in usage.workspaces:
        if cluster.uid not in workspace.cluster_uids:
            continue
        members = [
            position
            for position, index in enumerate(rows)
            if cluster.namespaces[index].name in workspace.namespaces
        ]
        if not members:
            continue
        entity = EntityRef("workspace", workspace.name, workspace.uid)
        group = groups.setdefault(workspace.uid, _Group(entity, (), np.inf))
        group.active_from = min(group.active_from, active_from)
        for name, values in arrays.items():
            group.add(name, values[members].sum(axis=0))


def _cluster_entity(
    usage: FleetUsage, org_name: str, cluster: Cluster, group_by: str
) -> tuple[object, EntityRef, tuple[EntityRef, ...]]:
    project = EntityRef("project", cluster.project.name, cluster.project.uid)
    if group_by == "tenant":
        return "tenant", EntityRef("tenant", org_name, usage.fleet.tenant_uid), ()
    if group_by == "project":
        return cluster.project.uid, project, ()
    if group_by == "cloud":
        return cluster.cloud_type, EntityRef("cloud", cluster.cloud_type, cluster.cloud_type), ()
    return cluster.uid, _cluster_ref(cluster), (project,)


def _series(usage: FleetUsage, groups: Iterable[_Group], window: Window) -> list[ConsumptionSeries]:
    result = []
    for group in groups:
        emitted = window.upper > np.maximum(window.lower, group.active_from)
        if not emitted.any():
            continue
        names = list(COLUMNS)
        stacked = np.stack([group.hourly[name] for name in names])
        means = bucket_means(stacked, usage.fleet.start, window.lower, window.upper)
        columns = {name: means[index][emitted] for index, name in enumerate(names)}
        result.append(
            ConsumptionSeries(group.entity, group.associated, window.starts[emitted], columns)
        )
    return sorted(result, key=lambda series: (series.entity.name, series.entity.uid))


def _pair(cpu: float, memory_gib: float) -> dict[str, float]:
    """``v1ResourceConsumptionData`` in the simulator's units: cores and MiB."""
    return {"cpu": round(cpu, DECIMALS), "memory": round(memory_gib * 1024, DECIMALS)}


def consumption_body(series: list[ConsumptionSeries], timestamp_factor: int) -> dict[str, Any]:
    """``v1ResourcesConsumption``.

    Each series' ``total`` is its average over the buckets, and the top-level ``total`` is the
    sum of those averages; Palette does not document how it aggregates either. ``timestamp_factor``
    is 1 for epoch seconds and 1000 for epoch milliseconds.
    """
    resources = []
    totals = np.zeros(len(COLUMNS))
    for item in series:
        values = [item.columns[name] for name in COLUMNS]
        data = [
            {
                "timestamp": int(start) * timestamp_factor,
                "usage": _pair(float(values[0][i]), float(values[1][i])),
                "allotted": _pair(float(values[2][i]), float(values[3][i])),
            }
            for i, start in enumerate(item.starts)
        ]
        means = [float(column.mean()) for column in values]
        totals += means
        resources.append(
            {
                "entity": item.entity.as_json(),
                "associatedResources": [ref.as_json() for ref in item.associated],
                "data": data,
                "total": {
                    "usage": _pair(means[0], means[1]),
                    "allotted": _pair(means[2], means[3]),
                },
            }
        )
    return {
        "cpuUnit": CPU_UNIT,
        "memoryUnit": MEMORY_UNIT,
        "resources": resources,
        "total": {"usage": _pair(totals[0], totals[1]), "allotted": _pair(totals[2], totals[3])},
    }
