"""GPU misuse: GPU nodes that run only pods requesting no GPU."""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.domain.usage import GpuNodeWorkloads
from costwarden.errors import PriceNotFoundError
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.recommend.palette import machine_pool_update
from costwarden.recommend.pricing import pool_node_price, price_used
from costwarden.recommend.registry import RECOMMENDERS
from costwarden.sources.prices import INSTANCE_SHAPES, InstancePrice, PriceCatalog

logger = logging.getLogger(__name__)


class GpuMisuseSettings(BaseModel):
    """Options of the GPU misuse recommender."""

    model_config = ConfigDict(extra="forbid")

    taint_key: str = Field("nvidia.com/gpu", description="Key of the taint proposed for GPU pools.")
    taint_value: str = Field("present", description="Value of the proposed taint.")
    taint_effect: str = Field(
        "NoSchedule",
        pattern="^(NoSchedule|PreferNoSchedule|NoExecute)$",
        description="Effect of the proposed taint.",
    )


@RECOMMENDERS.register("gpu-misuse", GpuMisuseSettings)
class GpuMisuseRecommender:
    """Keep pods that request no GPU off GPU nodes.

    Method: a GPU node whose pods in the window all requested no ``nvidia.com/gpu`` pays for an
    idle GPU. The proposal taints the node's pool so only pods that tolerate the taint (GPU
    pods) schedule there, moves the other workloads to a CPU pool, and shrinks the GPU pool by
    the nodes that ran no GPU pod. Savings per such node are its list price minus the cheapest
    listed non-GPU instance type of the same provider with at least as many vCPUs and as much
    memory, which is what the moved pods need at most. Adding that CPU capacity is a manual change.
    Nodes that also ran GPU pods get the taint with no savings counted.
    """

    name: str

    def __init__(self, settings: GpuMisuseSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        by_pool: dict[PoolRef, list[GpuNodeWorkloads]] = defaultdict(list)
        for item in bundle.gpu_nodes.items:
            if not item.other_workloads:
                continue
            pool = bundle.pool_of_node(item.node.cluster, item.node.node)
            if pool is None:
                logger.warning(
                    "GPU node %s/%s is in no known pool", item.node.cluster, item.node.node
                )
                continue
            by_pool[pool].append(item)

        return [self._recommendation(bundle, pool, nodes) for pool, nodes in by_pool.items()]

    def _recommendation(
        self, bundle: RecommendInput, pool: PoolRef, nodes: list[GpuNodeWorkloads]
    ) -> Recommendation:
        idle_gpu_nodes = [item for item in nodes if not item.gpu_workloads]
        moved = sorted({workload for item in nodes for workload in item.other_workloads})
        taint = {
            "key": self.settings.taint_key,
            "value": self.settings.taint_value,
            "effect": self.settings.taint_effect,
        }
        savings = _savings(bundle.prices, pool, len(idle_gpu_nodes))
        size = (len(pool.nodes) or pool.size or 0) - len(idle_gpu_nodes)
        replacement = savings.prices[1].item if len(savings.prices) > 1 else "a CPU instance type"
        return Recommendation(
            kind=self.name,
            title=f"Taint GPU pool {pool.cluster}/{pool.name} and move {len(moved)} non-GPU "
            "workloads to a CPU pool",
            target=Target(pool.cluster, "MachinePool", pool.name, pool=pool.name),
            before={
                "taints": [],
                "size": size + len(idle_gpu_nodes),
                "non_gpu_workloads": [_name(w) for w in moved],
            },
            after={"taints": [taint], "size": size, "non_gpu_workloads": []},
            savings=savings,
            confidence="high" if idle_gpu_nodes else "low",
            risk="medium",
            risk_note="the moved workloads need room in a CPU pool, and GPU pods need a "
            f"toleration for {taint['key']}={taint['value']}:{taint['effect']}",
            effort="medium",
            reversible=True,
            resources=frozenset({pool.resource}),
            api_call=machine_pool_update(pool, pool_config={"taints": [taint], "size": size}),
            manual_change=f"Before the GPU pool shrinks, give a CPU pool room for the moved "
            f"workloads: up to {len(idle_gpu_nodes)} node(s) of {replacement}.",
            ui_link=bundle.ui_link(pool),
            evidence={
                "gpu_nodes_without_gpu_pods": [item.node.node for item in idle_gpu_nodes],
                "queries": list(bundle.gpu_nodes.queries),
            },
        )


def _savings(catalog: PriceCatalog, pool: PoolRef, nodes: int) -> Savings:
    gpu_price = pool_node_price(catalog, pool)
    replacement = _cpu_replacement(catalog, pool) if gpu_price is not None else None
    if gpu_price is None or replacement is None or nodes == 0:
        method = "not estimated: every GPU node also ran GPU pods, or a price is missing"
        return Savings(Decimal(0), "USD", method)

    per_hour = (gpu_price.usd_per_hour - replacement.usd_per_hour) * nodes
    method = (
        f"{nodes} GPU node(s) x ({gpu_price.instance_type} price - cheapest non-GPU type with "
        f"as many vCPUs and as much memory, {replacement.instance_type})"
    )
    prices = (price_used(gpu_price), price_used(replacement))
    return Savings.from_hourly(per_hour, gpu_price.currency, method, prices)


def _cpu_replacement(catalog: PriceCatalog, pool: PoolRef) -> InstancePrice | None:
    if pool.provider is None or pool.region is None or pool.instance_type is None:
        return None
    shape = catalog.shape(pool.provider, pool.instance_type)
    candidates = []
    for instance_type, other in sorted(INSTANCE_SHAPES[pool.provider].items()):
        if other.gpus or other.vcpus < shape.vcpus or other.memory_gib < shape.memory_gib:
            continue
        try:
            candidates.append(catalog.instance_price(pool.provider, pool.region, instance_type))
        except PriceNotFoundError:
            continue
    return min(candidates, key=lambda price: price.usd_per_hour, default=None)


def _name(workload: object) -> str:
    return "/".join(str(getattr(workload, part)) for part in ("namespace", "kind", "name"))
