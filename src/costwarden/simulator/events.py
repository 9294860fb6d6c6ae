"""The Palette component events of the simulated fleet.

Besides the events of the planted anomalies, every cluster gets routine events that match its
data or change nothing. An autoscaled pool whose rounded daily node count moves by at least
``ROUTINE_SCALE_NODES`` nodes and 20% gets a ``MachinePoolScaled`` event that day. Namespaces
created inside the history get ``NamespaceCreated``. Cluster profile updates and workload scaling
happen at random, about every ``PROFILE_UPDATE_DAYS`` and ``WORKLOAD_SCALE_DAYS`` days. So a
cost change on a cluster is seldom its only event. Only events up to ``as_of`` exist.

The random events of a cluster draw from ``[seed, 10, uid]``, with the first 12 hex digits of
the cluster uid, so they do not depend on the rest of the fleet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import numpy as np

from costwarden.domain.event import (
    NAMESPACE_CREATED,
    POOL_SCALED,
    PROFILE_UPDATED,
    WORKLOAD_SCALED,
    ClusterEvent,
)
from costwarden.simulator.model import Cluster
from costwarden.simulator.plans import ClusterPlan, EventSpec

CLUSTER_KIND = "spectrocluster"
ROUTINE_SCALE_NODES = 2
ROUTINE_SCALE_SHARE = 0.2
PROFILE_UPDATE_DAYS = 40.0
WORKLOAD_SCALE_DAYS = 12.0
KUBE_SYSTEM = "kube-system"


def fleet_events(
    seed: int,
    start: datetime,
    as_of: datetime,
    planned: Iterable[tuple[ClusterPlan, Cluster]],
) -> tuple[ClusterEvent, ...]:
    """Return the events of every cluster up to ``as_of``, oldest first."""
    events: list[ClusterEvent] = []
    for plan, cluster in planned:
        rng = np.random.default_rng([seed, 10, int(cluster.uid[:12], 16)])
        specs = [
            *plan.events,
            *_pool_scaling(rng, start, plan, cluster),
            *_namespace_creation(start, plan, cluster),
            *_profile_updates(rng, start, as_of, cluster),
            *_workload_scaling(rng, start, as_of, cluster),
        ]
        events.extend(_event(cluster, spec) for spec in specs if spec.at <= as_of)
    return tuple(sorted(events, key=lambda event: (event.created_at, event.uid)))


def _event(cluster: Cluster, spec: EventSpec) -> ClusterEvent:
    identity = "|".join(
        [cluster.uid, spec.at.isoformat(), spec.reason, spec.involved_name, spec.message]
    )
    return ClusterEvent(
        uid=hashlib.sha256(identity.encode()).hexdigest()[:24],
        cluster_uid=cluster.uid,
        cluster_name=cluster.name,
        created_at=spec.at,
        reason=spec.reason,
        message=spec.message,
        severity=spec.severity,
        involved_kind=spec.involved_kind,
        involved_name=spec.involved_name,
        related_kind=CLUSTER_KIND,
        related_name=cluster.name,
        source_component=spec.component,
    )


def _pool_scaling(
    rng: np.random.Generator, start: datetime, plan: ClusterPlan, cluster: Cluster
) -> Iterator[EventSpec]:
    """Yield an event on each day an autoscaled pool's rounded node count moves a lot.

    The nodes a planted anomaly adds are left out, because the anomaly's own events cover them.
    """
    first = cluster.first_day + 2
    for pool in plan.pools:
        if pool.min_size == pool.max_size:
            continue
        rounded = np.rint(pool.base_levels()).astype(int)
        seconds = rng.integers(0, 86_400, size=len(rounded))
        for day in range(max(first, 1), len(rounded)):
            before, after = int(rounded[day - 1]), int(rounded[day])
            change = abs(after - before)
            if change < max(ROUTINE_SCALE_NODES, ROUTINE_SCALE_SHARE * before):
                continue
            yield EventSpec(
                at=start + timedelta(days=day, seconds=int(seconds[day])),
                reason=POOL_SCALED,
                message=f"Machine pool {pool.name} scaled from {before} to {after} nodes",
                involved_kind="MachinePool",
                involved_name=pool.name,
                component="cluster-autoscaler",
            )


def _namespace_creation(
    start: datetime, plan: ClusterPlan, cluster: Cluster
) -> Iterator[EventSpec]:
    for namespace in cluster.namespaces:
        if namespace.created_at < start or namespace.name in plan.late_namespaces:
            continue
        yield EventSpec(
            at=namespace.created_at,
            reason=NAMESPACE_CREATED,
            message=f"Namespace {namespace.name} created",
            involved_kind="Namespace",
            involved_name=namespace.name,
        )


def _random_moments(
    rng: np.random.Generator, start: datetime, as_of: datetime, cluster: Cluster, every: float
) -> list[datetime]:
    """Draw moments after the cluster's first full day, about one every ``every`` days."""
    begin = max(start, cluster.created_at) + timedelta(days=1)
    span = (as_of - begin).total_seconds()
    if span <= 0:
        return []
    count = int(rng.poisson(span / 86_400 / every))
    offsets = np.sort(rng.uniform(0.0, span, size=count))
    return [begin + timedelta(seconds=int(offset)) for offset in offsets]


def _profile_updates(
    rng: np.random.Generator, start: datetime, as_of: datetime, cluster: Cluster
) -> Iterator[EventSpec]:
    for at in _random_moments(rng, start, as_of, cluster, PROFILE_UPDATE_DAYS):
        profile = cluster.profiles[int(rng.integers(len(cluster.profiles)))]
        version = f"1.{profile.version}.{int(rng.integers(1, 10))}"
        yield EventSpec(
            at=at,
            reason=PROFILE_UPDATED,
            message=f"Cluster profile {profile.name} updated to version {version}",
            involved_kind="ClusterProfile",
            involved_name=profile.name,
        )


def _workload_scaling(
    rng: np.random.Generator, start: datetime, as_of: datetime, cluster: Cluster
) -> Iterator[EventSpec]:
    """Yield small replica changes of workloads, which add no nodes beyond the pools' noise."""
    names = [ns.name for ns in cluster.namespaces if ns.name != KUBE_SYSTEM]
    for at in _random_moments(rng, start, as_of, cluster, WORKLOAD_SCALE_DAYS):
        namespace = names[int(rng.integers(len(names)))]
        before = int(rng.integers(2, 10))
        after = max(1, before + int(rng.choice([-3, -2, -1, 1, 2, 3])))
        workload = f"{namespace}/{namespace}-app"
        yield EventSpec(
            at=at,
            reason=WORKLOAD_SCALED,
            message=f"Deployment {workload} scaled from {before} to {after} replicas by its "
            "horizontal pod autoscaler",
            involved_kind="Deployment",
            involved_name=workload,
            component="horizontal-pod-autoscaler",
        )
