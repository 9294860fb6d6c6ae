"""Turn a cost anomaly's breakdown and the cluster events around it into a triage summary.

The likely cause is decided on the cluster that carries most of the change, with Palette
events first and the cost drivers second:

- ``spot_fallback``: a Spot fallback event, and compute cost rose more than node counts explain;
- ``new_namespace``: namespaces without earlier cost carry at least half of the change;
- ``hpa_runaway``: a workload scaling event names the namespace that carries the change;
- ``gpu_without_request``: a GPU pool grew for a namespace without a GPU quota whose cost grew
  much faster than the pool, so it was not running on GPU nodes before;
- ``gpu_pool_scale_up`` / ``pool_scale_up``: a pool scaling event, or node counts, explain the
  change;
- ``idle_growth``: cost that no namespace is allocated carries at least half of the change;
- ``profile_update``: a cluster profile update on the clusters at the start of the change;
- ``new_cluster``: a group rose because a cluster without earlier cost joined it;
- ``unknown`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from costwarden.anomaly.rootcause import IDLE, SCALED, Breakdown, ClusterBreakdown, event_pool
from costwarden.domain.anomaly import AnomalyContributor, AnomalyScope, Dimension, Triage
from costwarden.domain.cost import quantize_money
from costwarden.domain.event import (
    NAMESPACE_CREATED,
    POOL_SCALED,
    PROFILE_UPDATED,
    SPOT_FALLBACK,
    WORKLOAD_SCALED,
    ClusterEvent,
)

DOMINANT = 0.5
NOTABLE = 0.3
FASTER_GROWTH = 2.0
"""A namespace growing this many times faster than its GPU pool was not on that pool before."""
MAX_EVENTS = 5

CAUSE_EVENTS = {
    "spot_fallback": (SPOT_FALLBACK,),
    "new_namespace": (NAMESPACE_CREATED, POOL_SCALED),
    "hpa_runaway": (WORKLOAD_SCALED, POOL_SCALED),
    "gpu_without_request": (POOL_SCALED,),
    "gpu_pool_scale_up": (POOL_SCALED,),
    "pool_scale_up": (POOL_SCALED,),
    "profile_update": (PROFILE_UPDATED,),
}

NEXT_STEPS = {
    "gpu_pool_scale_up": "Check which pods the autoscaler added GPU nodes to {pool} for, and "
    "lower the pool's maximum size if the demand was not intended.",
    "pool_scale_up": "Check the pending pods that made the autoscaler grow {pool}, and its "
    "scale-down settings.",
    "new_namespace": "Confirm that namespace {namespace} is expected and has an owner; give it "
    "a resource quota and a budget.",
    "spot_fallback": "Check Spot capacity for the pool's instance type; allow more instance "
    "types or zones in {pool}, or accept on-demand prices until Spot returns.",
    "hpa_runaway": "Check the horizontal pod autoscaler of {workload}: its target metric and "
    "maxReplicas, and cap the replicas.",
    "gpu_without_request": "Add a node selector or taint so that pods of {namespace} that "
    "request no GPU stay off {pool}, then let the pool scale down.",
    "idle_growth": "Nodes were added that no namespace uses: check the autoscaler's scale-down "
    "settings and the pools' minimum sizes.",
    "profile_update": "Review the change in cluster profile {profile}; roll it back if the added "
    "cost is not intended.",
    "new_cluster": "Confirm that cluster {cluster} is expected and covered by a budget.",
    "unknown": "Compare the namespaces and pools of {cluster} day by day in Palette's cost view.",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """A cause with the contributor it points at and the evidence for it."""

    cause: str
    dimension: Dimension
    value: str
    likely_cause: str
    evidence: tuple[str, ...]
    confidence: str
    names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class TriageResult:
    triage: Triage
    contributors: tuple[AnomalyContributor, ...]
    events: tuple[ClusterEvent, ...]


def triage_cost(
    scope: AnomalyScope,
    first_day: date,
    breakdown: Breakdown,
    events: Sequence[ClusterEvent],
    gpu_namespaces: frozenset[tuple[str, str]],
    currency: str,
    links: dict[str, str],
) -> TriageResult:
    """Decide the likely cause of a cost anomaly and order its contributors to match."""
    finding = _group_finding(scope, first_day, breakdown, events)
    top = _top_cluster(breakdown)
    if finding is None and top is not None:
        finding = cluster_finding(top, events, gpu_namespaces, currency)
        if scope.kind not in ("cluster", "namespace"):
            finding = _lifted(finding, top, breakdown.delta, currency)
    if finding is None:
        finding = Finding(
            "unknown", "namespace", "", "No single driver explains the rise", (), "low"
        )

    names = {"cluster": top.cluster_name if top else scope.name, **finding.names}
    triage = Triage(
        cause=finding.cause,
        likely_cause=finding.likely_cause,
        evidence=finding.evidence + (_drivers_line(breakdown, currency),),
        next_step=NEXT_STEPS[finding.cause].format_map(_Defaults(names)),
        confidence=finding.confidence,  # type: ignore[arg-type]
        link=links.get(top.cluster_uid) if top else None,
    )
    ordered = order_contributors(breakdown, finding.dimension, finding.value)
    related = relevant_events(events, finding.cause, first_day, finding.value)
    return TriageResult(triage, ordered, related)


def cluster_finding(
    part: ClusterBreakdown,
    events: Sequence[ClusterEvent],
    gpu_namespaces: frozenset[tuple[str, str]],
    currency: str,
) -> Finding:
    """Return the likely cause of one cluster's change."""
    own = [event for event in events if event.cluster_uid == part.cluster_uid]
    delta = part.total.delta
    for check in (_spot, _new_namespace, _runaway, _gpu_or_pool, _idle, _profile):
        found = check(part, own, gpu_namespaces, delta, currency)
        if found is not None:
            return found
    namespace = _top_namespace(part)
    return Finding(
        "unknown",
        "namespace",
        namespace or IDLE,
        f"No driver or event explains the rise of {part.cluster_name}",
        (),
        "low",
    )


