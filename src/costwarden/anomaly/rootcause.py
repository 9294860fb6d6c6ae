"""Root cause of a cost anomaly: its change broken down by dimension and into cost drivers.

Every child series (a namespace, a cluster, a pool's node count) gets the expected value of the
anomalous days from its own baseline, frozen on the first anomalous day as for the scope. A
child's ``delta`` is its actual minus expected value per day. For a level shift that is the
level after the shift minus the level before it, adjusted for the weekday pattern. A child too
young for a baseline is expected at its mean of the two weeks before, or 0 when it had no cost
then (a new namespace).

A cluster's change is split twice, and both splits add up to the cluster's change:

- capacity: ``more_nodes`` (node count changes of the pools times their list prices),
  ``pricier_instances`` (the rest of the compute change: a dearer instance type, or Spot capacity
  that fell back to on-demand at the same node count) and ``storage``;
- allocation: ``more_requests`` (namespaces that had cost before), ``new_workloads``
  (namespaces without cost before) and ``idle_capacity`` (cluster cost no namespace is
  allocated, which grows when nodes are added that nothing uses).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import numpy as np

from costwarden.anomaly.baseline import fit_baselines
from costwarden.anomaly.pools import HOURS_PER_DAY, Pool
from costwarden.anomaly.scopes import CostPanel, sum_series
from costwarden.domain.anomaly import AnomalyContributor, AnomalyScope, CostDriver, Dimension
from costwarden.domain.event import POOL_SCALED, SPOT_FALLBACK, ClusterEvent

SCALED = re.compile(r"from (\d+) to (\d+)")
"""Node counts in a pool scaling event's message, such as "scaled from 2 to 10 nodes"."""
IDLE = "(idle and unallocated)"
OTHER_POOLS = "(other pools and price changes)"
BEFORE_DAYS = 14
"""Days before an anomaly whose mean is the expected value of a child too young for a baseline."""
NEW_SPEND_SHARE = 0.01
"""A namespace is new when it cost less than this share of its current cost before."""
MIN_CHILD_DAYS = 14

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Window:
    """The anomalous days as panel columns, and the baseline settings children are fitted with."""

    start: int
    end: int
    baseline_days: int
    season_weeks: int
    scale_floor: float


@dataclass(frozen=True, slots=True)
class Means:
    """Expected and actual value of a child per day, over the anomalous days.

    ``partial`` marks a change known without its levels, such as a price change attributed to a
    pool without a node series. Then ``expected`` is 0 and ``actual`` is the change.
    """

    expected: float
    actual: float
    before: float
    partial: bool = False

    @property
    def delta(self) -> float:
        return self.actual - self.expected


@dataclass(frozen=True, slots=True)
class PoolChange:
    """A pool's node count before and during the anomaly, and the cost of the change per day."""

    pool: Pool
    nodes: Means | None
    cost_delta: float | None


@dataclass(frozen=True, eq=False)
class ClusterBreakdown:
    """The change of one cluster, per day, with the pieces the drivers are made of.

    ``scaled_pool`` is a pool without node counts that a scale-up event names. The compute
    change that the priced node counts leave unexplained is then counted as more nodes of that
    pool, unless a Spot fallback event names a pool too.
    """

    cluster_uid: str
    cluster_name: str
    total: Means
    compute_delta: float
    storage_delta: float
    namespaces: dict[str, Means]
    new_namespaces: tuple[str, ...]
    idle: Means
    pools: tuple[PoolChange, ...]
    scaled_pool: str | None = None

    @property
    def priced_nodes(self) -> float:
        """Node count changes of the pools with node counts, at list prices."""
        return sum(change.cost_delta or 0.0 for change in self.pools)

    @property
    def unexplained_compute(self) -> float:
        return self.compute_delta - self.priced_nodes

    @property
    def more_nodes(self) -> float:
        if self.scaled_pool is None:
            return self.priced_nodes
        return self.compute_delta

    @property
    def pricier_instances(self) -> float:
        return self.compute_delta - self.more_nodes

    @property
    def new_workloads(self) -> float:
        return sum(self.namespaces[name].actual for name in self.new_namespaces)

    @property
    def more_requests(self) -> float:
        return sum(
            means.delta
            for name, means in self.namespaces.items()
            if name not in self.new_namespaces
        )


@dataclass(frozen=True, eq=False)
class Breakdown:
    """Contributors by dimension, drivers and the per-cluster pieces of one anomaly.

    ``clusters`` are the pieces of the scope's own cost: for a namespace scope, only that
    namespace. ``context`` are the whole clusters the scope belongs to, which the triage reads.
    """

    delta: float
    contributors: dict[Dimension, list[AnomalyContributor]] = field(default_factory=dict)
    drivers: tuple[CostDriver, ...] = ()
    clusters: tuple[ClusterBreakdown, ...] = ()
    context: tuple[ClusterBreakdown, ...] = ()


