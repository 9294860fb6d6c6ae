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

    Unknown Palette ids stay as ``{cloudType}`` and ``{configUid}`` placeholders in the path.
    """
    path = POOL_PATH.format(
        cloud=pool.cloud_type or "{cloudType}",
        config=pool.config_uid or "{configUid}",
        pool=pool.name,
    )
    body: dict[str, Any] = {"poolConfig": {"name": pool.name, **(pool_config or {})}}
    if cloud_config:
        body["cloudConfig"] = dict(cloud_config)
    return ApiCall(method="PUT", path=path, body=body, note=PUT_NOTE)
