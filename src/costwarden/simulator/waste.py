"""Planted waste with known savings: the ground truth of the clusters of ``waste_plans.py``.

Every entry of ``PLANTED_WASTE`` names the recommender (its registry name) that should find
it, the object it targets, and the savings per day in US dollars. The figures follow each
recommender's documented method, worked out here from the plan's own parameters and the
packaged list prices (``PriceCatalog.packaged()``), never by calling recommender code:

- ``workload-requests``: the CPU request drops to the p95 of usage and the memory request to
  the peak plus 15%. After an OOM kill, memory rises to the limit plus 15% and a further 20%.
  The change is priced per replica at the cluster's mean price per vCPU-hour and GiB-hour;
- ``node-pool``: the pods' requests plus 10% headroom packed onto the cheapest instance type
  of the pool's family, keeping at least two nodes;
- ``spot``: the pool's on-demand price times OpenCost's Spot discount for the node's shape;
- ``gpu-misuse``: each GPU node's price minus the cheapest non-GPU type that is as large;
- ``idle-volumes`` and ``storage-class``: the claim's size times the disk price, whole or by
  the price gap of the cheaper class;
- ``idle-pools``: the pool's nodes at their list price;
- ``idle-load-balancers``: the provider's hourly load balancer charge;
- ``off-hours-schedule``: the pool's nodes for the 108 hours of a week outside weekday
  working hours;
- ``commitments``: the uncovered steady nodes times an assumed 30% commitment discount.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from costwarden.simulator.waste_plans import (
    ALLOCATABLE_SHARE,
    BATCH_WORKER,
    BUILD_CACHE,
    CI_RUNNER,
    DEV,
    FEATURE_ETL,
    GIB,
    MIB,
    ORDERS_API,
    PROD,
    SEARCH_API,
    SESSION_CACHE,
    SPARK_EXECUTOR,
    STAGING,
    WASTE_CLUSTERS,
    WORK_HOURS,
    WasteClusterPlan,
    WorkloadPlan,
)
from costwarden.sources.prices import INSTANCE_SHAPES, PriceCatalog, Provider, provider_of

HOURS_PER_DAY = 24
HOURS_PER_WEEK = 168
WORK_HOURS_PER_WEEK = 5 * (WORK_HOURS[1] - WORK_HOURS[0])

MEMORY_HEADROOM = 0.15
OOM_BUMP = 0.20
MIN_CHANGE = 0.10
MIN_CPU_CORES = 0.01
MIN_MEMORY_BYTES = 100 * MIB
PACKING_HEADROOM = 0.10
MIN_POOL_NODES = 2
COMMITMENT_DISCOUNT = Decimal("0.30")
"""The commitments recommender's default discount, an assumption rather than a quote."""

GP3_PRICE_RATIO = Decimal("0.8")
"""Price of gp3 as a share of gp2: the storage-class recommender's default (0.08 against 0.10
USD per GB-month in us-east-1)."""

AZURE_STANDARD_PRICE_RATIO = Decimal("0.5")
"""Price of a Standard SSD claim as a share of a Premium SSD one of the same size: the
storage-class recommender's default estimate, which varies by disk size and region."""

LOAD_BALANCER_HOURLY = {
    "aws": Decimal("0.0225"),
    "azure": Decimal("0.025"),
    "gcp": Decimal("0.025"),
}
"""Hourly charge of one load balancer (AWS NLB, Azure Standard LB, Google forwarding rule): the
idle-load-balancers recommender's default prices."""


@dataclass(frozen=True, slots=True)
class PlantedWaste:
    """One planted piece of waste and the savings per day that removing it brings.

    ``kind`` is the registry name of the recommender that should find it. ``target`` is a pool
    name, an instance type, ``namespace/name`` of a claim or Service, or
    ``namespace/Kind/name`` of a workload. A negative saving is a cost the change adds.
    """

    kind: str
    cluster: str
    target: str
    savings_per_day: Decimal
    currency: str
    description: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.cluster, self.target


def _hourly(plan: WasteClusterPlan, instance_type: str) -> Decimal:
    return PriceCatalog.packaged().hourly_price(plan.cloud_type, plan.region, instance_type)


def _day(per_hour: Decimal) -> Decimal:
    return (per_hour * HOURS_PER_DAY).quantize(Decimal("0.0001"))


def cluster_rates(plan: WasteClusterPlan) -> tuple[Decimal, Decimal]:
    """Return the mean price per vCPU-hour and GiB-hour of the cluster's non-GPU nodes.

    Each node's price is split between vCPUs and memory in the ratio of OpenCost's default unit
    prices, and the split is averaged over the nodes.
    """
    catalog = PriceCatalog.packaged()
    units = catalog.unit_prices(plan.cloud_type)
    cpu_total = memory_total = Decimal(0)
    nodes = 0
    for pool in plan.pools:
        shape = catalog.shape(plan.cloud_type, pool.instance_type)
        if shape.gpus:
            continue
        price = _hourly(plan, pool.instance_type)
        weight = units.cpu_hour * shape.vcpus + units.ram_gib_hour * Decimal(str(shape.memory_gib))
        cpu_total += price * units.cpu_hour / weight * pool.nodes
        memory_total += price * units.ram_gib_hour / weight * pool.nodes
        nodes += pool.nodes
    return cpu_total / nodes, memory_total / nodes


