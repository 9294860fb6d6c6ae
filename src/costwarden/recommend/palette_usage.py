"""Pool recommendations from what Palette reports, for passes without Prometheus.

Palette's cloud configs give each cluster's machine pools, and the Palette usage ingestion
stores each cluster's daily CPU peak. That is enough for two kinds of change: worker pools of
clusters that stayed idle, and Spot for pools of non-production clusters. Workload, node,
GPU, volume and load balancer recommendations need the detail only Prometheus has.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.config import Settings
from costwarden.domain.recommendation import Recommendation, Target
from costwarden.domain.usage import UsageResult
from costwarden.errors import PriceNotFoundError
from costwarden.recommend.engine import RecommendationReport, summarise
from costwarden.recommend.idle import IdlePoolsSettings, pool_savings
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.recommend.palette import machine_pool_update
from costwarden.recommend.palette_pools import (
    price_catalog,
    read_palette_pools,
    read_palette_prices,
)
from costwarden.recommend.registry import RECOMMENDERS
from costwarden.sources.palette.client import PaletteClient
from costwarden.sources.prices import PriceCatalog
from costwarden.store import Store
from costwarden.store.tables import UsageFact

logger = logging.getLogger(__name__)

NO_SOURCE = (
    "no usage source: set prometheus.url for workload and pool recommendations, or a Palette "
    "API key for pool recommendations from Palette's usage"
)
PALETTE_ONLY = "from Palette's pools and cluster usage only"
NEEDS_PROMETHEUS = (
    "; set prometheus.url for workload, GPU, volume and load balancer recommendations"
)
NO_STORED_USAGE = (
    "; no Palette cluster usage is stored for the {days} days before {end}, so idle clusters "
    "were not checked: run costwarden run with quota.enabled up to that day first"
)
PALETTE_KINDS = frozenset({"idle-pools", "spot"})
"""The recommenders that can run on Palette's data alone."""
IDLE_KIND = "idle-pools"
SPOT_KIND = "spot"


def palette_report(
    store: Store,
    settings: Settings,
    as_of: datetime,
    clusters: list[str] | None = None,
    *,
    prometheus_set: bool = False,
) -> tuple[RecommendationReport | None, str]:
    """Return pool recommendations from Palette's pools, prices and stored usage, with a note.

    ``clusters`` limits the pools read to the clusters with these names. The note names the
    enabled recommenders that need Prometheus, unless ``prometheus_set`` is true.
    """
    if settings.palette.api_key is None:
        return None, NO_SOURCE

    with PaletteClient(settings.palette) as client:
        pools = read_palette_pools(client, clusters=clusters)
        prices, shapes = read_palette_prices(client, pools)
    bundle = palette_bundle(
        pools, price_catalog(settings).with_instance_prices(prices, shapes), as_of, settings
    )
    enabled = settings.recommend.enabled
    found: list[Recommendation] = []
    note = PALETTE_ONLY
    skipped = sorted(set(enabled) - PALETTE_KINDS) if enabled is not None else []
    if skipped:
        note += f"; {', '.join(skipped)} need Prometheus usage"
    elif enabled is None and not prometheus_set:
        note += NEEDS_PROMETHEUS

    if enabled is None or IDLE_KIND in enabled:
        options = IdlePoolsSettings(**settings.recommend.options.get(IDLE_KIND, {}))
        with store.transaction() as session:
            peaks = cluster_cpu_peaks(session, as_of, settings.recommend.window_days)
        if not peaks:
            days = settings.recommend.window_days
            note += NO_STORED_USAGE.format(days=days, end=as_of.date().isoformat())
        found += idle_clusters(bundle, peaks, options.max_cpu_percent)
    if enabled is None or SPOT_KIND in enabled:
        found += _spot(bundle, settings)
    return summarise(found), note


def cluster_cpu_peaks(session: Session, as_of: datetime, days: int) -> dict[str, dict[date, float]]:
    """Return each cluster uid's daily CPU peaks in cores, ``days`` days before ``as_of``."""
    last = as_of.date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    query = select(UsageFact.scope_id, UsageFact.day, UsageFact.value).where(
        UsageFact.scope_kind == "cluster",
        UsageFact.resource == "cpu",
        UsageFact.day >= first,
        UsageFact.day <= last,
    )
    peaks: dict[str, dict[date, float]] = {}
    for uid, day, value in session.execute(query):
        peaks.setdefault(uid, {})[day] = value
    return peaks


