"""Palette's estimated-rate paths on the simulated fleet.

``GET /v1/spectroclusters/{uid}/rate`` prices a cluster's machine pools as they are, and the
what-if ``POST /v1/spectroclusters/{cloud}/rate`` prices pools described in the request body.
Both return ``v1SpectroClusterRate``: the rate of each pool (compute and disks), the cluster
total, and the on-demand and Spot price of each instance type used.

On-demand prices are the simulator's own pool prices, which come from the packaged price lists.
A Spot price is the on-demand price times ``SPOT_PRICE_RATIOS`` of the provider, derived from
the packaged default Spot discount and not a market price. The rate of a ``monthly`` or
``yearly`` period is the hourly rate times the hours in ``PERIOD_HOURS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import Field

from costwarden.errors import PriceNotFoundError
from costwarden.simulator import requests
from costwarden.simulator.guards import ApiError
from costwarden.simulator.model import Cluster
from costwarden.simulator.routes import _cluster_or_404, guard
from costwarden.sources.prices import CLOUD_TYPE_PROVIDERS, PriceCatalog, Provider

PERIOD_HOURS: dict[str, int] = {"hourly": 1, "monthly": 730, "yearly": 8760}
"""Hours of each ``periodType``. A month is 8760 / 12 hours."""

# NOTE: Palette documents neither its month length nor whether its estimate prices Spot pools
# at Spot. The simulator assumes 730 hours and Spot prices for Spot pools.

SPOT_PRICE_RATIOS: dict[Provider, Decimal] = {
    provider: Decimal(1) - PriceCatalog.packaged().spot_discount(provider).discount
    for provider in ("aws", "azure", "gcp")
}
"""The simulator's Spot price as a fraction of the on-demand price, per provider: one minus the
packaged default Spot discount, so that Spot savings agree with or without Palette's rates."""

RATE_CLOUD_TYPES = ("aws", "azure", "gcp", "eks", "aks", "gke")
STORAGE_TYPES: dict[Provider, str] = {"aws": "gp3", "azure": "Premium_LRS", "gcp": "pd-standard"}
DECIMALS = 6


class RatePoolCloudConfig(requests.Body):
    """The cloud part of a machine pool entity: instance type, Spot settings and disk size."""

    instance_type: str = ""
    capacity_type: str = "on-demand"
    spot_vm_options: dict[str, Any] | None = Field(None, alias="spotVMOptions")
    root_device_size: int | None = None
    os_disk: dict[str, Any] | None = None


class RatePoolConfig(requests.Body):
    name: str = ""
    size: int = Field(0, ge=0)


class RatePool(requests.Body):
    """One machine pool entity (``v1AwsMachinePoolConfigEntity`` and its siblings)."""

    cloud_config: RatePoolCloudConfig = Field(default_factory=RatePoolCloudConfig)
    pool_config: RatePoolConfig = Field(default_factory=RatePoolConfig)


class RateSpec(requests.Body):
    """``v1Spectro<Cloud>ClusterRateEntity``, whose pool list key is all lowercase."""

    cloud_config: dict[str, Any] = Field(default_factory=dict)
    machinepoolconfig: list[RatePool] = Field(default_factory=list)


rate_router = APIRouter(dependencies=[Depends(guard)])


@rate_router.get("/v1/spectroclusters/{uid}/rate")
def cluster_rate(request: Request, uid: str, periodType: str = "hourly") -> dict[str, Any]:  # noqa: N803
    hours = _period_hours(periodType)
    cluster = _cluster_or_404(request, uid)
    catalog = PriceCatalog.packaged()
    pools = [
        _PoolLine(
            pool.name,
            pool.instance_type,
            pool.capacity_type == "spot",
            pool.size,
            pool.disk_gib,
            pool.hourly_price,
        )
        for pool in cluster.pools
    ]
    storage_price = catalog.storage_price_per_gib_hour(cluster.cloud_type, cluster.region)
    return _rate_body(cluster.name, cluster.provider, pools, storage_price, hours, _shapes(cluster))


@rate_router.post("/v1/spectroclusters/{cloud}/rate")
def what_if_rate(
    cloud: str,
    spec: Annotated[RateSpec | None, Body()] = None,
    periodType: str = "hourly",  # noqa: N803
) -> dict[str, Any]:
    if cloud not in RATE_CLOUD_TYPES:
        raise ApiError(404, "ResourceNotFound", f"POST /v1/spectroclusters/{cloud}/rate: not found")
    hours = _period_hours(periodType)
    spec = spec or RateSpec()
    provider = CLOUD_TYPE_PROVIDERS[cloud]
    region = _region(cloud, spec.cloud_config)
    catalog = PriceCatalog.packaged()

    try:
        pools = [_what_if_pool(catalog, cloud, region, index, pool)
                 for index, pool in enumerate(spec.machinepoolconfig)]  # fmt: skip
        storage_price = catalog.storage_price_per_gib_hour(cloud, region)
        shapes = {line.instance_type: _catalog_shape(catalog, cloud, line.instance_type)
                  for line in pools}  # fmt: skip
    except PriceNotFoundError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc
    return _rate_body("", provider, pools, storage_price, hours, shapes)