def run_means(series: Mapping[K, np.ndarray], window: Window) -> dict[K, Means]:
    """Return each series' expected and actual mean over the window, from its frozen baseline."""
    if not series:
        return {}
    keys = list(series)
    values = np.vstack([series[key] for key in keys])
    history = values[:, : window.start + 1]
    baselines = fit_baselines(
        history,
        window.start,
        baseline_days=window.baseline_days,
        season_weeks=window.season_weeks,
        min_days=MIN_CHILD_DAYS,
        scale_floor=window.scale_floor,
    )
    ahead = np.arange(window.end - window.start + 1)
    actual = np.nan_to_num(values[:, window.start : window.end + 1])
    before = values[:, max(window.start - BEFORE_DAYS, 0) : window.start]

    found = {}
    for row, key in enumerate(keys):
        before_mean = _mean_or_zero(before[row])
        if baselines.valid[row, 0]:
            rows = np.full(len(ahead), row)
            expected = float(np.mean(baselines.expected(rows, np.zeros_like(ahead), ahead)))
        else:
            expected = before_mean
        found[key] = Means(expected, float(np.mean(actual[row])), before_mean)
    return found


def cluster_breakdown(
    panel: CostPanel,
    uid: str,
    pools: Sequence[Pool],
    window: Window,
    events: Sequence[ClusterEvent] = (),
) -> ClusterBreakdown:
    """Split one cluster's change into namespaces, idle cost and pool node count changes."""
    days = panel.days
    total = panel.cluster_series.get(uid, np.full(days, np.nan))
    namespaces = {
        name: series for (cluster, name), series in panel.namespace_series.items() if cluster == uid
    }
    allocated = sum_series(list(namespaces.values()), days)
    idle = total - np.nan_to_num(allocated)

    parts = {"total": total, "idle": idle}
    for name, series in (("compute", panel.compute), ("storage", panel.storage)):
        if uid in series:
            parts[name] = series[uid]
    means = run_means(parts, window)
    ns_means = run_means(namespaces, window)
    node_means = run_means({pool.name: pool.nodes for pool in pools if pool.has_nodes}, window)

    changes = []
    for pool in pools:
        nodes = node_means.get(pool.name)
        cost = None
        if nodes is not None and pool.hourly_price is not None:
            cost = nodes.delta * pool.hourly_price * HOURS_PER_DAY
        changes.append(PoolChange(pool, nodes, cost))

    new = tuple(
        name
        for name, value in ns_means.items()
        if value.actual > 0 and value.before <= NEW_SPEND_SHARE * value.actual
    )
    compute = means.get("compute")
    tracked = {pool.name for pool in pools if pool.name in node_means}
    return ClusterBreakdown(
        scaled_pool=_scaled_pool(uid, events, tracked),
        cluster_uid=uid,
        cluster_name=panel.clusters[uid].name if uid in panel.clusters else uid,
        total=means["total"],
        compute_delta=compute.delta if compute else means["total"].delta,
        storage_delta=means["storage"].delta if "storage" in means else 0.0,
        namespaces=ns_means,
        new_namespaces=new,
        idle=means["idle"],
        pools=tuple(changes),
    )


def breakdown(
    scope: AnomalyScope,
    panel: CostPanel,
    pools: Sequence[Pool],
    window: Window,
    delta: float,
    events: Sequence[ClusterEvent],
    max_contributors: int,
) -> Breakdown:
    """Rank the contributors of every dimension that applies to the scope, and the drivers."""
    by_cluster: dict[str, list[Pool]] = defaultdict(list)
    for pool in pools:
        by_cluster[pool.cluster_uid].append(pool)
    clusters = tuple(
        cluster_breakdown(panel, uid, by_cluster[uid], window, events)
        for uid in sorted(scope.cluster_uids)
        if uid in panel.cluster_series
    )
    context = clusters
    if scope.kind == "namespace":
        clusters = tuple(_only_namespace(part, scope.namespace or "") for part in clusters)

    ranked: dict[Dimension, list[AnomalyContributor]] = {}
    for dimension, items in _dimension_items(scope, panel, clusters, window, events).items():
        ranked[dimension] = _rank(dimension, items, delta, max_contributors)
    return Breakdown(delta, ranked, drivers(clusters, delta), clusters, context)


