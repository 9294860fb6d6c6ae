"""Synthetic Palette data for the anomaly tests: clusters, daily costs, pools and events.

Costs follow the rule the Palette cost data follows: a cluster's compute cost is its pools' node
counts times their hourly list prices, and namespaces are allocated shares of it. The rest is
idle. Every series has a weekday pattern and seeded noise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np

from costwarden.domain.cost import ClusterInfo, CostRecord, NamespaceInfo, ProjectInfo
from costwarden.domain.event import ClusterEvent
from costwarden.sources.prices import PriceCatalog
from costwarden.store import Store, upsert_facts, upsert_fleet
from costwarden.store.events import upsert_events
from costwarden.store.tables import QuotaLimit, UsageFact

AS_OF = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
LAST_DAY = date(2026, 11, 14)
HISTORY_DAYS = 90
FIRST_DAY = LAST_DAY - timedelta(days=HISTORY_DAYS - 1)
DAYS = np.arange(HISTORY_DAYS)
WEEKEND = np.array([(FIRST_DAY + timedelta(days=int(d))).weekday() >= 5 for d in DAYS])
HOURS = 24


def column(day: date) -> int:
    """Return the index of a day in the synthetic history."""
    return (day - FIRST_DAY).days


def days_before(offset: int) -> date:
    """Return the day ``offset`` days before the day of ``AS_OF``."""
    return AS_OF.date() - timedelta(days=offset)


@dataclass
class Pool:
    """A pool with its daily average node counts; ``tracked`` pools have stored node counts.

    ``extra_nodes`` are added for ``extra_namespace``, which is allocated 90% of their cost.
    ``price_factor`` multiplies the list price per day, such as a Spot discount that ends.
    """

    name: str
    instance_type: str
    nodes: np.ndarray
    tracked: bool = True
    gpus: int = 0
    price_factor: np.ndarray | None = None
    extra_nodes: np.ndarray | None = None
    extra_namespace: str | None = None

    def all_nodes(self) -> np.ndarray:
        return self.nodes + (self.extra_nodes if self.extra_nodes is not None else 0.0)

    def day_price(self, cloud: str) -> np.ndarray:
        price = float(
            PriceCatalog.packaged().hourly_price(cloud, _region(cloud), self.instance_type)
        )
        factor = self.price_factor if self.price_factor is not None else np.ones(HISTORY_DAYS)
        return price * HOURS * factor

    def base_compute(self, cloud: str) -> np.ndarray:
        return self.nodes * self.day_price(cloud)

    def extra_compute(self, cloud: str) -> np.ndarray:
        if self.extra_nodes is None:
            return np.zeros(HISTORY_DAYS)
        return self.extra_nodes * self.day_price(cloud)


@dataclass
class SyntheticCluster:
    """A cluster: pools, namespace shares of its compute, and extra namespace costs."""

    name: str
    project: str
    cloud: str = "eks"
    pools: list[Pool] = field(default_factory=list)
    shares: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    profiles: tuple[str, ...] = ("eks-base",)
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:24])

    def compute(self) -> np.ndarray:
        total = np.zeros(HISTORY_DAYS)
        for pool in self.pools:
            total += pool.base_compute(self.cloud) + pool.extra_compute(self.cloud)
        return total

    def namespace_costs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        base = sum((pool.base_compute(self.cloud) for pool in self.pools), np.zeros(HISTORY_DAYS))
        costs = {}
        for name, share in self.shares.items():
            noise = 1.0 + 0.03 * rng.standard_normal(HISTORY_DAYS)
            costs[name] = base * share * noise
        for pool in self.pools:
            if pool.extra_namespace is not None:
                extra = 0.9 * pool.extra_compute(self.cloud)
                costs[pool.extra_namespace] = costs.get(pool.extra_namespace, 0.0) + extra
        return costs


def steady_nodes(level: float, rng: np.random.Generator, *, weekend: float = 0.85) -> np.ndarray:
    """Return daily node counts with a weekend dip and 2% noise."""
    return (
        level * np.where(WEEKEND, weekend, 1.0) * (1.0 + 0.02 * rng.standard_normal(HISTORY_DAYS))
    )


def step(amount: float, first: date, last: date | None = None) -> np.ndarray:
    """Return ``amount`` on the days from ``first`` to ``last`` (inclusive), 0 elsewhere."""
    values = np.zeros(HISTORY_DAYS)
    end = HISTORY_DAYS if last is None else column(last) + 1
    values[column(first) : end] = amount
    return values


def write_fleet(store: Store, clusters: list[SyntheticCluster], seed: int = 0) -> None:
    """Store the clusters' metadata, daily costs, pools and pool node counts."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    with store.transaction() as session:
        projects = {
            cluster.project: ProjectInfo(f"p-{cluster.project}", cluster.project)
            for cluster in clusters
        }
        infos = [_info(cluster) for cluster in clusters]
        namespaces = [
            NamespaceInfo(cluster.uid, name)
            for cluster in clusters
            for name in cluster.namespace_costs(rng)
        ]
        upsert_fleet(session, projects.values(), infos, namespaces)
        records = [record for cluster in clusters for record in _records(cluster, rng)]
        upsert_facts(session, records, batch_id=str(uuid.uuid4()))
        for cluster in clusters:
            for pool in cluster.pools:
                _write_pool(session, cluster, pool, now)


def write_events(store: Store, events: list[ClusterEvent]) -> None:
    with store.transaction() as session:
        upsert_events(session, events, str(uuid.uuid4()), datetime.now(UTC))


