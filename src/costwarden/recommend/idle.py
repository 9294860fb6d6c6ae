"""Idle resources: volumes no pod mounts or writes, and machine pools with almost no CPU use."""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from costwarden.domain.recommendation import PriceUsed, Recommendation, Savings, Target
from costwarden.domain.usage import NodeUsage, VolumeUsage
from costwarden.errors import PriceNotFoundError
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.recommend.palette import machine_pool_update
from costwarden.recommend.pricing import GIB, pool_node_price, price_used
from costwarden.recommend.registry import RECOMMENDERS
from costwarden.sources.prices import PriceCatalog, Provider

logger = logging.getLogger(__name__)


class IdleVolumesSettings(BaseModel):
    """Options of the idle volumes recommender."""

    model_config = ConfigDict(extra="forbid")

    include_mounted: bool = Field(
        True,
        description="Also report mounted claims whose used bytes never changed in the window "
        "and stay below max_used_percent of their capacity.",
    )
    max_used_percent: float = Field(
        5, ge=0, le=100, description="Fill level below which an unchanged mounted claim is idle."
    )


@RECOMMENDERS.register("idle-volumes", IdleVolumesSettings)
class IdleVolumesRecommender:
    """Delete PersistentVolumeClaims that no pod used in the window, after a snapshot.

    Method: a claim no running pod mounted during the window (no kubelet volume statistics) is
    unattached, with high confidence. A mounted claim whose used bytes did not change over the
    window and stay below ``max_used_percent`` of capacity is reported with low confidence,
    because reads leave no trace in those statistics. Both need ``min_history_days`` of
    kube-state-metrics data. Savings are the claim's size (capacity, else the request) times the
    provider's disk price per GiB-hour; the provider is that of the cluster's node pools.
    """

    name: str

    def __init__(self, settings: IdleVolumesSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        found = []
        for volume in bundle.volumes.items:
            if not volume.mounted:
                found.append(self._recommendation(bundle, volume, "high"))
            elif self.settings.include_mounted and self._unused(volume):
                found.append(self._recommendation(bundle, volume, "low"))
        return found

    def _unused(self, volume: VolumeUsage) -> bool:
        size = volume.capacity_bytes or volume.requested_bytes
        if volume.used_min_bytes is None or volume.used_max_bytes is None or not size:
            return False
        unchanged = volume.used_max_bytes == volume.used_min_bytes
        return unchanged and volume.used_max_bytes / size * 100 < self.settings.max_used_percent

    def _recommendation(
        self, bundle: RecommendInput, volume: VolumeUsage, confidence: str
    ) -> Recommendation:
        key = volume.volume
        size_bytes = volume.capacity_bytes or volume.requested_bytes or 0.0
        state = "not mounted by any pod" if not volume.mounted else "mounted but unchanged"
        return Recommendation(
            kind=self.name,
            title=f"Snapshot and delete claim {key.namespace}/{key.claim} "
            f"({size_bytes / GIB:.0f} GiB, {state})",
            target=Target(key.cluster, "PersistentVolumeClaim", key.claim, key.namespace),
            before={
                "exists": True,
                "size_bytes": size_bytes,
                "storage_class": volume.storage_class,
            },
            after={"exists": False, "snapshot": True},
            savings=_volume_savings(bundle, key.cluster, size_bytes),
            confidence=confidence,  # type: ignore[arg-type]
            risk="high" if volume.mounted else "medium",
            risk_note="deleting the claim deletes its volume under a Delete reclaim policy; "
            "keep a snapshot until its owner confirms",
            effort="low",
            reversible=False,
            resources=frozenset({f"volume:{key.cluster}/{key.namespace}/{key.claim}"}),
            manual_change=f"kubectl -n {key.namespace} delete pvc {key.claim} after a "
            "VolumeSnapshot; Palette's API does not manage claims",
            evidence={
                "mounted": volume.mounted,
                "used_min_bytes": volume.used_min_bytes,
                "used_max_bytes": volume.used_max_bytes,
                "queries": list(bundle.volumes.queries),
            },
        )


def cluster_provider(bundle: RecommendInput, cluster: str) -> Provider | None:
    return next((p.provider for p in bundle.pools if p.cluster == cluster and p.provider), None)


def disk_price(bundle: RecommendInput, cluster: str) -> PriceUsed | None:
    """Return the disk price per GiB-hour of a cluster's provider, None when it is unknown."""
    provider = cluster_provider(bundle, cluster)
    region = next((p.region for p in bundle.pools if p.cluster == cluster and p.region), None)
    if provider is None or region is None:
        return None
    try:
        price = bundle.prices.storage_price(provider, region)
    except PriceNotFoundError as exc:
        logger.warning("no disk price for cluster %s: %s", cluster, exc)
        return None
    return PriceUsed(
        item=f"{provider} {region} disk", amount=price.usd_per_gib_hour, unit="per GiB-hour",
        source=price.source, published=price.published, currency=price.currency,
    )  # fmt: skip


def _volume_savings(bundle: RecommendInput, cluster: str, size_bytes: float) -> Savings:
    price = disk_price(bundle, cluster)
    if price is None:
        return Savings(Decimal(0), "USD", "not estimated: no disk price for the cluster")
    gib = Decimal(str(round(size_bytes / GIB, 6)))
    method = f"{gib} GiB x {price.amount} per GiB-hour"
    return Savings.from_hourly(gib * price.amount, price.currency, method, (price,))


class IdlePoolsSettings(BaseModel):
    """Options of the idle pools recommender."""

    model_config = ConfigDict(extra="forbid")

    max_cpu_percent: float = Field(
        5,
        gt=0,
        le=100,
        description="Mean CPU use over the window, in percent of allocatable, below which "
        "every node of a pool must stay for the pool to count as idle.",
    )


@RECOMMENDERS.register("idle-pools", IdlePoolsSettings)
class IdlePoolsRecommender:
    """Scale machine pools to zero whose nodes stayed almost idle.

    Method: node-exporter's mean non-idle CPU over the window, divided by the node's
    allocatable CPU, must stay below ``max_cpu_percent`` on every node of the pool, and every
    node needs ``min_history_days`` of data. The proposal sets the pool's size and minimum to
    zero. Savings are the pool's nodes times the on-demand list price of its instance type.
    """

    name: str

    def __init__(self, settings: IdlePoolsSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        by_pool: dict[PoolRef, list[NodeUsage]] = defaultdict(list)
        for usage in bundle.node_usage.items:
            pool = bundle.pool_of_node(usage.node.cluster, usage.node.node)
            if pool is not None:
                by_pool[pool].append(usage)

        found = []
        for pool, usages in sorted(by_pool.items(), key=lambda item: item[0].resource):
            percents = {usage.node.node: _cpu_percent(usage) for usage in usages}
            measured = {node: value for node, value in percents.items() if value is not None}
            if len(measured) < len(pool.nodes):
                continue
            if max(measured.values()) < self.settings.max_cpu_percent:
                found.append(self._recommendation(bundle, pool, measured))
        return found

    def _recommendation(
        self, bundle: RecommendInput, pool: PoolRef, percents: dict[str, float]
    ) -> Recommendation:
        return Recommendation(
            kind=self.name,
            title=f"Scale idle pool {pool.cluster}/{pool.name} from {len(pool.nodes)} nodes to 0 "
            f"(CPU at most {max(percents.values()):.1f}% of allocatable)",
            target=Target(pool.cluster, "MachinePool", pool.name, pool=pool.name),
            before={"size": len(pool.nodes)},
            after={"size": 0, "minSize": 0},
            savings=pool_savings(bundle.prices, pool),
            confidence="medium",
            risk="medium",
            risk_note="pods that still run there must fit elsewhere; a pool used in bursts "
            "outside the window would be missing",
            effort="low",
            reversible=True,
            resources=frozenset({pool.resource}),
            api_call=machine_pool_update(pool, pool_config={"size": 0, "minSize": 0}),
            ui_link=bundle.ui_link(pool),
            evidence={
                "cpu_percent_per_node": percents,
                "queries": list(bundle.node_usage.queries),
            },
        )


def _cpu_percent(usage: NodeUsage) -> float | None:
    if usage.info is None or not usage.info.cpu_allocatable_cores:
        return None
    return usage.cpu_mean_cores / usage.info.cpu_allocatable_cores * 100


def pool_savings(catalog: PriceCatalog, pool: PoolRef, nodes: int | None = None) -> Savings:
    """Return the savings of removing ``nodes`` nodes of a pool, by default all it has."""
    count = len(pool.nodes) if nodes is None else nodes
    price = pool_node_price(catalog, pool)
    if price is None:
        return Savings(Decimal(0), "USD", "not estimated: no list price for the pool")
    method = f"{count} node(s) x {price.instance_type} {price.capacity_type} price"
    per_hour = price.usd_per_hour * count
    return Savings.from_hourly(per_hour, price.currency, method, (price_used(price),))
