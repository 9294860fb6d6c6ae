"""The shape of the planted waste clusters: pools, workloads, volumes and load balancers.

``waste.py`` prices the planted waste of these plans, and ``metrics.py`` renders their
Kubernetes metrics. Everything else is sized so that no recommender has a reason to change it.
Requests match usage, and each pool has two nodes of the smallest type of its family or is
packed full. The tenant's commitments (``COMMITMENTS_HELD``) cover every steady node but the
planted baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from costwarden.sources.prices import CapacityType, Provider, provider_of

MIB = 2**20
GIB = 2**30

CpuPattern = Literal["steady", "weekday"]

WASTE_PROJECT = "finops-lab"
"""Palette project of the waste clusters, apart from the projects that carry budgets."""

PROD_CLUSTER = "waste-prod-eks"
DEV_CLUSTER = "dev-tools-aks"
STAGING_CLUSTER = "staging-data-gke"

ALLOCATABLE_SHARE = 0.95
"""Share of a node's vCPUs and memory that the kubelet reports as allocatable."""

NODE_OVERHEAD_CORES = 0.06
"""CPU busy on a node beyond its pods (kubelet, runtime, agents), as node-exporter reports it."""

IDLE_NODE_OVERHEAD_CORES = 0.02
"""CPU busy on a node of an idle pool, which runs no pods."""

NODE_OVERHEAD_BYTES = 1 * GIB

WORK_HOURS = (8, 20)
"""Weekday working hours (UTC) in which a ``weekday`` workload is busy, Monday to Friday."""

WEEKDAY_IDLE_SHARE = 0.004
"""CPU of a ``weekday`` workload outside working hours, as a share of its busy level."""


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """A machine pool: Palette's pool name is also the node pool label of its nodes."""

    name: str
    instance_type: str
    nodes: int
    capacity_type: CapacityType = "on-demand"
    system: bool = False
    idle: bool = False