def order_contributors(
    breakdown: Breakdown, dimension: Dimension, value: str
) -> tuple[AnomalyContributor, ...]:
    """Flatten the ranked contributors with the finding's dimension first and its value on top."""
    primary = list(breakdown.contributors.get(dimension, []))
    chosen = [item for item in primary if item.value == value]
    ordered = chosen + [item for item in primary if item.value != value]
    for other, items in breakdown.contributors.items():
        if other != dimension:
            ordered.extend(items)
    return tuple(ordered)


def relevant_events(
    events: Sequence[ClusterEvent], cause: str, first_day: date, subject: str = ""
) -> tuple[ClusterEvent, ...]:
    """Return the events most related to the cause, nearest to the first anomalous day first.

    Events with the cause's reasons come first, and among them those that name ``subject``
    (the namespace, pool or workload the cause points at).
    """
    reasons = CAUSE_EVENTS.get(cause, ())

    def rank(event: ClusterEvent) -> tuple[int, int, float]:
        distance = abs((event.created_at.date() - first_day).days)
        named = bool(subject) and _names(event, subject)
        return (0 if event.reason in reasons else 1, 0 if named else 1, distance)

    return tuple(sorted(events, key=rank)[:MAX_EVENTS])


def _spot(
    part: ClusterBreakdown,
    events: Sequence[ClusterEvent],
    gpu_namespaces: frozenset[tuple[str, str]],
    delta: float,
    currency: str,
) -> Finding | None:
    fallback = _first(events, SPOT_FALLBACK)
    rise = part.pricier_instances
    if fallback is None or delta <= 0 or rise < NOTABLE * delta:
        return None
    pool, _ = event_pool(part, [fallback])
    pool = pool or fallback.involved_name
    evidence = (
        f"Compute cost rose {_money(rise, currency)}/day more than node counts explain",
        _event_line(fallback),
    )
    return Finding(
        "spot_fallback",
        "node_pool",
        pool,
        f"Spot capacity of pool {pool} fell back to on-demand: same nodes, higher price",
        evidence,
        "high",
        {"pool": pool},
    )


def _new_namespace(
    part: ClusterBreakdown,
    events: Sequence[ClusterEvent],
    gpu_namespaces: frozenset[tuple[str, str]],
    delta: float,
    currency: str,
) -> Finding | None:
    if delta <= 0 or part.new_workloads < DOMINANT * delta:
        return None
    name = max(part.new_namespaces, key=lambda ns: part.namespaces[ns].actual)
    cost = part.namespaces[name].actual
    created = [
        event
        for event in events
        if event.reason == NAMESPACE_CREATED and event.involved_name == name
    ]
    evidence = [f"Namespace {name} had no cost before; it now costs {_money(cost, currency)}/day"]
    evidence.extend(_event_line(event) for event in created[:1])
    return Finding(
        "new_namespace",
        "namespace",
        name,
        f"New namespace {name} adds about {_money(cost, currency)}/day",
        tuple(evidence),
        "high" if created else "medium",
        {"namespace": name},
    )


