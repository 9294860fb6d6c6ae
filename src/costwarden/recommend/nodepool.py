"""Node pool size and instance type: bin-pack the recommended requests onto cheaper nodes."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.domain.usage import ContainerKey
from costwarden.errors import PriceNotFoundError
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.recommend.palette import machine_pool_update
from costwarden.recommend.placement import PodPlacement
from costwarden.recommend.pricing import GIB, pool_node_price, price_used
from costwarden.recommend.registry import RECOMMENDERS
from costwarden.recommend.requests import (
    ContainerProposal,
    WorkloadRequestsRecommender,
    WorkloadRequestsSettings,
    workload_resource,
)
from costwarden.sources.prices import INSTANCE_SHAPES, InstancePrice, MachineShape, Provider

logger = logging.getLogger(__name__)

_AZURE_SIZE = re.compile(r"^Standard_(?P<series>[A-Z]+)\d+(?P<features>[a-z]*)_(?P<version>v\d+)$")


class NodePoolSettings(BaseModel):
    """Options of the node pool recommender."""

    model_config = ConfigDict(extra="forbid")

    headroom_percent: float = Field(
        10, ge=0, le=200, description="Headroom added to every pod's requests before packing."
    )
    min_nodes: int = Field(
        2,
        ge=1,
        description="Minimum node count proposed for a pool that has at least that many now, so a "
        "pool keeps a node to fail over to.",
    )
    min_savings_percent: float = Field(
        5, ge=0, le=100, description="Smallest saving worth proposing, in percent of pool cost."
    )
    requests: WorkloadRequestsSettings = Field(
        default_factory=WorkloadRequestsSettings,
        description="How the requests packed are computed; keep equal to the options of "
        "workload-requests.",
    )


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """A candidate shape for a pool: its instance type, node count and hourly price."""

    instance_type: str
    nodes: int
    price: InstancePrice

    @property
    def per_hour(self) -> float:
        return float(self.price.usd_per_hour) * self.nodes


@RECOMMENDERS.register("node-pool", NodePoolSettings)
class NodePoolRecommender:
    """Resize a pool, or move it to a cheaper instance type of the same family.

    Method: every pod running in the pool at the end of the window is sized at the requests the
    workload requests recommender proposes (its current requests when it proposes none), plus
    ``headroom_percent``. DaemonSet pods are reserved on every node. The pods are packed first
    fit decreasing onto each instance type of the pool's family (same series, features and
    generation, so the same CPU architecture) with the GPU count of the current type, using the
    current nodes' allocatable-to-capacity ratio. The cheapest plan with at least
    ``min_nodes`` nodes (or the current count, when lower) wins if it saves at least
    ``min_savings_percent``. Savings are the on-demand list price difference of the pools.
    """

    name: str

    def __init__(self, settings: NodePoolSettings) -> None:
        self.settings = settings
        self._requests = WorkloadRequestsRecommender(settings.requests)

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        proposals = self._requests.proposals(bundle)
        by_node: dict[tuple[str, str], list[PodPlacement]] = defaultdict(list)
        for placement in bundle.placements:
            by_node[(placement.node.cluster, placement.node.node)].append(placement)

        found = []
        for pool in bundle.pools:
            placements = [p for node in pool.nodes for p in by_node.get((pool.cluster, node), [])]
            if not placements or pool.provider is None or pool.instance_type is None:
                continue
            recommendation = self._pool(bundle, pool, placements, proposals)
            if recommendation is not None:
                found.append(recommendation)
        return found

    def _pool(
        self,
        bundle: RecommendInput,
        pool: PoolRef,
        placements: list[PodPlacement],
        proposals: dict[ContainerKey, ContainerProposal],
    ) -> Recommendation | None:
        current = pool_node_price(bundle.prices, pool)
        if current is None:
            return None
        shape = bundle.prices.shape(current.provider, current.instance_type)
        cpu_ratio, memory_ratio = _allocatable_ratios(bundle, pool, shape)
        pods, daemons = self._demand(placements, proposals)

        floor = min(self.settings.min_nodes, len(pool.nodes))
        plans = []
        for instance_type, candidate in _family(current.provider, current.instance_type, shape):
            capacity = (
                candidate.vcpus * cpu_ratio - daemons[0],
                candidate.memory_gib * GIB * memory_ratio - daemons[1],
            )
            count = _first_fit_decreasing(pods, capacity)
            price = _price(bundle, current, instance_type)
            if count is not None and price is not None:
                plans.append(PoolPlan(instance_type, max(count, floor), price))

        if not plans:
            return None
        now = float(current.usd_per_hour) * len(pool.nodes)
        best = min(
            plans, key=lambda plan: (plan.per_hour, plan.instance_type != pool.instance_type)
        )
        if now - best.per_hour < now * self.settings.min_savings_percent / 100:
            return None
        used = {placement.container for placement in placements if placement.container in proposals}
        return self._recommendation(bundle, pool, current, best, used, placements)

    def _demand(
        self, placements: list[PodPlacement], proposals: dict[ContainerKey, ContainerProposal]
    ) -> tuple[list[tuple[float, float]], tuple[float, float]]:
        """Return each pod's (cores, bytes) with headroom, and the DaemonSet share of a node.

        The DaemonSet share is the largest sum of DaemonSet requests on any one node.
        """
        factor = 1 + self.settings.headroom_percent / 100
        pods: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        daemon_nodes: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for placement in placements:
            cpu, memory = _requests(placement, proposals.get(placement.container))
            if placement.container.workload.kind == "DaemonSet":
                totals = daemon_nodes[placement.node.node]
            else:
                totals = pods[(placement.node.node, placement.pod)]
            totals[0] += cpu * factor
            totals[1] += memory * factor

        daemons = (
            max((value[0] for value in daemon_nodes.values()), default=0.0),
            max((value[1] for value in daemon_nodes.values()), default=0.0),
        )
        return [(cpu, memory) for cpu, memory in pods.values()], daemons

    def _recommendation(
        self,
        bundle: RecommendInput,
        pool: PoolRef,
        current: InstancePrice,
        plan: PoolPlan,
        containers: set[ContainerKey],
        placements: list[PodPlacement],
    ) -> Recommendation:
        per_hour = current.usd_per_hour * len(pool.nodes) - plan.price.usd_per_hour * plan.nodes
        method = (
            f"{len(pool.nodes)} x {current.instance_type} - {plan.nodes} x {plan.instance_type} "
            f"at {current.capacity_type} prices, packing recommended requests plus "
            f"{self.settings.headroom_percent:g}% headroom"
        )
        savings = Savings.from_hourly(
            per_hour, current.currency, method, (price_used(current), price_used(plan.price))
        )
        workloads = {workload_resource(key.workload) for key in containers}
        cloud_config = {"instanceType": plan.instance_type}
        return Recommendation(
            kind=self.name,
            title=f"Change pool {pool.cluster}/{pool.name} from {len(pool.nodes)} x "
            f"{current.instance_type} to {plan.nodes} x {plan.instance_type}",
            target=Target(pool.cluster, "MachinePool", pool.name, pool=pool.name),
            before={"instanceType": current.instance_type, "size": len(pool.nodes)},
            after={"instanceType": plan.instance_type, "size": plan.nodes},
            savings=savings,
            confidence="medium" if workloads else "high",
            risk="medium",
            risk_note="Palette replaces the nodes one by one when the instance type changes, and "
            "the packing holds only after the proposed requests are applied",
            effort="medium",
            reversible=True,
            resources=frozenset({pool.resource} | workloads),
            api_call=machine_pool_update(
                pool, pool_config={"size": plan.nodes}, cloud_config=cloud_config
            ),
            ui_link=bundle.ui_link(pool),
            evidence={"pods": sorted({placement.pod for placement in placements})},
        )


def _requests(placement: PodPlacement, proposal: ContainerProposal | None) -> tuple[float, float]:
    cpu, memory = placement.cpu_request_cores, placement.memory_request_bytes
    if proposal is not None and proposal.cpu_after is not None:
        cpu = proposal.cpu_after
    if proposal is not None and proposal.memory_after is not None:
        memory = proposal.memory_after
    return cpu, memory


def _allocatable_ratios(
    bundle: RecommendInput, pool: PoolRef, shape: MachineShape
) -> tuple[float, float]:
    """Return the mean allocatable share of the pool's CPU and memory, 1.0 when unknown."""
    cpu, memory = [], []
    for info in bundle.node_info.items:
        if info.node.cluster != pool.cluster or info.node.node not in pool.nodes:
            continue
        if info.cpu_allocatable_cores:
            cpu.append(info.cpu_allocatable_cores / shape.vcpus)
        if info.memory_allocatable_bytes:
            memory.append(info.memory_allocatable_bytes / (shape.memory_gib * GIB))
    return (sum(cpu) / len(cpu) if cpu else 1.0, sum(memory) / len(memory) if memory else 1.0)