@dataclass(frozen=True, slots=True)
class WorkloadPlan:
    """A workload with one container, whose replicas are spread over the nodes of ``pool``.

    ``cpu_p95_cores`` is the 95th percentile of each pod's CPU usage and ``memory_peak_bytes``
    the peak working set of each pod. ``oom_killed`` makes the working set climb to the memory
    limit on the sixth day, where the container is OOM-killed. ``claims`` are mounted by the
    pods in order (replica ``i`` mounts ``claims[i]``).
    """

    namespace: str
    kind: Literal["Deployment", "StatefulSet"]
    name: str
    pool: str
    replicas: int
    cpu_request_cores: float
    cpu_p95_cores: float
    memory_request_bytes: float
    memory_peak_bytes: float
    memory_limit_bytes: float | None = None
    cpu_pattern: CpuPattern = "steady"
    hpa: tuple[int, int] | None = None
    oom_killed: bool = False
    claims: tuple[str, ...] = ()
    receive_bytes_per_second: float = 2e5

    @property
    def container(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class VolumePlan:
    """A PersistentVolumeClaim. ``growing`` claims gain used bytes steadily over the window.

    ``iops`` is the disk's read plus write operations per second on the node that mounts it.
    """

    namespace: str
    claim: str
    storage_class: str
    size_gib: int
    used_gib: float
    growing: bool
    iops: float = 30.0


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """A Service of type LoadBalancer. ``backends`` names the workload behind it, None for none."""

    namespace: str
    name: str
    ingress_ip: str
    backends: str | None


@dataclass(frozen=True, slots=True)
class WasteClusterPlan:
    """One cluster of the waste project, with the zone of its nodes and its ``env`` label."""

    name: str
    cloud_type: str
    region: str
    zone: str
    environment: Literal["prod", "staging", "dev"]
    pools: tuple[PoolPlan, ...]
    workloads: tuple[WorkloadPlan, ...]
    volumes: tuple[VolumePlan, ...] = ()
    services: tuple[ServicePlan, ...] = ()
    namespaces: tuple[str, ...] = field(default=())

    @property
    def provider(self) -> Provider:
        return provider_of(self.cloud_type)

    def pool(self, name: str) -> PoolPlan:
        return next(pool for pool in self.pools if pool.name == name)

    def volume(self, claim: str) -> VolumePlan:
        return next(volume for volume in self.volumes if volume.claim == claim)


def sized(
    namespace: str,
    kind: Literal["Deployment", "StatefulSet"],
    name: str,
    pool: str,
    replicas: int,
    cpu_cores: float,
    memory_bytes: float,
    **extra: object,
) -> WorkloadPlan:
    """Plan a workload whose requests already match its usage (CPU p95, peak plus 15%)."""
    return WorkloadPlan(
        namespace, kind, name, pool, replicas,
        cpu_request_cores=cpu_cores,
        cpu_p95_cores=round(cpu_cores * 0.98, 6),
        memory_request_bytes=memory_bytes,
        memory_peak_bytes=round(memory_bytes / 1.15),
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


# Over-requested workloads of the production cluster, and the OOM-killed cache.
ORDERS_API = WorkloadPlan(
    "shop", "Deployment", "orders-api", "apps-pool", 2,
    cpu_request_cores=0.6, cpu_p95_cores=0.12,
    memory_request_bytes=1536 * MIB, memory_peak_bytes=500 * MIB, memory_limit_bytes=3 * GIB,
    claims=("scratch-orders",),
)  # fmt: skip
SEARCH_API = WorkloadPlan(
    "shop", "Deployment", "search-api", "apps-pool", 3,
    cpu_request_cores=0.3, cpu_p95_cores=0.08,
    memory_request_bytes=768 * MIB, memory_peak_bytes=250 * MIB,
    hpa=(2, 8),
)  # fmt: skip
SESSION_CACHE = WorkloadPlan(
    "shop", "StatefulSet", "session-cache", "apps-pool", 1,
    cpu_request_cores=0.2, cpu_p95_cores=0.196,
    memory_request_bytes=256 * MIB, memory_peak_bytes=200 * MIB, memory_limit_bytes=512 * MIB,
    oom_killed=True,
)  # fmt: skip

BATCH_WORKER = sized("batch", "Deployment", "batch-worker", "batch-pool", 6, 1.0, 2 * GIB)
FEATURE_ETL = sized("ml", "Deployment", "feature-etl", "gpu-pool", 2, 1.5, 6 * GIB)

PROD = WasteClusterPlan(
    name=PROD_CLUSTER,
    cloud_type="eks",
    region="us-east-1",
    zone="us-east-1a",
    environment="prod",
    pools=(
        PoolPlan("system-pool", "m5.large", 2, system=True),
        PoolPlan("apps-pool", "m5.large", 2),
        PoolPlan("batch-pool", "m5.2xlarge", 4),
        PoolPlan("idle-pool", "m5.xlarge", 3, idle=True),
        PoolPlan("gpu-pool", "g5.xlarge", 2),
    ),
    workloads=(
        sized("kube-system", "Deployment", "coredns", "system-pool", 2, 0.1, 128 * MIB),
        ORDERS_API,
        SEARCH_API,
        SESSION_CACHE,
        sized(
            "shop",
            "StatefulSet",
            "orders-db",
            "apps-pool",
            1,
            0.2,
            1 * GIB,
            claims=("data-orders-db-0",),
        ),
        sized("shop", "Deployment", "storefront", "apps-pool", 2, 0.15, 256 * MIB),
        BATCH_WORKER,
        FEATURE_ETL,
    ),  # fmt: skip
    volumes=(
        VolumePlan("shop", "scratch-orders", "gp3", 100, 1.0, growing=False),
        VolumePlan("shop", "data-orders-db-0", "gp2", 500, 120.0, growing=True),
        VolumePlan("shop", "old-backup", "gp3", 200, 0.0, growing=False),
    ),
    services=(
        ServicePlan("shop", "storefront", "203.0.113.10", "storefront"),
        ServicePlan("shop", "legacy-gateway", "203.0.113.11", None),
    ),
)

CI_RUNNER = sized("ci", "Deployment", "ci-runner", "ci-runners", 3, 2.5, 4 * GIB)
BUILD_CACHE = sized(
    "tools", "StatefulSet", "build-cache", "weekday-pool", 2, 2.5, 4 * GIB,
    cpu_pattern="weekday", claims=("cache-build-cache-0", "cache-build-cache-1"),
)  # fmt: skip

DEV = WasteClusterPlan(
    name=DEV_CLUSTER,
    cloud_type="aks",
    region="eastus",
    zone="eastus-1",
    environment="dev",
    pools=(
        PoolPlan("system-pool", "Standard_D2s_v5", 2, system=True),
        PoolPlan("ci-runners", "Standard_D4s_v5", 3),
        PoolPlan("weekday-pool", "Standard_D4s_v5", 2),
    ),
    workloads=(
        sized("kube-system", "Deployment", "coredns", "system-pool", 2, 0.1, 128 * MIB),
        sized(
            "tools",
            "StatefulSet",
            "artifact-store",
            "system-pool",
            1,
            0.2,
            512 * MIB,
            claims=("pipeline-artifacts",),
        ),
        sized(
            "tools",
            "StatefulSet",
            "ledger-db",
            "system-pool",
            1,
            0.3,
            1 * GIB,
            claims=("data-ledger-db-0",),
        ),
        sized("tools", "Deployment", "grafana", "system-pool", 1, 0.1, 256 * MIB),
        CI_RUNNER,
        BUILD_CACHE,
    ),  # fmt: skip
    volumes=(
        VolumePlan(
            "tools",
            "pipeline-artifacts",
            "managed-csi-premium",
            256,
            40.0,
            growing=True,
            iops=120.0,
        ),
        VolumePlan(
            "tools", "data-ledger-db-0", "managed-csi-premium", 256, 60.0, growing=True, iops=2400.0
        ),
        VolumePlan("tools", "cache-build-cache-0", "managed-csi", 128, 20.0, growing=True),
        VolumePlan("tools", "cache-build-cache-1", "managed-csi", 128, 20.0, growing=True),
    ),  # fmt: skip
    services=(ServicePlan("tools", "grafana", "198.51.100.20", "grafana"),),
)

SPARK_EXECUTOR = sized("data", "Deployment", "spark-executor", "batch-pool", 2, 2.5, 4 * GIB)

STAGING = WasteClusterPlan(
    name=STAGING_CLUSTER,
    cloud_type="gke",
    region="us-central1",
    zone="us-central1-a",
    environment="staging",
    pools=(
        PoolPlan("system-pool", "e2-standard-2", 2, system=True),
        PoolPlan("batch-pool", "n2-standard-4", 2),
    ),
    workloads=(
        sized("kube-system", "Deployment", "kube-dns", "system-pool", 2, 0.1, 128 * MIB),
        SPARK_EXECUTOR,
    ),
    volumes=(VolumePlan("data", "old-snapshots", "standard-rwo", 50, 0.0, growing=False),),
    services=(ServicePlan("data", "spark-ui", "192.0.2.30", None),),
)

WASTE_CLUSTERS: tuple[WasteClusterPlan, ...] = (PROD, DEV, STAGING)

COMMITMENTS_HELD: dict[str, int] = {
    f"{PROD_CLUSTER}/m5.2xlarge": 4,
    f"{PROD_CLUSTER}/m5.xlarge": 3,
    f"{PROD_CLUSTER}/g5.xlarge": 2,
    f"{DEV_CLUSTER}/Standard_D2s_v5": 2,
    f"{DEV_CLUSTER}/Standard_D4s_v5": 5,
    f"{STAGING_CLUSTER}/e2-standard-2": 2,
    f"{STAGING_CLUSTER}/n2-standard-4": 2,
}
"""Nodes per 'cluster/instance type' that the tenant's reservations already cover. The m5.large
nodes of the production cluster are the planted steady baseline without a commitment."""
