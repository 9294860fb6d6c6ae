"""Machine pools of the clusters: node counts per day and hourly list prices.

Pools come from the stored limits of the Palette usage ingestion (``quota_limits`` rows of
scope kind ``pool``), whose details name the instance type, the size and the GPUs per node.
Their daily node counts are the ``nodes`` usage facts, which the ingestion derives for
autoscaled pools only, so a fixed-size pool has no node series. A pool's cost per day is its
node count times its hourly list price times 24.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.errors import PriceNotFoundError
from costwarden.sources.prices import PriceCatalog, provider_of
from costwarden.store.tables import QuotaLimit, UsageFact

logger = logging.getLogger(__name__)

HOURS_PER_DAY = 24
DEFAULT_REGIONS = {"aws": "us-east-1", "azure": "eastus", "gcp": "us-central1"}
"""Regions priced when the cluster's region is not stored: the only region of the packaged AWS
and GCP lists, and East US for Azure."""


@dataclass(frozen=True, eq=False)
class Pool:
    """One machine pool with its node counts over the panel's days (NaN where unknown).

    ``hourly_price`` is None when the catalogue has no price for the pool, and ``price_note``
    then gives the reason. Otherwise ``price_note`` names the region assumed for the price.
    """

    cluster_uid: str
    cluster_name: str
    name: str
    instance_type: str
    gpus_per_node: int
    capacity_type: str
    size: int | None
    hourly_price: float | None
    price_note: str | None
    nodes: np.ndarray

    @property
    def has_nodes(self) -> bool:
        return bool(np.isfinite(self.nodes).any())

    def daily_cost(self) -> np.ndarray:
        """Return node count times list price per day; NaN without a price or node count."""
        if self.hourly_price is None:
            return np.full(len(self.nodes), np.nan)
        return self.nodes * self.hourly_price * HOURS_PER_DAY


def load_pools(
    session: Session,
    cluster_uids: Collection[str],
    clouds: dict[str, str],
    first_day: date,
    last_day: date,
) -> list[Pool]:
    """Return the pools of the given clusters with their node counts from ``first_day`` on."""
    if not cluster_uids:
        return []
    query = select(QuotaLimit).where(
        QuotaLimit.scope_kind == "pool", QuotaLimit.cluster_uid.in_(list(cluster_uids))
    )
    limits = list(session.scalars(query))
    nodes = _node_series(session, [limit.scope_id for limit in limits], first_day, last_day)

    pools = []
    days = (last_day - first_day).days + 1
    for limit in sorted(limits, key=lambda row: row.scope_id):
        details = dict(limit.details or {})
        cloud = clouds.get(limit.cluster_uid or "", "")
        price, note = pool_price(cloud, details)
        pools.append(
            Pool(
                cluster_uid=limit.cluster_uid or "",
                cluster_name=str(details.get("cluster_name") or limit.cluster_uid),
                name=limit.name,
                instance_type=str(details.get("instance_type") or "unknown"),
                gpus_per_node=int(details.get("gpus_per_node") or 0),
                capacity_type=str(details.get("capacity_type") or "on-demand"),
                size=details.get("size"),
                hourly_price=price,
                price_note=note,
                nodes=nodes.get(limit.scope_id, np.full(days, np.nan)),
            )
        )
    return pools


def pool_price(cloud: str, details: dict[str, object]) -> tuple[float | None, str | None]:
    """Return the pool's hourly list price and a note on how it was priced, or why it was not."""
    instance_type = str(details.get("instance_type") or "")
    capacity = str(details.get("capacity_type") or "on-demand")
    try:
        provider = provider_of(cloud)
    except PriceNotFoundError as exc:
        return None, str(exc)

    # NOTE: the Palette ingestion stores no cluster region, so pools are priced in a default
    # region, and the packaged AWS and Azure lists have no Spot prices, so Spot pools get none.
    region = details.get("region")
    note = None
    if not region:
        region = DEFAULT_REGIONS[provider]
        note = f"list price in {region}; the cluster's region is not stored"
    try:
        price = PriceCatalog.packaged().hourly_price(
            cloud,
            str(region),
            instance_type,
            capacity,  # type: ignore[arg-type]
        )
    except PriceNotFoundError as exc:
        return None, str(exc)
    return float(price), note


def _node_series(
    session: Session, scope_ids: list[str], first_day: date, last_day: date
) -> dict[str, np.ndarray]:
    if not scope_ids:
        return {}
    query = select(UsageFact.scope_id, UsageFact.day, UsageFact.value).where(
        UsageFact.scope_kind == "pool",
        UsageFact.resource == "nodes",
        UsageFact.scope_id.in_(scope_ids),
        UsageFact.day >= first_day,
        UsageFact.day <= last_day,
    )
    days = (last_day - first_day).days + 1
    series: dict[str, np.ndarray] = {}
    for scope_id, day, value in session.execute(query):
        series.setdefault(scope_id, np.full(days, np.nan))[(day - first_day).days] = value
    return series
