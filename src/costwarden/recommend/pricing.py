"""Prices for the recommenders: a node's hourly price and a cluster's price per vCPU and GiB.

A cluster's price of one vCPU-hour and one GiB-hour comes from the list prices of its non-GPU
nodes. Each node's hourly price is split between its vCPUs and its memory in the ratio of
OpenCost's default unit prices for the provider (the split OpenCost itself uses for allocation),
and the result is averaged over the nodes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from costwarden.domain.recommendation import PriceUsed
from costwarden.errors import PriceNotFoundError
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.sources.prices import (
    CURRENCY,
    UNIT_PRICE_SOURCES,
    InstancePrice,
    PriceCatalog,
    provider_of,
)

logger = logging.getLogger(__name__)

GIB = 2.0**30


@dataclass(frozen=True, slots=True)
class ResourceRates:
    """The price of one vCPU for one hour and of one GiB of memory for one hour."""

    cpu_core_hour: Decimal
    memory_gib_hour: Decimal
    currency: str
    prices: tuple[PriceUsed, ...]


def price_used(price: InstancePrice) -> PriceUsed:
    return PriceUsed(
        item=f"{price.provider} {price.region} {price.instance_type} {price.capacity_type}",
        amount=price.usd_per_hour,
        unit="per instance-hour",
        source=price.source,
        published=price.published,
        currency=price.currency,
    )


def pool_node_price(catalog: PriceCatalog, pool: PoolRef) -> InstancePrice | None:
    """Return the hourly price of one node of a pool, None when it has none.

    A pool whose nodes all run on Spot is priced at the Spot price (``PriceCatalog.spot_price``),
    any other pool at the on-demand price.

    NOTE: a pool that mixes Spot and on-demand nodes is priced on demand, which overstates the
    savings of changes to it.
    """
    if pool.provider is None or pool.region is None or pool.instance_type is None:
        return None
    try:
        if is_spot(pool):
            return catalog.spot_price(pool.provider, pool.region, pool.instance_type)
        return catalog.instance_price(pool.provider, pool.region, pool.instance_type)
    except PriceNotFoundError as exc:
        logger.warning("no price for pool %s/%s: %s", pool.cluster, pool.name, exc)
        return None


def on_demand_price(catalog: PriceCatalog, pool: PoolRef) -> InstancePrice | None:
    """Return the on-demand price of one node of a pool, whatever its capacity type."""
    if pool.provider is None or pool.region is None or pool.instance_type is None:
        return None
    try:
        return catalog.instance_price(pool.provider, pool.region, pool.instance_type)
    except PriceNotFoundError as exc:
        logger.warning("no price for pool %s/%s: %s", pool.cluster, pool.name, exc)
        return None


def is_spot(pool: PoolRef) -> bool:
    """Return whether every node of the pool is Spot, or Palette's setting when it has none."""
    return pool.capacity_types == ("spot",)


def cluster_rates(bundle: RecommendInput, cluster: str) -> ResourceRates | None:
    """Return the mean price per vCPU-hour and GiB-hour of a cluster's priced non-GPU nodes."""
    cpu_total = Decimal(0)
    memory_total = Decimal(0)
    nodes = 0
    used: list[PriceUsed] = []
    for pool in bundle.pools:
        if pool.cluster != cluster:
            continue
        split = _split_price(bundle.prices, pool)
        if split is None:
            continue
        cpu_rate, memory_rate, price = split
        cpu_total += cpu_rate * len(pool.nodes)
        memory_total += memory_rate * len(pool.nodes)
        nodes += len(pool.nodes)
        if (price_item := price_used(price)) not in used:
            used.append(price_item)
        ratio = unit_split_price(bundle.prices, price.provider)
        if ratio not in used:
            used.append(ratio)

    if nodes == 0:
        return None
    return ResourceRates(cpu_total / nodes, memory_total / nodes, CURRENCY, tuple(used))


def _split_price(
    catalog: PriceCatalog, pool: PoolRef
) -> tuple[Decimal, Decimal, InstancePrice] | None:
    price = pool_node_price(catalog, pool)
    if price is None or pool.provider is None or pool.instance_type is None:
        return None
    try:
        shape = catalog.shape(pool.provider, pool.instance_type)
    except PriceNotFoundError:
        logger.warning("no machine shape for %s; pool %s/%s left out of unit prices",
                       pool.instance_type, pool.cluster, pool.name)  # fmt: skip
        return None
    if shape.gpus:
        return None

    units = catalog.unit_prices(pool.provider)
    memory_gib = Decimal(str(shape.memory_gib))
    weight = units.cpu_hour * shape.vcpus + units.ram_gib_hour * memory_gib
    cpu_rate = price.usd_per_hour * units.cpu_hour / weight
    memory_rate = price.usd_per_hour * units.ram_gib_hour / weight
    return cpu_rate, memory_rate, price


def unit_split_price(catalog: PriceCatalog, provider: str) -> PriceUsed:
    """Describe the OpenCost unit prices used for the vCPU and memory split."""
    units = catalog.unit_prices(provider)
    source = UNIT_PRICE_SOURCES[provider_of(provider)]
    return PriceUsed(
        item=f"{provider} vCPU:GiB split ratio {units.cpu_hour}:{units.ram_gib_hour}",
        amount=units.cpu_hour,
        unit="per vCPU-hour (ratio only)",
        source=source.upstream,
        published=source.published,
    )
