"""Spot: run stateless machine pools of non-production clusters on Spot capacity."""

from __future__ import annotations

import logging
from decimal import Decimal
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field

from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.recommend.palette import machine_pool_update
from costwarden.recommend.pricing import pool_node_price, price_used, unit_split_price
from costwarden.recommend.registry import RECOMMENDERS
from costwarden.sources.prices import PriceCatalog

logger = logging.getLogger(__name__)

INTERRUPTION_NOTICE = {
    "aws": "AWS reclaims Spot instances with a 2-minute interruption notice",
    "azure": "Azure evicts Spot VMs with a 30-second notice",
    "gcp": "Google Cloud preempts Spot VMs with a 30-second notice",
}


class SpotSettings(BaseModel):
    """Options of the Spot recommender."""

    model_config = ConfigDict(extra="forbid")

    non_production_patterns: list[str] = Field(
        default_factory=lambda: [
            "dev*",
            "*-dev",
            "test*",
            "*-test",
            "staging*",
            "*-staging",
            "sandbox*",
            "qa*",
            "*-qa",
        ],  # fmt: skip
        description="Shell-style patterns of cluster names that are not production.",
    )
    excluded_pool_patterns: list[str] = Field(
        default_factory=lambda: ["system*"],
        description="Shell-style patterns of pool names never proposed; AKS system node pools "
        "cannot use Spot.",
    )


@RECOMMENDERS.register("spot", SpotSettings)
class SpotRecommender:
    """Move stateless pools of non-production clusters to Spot capacity.

    Method: a pool qualifies when its cluster name matches ``non_production_patterns``, its
    name matches no ``excluded_pool_patterns``, some of its nodes are not Spot yet, and none of
    its nodes ran a StatefulSet pod or mounted a claim in the window. The change is
    ``capacityType: spot`` on AWS and EKS, ``spotVMOptions`` on Azure and AKS, and a manual
    change on GCP. Savings are an estimate: the pool's on-demand list price times one minus the
    Spot-to-on-demand ratio of OpenCost's default unit prices for the same vCPUs and memory.
    Actual Spot prices vary by zone and hour.
    """

    name: str

    def __init__(self, settings: SpotSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        return [
            self._recommendation(bundle, pool)
            for pool in bundle.pools
            if self._qualifies(bundle, pool)
        ]

    def _qualifies(self, bundle: RecommendInput, pool: PoolRef) -> bool:
        if pool.provider is None or not pool.nodes:
            return False
        if not any(fnmatchcase(pool.cluster, p) for p in self.settings.non_production_patterns):
            return False
        if any(fnmatchcase(pool.name, p) for p in self.settings.excluded_pool_patterns):
            return False
        if pool.capacity_types == ("spot",):
            return False
        return not any((pool.cluster, node) in bundle.stateful_nodes for node in pool.nodes)

    def _recommendation(self, bundle: RecommendInput, pool: PoolRef) -> Recommendation:
        provider = pool.provider or ""
        api_call = None
        manual = None
        if provider == "aws":
            api_call = machine_pool_update(pool, cloud_config={"capacityType": "spot"})
            after = {"capacityType": "spot"}
        elif provider == "azure":
            api_call = machine_pool_update(pool, cloud_config={"spotVMOptions": {"maxPrice": "-1"}})
            after = {"spotVMOptions": {"maxPrice": "-1"}}
        else:
            after = {"spot": True}
            manual = ("Create a Spot node pool in Google Cloud for the cluster and move the "
                      "workloads to it; Palette's GCP pool entity has no Spot field")  # fmt: skip

        return Recommendation(
            kind=self.name,
            title=f"Run pool {pool.cluster}/{pool.name} ({len(pool.nodes)} x "
            f"{pool.instance_type}) on Spot",
            target=Target(pool.cluster, "MachinePool", pool.name, pool=pool.name),
            before={"capacity_types": list(pool.capacity_types) or ["on-demand"]},
            after=after,
            savings=_savings(bundle.prices, pool),
            confidence="medium",
            risk="medium",
            risk_note=f"{INTERRUPTION_NOTICE.get(provider, 'Spot capacity can be reclaimed')}; "
            "pods must tolerate restarts and the pool may shrink when capacity runs out",
            effort="low",
            reversible=True,
            resources=frozenset({pool.resource}),
            api_call=api_call,
            manual_change=manual,
            ui_link=bundle.ui_link(pool),
            evidence={"stateful_nodes_checked": list(pool.nodes)},
        )


def _savings(catalog: PriceCatalog, pool: PoolRef) -> Savings:
    price = pool_node_price(catalog, pool)
    if price is None or pool.instance_type is None:
        return Savings(Decimal(0), "USD", "not estimated: no list price for the pool")

    shape = catalog.shape(price.provider, pool.instance_type)
    units = catalog.unit_prices(price.provider)
    memory = Decimal(str(shape.memory_gib))
    on_demand = units.cpu_hour * shape.vcpus + units.ram_gib_hour * memory
    spot = units.spot_cpu_hour * shape.vcpus + units.spot_ram_gib_hour * memory
    discount = Decimal(1) - spot / on_demand
    nodes = sum(1 for _ in pool.nodes)
    per_hour = price.usd_per_hour * discount * nodes
    method = (
        f"{nodes} node(s) x {price.instance_type} on-demand price x {discount:.3f} estimated Spot "
        "discount (OpenCost default Spot and on-demand unit prices)"
    )
    prices = (price_used(price), unit_split_price(catalog, price.provider))
    return Savings.from_hourly(per_hour, price.currency, method, prices)
