"""Cost and usage anomalies planted in every simulated fleet, with their ground truth.

Each anomaly lives on a cluster of its own, planted whatever the seed, so that detectors and
root-cause analysis can be checked against a known result. All of them start in the two weeks
before ``as_of``, so a 90-day history has clean training data before them. The timing and sizes
below are read by the fleet generator (``anomaly_plans.py``) and by the usage model, so the
ground truth and the generated data cannot drift apart.

Days are offsets from the UTC day of ``as_of``: ``0`` is that day, ``-1`` the day before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from costwarden.domain.event import NAMESPACE_CREATED, POOL_SCALED, SPOT_FALLBACK, WORKLOAD_SCALED
from costwarden.sources.prices import CapacityType, PriceCatalog

AnomalyKind = Literal["spike", "level_shift"]
Dimension = Literal["cluster", "namespace", "node_pool", "instance_type"]

HOURS_PER_DAY = 24


@dataclass(frozen=True, slots=True)
class DayTime:
    """A moment given as a day offset from the day of ``as_of`` and a UTC time of day."""

    day: int
    hour: int
    minute: int

    def resolve(self, as_of: datetime) -> datetime:
        """Return the UTC moment for a fleet whose clock is ``as_of``."""
        midnight = datetime.combine(as_of.astimezone(UTC).date(), time(0), tzinfo=UTC)
        return midnight + timedelta(days=self.day, hours=self.hour, minutes=self.minute)


@dataclass(frozen=True, slots=True)
class PlantedAnomaly:
    """The ground truth of one planted anomaly.

    ``first_day`` and ``last_day`` are day offsets from the day of ``as_of``. ``last_day`` is
    None while the anomaly goes on at ``as_of``. The first and last days can be partial, because
    the change happens at the time of its event. ``extra_cost_per_day`` is the planted increase
    of the cluster's cloud cost (compute and storage) on a full day of the anomaly, at its peak
    for a ramp, computed from the packaged price list. It is zero for anomalies that change only
    usage. ``event_reason`` is the reason of the Palette event that marks the change, or None
    when Palette records nothing.
    """

    name: str
    kind: AnomalyKind
    cause: str
    cluster: str
    top_contributor: tuple[Dimension, str]
    first_day: int
    last_day: int | None
    extra_cost_per_day: Decimal
    currency: str
    event_reason: str | None
    description: str

    def dates(self, as_of: datetime) -> tuple[date, date | None]:
        """Return the first and last UTC day of the anomaly for a fleet whose clock is ``as_of``."""
        today = as_of.astimezone(UTC).date()
        last = None if self.last_day is None else today + timedelta(days=self.last_day)
        return today + timedelta(days=self.first_day), last


GPU_SPIKE_CLUSTER = "vision-gpu-eks"
GPU_SPIKE_POOL = "gpu-inference"
GPU_SPIKE_INSTANCE = "g5.2xlarge"
GPU_SPIKE_NODES = (2, 10)
GPU_SPIKE_UP = DayTime(-13, 0, 17)
GPU_SPIKE_DOWN = DayTime(-12, 23, 41)
GPU_DISK_GIB = 200

NEW_NAMESPACE_CLUSTER = "checkout-aks"
NEW_NAMESPACE = "checkout-v2"
NEW_NAMESPACE_CREATED = DayTime(-8, 10, 5)
NEW_NAMESPACE_POOL = "worker-pool"
NEW_NAMESPACE_INSTANCE = "Standard_D8s_v5"
NEW_NAMESPACE_NODES = 6
NEW_NAMESPACE_SCALED = DayTime(-8, 10, 22)
AKS_DISK_GIB = 128

SPOT_CLUSTER = "batch-gke"
SPOT_POOL = "batch-workers"
SPOT_INSTANCE = "n2-standard-16"
SPOT_NODES = 10
SPOT_FALLBACK_AT = DayTime(-6, 3, 12)
GCP_DISK_GIB = 100

HPA_CLUSTER = "recs-eks"
HPA_NAMESPACE = "recommendations"
HPA_DEPLOYMENT = "recs-ranker"
HPA_POOL = "worker-pool"
HPA_INSTANCE = "m5.2xlarge"
HPA_STEPS = (
    (DayTime(-4, 14, 5), 8, 24, 3),
    (DayTime(-4, 19, 33), 24, 64, 5),
    (DayTime(-3, 7, 48), 64, 120, 5),
    (DayTime(-3, 16, 23), 120, 160, 3),
)
"""The runaway: when the autoscaler raised the replicas, from and to, and the nodes it added."""
AWS_DISK_GIB = 100

GPU_MISUSE_CLUSTER = "ml-research-eks"
GPU_MISUSE_POOL = "gpu-pool"
GPU_MISUSE_INSTANCE = "g5.xlarge"
GPU_MISUSE_NODES = (4, 7)
GPU_MISUSE_NAMESPACE = "feature-pipelines"
GPU_MISUSE_AT = DayTime(-7, 11, 30)

MINING_CLUSTER = "ci-build-gke"
MINING_NAMESPACE = "ci-runners"
MINING_START = DayTime(-10, 2, 40)
MINING_CPU_UTILISATION = 0.9
"""Daily average share of the worker cores in use once the miner runs. Its hourly peak is 99%."""

ANOMALY_CLUSTERS = (
    GPU_SPIKE_CLUSTER,
    NEW_NAMESPACE_CLUSTER,
    SPOT_CLUSTER,
    HPA_CLUSTER,
    GPU_MISUSE_CLUSTER,
    MINING_CLUSTER,
)
"""The clusters that carry planted anomalies, in the order of their random streams. Append
new clusters at the end, so that the existing ones keep their streams."""


def node_day_cost(
    cloud: str,
    region: str,
    instance_type: str,
    disk_gib: int,
    capacity_type: CapacityType = "on-demand",
) -> Decimal:
    """Return the cloud cost of one node for a full day: instance and disk list prices."""
    catalog = PriceCatalog.packaged()
    hourly = catalog.hourly_price(cloud, region, instance_type, capacity_type)
    disk = catalog.storage_price_per_gib_hour(cloud, region) * disk_gib
    return (hourly + disk) * HOURS_PER_DAY


def _spot_fallback_cost() -> Decimal:
    catalog = PriceCatalog.packaged()
    on_demand = catalog.hourly_price("gke", "us-central1", SPOT_INSTANCE, "on-demand")
    spot = catalog.hourly_price("gke", "us-central1", SPOT_INSTANCE, "spot")
    return (on_demand - spot) * SPOT_NODES * HOURS_PER_DAY


def _anomalies() -> dict[str, PlantedAnomaly]:
    spike_nodes = GPU_SPIKE_NODES[1] - GPU_SPIKE_NODES[0]
    hpa_nodes = sum(step[3] for step in HPA_STEPS)
    misuse_nodes = GPU_MISUSE_NODES[1] - GPU_MISUSE_NODES[0]
    anomalies = [
        PlantedAnomaly(
            name="gpu-inference-spike",
            kind="spike",
            cause="gpu_pool_scale_up",
            cluster=GPU_SPIKE_CLUSTER,
            top_contributor=("node_pool", GPU_SPIKE_POOL),
            first_day=GPU_SPIKE_UP.day,
            last_day=GPU_SPIKE_DOWN.day,
            extra_cost_per_day=spike_nodes
            * node_day_cost("eks", "us-east-1", GPU_SPIKE_INSTANCE, GPU_DISK_GIB),
            currency="USD",
            event_reason=POOL_SCALED,
            description=f"The {GPU_SPIKE_POOL} pool jumps from {GPU_SPIKE_NODES[0]} to "
            f"{GPU_SPIKE_NODES[1]} {GPU_SPIKE_INSTANCE} nodes for two days, then scales back.",
        ),
        PlantedAnomaly(
            name="checkout-v2-namespace",
            kind="level_shift",
            cause="new_namespace",
            cluster=NEW_NAMESPACE_CLUSTER,
            top_contributor=("namespace", NEW_NAMESPACE),
            first_day=NEW_NAMESPACE_CREATED.day,
            last_day=None,
            extra_cost_per_day=NEW_NAMESPACE_NODES
            * node_day_cost("aks", "eastus", NEW_NAMESPACE_INSTANCE, AKS_DISK_GIB),
            currency="USD",
            event_reason=NAMESPACE_CREATED,
            description=f"Namespace {NEW_NAMESPACE} is created and {NEW_NAMESPACE_NODES} "
            f"{NEW_NAMESPACE_INSTANCE} nodes are added to {NEW_NAMESPACE_POOL} for it.",
        ),
        PlantedAnomaly(
            name="batch-spot-fallback",
            kind="level_shift",
            cause="spot_fallback",
            cluster=SPOT_CLUSTER,
            top_contributor=("node_pool", SPOT_POOL),
            first_day=SPOT_FALLBACK_AT.day,
            last_day=None,
            extra_cost_per_day=_spot_fallback_cost(),
            currency="USD",
            event_reason=SPOT_FALLBACK,
            description=f"The {SPOT_NODES} {SPOT_INSTANCE} nodes of {SPOT_POOL} fall back from "
            "Spot to on-demand capacity and stay there.",
        ),
        PlantedAnomaly(
            name="recs-hpa-runaway",
            kind="level_shift",
            cause="hpa_runaway",
            cluster=HPA_CLUSTER,
            top_contributor=("namespace", HPA_NAMESPACE),
            first_day=HPA_STEPS[0][0].day,
            last_day=None,
            extra_cost_per_day=hpa_nodes
            * node_day_cost("eks", "us-east-1", HPA_INSTANCE, AWS_DISK_GIB),
            currency="USD",
            event_reason=WORKLOAD_SCALED,
            description=f"A misconfigured autoscaler takes {HPA_NAMESPACE}/{HPA_DEPLOYMENT} from "
            f"{HPA_STEPS[0][1]} to {HPA_STEPS[-1][2]} replicas in about a day, and {hpa_nodes} "
            f"{HPA_INSTANCE} nodes are added for them.",
        ),
        PlantedAnomaly(
            name="gpu-without-request",
            kind="level_shift",
            cause="gpu_without_request",
            cluster=GPU_MISUSE_CLUSTER,
            top_contributor=("namespace", GPU_MISUSE_NAMESPACE),
            first_day=GPU_MISUSE_AT.day,
            last_day=None,
            extra_cost_per_day=misuse_nodes
            * node_day_cost("eks", "us-east-1", GPU_MISUSE_INSTANCE, GPU_DISK_GIB),
            currency="USD",
            event_reason=POOL_SCALED,
            description=f"Pods of {GPU_MISUSE_NAMESPACE} that request no GPU land on "
            f"{GPU_MISUSE_POOL}, which grows from {GPU_MISUSE_NODES[0]} to "
            f"{GPU_MISUSE_NODES[1]} {GPU_MISUSE_INSTANCE} nodes. The namespace's CPU usage and "
            "usage-based cost rise with it.",
        ),
        PlantedAnomaly(
            name="ci-runners-cryptomining",
            kind="level_shift",
            cause="cryptomining",
            cluster=MINING_CLUSTER,
            top_contributor=("namespace", MINING_NAMESPACE),
            first_day=MINING_START.day,
            last_day=None,
            extra_cost_per_day=Decimal(0),
            currency="USD",
            event_reason=None,
            description=f"{MINING_NAMESPACE} uses the idle CPU of the worker nodes, "
            f"{MINING_CPU_UTILISATION:.0%} of their cores on average, with no change in its "
            "requests, replicas or node count.",
        ),
    ]
    return {anomaly.name: anomaly for anomaly in anomalies}


PLANTED_ANOMALIES: Mapping[str, PlantedAnomaly] = MappingProxyType(_anomalies())
"""Every planted anomaly by name."""
