"""Machine pools and instance prices read from Palette, merged into the recommenders' input.

``read_palette_pools`` lists clusters and reads each cloud config, so pools carry the ids that
make the Palette API call of a recommendation concrete. ``merge_pools`` joins them with the pools
grouped from Prometheus node labels: a node's pool label value is the machine pool's name.
``read_palette_prices`` reads each cluster's estimated rate, whose per-instance-type on-demand and
Spot prices then win over the packaged price lists. ``with_palette_inputs`` does all three for a
bundle when a Palette API key is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from costwarden.config import Settings
from costwarden.errors import PaletteAuthError, PaletteError, PriceNotFoundError
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.sources.palette.client import PaletteClient
from costwarden.sources.palette.models import (
    CloudConfig,
    ClusterSummary,
    InstanceTypeRate,
    MachinePoolConfig,
)
from costwarden.sources.prices import (
    CURRENCY,
    CapacityType,
    InstancePrice,
    MachineShape,
    PriceCatalog,
    Provider,
    SpotDiscount,
    provider_of,
)

logger = logging.getLogger(__name__)

PALETTE_RATE_SOURCE = "Palette rate API (GET /v1/spectroclusters/{uid}/rate, {region})"
SPOT_CLOUD_TYPES = ("aws", "eks")
SPOT_VM_CLOUD_TYPES = ("azure", "aks")


@dataclass(frozen=True, slots=True)
class PoolMerge:
    """The merged pools, and those found on one side only (also part of ``pools``)."""

    pools: tuple[PoolRef, ...]
    palette_only: tuple[PoolRef, ...]
    prometheus_only: tuple[PoolRef, ...]


def read_palette_pools(
    client: PaletteClient, *, clusters: Iterable[str] | None = None
) -> tuple[PoolRef, ...]:
    """Read the machine pools of every active cluster, or of the clusters with these names.

    A cluster whose cloud config cannot be read is logged and left out.
    """
    selected = set(clusters) if clusters is not None else None
    pools: list[PoolRef] = []
    for summary in client.search_clusters(active_only=True):
        if selected is not None and summary.metadata.name not in selected:
            continue
        meta = summary.spec_summary.cloud_config
        if meta is None or not meta.uid or not meta.cloud_type:
            logger.warning("cluster %s has no cloud config uid; pools not read",
                           summary.metadata.name)  # fmt: skip
            continue
        try:
            config = client.cloud_config(meta.cloud_type, meta.uid)
        except PaletteError as exc:
            logger.warning(
                "reading the cloud config of cluster %s failed: %s", summary.metadata.name, exc
            )
            continue
        pools.extend(pools_of_config(summary, config))

    logger.info("read %d machine pools from Palette", len(pools))
    return tuple(pools)


def pools_of_config(summary: ClusterSummary, config: CloudConfig) -> tuple[PoolRef, ...]:
    """Return the pools of one cluster's cloud config, with the cluster's ids and labels."""
    meta = summary.spec_summary.cloud_config
    cloud_type = meta.cloud_type if meta is not None else ""
    cluster_config = config.spec.cluster_config
    project = summary.spec_summary.project_meta
    base = PoolRef(
        cluster=summary.metadata.name,
        name="",
        provider=_provider(cloud_type),
        region=cluster_config.region or cluster_config.location or None,
        instance_type=None,
        nodes=(),
        cloud_type=cloud_type,
        config_uid=config.metadata.uid or (meta.uid if meta is not None else None),
        cluster_uid=summary.metadata.uid or None,
        project_uid=project.uid if project is not None and project.uid else None,
        cluster_labels=tuple(sorted(summary.metadata.labels.items())),
    )
    return tuple(_pool(base, entry) for entry in config.spec.machine_pool_config)


def _pool(base: PoolRef, entry: MachinePoolConfig) -> PoolRef:
    disk = entry.root_device_size
    if disk is None and entry.os_disk is not None:
        disk = entry.os_disk.disk_size_gb
    if disk is None and entry.instance_config is not None:
        disk = entry.instance_config.disk_gib
    return replace(
        base,
        name=entry.name,
        instance_type=entry.instance_type or None,
        capacity_types=(capacity_type(base.cloud_type or "", entry),),
        size=entry.size,
        min_size=entry.min_size,
        max_size=entry.max_size,
        disk_gib=disk,
        is_control_plane=entry.is_control_plane,
        is_system_pool=entry.is_system_node_pool,
        pool_labels=tuple(entry.labels),
    )


def capacity_type(cloud_type: str, entry: MachinePoolConfig) -> str:
    """Return ``spot`` or ``on-demand`` from a pool entity's cloud-specific Spot fields.

    AWS and EKS set ``capacityType``. Azure and AKS pools run on Spot when ``spotVMOptions`` is
    present, even empty. Palette's GCP and GKE pool entities have no Spot field.
    """
    if cloud_type in SPOT_CLOUD_TYPES and entry.capacity_type == "spot":
        return "spot"
    if cloud_type in SPOT_VM_CLOUD_TYPES and entry.spot_vm_options is not None:
        return "spot"
    return "on-demand"


def merge_pools(prometheus_pools: Iterable[PoolRef], palette_pools: Iterable[PoolRef]) -> PoolMerge:
    """Join pools by cluster name and pool name: Prometheus's nodes with Palette's ids and shape.

    A pool on one side only is logged and kept, because a Palette pool without nodes in
    Prometheus still costs money.
    """
    palette = {(pool.cluster, pool.name): pool for pool in palette_pools}
    merged: list[PoolRef] = []
    prometheus_only: list[PoolRef] = []
    for pool in prometheus_pools:
        match = palette.pop((pool.cluster, pool.name), None)
        if match is None:
            prometheus_only.append(pool)
            merged.append(pool)
            continue
        merged.append(_merged(pool, match))

    palette_only = tuple(palette.values())
    merged.extend(palette_only)
    _log_one_sided(prometheus_only, palette_only)
    return PoolMerge(tuple(merged), palette_only, tuple(prometheus_only))


def _merged(observed: PoolRef, declared: PoolRef) -> PoolRef:
    """Keep the nodes seen in Prometheus and take everything else that Palette declares."""
    if observed.instance_type and observed.instance_type != declared.instance_type:
        logger.warning(
            "pool %s/%s: nodes run %s but Palette declares %s; using Palette's",
            observed.cluster,
            observed.name,
            observed.instance_type,
            declared.instance_type,
        )
    return replace(
        declared,
        nodes=observed.nodes,
        capacity_types=observed.capacity_types or declared.capacity_types,
        region=declared.region or observed.region,
        provider=declared.provider or observed.provider,
        instance_type=declared.instance_type or observed.instance_type,
    )


LOGGED_POOL_NAMES = 5
"""Pool names a one-sided pool warning lists; the debug log lists them all."""


def _log_one_sided(prometheus_only: list[PoolRef], palette_only: tuple[PoolRef, ...]) -> None:
    for pools, text in (
        (tuple(prometheus_only), "pools have nodes in Prometheus but no Palette machine pool"),
        (palette_only, "Palette machine pools have no nodes in Prometheus"),
    ):
        if not pools:
            continue
        names = [f"{pool.cluster}/{pool.name}" for pool in pools]
        more = len(names) - LOGGED_POOL_NAMES
        listed = ", ".join(names[:LOGGED_POOL_NAMES]) + (f" and {more} more" if more > 0 else "")
        logger.warning("%d %s: %s", len(names), text, listed)
        logger.debug("all %s: %s", text, ", ".join(names))


def read_palette_prices(
    client: PaletteClient, pools: Iterable[PoolRef]
) -> tuple[list[InstancePrice], dict[tuple[Provider, str], MachineShape]]:
    """Read the on-demand and Spot price and the shape of each instance type the pools use.

    One ``GET /v1/spectroclusters/{uid}/rate`` per cluster. The prices are dated the day they
    were read. A cluster whose rate cannot be read keeps the packaged prices.
    """
    clusters: dict[str, PoolRef] = {}
    for pool in pools:
        if pool.cluster_uid and pool.provider and pool.region:
            clusters.setdefault(pool.cluster_uid, pool)

    prices: list[InstancePrice] = []
    shapes: dict[tuple[Provider, str], MachineShape] = {}
    for uid, pool in clusters.items():
        try:
            rate = client.cluster_rate(uid, "hourly")
        except PaletteError as exc:
            logger.warning("reading the rate of cluster %s failed, using packaged prices: %s",
                           pool.cluster, exc)  # fmt: skip
            continue
        for instance_type, info in rate.resource_metadata.instance_types.items():
            prices.extend(_instance_prices(pool, instance_type, info))
            shape = _shape(info)
            if shape is not None and pool.provider is not None:
                shapes[(pool.provider, instance_type)] = shape

    logger.info("read %d instance prices from Palette for %d clusters", len(prices), len(clusters))
    return prices, shapes


def _instance_prices(
    pool: PoolRef, instance_type: str, info: InstanceTypeRate
) -> list[InstancePrice]:
    entries = info.cost.price
    entry = next((item for item in entries if item.os.lower() == "linux"), None)
    entry = entry or (entries[0] if entries else None)
    if entry is None or pool.provider is None or pool.region is None:
        return []

    today = datetime.now(UTC).date()
    # One price per provider, region and instance type serves every cluster, so the source
    # names the region rather than the cluster whose rate was read first.
    source = PALETTE_RATE_SOURCE.replace("{region}", pool.region)
    offers: tuple[tuple[CapacityType, Decimal], ...] = (
        ("on-demand", entry.on_demand),
        ("spot", entry.spot),
    )
    found = []
    for capacity, amount in offers:
        if amount > 0:
            found.append(
                InstancePrice(
                    provider=pool.provider,
                    region=pool.region,
                    instance_type=instance_type,
                    capacity_type=capacity,
                    usd_per_hour=amount,
                    source=source,
                    published=today,
                    currency=CURRENCY,
                )
            )
    return found


def _shape(info: InstanceTypeRate) -> MachineShape | None:
    if not info.cpu or not info.memory:
        return None
    return MachineShape(int(info.cpu), info.memory / 1024, int(info.gpu or 0))


def price_catalog(settings: Settings) -> PriceCatalog:
    """Return the packaged catalogue with the configured Spot discounts."""
    discounts = [
        SpotDiscount(provider, item.discount, item.source, item.published)
        for provider, item in settings.recommend.spot_discounts.items()
    ]
    return PriceCatalog.packaged().with_spot_discounts(discounts)


def with_palette_inputs(
    bundle: RecommendInput, settings: Settings, *, clusters: Iterable[str] | None = None
) -> RecommendInput:
    """Return the bundle with Palette's pools merged in and Palette's prices winning.

    Without a Palette API key, or with ``recommend.use_palette`` off, only the configured Spot
    discounts apply. When Palette fails, the bundle keeps its Prometheus pools and a warning is
    logged.
    """
    catalog = price_catalog(settings)
    if settings.palette.api_key is None or not settings.recommend.use_palette:
        return replace(bundle, prices=catalog)

    try:
        with PaletteClient(settings.palette) as client:
            palette_pools = read_palette_pools(client, clusters=clusters)
            prices, shapes = read_palette_prices(client, palette_pools)
    except PaletteAuthError:
        raise
    except PaletteError as exc:
        logger.warning(
            "reading Palette pools failed, recommendations use Prometheus pools: %s", exc
        )
        return replace(bundle, prices=catalog)

    merge = merge_pools(bundle.pools, palette_pools)
    return replace(
        bundle,
        pools=merge.pools,
        prices=catalog.with_instance_prices(prices, shapes),
        ui_url_template=settings.palette.ui_url_template,
    )


def _provider(cloud_type: str) -> Provider | None:
    try:
        return provider_of(cloud_type)
    except PriceNotFoundError:
        return None