def _round_up(value: float, step: float) -> float:
    return math.ceil(round(value / step, 6)) * step


def request_change(workload: WorkloadPlan) -> tuple[float, float]:
    """Return the CPU cores and memory bytes per replica that right-sizing frees (or adds)."""
    cpu_after = max(_round_up(workload.cpu_p95_cores, 0.001), MIN_CPU_CORES)
    cpu = workload.cpu_request_cores - cpu_after
    if abs(cpu) / workload.cpu_request_cores < MIN_CHANGE:
        cpu = 0.0

    peak = workload.memory_peak_bytes
    factor = 1 + MEMORY_HEADROOM
    if workload.oom_killed:
        peak = max(peak, workload.memory_limit_bytes or 0.0)
        factor *= 1 + OOM_BUMP
    memory_after = max(_round_up(peak * factor, MIB), MIN_MEMORY_BYTES)
    memory = workload.memory_request_bytes - memory_after
    if not workload.oom_killed and abs(memory) / workload.memory_request_bytes < MIN_CHANGE:
        memory = 0.0
    return cpu, memory


def _requests_waste(plan: WasteClusterPlan, workload: WorkloadPlan, story: str) -> PlantedWaste:
    cpu_rate, memory_rate = cluster_rates(plan)
    cpu, memory = request_change(workload)
    per_hour = (
        Decimal(str(cpu * workload.replicas)) * cpu_rate
        + Decimal(str(memory / GIB * workload.replicas)) * memory_rate
    )
    target = f"{workload.namespace}/{workload.kind}/{workload.name}"
    return PlantedWaste("workload-requests", plan.name, target, _day(per_hour), "USD", story)


def _pack(workload: WorkloadPlan, provider: Provider, instance_type: str) -> int | None:
    """Return the nodes of ``instance_type`` that the workload's pods need, None if none fit."""
    shape = INSTANCE_SHAPES[provider][instance_type]
    pod_cpu = workload.cpu_request_cores * (1 + PACKING_HEADROOM)
    pod_memory = workload.memory_request_bytes * (1 + PACKING_HEADROOM)
    per_node = min(
        math.floor(shape.vcpus * ALLOCATABLE_SHARE / pod_cpu),
        math.floor(shape.memory_gib * GIB * ALLOCATABLE_SHARE / pod_memory),
    )
    return math.ceil(workload.replicas / per_node) if per_node > 0 else None


def _family(provider: Provider, instance_type: str) -> list[str]:
    # NOTE: the family is the AWS name prefix (m5 in m5.xlarge), so node-pool waste is planted
    # on AWS pools only.
    prefix = instance_type.split(".", 1)[0]
    gpus = INSTANCE_SHAPES[provider][instance_type].gpus
    return [
        name
        for name, shape in INSTANCE_SHAPES[provider].items()
        if name.split(".", 1)[0] == prefix and shape.gpus == gpus
    ]


def _node_pool_waste(
    plan: WasteClusterPlan, pool_name: str, workload: WorkloadPlan
) -> PlantedWaste:
    pool = plan.pool(pool_name)
    provider = provider_of(plan.cloud_type)
    now = _hourly(plan, pool.instance_type) * pool.nodes
    plans = []
    for instance_type in _family(provider, pool.instance_type):
        count = _pack(workload, provider, instance_type)
        if count is not None:
            nodes = max(count, min(MIN_POOL_NODES, pool.nodes))
            plans.append((_hourly(plan, instance_type) * nodes, nodes, instance_type))
    best, nodes, instance_type = min(plans)
    story = (
        f"{pool.nodes} x {pool.instance_type} run {workload.replicas} pods of "
        f"{workload.cpu_request_cores:g} cores and {workload.memory_request_bytes / GIB:g} GiB "
        f"that fit on {nodes} x {instance_type}"
    )
    return PlantedWaste("node-pool", plan.name, pool.name, _day(now - best), "USD", story)


def _spot_waste(plan: WasteClusterPlan, pool_name: str, workload: WorkloadPlan) -> PlantedWaste:
    catalog = PriceCatalog.packaged()
    pool = plan.pool(pool_name)
    shape = catalog.shape(plan.cloud_type, pool.instance_type)
    units = catalog.unit_prices(plan.cloud_type)
    memory = Decimal(str(shape.memory_gib))
    on_demand = units.cpu_hour * shape.vcpus + units.ram_gib_hour * memory
    spot = units.spot_cpu_hour * shape.vcpus + units.spot_ram_gib_hour * memory
    per_hour = _hourly(plan, pool.instance_type) * (1 - spot / on_demand) * pool.nodes
    story = f"stateless on-demand pool of a non-production cluster, {workload.name} pods only"
    return PlantedWaste("spot", plan.name, pool.name, _day(per_hour), "USD", story)