def _runaway(
    part: ClusterBreakdown,
    events: Sequence[ClusterEvent],
    gpu_namespaces: frozenset[tuple[str, str]],
    delta: float,
    currency: str,
) -> Finding | None:
    namespace = _top_namespace(part)
    if namespace is None or delta <= 0:
        return None
    share = part.namespaces[namespace].delta / delta
    scaled = [
        event for event in events if event.reason == WORKLOAD_SCALED and _names(event, namespace)
    ]
    if not scaled or share < NOTABLE:
        return None
    workload = scaled[-1].involved_name
    evidence = (
        f"Namespace {namespace} carries {share:.0%} of the rise",
        *(_event_line(event) for event in scaled[-2:]),
    )
    return Finding(
        "hpa_runaway",
        "namespace",
        namespace,
        f"Workload {workload} scaled out in {len(scaled)} steps and nodes were added for it",
        evidence,
        "high",
        {"namespace": namespace, "workload": workload},
    )


def _gpu_or_pool(
    part: ClusterBreakdown,
    events: Sequence[ClusterEvent],
    gpu_namespaces: frozenset[tuple[str, str]],
    delta: float,
    currency: str,
) -> Finding | None:
    pool_name, growth, gpus = _grown_pool(part, events)
    if pool_name is None or delta <= 0 or part.compute_delta < DOMINANT * delta:
        return None
    scaled = [e for e in events if e.reason == POOL_SCALED and e.involved_name == pool_name]
    evidence = [_event_line(event) for event in scaled[:2]]
    names = {"pool": pool_name}
    if gpus:
        misuse = _gpu_misuse(part, gpu_namespaces, growth, delta)
        if misuse is not None:
            names["namespace"] = misuse
            evidence.insert(
                0, f"Namespace {misuse} has no GPU quota and grew far faster than {pool_name}"
            )
            return Finding(
                "gpu_without_request",
                "namespace",
                misuse,
                f"Pods of {misuse}, which request no GPU, fill GPU pool {pool_name}",
                tuple(evidence),
                "medium",
                names,
            )
    cause = "gpu_pool_scale_up" if gpus else "pool_scale_up"
    kind = "GPU pool" if gpus else "Pool"
    return Finding(
        cause,
        "node_pool",
        pool_name,
        f"{kind} {pool_name} scaled up" + (f" ({_scaled_text(scaled[0])})" if scaled else ""),
        tuple(evidence),
        "high" if scaled else "medium",
        names,
    )


def _idle(
    part: ClusterBreakdown,
    events: Sequence[ClusterEvent],
    gpu_namespaces: frozenset[tuple[str, str]],
    delta: float,
    currency: str,
) -> Finding | None:
    if delta <= 0 or part.idle.delta < DOMINANT * delta:
        return None
    return Finding(
        "idle_growth",
        "namespace",
        IDLE,
        f"Idle capacity of {part.cluster_name} grew by {_money(part.idle.delta, currency)}/day",
        (f"{part.idle.delta / delta:.0%} of the rise is cost that no namespace is allocated",),
        "medium",
    )


def _profile(
    part: ClusterBreakdown,
    events: Sequence[ClusterEvent],
    gpu_namespaces: frozenset[tuple[str, str]],
    delta: float,
    currency: str,
) -> Finding | None:
    update = _first(events, PROFILE_UPDATED)
    if update is None:
        return None
    return Finding(
        "profile_update",
        "namespace",
        _top_namespace(part) or IDLE,
        f"Cluster profile {update.involved_name} was updated as cost rose",
        (_event_line(update),),
        "low",
        {"profile": update.involved_name},
    )


def _group_finding(
    scope: AnomalyScope, first_day: date, breakdown: Breakdown, events: Sequence[ClusterEvent]
) -> Finding | None:
    """Return the cause that only a group of clusters shows: a profile update or a new cluster."""
    if scope.kind in ("cluster", "namespace", "pool"):
        return None
    window = (first_day - timedelta(days=1), first_day + timedelta(days=1))
    if scope.kind == "profile":
        updated = {
            event.cluster_uid
            for event in events
            if event.reason == PROFILE_UPDATED
            and event.involved_name == scope.name
            and window[0] <= event.created_at.date() <= window[1]
        }
        if len(updated) >= 2:
            return Finding(
                "profile_update",
                "profile",
                scope.name,
                f"Cluster profile {scope.name} was updated on {len(updated)} clusters as cost rose",
                tuple(_event_line(e) for e in events if e.reason == PROFILE_UPDATED)[:2],
                "medium",
                {"profile": scope.name},
            )
    top = _top_cluster(breakdown)
    if top is not None and top.total.before <= 0 and top.total.actual > 0:
        return Finding(
            "new_cluster",
            "cluster",
            top.cluster_name,
            f"Cluster {top.cluster_name} started spending in this {scope.kind}",
            (f"{top.cluster_name} had no cost in the two weeks before",),
            "high",
            {"cluster": top.cluster_name},
        )
    return None


