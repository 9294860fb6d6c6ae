"""Palette's usage and quota paths on the simulated fleet.

``POST /v1/dashboard/spectroclusters/resources/consumption`` and its per-cluster form return CPU
and memory used versus allotted (``v1ResourcesConsumption``).
``GET /v1/spectroclusters/{uid}/config/namespaces`` returns the namespaces' resource allocations
(``v1ClusterNamespaceResources``), and ``GET /v1/dashboard/workspaces`` the workspaces with
their quotas (``v1DashboardWorkspaces``). Every route passes the same rate limit, API key check
and fault injection as the other simulated routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from costwarden.simulator import requests
from costwarden.simulator.consumption import (
    CONSUMPTION_GROUPS,
    CPU_UNIT,
    MEMORY_UNIT,
    consumption,
    consumption_body,
)
from costwarden.simulator.model import Cluster
from costwarden.simulator.payloads import rfc3339
from costwarden.simulator.routes import (
    _check_group,
    _cluster_or_404,
    _clusters_in_scope,
    _scope,
    _state,
    _window,
    guard,
)
from costwarden.simulator.usage import (
    REQUEST_FACTOR,
    FleetUsage,
    NamespaceQuota,
    Workspace,
    fleet_usage,
)

GPU_PROVIDER = "nvidia"


class ConsumptionOptions(requests.Body):
    group_by: str = "namespace"
    period: int = 60
    enable_summary_view: bool = True


class ConsumptionSpec(requests.Body):
    """``v1ResourceConsumptionSpec``."""

    filter: requests.ResourceCostFilter = Field(default_factory=requests.ResourceCostFilter)
    options: ConsumptionOptions = Field(default_factory=ConsumptionOptions)


quota_router = APIRouter(dependencies=[Depends(guard)])


def _usage(request: Request) -> FleetUsage:
    return fleet_usage(_state(request).fleet)


def _consumption_response(
    request: Request, clusters: list[Cluster], spec: ConsumptionSpec
) -> JSONResponse:
    state = _state(request)
    usage = _usage(request)
    _check_group(spec.options.group_by, CONSUMPTION_GROUPS, CONSUMPTION_GROUPS)
    window = _window(state.fleet, spec.filter, spec.options.period)

    spec_filter = spec.filter
    if spec_filter.clouds:
        clusters = [c for c in clusters if c.cloud_type in spec_filter.clouds]
    if spec_filter.projects:
        clusters = [c for c in clusters if c.project.uid in spec_filter.projects]
    if spec_filter.clusters:
        clusters = [c for c in clusters if c.uid in spec_filter.clusters]
    namespaces = list(spec_filter.namespaces)
    if spec_filter.workspaces:
        chosen = [w for w in usage.workspaces if w.uid in spec_filter.workspaces]
        members = {uid for workspace in chosen for uid in workspace.cluster_uids}
        clusters = [c for c in clusters if c.uid in members]
        names = {name for workspace in chosen for name in workspace.namespaces}
        namespaces = sorted(names & set(namespaces)) if namespaces else sorted(names)
        if not namespaces:
            clusters = []

    include = spec_filter.include_control_plane_machines or spec_filter.include_master_machines
    series = consumption(
        usage,
        clusters,
        window,
        spec.options.group_by,
        state.settings.org_name,
        namespaces=namespaces,
        include_control_plane=include,
    )
    factor = 1000 if state.settings.timestamp_unit == "milliseconds" else 1
    # Returning a response skips FastAPI's encoder, which is slow on bodies this large.
    return JSONResponse(consumption_body(series, factor))


@quota_router.post("/v1/dashboard/spectroclusters/resources/consumption")
def resources_consumption(
    request: Request, spec: Annotated[ConsumptionSpec | None, Body()] = None
) -> JSONResponse:
    return _consumption_response(request, _clusters_in_scope(request), spec or ConsumptionSpec())


@quota_router.post("/v1/dashboard/spectroclusters/{uid}/resources/consumption")
def cluster_consumption(
    request: Request, uid: str, spec: Annotated[ConsumptionSpec | None, Body()] = None
) -> JSONResponse:
    cluster = _cluster_or_404(request, uid)
    return _consumption_response(request, [cluster], spec or ConsumptionSpec())


@quota_router.get("/v1/spectroclusters/{uid}/config/namespaces")
def namespace_config(request: Request, uid: str) -> dict[str, Any]:
    cluster = _cluster_or_404(request, uid)
    quotas = _usage(request).clusters[cluster.uid].quotas
    return {"items": [_namespace_resource(cluster, quota) for quota in quotas]}


def _gpu_config(limit: int | None) -> dict[str, Any] | None:
    if limit is None:
        return None
    return {"limit": limit, "provider": GPU_PROVIDER}


def _namespace_resource(cluster: Cluster, quota: NamespaceQuota) -> dict[str, Any]:
    """``v1ClusterNamespaceResource``."""
    namespace = next(ns for ns in cluster.namespaces if ns.name == quota.namespace)
    allocation: dict[str, Any] = {"cpuCores": quota.cpu_cores, "memoryMiB": quota.memory_mib}
    gpu = _gpu_config(quota.gpu_limit)
    if gpu is not None:
        allocation["gpuConfig"] = gpu
    return {
        "metadata": {
            "uid": namespace.uid,
            "name": namespace.name,
            "creationTimestamp": rfc3339(namespace.created_at),
        },
        "spec": {
            "isRegex": False,
            "resourceAllocation": allocation,
            "relatedObject": {"kind": "spectrocluster", "name": cluster.name, "uid": cluster.uid},
        },
        "status": {"errors": []},
    }


@quota_router.get("/v1/dashboard/workspaces")
def dashboard_workspaces(request: Request) -> dict[str, Any]:
    usage = _usage(request)
    project = _scope(request, usage.fleet)
    workspaces = [
        workspace
        for workspace in usage.workspaces
        if project is None or workspace.project_uid == project.uid
    ]
    return {
        "cpuUnit": CPU_UNIT,
        "memoryUnit": MEMORY_UNIT,
        "items": [_dashboard_workspace(usage, workspace) for workspace in workspaces],
    }


def _allocation(cpu: float, memory_gib: float) -> dict[str, Any]:
    """``v1DashboardWorkspaceAllocation`` in cores and MiB; allocated is the requests."""
    return {
        "cpu": {"allocated": round(cpu * REQUEST_FACTOR, 4), "usage": round(cpu, 4)},
        "memory": {
            "allocated": round(memory_gib * REQUEST_FACTOR * 1024, 4),
            "usage": round(memory_gib * 1024, 4),
        },
    }


def _dashboard_workspace(usage: FleetUsage, workspace: Workspace) -> dict[str, Any]:
    """``v1DashboardWorkspace``; the status shows the average usage of the day of ``as_of``."""
    per_namespace: dict[str, list[float]] = {}
    for cluster_usage, index in usage.members(workspace):
        cpu = float(cluster_usage.namespace_cpu[index, -1])
        memory = float(cluster_usage.namespace_memory[index, -1])
        totals = per_namespace.setdefault(cluster_usage.cluster.namespaces[index].name, [0.0, 0.0])
        totals[0] += cpu
        totals[1] += memory

    refs = [
        {"name": usage.clusters[uid].cluster.name, "uid": uid} for uid in workspace.cluster_uids
    ]
    allocation_spec: dict[str, Any] = {
        "cpu": workspace.cpu_cores,
        "memory": workspace.memory_mib,
    }
    gpu = _gpu_config(workspace.gpu_limit)
    if gpu is not None:
        allocation_spec["gpuConfig"] = gpu
    total_cpu = sum(values[0] for values in per_namespace.values())
    total_memory = sum(values[1] for values in per_namespace.values())
    return {
        "metadata": {
            "uid": workspace.uid,
            "name": workspace.name,
            "creationTimestamp": rfc3339(workspace.created_at),
        },
        "spec": {
            "clusterRefs": refs,
            "namespaces": list(workspace.namespaces),
            "quota": {"resourceAllocation": allocation_spec},
        },
        "status": {
            "namespaces": [
                {"name": name, "total": _allocation(*values)}
                for name, values in sorted(per_namespace.items())
            ],
            "total": _allocation(total_cpu, total_memory),
        },
    }