@dataclass(frozen=True, slots=True)
class _PoolLine:
    """One pool to price: its instance type, capacity type, node count and disk size."""

    name: str
    instance_type: str
    spot: bool
    nodes: int
    disk_gib: int
    on_demand: Decimal


def _period_hours(period: str) -> int:
    hours = PERIOD_HOURS.get(period)
    if hours is None:
        raise ApiError(
            400,
            "BadRequest",
            f"periodType {period!r} is not valid; use one of {', '.join(PERIOD_HOURS)}",
        )
    return hours


def _region(cloud: str, cluster_config: dict[str, Any]) -> str:
    """Return the region of a what-if request: ``location`` on Azure, ``region`` elsewhere."""
    field = "location" if CLOUD_TYPE_PROVIDERS[cloud] == "azure" else "region"
    region = cluster_config.get(field)
    if not isinstance(region, str) or not region:
        raise ApiError(
            400, "BadRequest", f"cloudConfig.{field} is required for a {cloud} rate estimate"
        )
    return region


def _what_if_pool(
    catalog: PriceCatalog, cloud: str, region: str, index: int, pool: RatePool
) -> _PoolLine:
    config = pool.cloud_config
    if not config.instance_type:
        raise ApiError(
            400, "BadRequest", f"machinepoolconfig[{index}].cloudConfig.instanceType is required"
        )
    if config.capacity_type not in ("on-demand", "spot"):
        raise ApiError(
            400,
            "BadRequest",
            f"machinepoolconfig[{index}].cloudConfig.capacityType {config.capacity_type!r} is "
            "not valid; use on-demand or spot",
        )
    provider = CLOUD_TYPE_PROVIDERS[cloud]
    spot = config.capacity_type == "spot" or (
        provider == "azure" and config.spot_vm_options is not None
    )
    disk = config.root_device_size or int((config.os_disk or {}).get("diskSizeGB") or 0)
    price = catalog.hourly_price(cloud, region, config.instance_type)
    name = pool.pool_config.name or f"pool-{index}"
    return _PoolLine(name, config.instance_type, spot, pool.pool_config.size, disk, price)


def _rate_body(
    name: str,
    provider: Provider,
    pools: list[_PoolLine],
    storage_price: Decimal,
    hours: int,
    shapes: dict[str, tuple[float, float, float]],
) -> dict[str, Any]:
    """Build ``v1SpectroClusterRate`` from the pools to price."""
    ratio = SPOT_PRICE_RATIOS[provider]
    lines = []
    compute_total = storage_total = Decimal(0)
    for pool in pools:
        unit = pool.on_demand * ratio if pool.spot else pool.on_demand
        compute = unit * pool.nodes * hours
        storage = storage_price * pool.disk_gib * pool.nodes * hours
        compute_total += compute
        storage_total += storage
        lines.append(_pool_rate(pool, provider, compute, storage))

    instance_types = {
        pool.instance_type: _instance_type(pool, ratio, shapes[pool.instance_type])
        for pool in pools
    }
    return {
        "name": name,
        "rate": {
            "compute": _number(compute_total),
            "storage": _number(storage_total),
            "total": _number(compute_total + storage_total),
        },
        "machinePools": lines,
        "resourceMetadata": {"instanceTypes": instance_types, "storageTypes": {}},
    }


def _pool_rate(
    pool: _PoolLine, provider: Provider, compute: Decimal, storage: Decimal
) -> dict[str, Any]:
    disk = {
        "type": STORAGE_TYPES[provider],
        "sizeGB": float(pool.disk_gib),
        "rate": _number(storage),
        "iops": 0.0,
        "throughput": 0.0,
    }
    return {
        "name": pool.name,
        "nodesCount": pool.nodes,
        "rate": {
            "total": _number(compute + storage),
            "compute": {"type": pool.instance_type, "rate": _number(compute)},
            "storage": [disk] if pool.disk_gib else [],
        },
    }


def _instance_type(
    pool: _PoolLine, ratio: Decimal, shape: tuple[float, float, float]
) -> dict[str, Any]:
    """Build ``v1InstanceType``; ``memory`` is in MiB and ``price`` the on-demand price."""
    cpu, memory_gib, gpu = shape
    on_demand = _number(pool.on_demand)
    return {
        "type": pool.instance_type,
        "category": "gpu" if gpu else "general",
        "cpu": cpu,
        "memory": memory_gib * 1024,
        "gpu": gpu,
        "price": on_demand,
        "cost": {
            "price": [
                {"onDemand": on_demand, "spot": _number(pool.on_demand * ratio), "os": "linux"}
            ]
        },
        "nonSupportedZones": [],
        "supportedArchitectures": ["amd64"],
    }


def _shapes(cluster: Cluster) -> dict[str, tuple[float, float, float]]:
    return {
        pool.instance_type: (float(pool.vcpus), pool.memory_gib, float(pool.gpus))
        for pool in cluster.pools
    }


def _catalog_shape(
    catalog: PriceCatalog, cloud: str, instance_type: str
) -> tuple[float, float, float]:
    try:
        shape = catalog.shape(cloud, instance_type)
    except PriceNotFoundError:
        return 0.0, 0.0, 0.0
    return float(shape.vcpus), shape.memory_gib, float(shape.gpus)


def _number(amount: Decimal) -> float:
    return round(float(amount), DECIMALS)
