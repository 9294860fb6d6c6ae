"""Palette's write paths on the simulated fleet, and the kubeconfig each cluster serves.

- ``PUT /v1/cloudconfigs/{cloud}/{configUid}/machinePools/{name}`` replaces one machine pool
  with the ``v1<Cloud>MachinePoolConfigEntity`` body and responds 204. The size, the autoscaling
  limits, the instance type and, on AWS and EKS, the capacity type change.
- ``PATCH /v1/spectroclusters/{uid}/metadata`` sets the labels (Palette's tags) and annotations
  present in the ``v1ObjectMetaInputEntitySchema`` body and responds 204.
- ``GET /v1/spectroclusters/{uid}/assets/kubeconfig`` returns a kubeconfig whose server is
  ``kubernetes_api_url`` from the simulator settings, so tests point it at a fake API server.

A write replaces the app's fleet with a changed copy, so later reads show the change. The cost
history is not recomputed: only the state at ``as_of`` (pool sizes, instance types, labels and
the estimated rates derived from them) changes. Malformed bodies get 400 and well-formed bodies
with values Palette would not accept get 422, both with a ``V1Error`` body naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any, TypeVar

import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from costwarden.errors import PriceNotFoundError
from costwarden.simulator.guards import ApiError
from costwarden.simulator.model import Cluster, MachinePool
from costwarden.simulator.routes import SimulatorState, _cluster_or_404, _clusters_in_scope, guard
from costwarden.sources.prices import CLOUD_TYPE_PROVIDERS, PriceCatalog

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

CAPACITY_TYPES = ("on-demand", "spot")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
"""Kubernetes label syntax, which Palette's tags follow: an optional DNS prefix, a name of at
most 63 characters, and a value of at most 63 characters."""


class _Entity(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class PoolConfigEntity(_Entity):
    """``v1MachinePoolConfigEntity``: the fields the simulator models."""

    name: str
    labels: list[str]
    size: int
    min_size: int | None = None
    max_size: int | None = None
    is_control_plane: bool = False


class PoolCloudConfigEntity(_Entity):
    """The ``cloudConfig`` of a machine pool entity; the fields differ per cloud."""

    instance_type: str | None = None
    capacity_type: str | None = None


class MachinePoolEntity(_Entity):
    """``v1AwsMachinePoolConfigEntity`` and its Azure, GCP, EKS, AKS and GKE siblings."""

    cloud_config: PoolCloudConfigEntity
    pool_config: PoolConfigEntity | None = None


class MetadataInput(_Entity):
    """``v1ObjectMetaInputEntity``."""

    name: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class MetadataInputSchema(_Entity):
    """``v1ObjectMetaInputEntitySchema``."""

    metadata: MetadataInput = Field(...)


write_router = APIRouter(dependencies=[Depends(guard)])


@write_router.put(
    "/v1/cloudconfigs/{cloud_type}/{config_uid}/machinePools/{pool_name}", status_code=204
)
async def update_machine_pool(
    request: Request, cloud_type: str, config_uid: str, pool_name: str
) -> Response:
    state = _state(request)
    entity = _parse(MachinePoolEntity, await request.body())
    with state.write_lock:
        try:
            cluster = _cloud_config_cluster(request, cloud_type, config_uid)
            index = _pool_index(cluster, pool_name)
            pool = _updated_pool(cluster, cluster.pools[index], pool_name, entity)
            pools = tuple(pool if i == index else p for i, p in enumerate(cluster.pools))
            _replace_cluster(state, cluster, pools=pools)
        except ApiError as exc:
            _record(state, request, exc.status)
            raise
        _record(state, request, 204)

    logger.info(
        "simulator: pool %s of cluster %s now has size %d (%s..%s), %s, %s",
        pool_name,
        cluster.name,
        pool.size,
        pool.min_size,
        pool.max_size,
        pool.instance_type,
        pool.capacity_type,
    )
    return Response(status_code=204)


@write_router.patch("/v1/spectroclusters/{uid}/metadata", status_code=204)
async def update_cluster_metadata(request: Request, uid: str) -> Response:
    state = _state(request)
    body = _parse(MetadataInputSchema, await request.body())
    metadata = body.metadata
    with state.write_lock:
        try:
            _check_labels("metadata.labels", metadata.labels or {})
            cluster = _cluster_or_404(request, uid)
            if metadata.name is not None and metadata.name != cluster.name:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"metadata.name {metadata.name!r}: a cluster's name cannot be changed "
                    f"(it is {cluster.name!r}); leave name out or send the current name",
                )
            changes: dict[str, Any] = {}
            if metadata.labels is not None:
                changes["labels"] = dict(metadata.labels)
            if metadata.annotations is not None:
                changes["annotations"] = dict(metadata.annotations)
            _replace_cluster(state, cluster, **changes)
        except ApiError as exc:
            _record(state, request, exc.status)
            raise
        _record(state, request, 204)

    logger.info("simulator: metadata of cluster %s updated: %s", cluster.name, sorted(changes))
    return Response(status_code=204)


@write_router.get("/v1/spectroclusters/{uid}/assets/kubeconfig")
def cluster_kubeconfig(request: Request, uid: str, frp: bool = True) -> Response:
    """Return the cluster's kubeconfig; ``frp`` (Palette's reverse-proxy switch) is ignored."""
    state = _state(request)
    cluster = _cluster_or_404(request, uid)
    settings = state.settings
    if settings.kubernetes_api_url is None:
        raise ApiError(
            404,
            "ResourceNotFound",
            f"kubeconfig of cluster {uid!r} not found: the simulator has no Kubernetes API "
            "server; set kubernetes_api_url in its settings",
        )

    text = kubeconfig_yaml(
        cluster, settings.kubernetes_api_url, settings.kubernetes_token, settings.kubernetes_ca_data
    )
    headers = {"Content-Disposition": f'attachment; filename="{cluster.name}.kubeconfig"'}
    return Response(text, media_type="application/octet-stream", headers=headers)


def kubeconfig_yaml(cluster: Cluster, server: str, token: str, ca_data: str | None) -> str:
    """Build a kubeconfig with one cluster, one token user and one current context."""
    cluster_entry: dict[str, Any] = {"server": server}
    if ca_data:
        cluster_entry["certificate-authority-data"] = ca_data
    user = f"{cluster.name}-admin"
    context = f"{user}@{cluster.name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster.name, "cluster": cluster_entry}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": cluster.name, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


def _record(state: SimulatorState, request: Request, status: int) -> None:
    state.writes.append((request.method, request.url.path, status))


def _parse(model: type[ModelT], body: bytes) -> ModelT:
    """Parse a JSON request body, raising a 400 ``ApiError`` that names the invalid fields."""
    try:
        data = json.loads(body or b"null")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "BadRequest", f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(
            400, "BadRequest", f"request body must be a JSON object, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ApiError(400, "BadRequest", f"invalid {model.__name__}: {problems}") from exc


def _cloud_config_cluster(request: Request, cloud_type: str, config_uid: str) -> Cluster:
    if cloud_type not in CLOUD_TYPE_PROVIDERS:
        raise ApiError(404, "ResourceNotFound", f"cloud type {cloud_type!r} not found")
    for cluster in _clusters_in_scope(request):
        if cluster.cloud_config_uid == config_uid and cluster.cloud_type == cloud_type:
            return cluster
    raise ApiError(404, "ResourceNotFound", f"{cloud_type} cloud config {config_uid!r} not found")


def _pool_index(cluster: Cluster, pool_name: str) -> int:
    for index, pool in enumerate(cluster.pools):
        if pool.name == pool_name:
            return index
    names = ", ".join(pool.name for pool in cluster.pools)
    raise ApiError(
        404,
        "ResourceNotFound",
        f"machine pool {pool_name!r} not found in cloud config {cluster.cloud_config_uid!r}; "
        f"its pools are {names}",
    )


def _updated_pool(
    cluster: Cluster, pool: MachinePool, pool_name: str, entity: MachinePoolEntity
) -> MachinePool:
    """Return ``pool`` with the values of the PUT body, or raise 400/422 naming the field."""
    config = entity.pool_config
    if config is None:
        raise ApiError(400, "BadRequest", "poolConfig is required: send the whole machine pool")
    if config.name != pool_name:
        raise ApiError(
            400,
            "BadRequest",
            f"poolConfig.name {config.name!r} does not match the machine pool {pool_name!r} "
            "in the path",
        )
    if config.is_control_plane != pool.is_control_plane:
        raise ApiError(
            422, "InvalidArgument", "poolConfig.isControlPlane cannot change on an existing pool"
        )

    min_size, max_size = _size_limits(config)
    instance_type = _instance_type(cluster, pool, entity.cloud_config.instance_type)
    capacity_type = _capacity_type(cluster, pool, entity.cloud_config.capacity_type)
    return _priced(cluster, pool, config.size, min_size, max_size, instance_type, capacity_type)


def _size_limits(config: PoolConfigEntity) -> tuple[int, int]:
    """Return the pool's (minSize, maxSize); a body without them turns autoscaling off."""
    if config.size < 0:
        raise ApiError(422, "InvalidArgument", f"poolConfig.size {config.size} must be >= 0")
    min_size = config.size if config.min_size is None else config.min_size
    max_size = config.size if config.max_size is None else config.max_size
    if min_size < 0 or min_size > max_size:
        raise ApiError(
            422,
            "InvalidArgument",
            f"poolConfig.minSize {min_size} and maxSize {max_size} must satisfy "
            "0 <= minSize <= maxSize",
        )
    if not min_size <= config.size <= max_size:
        raise ApiError(
            422,
            "InvalidArgument",
            f"poolConfig.size {config.size} must lie between minSize {min_size} and maxSize "
            f"{max_size}",
        )
    return min_size, max_size