def event(
    cluster: SyntheticCluster,
    at: datetime,
    reason: str,
    message: str,
    kind: str,
    name: str,
) -> ClusterEvent:
    return ClusterEvent(
        uid=uuid.uuid4().hex,
        cluster_uid=cluster.uid,
        cluster_name=cluster.name,
        created_at=at,
        reason=reason,
        message=message,
        severity="Normal",
        involved_kind=kind,
        involved_name=name,
        related_kind=None,
        related_name=None,
        source_component="test",
    )


def at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _info(cluster: SyntheticCluster) -> ClusterInfo:
    return ClusterInfo(
        uid=cluster.uid,
        name=cluster.name,
        project_uid=f"p-{cluster.project}",
        project_name=cluster.project,
        cloud=cluster.cloud,
        labels=dict(cluster.labels),
        profiles=cluster.profiles,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


def _records(cluster: SyntheticCluster, rng: np.random.Generator) -> list[CostRecord]:
    compute = cluster.compute()
    storage = 0.05 * compute
    records = []
    for index in range(HISTORY_DAYS):
        breakdown = {"compute": _money(compute[index]), "storage": _money(storage[index])}
        records.append(
            _record(cluster, index, compute[index] + storage[index], breakdown=breakdown)
        )
    for name, series in cluster.namespace_costs(rng).items():
        for index in range(HISTORY_DAYS):
            records.append(_record(cluster, index, series[index], namespace=name))
    return records


def _record(
    cluster: SyntheticCluster,
    index: int,
    amount: float,
    *,
    namespace: str | None = None,
    breakdown: dict[str, Decimal] | None = None,
) -> CostRecord:
    start = datetime.combine(FIRST_DAY + timedelta(days=index), time(0), tzinfo=UTC)
    return CostRecord(
        source="palette",
        grain="namespace" if namespace else "cluster",
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=_money(amount),
        currency="USD",
        cloud=cluster.cloud,
        project_uid=f"p-{cluster.project}",
        project_name=cluster.project,
        cluster_uid=cluster.uid,
        cluster_name=cluster.name,
        namespace=namespace,
        breakdown=breakdown or {},
    )


def _write_pool(session, cluster: SyntheticCluster, pool: Pool, now: datetime) -> None:  # type: ignore[no-untyped-def]
    scope_id = f"{cluster.uid}/{pool.name}"
    if not pool.tracked:
        return
    size = int(round(float(pool.all_nodes()[-1])))
    session.add(
        QuotaLimit(
            scope_kind="pool",
            scope_id=scope_id,
            resource="gpu" if pool.gpus else "nodes",
            limit_kind="autoscaler_max",
            limit_value=float(40 * max(pool.gpus, 1)),
            cluster_uid=cluster.uid,
            name=pool.name,
            details={
                "cluster_name": cluster.name,
                "project_uid": f"p-{cluster.project}",
                "pool": pool.name,
                "instance_type": pool.instance_type,
                "size": size,
                "min_size": 1,
                "max_size": 40,
                "gpus_per_node": pool.gpus,
            },
            observed_at=now,
            batch_id="test",
            updated_at=now,
        )
    )
    for index in range(HISTORY_DAYS - 28, HISTORY_DAYS):
        session.add(
            UsageFact(
                scope_kind="pool",
                scope_id=scope_id,
                cluster_uid=cluster.uid,
                name=pool.name,
                resource="nodes",
                day=FIRST_DAY + timedelta(days=index),
                value=float(pool.all_nodes()[index]),
                source="derived",
                batch_id="test",
                updated_at=now,
            )
        )


def _region(cloud: str) -> str:
    return {"eks": "us-east-1", "aks": "eastus", "gke": "us-central1"}[cloud]


def _money(value: float) -> Decimal:
    return Decimal(str(round(float(value), 6)))


def write_gpu_quota(store: Store, cluster: SyntheticCluster, namespace: str, gpus: int) -> None:
    """Give a namespace a Palette quota with a GPU limit, which marks it as a GPU workload."""
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(
            QuotaLimit(
                scope_kind="namespace",
                scope_id=f"{cluster.uid}/{namespace}",
                resource="gpu",
                limit_kind="namespace_quota",
                limit_value=float(gpus),
                cluster_uid=cluster.uid,
                name=namespace,
                details={"cluster_name": cluster.name, "namespace": namespace},
                observed_at=now,
                batch_id="test",
                updated_at=now,
            )
        )


def shop_fleet(store: Store, seed: int = 3) -> tuple[SyntheticCluster, SyntheticCluster]:
    """Store a cluster whose new namespace adds 8 nodes five days before ``AS_OF``, and a
    quiet cluster in the same project. Returns both."""
    from costwarden.domain.event import NAMESPACE_CREATED

    rng = np.random.default_rng(seed)
    shop = SyntheticCluster(
        "shop-eks",
        "storefront",
        pools=[
            Pool(
                "workers",
                "m5.2xlarge",
                steady_nodes(10, rng),
                extra_nodes=step(8, days_before(5)),
                extra_namespace="promo",
            )
        ],
        shares={"web": 0.3, "api": 0.3, "batch": 0.2},
    )
    quiet = SyntheticCluster(
        "shop-quiet-eks",
        "storefront",
        pools=[Pool("workers", "m5.xlarge", steady_nodes(4, rng))],
        shares={"web": 0.5, "cron": 0.3},
    )
    write_fleet(store, [shop, quiet], seed=seed)
    created = event(
        shop, at(days_before(5)), NAMESPACE_CREATED, "Namespace promo created", "Namespace", "promo"
    )
    write_events(store, [created])
    return shop, quiet