def _lifted(finding: Finding, top: ClusterBreakdown, delta: float, currency: str) -> Finding:
    """Point a group anomaly at its top cluster, keeping the cluster's cause."""
    share = top.total.delta / delta if delta > 0 else 0.0
    return replace(
        finding,
        dimension="cluster",
        value=top.cluster_name,
        likely_cause=f"In cluster {top.cluster_name}: {finding.likely_cause}",
        evidence=(f"Cluster {top.cluster_name} carries {share:.0%} of the rise", *finding.evidence),
    )


def _top_cluster(breakdown: Breakdown) -> ClusterBreakdown | None:
    if not breakdown.context:
        return None
    return max(breakdown.context, key=lambda part: part.total.delta)


def _top_namespace(part: ClusterBreakdown) -> str | None:
    candidates = [name for name in part.namespaces if name not in part.new_namespaces]
    if not candidates:
        return None
    return max(candidates, key=lambda name: part.namespaces[name].delta)


def _grown_pool(
    part: ClusterBreakdown, events: Sequence[ClusterEvent]
) -> tuple[str | None, float | None, bool]:
    """Return the pool that grew (named by an event, else with the largest cost rise), its
    relative node growth when known, and whether it has GPUs."""
    name, _ = event_pool(part, [e for e in events if e.reason == POOL_SCALED and _scaled_up(e)])
    changes = {change.pool.name: change for change in part.pools}
    if name is None:
        rising = [c for c in part.pools if c.cost_delta is not None and c.cost_delta > 0]
        if not rising:
            return None, None, False
        name = max(rising, key=lambda change: change.cost_delta or 0.0).pool.name

    change = changes.get(name)
    growth = None
    if change is not None and change.nodes is not None and change.nodes.expected > 0:
        growth = change.nodes.delta / change.nodes.expected
    if growth is None:
        growth = _event_growth(events, name)
    gpus = bool(change is not None and change.pool.gpus_per_node > 0)
    return name, growth, gpus


def _gpu_misuse(
    part: ClusterBreakdown,
    gpu_namespaces: frozenset[tuple[str, str]],
    pool_growth: float | None,
    delta: float,
) -> str | None:
    namespace = _top_namespace(part)
    if namespace is None or pool_growth is None or pool_growth <= 0:
        return None
    if (part.cluster_uid, namespace) in gpu_namespaces:
        return None
    means = part.namespaces[namespace]
    if means.delta < DOMINANT * delta or means.expected <= 0:
        return None
    growth = means.delta / means.expected
    return namespace if growth >= FASTER_GROWTH * pool_growth else None


def _event_growth(events: Sequence[ClusterEvent], pool: str) -> float | None:
    for event in events:
        if event.reason != POOL_SCALED or event.involved_name != pool:
            continue
        match = SCALED.search(event.message)
        if match and int(match.group(1)) > 0 and int(match.group(2)) > int(match.group(1)):
            before, after = int(match.group(1)), int(match.group(2))
            return (after - before) / before
    return None


def _scaled_up(event: ClusterEvent) -> bool:
    match = SCALED.search(event.message)
    return match is None or int(match.group(2)) > int(match.group(1))


def _scaled_text(event: ClusterEvent) -> str:
    match = SCALED.search(event.message)
    return f"from {match.group(1)} to {match.group(2)} nodes" if match else event.message


def _names(event: ClusterEvent, namespace: str) -> bool:
    return (
        event.related_name == namespace
        or event.involved_name == namespace
        or event.involved_name.startswith(f"{namespace}/")
    )


def _first(events: Sequence[ClusterEvent], reason: str) -> ClusterEvent | None:
    return next((event for event in events if event.reason == reason), None)


def _event_line(event: ClusterEvent) -> str:
    return f"{event.created_at:%Y-%m-%d %H:%M} UTC {event.reason}: {event.message}"


def _drivers_line(breakdown: Breakdown, currency: str) -> str:
    amounts = {driver.name: driver.amount for driver in breakdown.drivers}
    if not amounts:
        return "No cluster-level drivers: the scope has no cluster cost facts"
    return (
        f"Per day, capacity: nodes {_signed(amounts['more_nodes'])}, prices "
        f"{_signed(amounts['pricier_instances'])}, storage {_signed(amounts['storage'])}; "
        f"allocation: existing namespaces {_signed(amounts['more_requests'])}, new namespaces "
        f"{_signed(amounts['new_workloads'])}, idle {_signed(amounts['idle_capacity'])} {currency}"
    )


def _signed(value: Decimal) -> str:
    return f"{quantize_money(value):+,.2f}"


def _money(value: float, currency: str) -> str:
    return f"{quantize_money(value):,.2f} {currency}"


class _Defaults(dict[str, str]):
    """Names filled into the next-step text. A missing name reads as the cluster's name."""

    def __missing__(self, key: str) -> str:
        return self.get("cluster", "the cluster")
