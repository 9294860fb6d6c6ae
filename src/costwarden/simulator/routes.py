"""Palette's paths on the simulated fleet, and the checks every request passes first.

Every route depends on ``guard``: the per-prefix rate limit, then the API key, then fault
injection. Project scope comes from the ``ProjectUid`` header, or the ``projectUid`` or
``ProjectUid`` query parameter. Without it, a request covers the whole tenant.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from costwarden.simulator import payloads
from costwarden.simulator.costs import (
    CLOUD_COST_GROUPS,
    RESOURCE_COST_GROUPS,
    CostQueryError,
    Window,
    cloud_cost,
    resource_cost,
)
from costwarden.simulator.fleet import Cluster, Fleet, Project
from costwarden.simulator.guards import (
    ApiError,
    FaultInjector,
    RateLimiter,
    Stats,
    check_api_key,
    fault_error,
    too_many_requests,
)
from costwarden.simulator.requests import (
    CloudCostFilter,
    CloudCostSpec,
    ResourceCostSpec,
    SearchSpec,
    WorkloadsSpec,
)
from costwarden.simulator.search import SearchError, search
from costwarden.simulator.settings import SimulatorSettings

logger = logging.getLogger(__name__)

UNMODELLED_GROUPS = ("workspace", "deployment")


@dataclass(eq=False)
class SimulatorState:
    """State shared by the routes: settings, fleet, limiter, fault injector and counters.

    The write routes replace ``fleet`` with a changed copy while holding ``write_lock``, so a
    route reads one consistent fleet by reading the attribute once. ``writes`` lists the
    method, path and status of every write request that passed the guard.
    """

    settings: SimulatorSettings
    fleet: Fleet
    limiter: RateLimiter
    faults: FaultInjector
    stats: Stats
    write_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    writes: list[tuple[str, str, int]] = field(default_factory=list)


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


async def guard(request: Request) -> None:
    """Apply the rate limit, the API key check and fault injection, in that order."""
    state = _state(request)
    settings = state.settings
    state.stats.count("requests")

    client = request.client.host if request.client else "unknown"
    if settings.rate_limit_enabled:
        allowed, rule = state.limiter.allow(client, request.url.path)
        if not allowed:
            state.stats.count("rate_limited")
            logger.debug("429 for %s on %s", client, rule.prefix)
            message = (
                f"rate limit of {rule.rate_per_second:g} requests per second (burst "
                f"{rule.burst}) exceeded for {rule.prefix}"
            )
            raise too_many_requests(message, settings)

    headers = request.headers
    try:
        check_api_key(headers.get("apikey"), headers.get("authorization"), settings)
    except ApiError:
        state.stats.count("unauthorized")
        raise

    status = state.faults.draw()
    if status is not None:
        state.stats.count("faults")
        logger.debug("injecting fault %d on %s %s", status, request.method, request.url.path)
        raise fault_error(status, settings)


def _scope(request: Request, fleet: Fleet) -> Project | None:
    """Return the project named by the ProjectUid header or query parameter, if any."""
    uid = (
        request.headers.get("projectuid")
        or request.query_params.get("projectUid")
        or request.query_params.get("ProjectUid")
    )
    if not uid:
        return None
    project = fleet.project(uid)
    if project is None:
        # NOTE: Palette's reply to an unknown project uid is undocumented; 403 is a guess.
        raise ApiError(
            403, "Forbidden", f"project {uid!r} does not exist or is not accessible to this key"
        )
    return project


def _clusters_in_scope(request: Request) -> list[Cluster]:
    fleet = _state(request).fleet
    project = _scope(request, fleet)
    if project is None:
        return list(fleet.clusters)
    return [cluster for cluster in fleet.clusters if cluster.project.uid == project.uid]


def _cluster_or_404(request: Request, uid: str) -> Cluster:
    for cluster in _clusters_in_scope(request):
        if cluster.uid == uid:
            return cluster
    raise ApiError(404, "ResourceNotFound", f"cluster {uid!r} not found")


def _filtered(clusters: list[Cluster], spec_filter: CloudCostFilter) -> list[Cluster]:
    """Apply the clouds, projects and workspaces filters of a cost request."""
    if spec_filter.workspaces:
        return []
    if spec_filter.clouds:
        clusters = [c for c in clusters if c.cloud_type in spec_filter.clouds]
    if spec_filter.projects:
        clusters = [c for c in clusters if c.project.uid in spec_filter.projects]
    return clusters


def _check_group(group_by: str, modelled: tuple[str, ...], offered: tuple[str, ...]) -> None:
    if group_by in modelled:
        return
    if group_by in offered:
        raise ApiError(
            501,
            "NotImplemented",
            f"groupBy {group_by!r} is not modelled by the simulator; use {', '.join(modelled)}",
        )
    raise ApiError(
        400, "BadRequest", f"groupBy {group_by!r} is not valid; use one of {', '.join(offered)}"
    )


def _window(fleet: Fleet, spec_filter: CloudCostFilter, period: int) -> Window:
    try:
        return Window.build(fleet, spec_filter.start_time, spec_filter.end_time, period)
    except CostQueryError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc


router = APIRouter(dependencies=[Depends(guard)])


@router.get("/v1/users/info")
def users_info(request: Request) -> dict[str, Any]:
    state = _state(request)
    return payloads.user_info(state.fleet, state.settings.org_name)


@router.get("/v1/dashboard/projects/metadata")
def projects_metadata(request: Request, name: str | None = None) -> dict[str, Any]:
    projects = list(_state(request).fleet.projects)
    if name:
        projects = [project for project in projects if project.name == name]
    return payloads.projects_metadata(projects)


@router.post("/v1/dashboard/spectroclusters/search")
def search_clusters(
    request: Request,
    spec: Annotated[SearchSpec | None, Body()] = None,
    limit: int | None = None,
    offset: int | None = None,
    continue_token: Annotated[str | None, Query(alias="continue")] = None,
) -> dict[str, Any]:
    fleet = _state(request).fleet
    try:
        page = search(
            _clusters_in_scope(request),
            spec or SearchSpec(),
            limit=limit,
            offset=offset,
            continue_token=continue_token,
        )
    except SearchError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    return {
        "items": [payloads.cluster_summary(fleet, cluster) for cluster in page.items],
        "listmeta": {
            "continue": page.continue_token,
            "count": page.count,
            "limit": page.limit,
            "offset": page.next_offset,
        },
    }


@router.get("/v1/spectroclusters/{uid}")
def get_cluster(request: Request, uid: str) -> dict[str, Any]:
    return payloads.cluster_detail(_state(request).fleet, _cluster_or_404(request, uid))


@router.get("/v1/cloudconfigs/{cloud_type}/{config_uid}")
def get_cloud_config(request: Request, cloud_type: str, config_uid: str) -> dict[str, Any]:
    for cluster in _clusters_in_scope(request):
        if cluster.cloud_config_uid == config_uid and cluster.cloud_type == cloud_type:
            return payloads.cloud_config(cluster)
    raise ApiError(404, "ResourceNotFound", f"{cloud_type} cloud config {config_uid!r} not found")


@router.post("/v1/dashboard/spectroclusters/cost")
def clusters_cost(
    request: Request, spec: Annotated[CloudCostSpec | None, Body()] = None
) -> dict[str, Any]:
    state = _state(request)
    spec = spec or CloudCostSpec()
    _check_group(spec.options.group_by, CLOUD_COST_GROUPS, CLOUD_COST_GROUPS)
    window = _window(state.fleet, spec.filter, spec.options.period)
    clusters = _filtered(_clusters_in_scope(request), spec.filter)
    series = cloud_cost(
        state.fleet, clusters, window, spec.options.group_by, state.settings.org_name
    )
    return payloads.cloud_cost_summary(series, state.settings.timestamp_unit)


@router.post("/v1/dashboard/spectroclusters/resources/cost")
def resources_cost(
    request: Request, spec: Annotated[ResourceCostSpec | None, Body()] = None
) -> dict[str, Any]:
    state = _state(request)
    spec = spec or ResourceCostSpec()
    offered = (*RESOURCE_COST_GROUPS, *UNMODELLED_GROUPS)
    _check_group(spec.options.group_by, RESOURCE_COST_GROUPS, offered)
    window = _window(state.fleet, spec.filter, spec.options.period)

    clusters = _filtered(_clusters_in_scope(request), spec.filter)
    if spec.filter.clusters:
        clusters = [c for c in clusters if c.uid in spec.filter.clusters]
    include = spec.filter.include_control_plane_machines or spec.filter.include_master_machines
    series = resource_cost(
        state.fleet,
        clusters,
        window,
        spec.options.group_by,
        state.settings.org_name,
        namespaces=spec.filter.namespaces,
        include_control_plane=include,
    )
    return payloads.resource_cost_summary(series, state.settings.timestamp_unit)


@router.post("/v1/dashboard/spectroclusters/{uid}/workloads/namespace")
def workload_namespaces(
    request: Request, uid: str, spec: Annotated[WorkloadsSpec | None, Body()] = None
) -> dict[str, Any]:
    cluster = _cluster_or_404(request, uid)
    names = (spec or WorkloadsSpec()).filter.namespaces
    return payloads.workload_namespaces(cluster, names)