def family_of(provider: Provider, instance_type: str) -> tuple[str, ...] | None:
    """Return the family key of an instance type: AWS ``m5``, Azure (``D``, ``s``, ``v5``)."""
    if provider == "aws":
        return (instance_type.split(".", 1)[0],)
    if provider == "azure":
        match = _AZURE_SIZE.match(instance_type)
        return (match["series"], match["features"], match["version"]) if match else None
    return (instance_type.rsplit("-", 1)[0],)


def _family(
    provider: Provider, instance_type: str, shape: MachineShape
) -> list[tuple[str, MachineShape]]:
    family = family_of(provider, instance_type)
    return [
        (name, other)
        for name, other in sorted(INSTANCE_SHAPES[provider].items())
        if family is not None and family_of(provider, name) == family and other.gpus == shape.gpus
    ]


def _price(
    bundle: RecommendInput, current: InstancePrice, instance_type: str
) -> InstancePrice | None:
    """Price a candidate type at the capacity type (on-demand or Spot) of the current pool."""
    try:
        if current.capacity_type == "spot":
            return bundle.prices.spot_price(current.provider, current.region, instance_type)
        return bundle.prices.instance_price(current.provider, current.region, instance_type)
    except PriceNotFoundError:
        return None


def _first_fit_decreasing(
    pods: list[tuple[float, float]], capacity: tuple[float, float]
) -> int | None:
    """Return the nodes first fit decreasing needs for the pods, None when a pod fits no node."""
    if capacity[0] <= 0 or capacity[1] <= 0:
        return None
    order = sorted(
        pods, key=lambda pod: max(pod[0] / capacity[0], pod[1] / capacity[1]), reverse=True
    )
    free: list[list[float]] = []
    for cpu, memory in order:
        if cpu > capacity[0] or memory > capacity[1]:
            return None
        for node in free:
            if node[0] >= cpu and node[1] >= memory:
                node[0] -= cpu
                node[1] -= memory
                break
        else:
            free.append([capacity[0] - cpu, capacity[1] - memory])
    return max(len(free), 1) if pods else 0
