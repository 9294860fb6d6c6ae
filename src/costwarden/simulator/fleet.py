"""The simulated Palette tenant: projects, clusters, machine pools, namespaces and cost history.

``build_fleet(seed, as_of)`` is deterministic: the same arguments give the same fleet, and each
cluster draws from its own random stream, so the planted clusters do not change when the fleet
size changes. Cost follows Palette's cloud cost formula, per pool and day. The compute cost is
the average node count times the instance's hourly list price times 24. The storage cost is the
node count times the disk size times the storage price per GiB-hour times 24.

Day ``i`` of every series starts at ``fleet.start + i days`` (UTC). The last day is the day of
``as_of``. Its arrays hold the full-day amount, and the API reports only the part of the day
elapsed before ``as_of``.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import lru_cache

from costwarden.simulator.generator import FleetGenerator
from costwarden.simulator.model import (
    Cluster,
    ClusterProfile,
    Fleet,
    MachinePool,
    Namespace,
    Pack,
    Project,
)
from costwarden.simulator.planted import (
    OVERRUN_CLUSTER,
    PLANTED,
    PLANTED_CLUSTER_COUNT,
    STABLE_CLUSTER,
    PlantedCluster,
)
from costwarden.sources.prices import PriceCatalog

__all__ = [
    "OVERRUN_CLUSTER",
    "PLANTED",
    "STABLE_CLUSTER",
    "Cluster",
    "ClusterProfile",
    "Fleet",
    "MachinePool",
    "Namespace",
    "Pack",
    "PlantedCluster",
    "Project",
    "build_fleet",
]

logger = logging.getLogger(__name__)


def build_fleet(
    seed: int,
    as_of: datetime,
    *,
    history_days: int = 180,
    cluster_count: int = 54,
    waste_clusters: bool = False,
) -> Fleet:
    """Generate the fleet for a seed and a point in time; results are cached per arguments.

    ``waste_clusters`` adds the clusters of the planted waste project on top of
    ``cluster_count``.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    if seed < 0:
        raise ValueError(f"seed must be zero or positive, got {seed}")
    if history_days < 1:
        raise ValueError(f"history_days must be at least 1, got {history_days}")
    if cluster_count < PLANTED_CLUSTER_COUNT:
        raise ValueError(
            f"cluster_count must be at least {PLANTED_CLUSTER_COUNT}, the planted clusters, got "
            f"{cluster_count}"
        )
    return _build_cached(seed, as_of.astimezone(UTC), history_days, cluster_count, waste_clusters)


@lru_cache(maxsize=8)
def _build_cached(
    seed: int, as_of: datetime, history_days: int, cluster_count: int, waste_clusters: bool
) -> Fleet:
    started = time.perf_counter()
    generator = FleetGenerator(seed, as_of, history_days, PriceCatalog.packaged())
    fleet = generator.build(cluster_count, waste_clusters=waste_clusters)

    logger.info(
        "generated simulated fleet: seed %d, as_of %s, %d clusters, %d days in %.3f s",
        seed,
        as_of.isoformat(),
        len(fleet.clusters),
        fleet.days,
        time.perf_counter() - started,
    )
    return fleet
