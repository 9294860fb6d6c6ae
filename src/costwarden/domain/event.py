"""Palette cluster events: what changed on a cluster, and when, as Palette recorded it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

POOL_SCALED = "MachinePoolScaled"
"""A machine pool changed its node count."""

NAMESPACE_CREATED = "NamespaceCreated"
"""A namespace was added to the cluster."""

PROFILE_UPDATED = "ClusterProfileUpdated"
"""A cluster profile attached to the cluster got a new version."""

SPOT_FALLBACK = "SpotCapacityFallback"
"""A Spot machine pool fell back to on-demand capacity because Spot capacity ran out."""

WORKLOAD_SCALED = "WorkloadScaled"
"""A workload's replica count changed, for example by a horizontal pod autoscaler."""

EVENT_REASONS = (POOL_SCALED, NAMESPACE_CREATED, PROFILE_UPDATED, SPOT_FALLBACK, WORKLOAD_SCALED)
"""The event reasons that the Palette simulator emits. Real Palette emits others too."""


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    """One Palette component event about a cluster or an object inside it.

    The fields follow Palette's ``v1Event``. ``created_at`` is ``metadata.creationTimestamp`` in
    UTC. ``involved_kind`` and ``involved_name`` name the object the event is about: a
    ``MachinePool``, ``Namespace``, ``ClusterProfile`` or ``Deployment``. A namespaced object's
    name is written ``namespace/name``. ``related_kind`` and ``related_name`` are Palette's
    ``relatedObject``, the cluster (``spectrocluster``) or edge host that the event belongs to,
    and ``cluster_uid`` is that object's uid.
    """

    uid: str
    cluster_uid: str
    cluster_name: str | None
    created_at: datetime
    reason: str
    message: str
    severity: str
    involved_kind: str
    involved_name: str
    related_kind: str | None
    related_name: str | None
    source_component: str | None