def drivers(clusters: Sequence[ClusterBreakdown], delta: float) -> tuple[CostDriver, ...]:
    """Sum the capacity and allocation drivers of the clusters' changes."""
    if not clusters:
        return ()
    totals = {
        "more_nodes": sum(part.more_nodes for part in clusters),
        "pricier_instances": sum(part.pricier_instances for part in clusters),
        "storage": sum(part.storage_delta for part in clusters),
        "more_requests": sum(part.more_requests for part in clusters),
        "new_workloads": sum(part.new_workloads for part in clusters),
        "idle_capacity": sum(part.idle.delta for part in clusters),
    }
    details = _driver_details(clusters)
    result = []
    for name, amount in totals.items():
        side = (
            "capacity" if name in ("more_nodes", "pricier_instances", "storage") else "allocation"
        )
        share = amount / delta if delta > 0 else None
        result.append(
            CostDriver(name, side, _money(amount), share, details[name])  # type: ignore[arg-type]
        )
    return tuple(result)


def _only_namespace(part: ClusterBreakdown, namespace: str) -> ClusterBreakdown:
    """Keep only one namespace: a namespace scope has no idle cost and no pools of its own."""
    kept = {name: means for name, means in part.namespaces.items() if name == namespace}
    zero = Means(0.0, 0.0, 0.0)
    own = kept.get(namespace, zero)
    return ClusterBreakdown(
        part.cluster_uid,
        part.cluster_name,
        own,
        0.0,
        0.0,
        kept,
        tuple(name for name in part.new_namespaces if name == namespace),
        zero,
        (),
    )


def _dimension_items(
    scope: AnomalyScope,
    panel: CostPanel,
    clusters: Sequence[ClusterBreakdown],
    window: Window,
    events: Sequence[ClusterEvent],
) -> dict[Dimension, dict[str, Means]]:
    single = len(clusters) == 1
    items: dict[Dimension, dict[str, Means]] = {}
    namespaces: dict[str, Means] = {}
    for part in clusters:
        prefix = "" if single else f"{part.cluster_name}/"
        for name, means in part.namespaces.items():
            namespaces[prefix + name] = means
        if scope.kind != "namespace":
            namespaces[prefix + IDLE] = part.idle
    items["namespace"] = namespaces
    if scope.kind == "namespace":
        return items

    pools, types = _pool_items(clusters, events, single)
    items["node_pool"] = pools
    items["instance_type"] = types
    if not single:
        items["cluster"] = {part.cluster_name: part.total for part in clusters}
        items.update(_group_items(scope, panel, clusters, window))
    return items


def _pool_items(
    clusters: Sequence[ClusterBreakdown], events: Sequence[ClusterEvent], single: bool
) -> tuple[dict[str, Means], dict[str, Means]]:
    """Return pool and instance type items; the unexplained compute change goes to the pool a
    Spot fallback or scaling event names, else to ``OTHER_POOLS``."""
    pools: dict[str, Means] = {}
    types: dict[str, Means] = {}
    for part in clusters:
        prefix = "" if single else f"{part.cluster_name}/"
        for change in part.pools:
            if change.cost_delta is None or change.nodes is None:
                continue
            price = change.pool.hourly_price or 0.0
            means = _scaled(change.nodes, price * HOURS_PER_DAY)
            pools[prefix + change.pool.name] = means
            kind = change.pool.instance_type
            types[kind] = _added(types[kind], means) if kind in types else means

        residual = part.unexplained_compute
        if abs(residual) <= 1e-9:
            continue
        name, instance_type = event_pool(part, events)
        target = prefix + (name or OTHER_POOLS)
        pools[target] = _plus_change(pools.get(target), residual)
        if instance_type is not None:
            types[instance_type] = _plus_change(types.get(instance_type), residual)
    return pools, dict(types)


def _plus_change(means: Means | None, change: float) -> Means:
    if means is None or means.partial:
        previous = means.actual if means is not None else 0.0
        return Means(0.0, previous + change, 0.0, partial=True)
    return Means(means.expected, means.actual + change, means.before)


def event_pool(
    part: ClusterBreakdown, events: Sequence[ClusterEvent]
) -> tuple[str | None, str | None]:
    """Return the pool that a Spot fallback, else a pool scaling, event of the cluster names.

    Returns the pool name and its instance type, which is None for a pool whose limits were not
    stored (a fixed-size pool). Both are None when no such event names a pool.
    """
    known = {change.pool.name: change.pool for change in part.pools}
    for reason in (SPOT_FALLBACK, POOL_SCALED):
        for event in events:
            if event.cluster_uid != part.cluster_uid or event.reason != reason:
                continue
            if event.involved_kind.lower() not in ("machinepool", "pool"):
                continue
            pool = known.get(event.involved_name)
            return event.involved_name, pool.instance_type if pool else None
    return None, None