def _gpu_waste(plan: WasteClusterPlan, pool_name: str) -> PlantedWaste:
    catalog = PriceCatalog.packaged()
    pool = plan.pool(pool_name)
    provider = provider_of(plan.cloud_type)
    shape = catalog.shape(plan.cloud_type, pool.instance_type)
    replacements = [
        _hourly(plan, name)
        for name, other in INSTANCE_SHAPES[provider].items()
        if not other.gpus and other.vcpus >= shape.vcpus and other.memory_gib >= shape.memory_gib
        and name in catalog.instance_types(plan.cloud_type, plan.region)
    ]  # fmt: skip
    per_hour = (_hourly(plan, pool.instance_type) - min(replacements)) * pool.nodes
    story = f"GPU nodes run only {FEATURE_ETL.namespace}/{FEATURE_ETL.name}, which requests no GPU"
    return PlantedWaste("gpu-misuse", plan.name, pool.name, _day(per_hour), "USD", story)


def _volume_waste(
    kind: str, plan: WasteClusterPlan, claim: str, share: Decimal, story: str
) -> PlantedWaste:
    volume = plan.volume(claim)
    price = PriceCatalog.packaged().storage_price_per_gib_hour(plan.cloud_type, plan.region)
    per_hour = volume.size_gib * price * share
    target = f"{volume.namespace}/{volume.claim}"
    return PlantedWaste(kind, plan.name, target, _day(per_hour), "USD", story)


def _pool_waste(
    kind: str, plan: WasteClusterPlan, pool_name: str, share: Decimal, story: str
) -> PlantedWaste:
    pool = plan.pool(pool_name)
    per_hour = _hourly(plan, pool.instance_type) * pool.nodes * share
    return PlantedWaste(kind, plan.name, pool.name, _day(per_hour), "USD", story)


def _planted() -> Iterator[PlantedWaste]:
    yield _requests_waste(PROD, ORDERS_API, "CPU request 5x its p95 and memory 3x its peak")
    yield _requests_waste(PROD, SEARCH_API, "HPA-scaled: requests per replica far above use")
    yield _requests_waste(PROD, SESSION_CACHE, "OOM-killed at its limit: the memory request rises")
    yield _node_pool_waste(PROD, "batch-pool", BATCH_WORKER)
    yield _spot_waste(DEV, "ci-runners", CI_RUNNER)
    yield _spot_waste(STAGING, "batch-pool", SPARK_EXECUTOR)
    yield _gpu_waste(PROD, "gpu-pool")
    yield _volume_waste("idle-volumes", PROD, "old-backup", Decimal(1), "no pod mounts it")
    yield _volume_waste("idle-volumes", PROD, "scratch-orders", Decimal(1),
                        "mounted, 1 GiB used and unchanged for the whole window")  # fmt: skip
    yield _pool_waste("idle-pools", PROD, "idle-pool", Decimal(1), "no pods, under 1% CPU")
    yield _load_balancer_waste(PROD, "shop", "legacy-gateway")
    yield _load_balancer_waste(STAGING, "data", "spark-ui")
    yield _volume_waste("idle-volumes", STAGING, "old-snapshots", Decimal(1), "no pod mounts it")
    share = Decimal(HOURS_PER_WEEK - WORK_HOURS_PER_WEEK) / HOURS_PER_WEEK
    yield _pool_waste("off-hours-schedule", DEV, "weekday-pool", share,
                      f"{BUILD_CACHE.name} busy only on weekdays {WORK_HOURS[0]}:00-"
                      f"{WORK_HOURS[1]}:00 UTC")  # fmt: skip
    yield _volume_waste("storage-class", PROD, "data-orders-db-0", 1 - GP3_PRICE_RATIO,
                        "gp2 claim that gp3 serves for less")  # fmt: skip
    standard = 1 - AZURE_STANDARD_PRICE_RATIO
    iops = DEV.volume("pipeline-artifacts").iops
    story = f"premium claim at {iops:g} IOPS, below the standard tier's 500"
    yield _volume_waste("storage-class", DEV, "pipeline-artifacts", standard, story)
    yield _commitment_waste(PROD, "m5.large")


def _load_balancer_waste(plan: WasteClusterPlan, namespace: str, name: str) -> PlantedWaste:
    per_hour = LOAD_BALANCER_HOURLY[plan.provider]
    story = "Service of type LoadBalancer whose Endpoints never had a ready address"
    return PlantedWaste(
        "idle-load-balancers", plan.name, f"{namespace}/{name}", _day(per_hour), "USD", story
    )


def _commitment_waste(plan: WasteClusterPlan, instance_type: str) -> PlantedWaste:
    nodes = sum(pool.nodes for pool in plan.pools if pool.instance_type == instance_type)
    per_hour = _hourly(plan, instance_type) * nodes * COMMITMENT_DISCOUNT
    story = f"{nodes} steady on-demand nodes that no reservation covers"
    return PlantedWaste("commitments", plan.name, instance_type, _day(per_hour), "USD", story)


PLANTED_WASTE: tuple[PlantedWaste, ...] = tuple(_planted())
"""Every planted piece of waste, with its expected savings per day in USD."""

__all__ = ["PLANTED_WASTE", "WASTE_CLUSTERS", "PlantedWaste", "cluster_rates", "request_change"]
