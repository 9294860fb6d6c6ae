"""The Palette API calls and console links that apply machine pool changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costwarden.domain.recommendation import ApiCall
from costwarden.recommend.inputs import PoolRef

POOL_PATH = "/v1/cloudconfigs/{cloud}/{config}/machinePools/{pool}"

PUT_NOTE = (
    "PUT replaces the whole pool entity (HTTP 204 on success): read the pool with "
    "GET /v1/cloudconfigs/{cloudType}/{configUid} and send it back with these fields changed"
)


def machine_pool_update(
    pool: PoolRef,
    *,
    pool_config: Mapping[str, Any] | None = None,
    cloud_config: Mapping[str, Any] | None = None,
) -> ApiCall:
    """Return the ``PUT .../machinePools/{name}`` call with the changed fields of the entity.

    Unknown Palette ids stay as ``{cloudType}`` and ``{configUid}`` placeholders in the path. A
    pool read from Palette's cloud config also sends the fields Palette declared for it (size,
    limits, labels and instance type), with the changes on top.
    """
    path = POOL_PATH.format(
        cloud=pool.cloud_type or "{cloudType}",
        config=pool.config_uid or "{configUid}",
        pool=pool.name,
    )
    entity = {"name": pool.name, **_declared_pool(pool), **(pool_config or {})}
    body: dict[str, Any] = {"poolConfig": _within_limits(entity)}
    cloud = {**_declared_cloud(pool), **(cloud_config or {})}
    if cloud:
        body["cloudConfig"] = cloud
    return ApiCall(method="PUT", path=path, body=body, note=PUT_NOTE)


def _within_limits(entity: dict[str, Any]) -> dict[str, Any]:
    """Widen ``minSize`` and ``maxSize`` so that they admit the proposed ``size``."""
    size = entity.get("size")
    if size is None:
        return entity
    if entity.get("minSize") is not None and entity["minSize"] > size:
        entity["minSize"] = size
    if entity.get("maxSize") is not None and entity["maxSize"] < size:
        entity["maxSize"] = size
    return entity


def _declared_pool(pool: PoolRef) -> dict[str, Any]:
    if not pool.from_palette:
        return {}
    declared: dict[str, Any] = {
        "labels": list(pool.pool_labels),
        "isControlPlane": pool.is_control_plane,
    }
    for key, value in (("size", pool.size), ("minSize", pool.min_size), ("maxSize", pool.max_size)):
        if value is not None:
            declared[key] = value
    return declared


def _declared_cloud(pool: PoolRef) -> dict[str, Any]:
    if not pool.from_palette or pool.instance_type is None:
        return {}
    return {"instanceType": pool.instance_type}