def idle_clusters(
    bundle: RecommendInput, peaks: dict[str, dict[date, float]], max_cpu_percent: float
) -> list[Recommendation]:
    """Propose scaling to zero the worker pools of clusters whose daily CPU peak stayed low.

    A cluster is idle when, on each of at least ``min_history`` days of the window, its peak CPU
    use stayed below ``max_cpu_percent`` of the vCPUs of its worker pools at their current size.
    """
    min_days = bundle.min_history.days
    by_cluster: dict[str, list[PoolRef]] = {}
    for pool in bundle.pools:
        if pool.cluster_uid and not pool.is_control_plane and (pool.size or 0) > 0:
            by_cluster.setdefault(pool.cluster_uid, []).append(pool)

    found = []
    for uid, workers in sorted(by_cluster.items()):
        days = peaks.get(uid, {})
        cores = _worker_cores(bundle.prices, workers)
        if len(days) < min_days or not cores:
            continue
        percent = max(days.values()) / cores * 100
        if percent < max_cpu_percent:
            found += [_idle_pool(bundle, pool, percent, len(days)) for pool in workers]
    return found


def _worker_cores(catalog: PriceCatalog, pools: list[PoolRef]) -> float:
    total = 0.0
    for pool in pools:
        if pool.provider is None or pool.instance_type is None:
            return 0.0
        try:
            total += catalog.shape(pool.provider, pool.instance_type).vcpus * (pool.size or 0)
        except PriceNotFoundError:
            return 0.0
    return total


def _idle_pool(bundle: RecommendInput, pool: PoolRef, percent: float, days: int) -> Recommendation:
    size = pool.size or 0
    return Recommendation(
        kind=IDLE_KIND,
        title=f"Scale pool {pool.cluster}/{pool.name} from {size} nodes to 0: the cluster's "
        f"daily CPU peak stayed at most {percent:.1f}% of its worker vCPUs for {days} days",
        target=Target(pool.cluster, "MachinePool", pool.name, pool=pool.name),
        before={"size": size},
        after={"size": 0, "minSize": 0},
        savings=pool_savings(bundle.prices, pool, size),
        confidence="medium",
        risk="medium",
        risk_note="Palette reports usage per cluster, not per pool or workload: check that "
        "nothing on the cluster must keep running before scaling it down",
        effort="low",
        reversible=True,
        resources=frozenset({pool.resource}),
        api_call=machine_pool_update(pool, pool_config={"size": 0, "minSize": 0}),
        ui_link=bundle.ui_link(pool),
        evidence={"usage_source": "palette", "cluster_cpu_peak_percent": round(percent, 2)},
    )


def _spot(bundle: RecommendInput, settings: Settings) -> list[Recommendation]:
    """Run the Spot recommender on Palette's pools; the stateless check needs Prometheus."""
    recommender = RECOMMENDERS.create(SPOT_KIND, settings.recommend.options.get(SPOT_KIND))
    return [
        replace(
            item,
            confidence="low",
            risk_note=f"{item.risk_note}; without Prometheus, costwarden could not check that "
            "the pool runs no StatefulSet pods or volumes",
            evidence={**item.evidence, "usage_source": "palette"},
        )
        for item in recommender.recommend(bundle)
    ]


def palette_bundle(
    pools: tuple[PoolRef, ...], catalog: PriceCatalog, as_of: datetime, settings: Settings
) -> RecommendInput:
    """Return an input with Palette's pools and prices and no Prometheus usage."""
    window = timedelta(days=settings.recommend.window_days)
    empty: UsageResult = UsageResult((), (), as_of - window, as_of, window, ())
    return RecommendInput(
        end=as_of,
        window=window,
        min_history=timedelta(days=settings.recommend.min_history_days),
        cpu=empty,
        memory=empty,
        resources=empty,
        oom_kills=empty,
        replicas=empty,
        node_info=empty,
        node_usage=empty,
        gpu_nodes=empty,
        volumes=empty,
        pools=pools,
        prices=catalog,
        ui_url_template=settings.palette.ui_url_template,
    )