def _scaled_pool(
    cluster_uid: str, events: Sequence[ClusterEvent], tracked: set[str]
) -> str | None:
    """Return the pool without node counts that a scale-up event names, unless a Spot fallback
    event names a pool: then the unexplained change is a price change."""
    own = [event for event in events if event.cluster_uid == cluster_uid]
    if any(event.reason == SPOT_FALLBACK for event in own):
        return None
    for event in own:
        if event.reason != POOL_SCALED or event.involved_name in tracked:
            continue
        match = SCALED.search(event.message)
        if match is not None and int(match.group(2)) > int(match.group(1)):
            return event.involved_name
    return None


def _group_items(
    scope: AnomalyScope,
    panel: CostPanel,
    clusters: Sequence[ClusterBreakdown],
    window: Window,
) -> dict[Dimension, dict[str, Means]]:
    """Group the member clusters by project, cloud, profile and label values."""
    groups: dict[Dimension, dict[str, list[str]]] = {
        "project": defaultdict(list),
        "cloud": defaultdict(list),
        "profile": defaultdict(list),
        "label": defaultdict(list),
    }
    for part in clusters:
        meta = panel.clusters.get(part.cluster_uid)
        if meta is None:
            continue
        groups["project"][meta.project_name or meta.project_uid or "(no project)"].append(meta.uid)
        groups["cloud"][meta.cloud].append(meta.uid)
        for profile in meta.profiles:
            groups["profile"][profile].append(meta.uid)
        for key, value in meta.labels.items():
            groups["label"][f"{key}={value}"].append(meta.uid)

    skip = {"project": "project", "cloud": "cloud", "profile": "profile", "label": "label"}
    items: dict[Dimension, dict[str, Means]] = {}
    for dimension, members in groups.items():
        if skip[dimension] == scope.kind or len(members) < 2:
            continue
        series = {
            value: sum_series([panel.cluster_series[uid] for uid in uids], panel.days)
            for value, uids in members.items()
        }
        items[dimension] = run_means(series, window)
    return items


def _rank(
    dimension: Dimension, items: Mapping[str, Means], delta: float, limit: int
) -> list[AnomalyContributor]:
    ordered = sorted(items.items(), key=lambda item: item[1].delta, reverse=True)
    ranked = []
    for value, means in ordered[:limit]:
        ranked.append(
            AnomalyContributor(
                dimension=dimension,
                value=value,
                expected=None if means.partial else _money(means.expected),
                actual=None if means.partial else _money(means.actual),
                delta=_money(means.delta),
                share=means.delta / delta if delta > 0 else None,
            )
        )
    return ranked


def _driver_details(clusters: Sequence[ClusterBreakdown]) -> dict[str, str]:
    pools = [
        change
        for part in clusters
        for change in part.pools
        if change.nodes is not None and abs(change.nodes.delta) >= 0.5
    ]
    pool_text = "; ".join(
        f"{change.pool.cluster_name}/{change.pool.name} {change.nodes.expected:.1f} -> "  # type: ignore[union-attr]
        f"{change.nodes.actual:.1f} {change.pool.instance_type} nodes"  # type: ignore[union-attr]
        for change in pools
    )
    scaled = [
        f"{part.cluster_name}/{part.scaled_pool}: no node counts stored, the compute change "
        "is counted as its scale-up event's nodes"
        for part in clusters
        if part.scaled_pool is not None
    ]
    if scaled:
        pool_text = "; ".join([pool_text, *scaled]) if pool_text else "; ".join(scaled)
    new = [f"{part.cluster_name}/{name}" for part in clusters for name in part.new_namespaces]
    return {
        "more_nodes": pool_text or "no pool's node count changed by half a node or more",
        "pricier_instances": "compute cost change that node counts at list prices do not explain",
        "storage": "disk cost change",
        "more_requests": "usage-based cost change of namespaces that had cost before",
        "new_workloads": ", ".join(new) or "no namespace without earlier cost",
        "idle_capacity": "cluster cost that no namespace is allocated",
    }


def _scaled(means: Means, factor: float) -> Means:
    return Means(means.expected * factor, means.actual * factor, means.before * factor)


def _added(left: Means, right: Means) -> Means:
    return Means(
        left.expected + right.expected, left.actual + right.actual, left.before + right.before
    )


def _mean_or_zero(values: np.ndarray) -> float:
    present = values[np.isfinite(values)]
    return float(present.mean()) if present.size else 0.0


def _money(value: float) -> Decimal:
    return Decimal(str(round(float(value), 10)))