def _instance_type(cluster: Cluster, pool: MachinePool, requested: str | None) -> str:
    provider = cluster.provider
    if requested is None:
        if provider in ("aws", "gcp"):
            raise ApiError(400, "BadRequest", "cloudConfig.instanceType is required")
        return pool.instance_type
    if not requested.strip():
        raise ApiError(400, "BadRequest", "cloudConfig.instanceType must not be empty")
    return requested


def _capacity_type(cluster: Cluster, pool: MachinePool, requested: str | None) -> str:
    if cluster.provider != "aws":
        # Azure and GCP pool entities have no capacityType field; unknown fields are ignored.
        return pool.capacity_type
    if requested is None:
        return "on-demand"
    if requested not in CAPACITY_TYPES:
        raise ApiError(
            422,
            "InvalidArgument",
            f"cloudConfig.capacityType {requested!r} is not supported by the simulator; use "
            f"{' or '.join(CAPACITY_TYPES)}",
        )
    return requested


def _priced(
    cluster: Cluster,
    pool: MachinePool,
    size: int,
    min_size: int,
    max_size: int,
    instance_type: str,
    capacity_type: str,
) -> MachinePool:
    catalog = PriceCatalog.packaged()
    try:
        shape = catalog.shape(cluster.cloud_type, instance_type)
        price = catalog.hourly_price(cluster.cloud_type, cluster.region, instance_type)
    except PriceNotFoundError as exc:
        raise ApiError(
            422,
            "InvalidArgument",
            f"cloudConfig.instanceType {instance_type!r} is not offered in {cluster.cloud_type} "
            f"region {cluster.region}: {exc}",
        ) from exc

    return dataclasses.replace(
        pool,
        size=size,
        min_size=min_size,
        max_size=max_size,
        instance_type=instance_type,
        capacity_type=capacity_type,  # type: ignore[arg-type]
        hourly_price=price,
        vcpus=shape.vcpus,
        memory_gib=shape.memory_gib,
        gpus=shape.gpus,
    )


def _check_labels(where: str, labels: dict[str, str]) -> None:
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if not LABEL_NAME.match(name) or (prefix and not LABEL_PREFIX.match(prefix)):
            raise ApiError(
                400,
                "BadRequest",
                f"{where}: key {key!r} is not a valid label key (an optional DNS prefix and "
                "'/', then at most 63 letters, digits, '-', '_' or '.')",
            )
        if not LABEL_VALUE.match(value):
            raise ApiError(
                400,
                "BadRequest",
                f"{where}[{key!r}]: value {value!r} is not a valid label value (at most 63 "
                "letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
            )


def _replace_cluster(state: SimulatorState, cluster: Cluster, **changes: Any) -> None:
    """Swap in a fleet where ``cluster`` has ``changes``. The caller must own ``write_lock``."""
    fleet = state.fleet
    changed = dataclasses.replace(cluster, modified_at=fleet.as_of, **changes)
    clusters = tuple(changed if item.uid == cluster.uid else item for item in fleet.clusters)
    state.fleet = dataclasses.replace(fleet, clusters=clusters)
