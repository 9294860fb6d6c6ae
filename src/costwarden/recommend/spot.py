"""Spot: run stateless machine pools of non-production clusters on Spot capacity."""

from __future__ import annotations

import logging
from decimal import Decimal
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field

from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.recommend.palette import machine_pool_update
from costwarden.recommend.pricing import on_demand_price, price_used
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
    environment_label: str = Field(
        "env",
        description="Palette cluster label that names the environment; when a cluster has it, "
        "it decides over non_production_patterns.",
    )
    production_values: list[str] = Field(
        default_factory=lambda: ["prod", "production", "prd"],
        description="Values of environment_label that mark a production cluster; case is ignored.",
    )


@RECOMMENDERS.register("spot", SpotSettings)
class SpotRecommender:
    """Move stateless pools of non-production clusters to Spot capacity.

    Method: a pool qualifies when its cluster is not production, its name matches no
    ``excluded_pool_patterns``, it is neither a control-plane nor an AKS system pool, some of its
    nodes are not Spot yet, and none of its nodes ran a StatefulSet pod or mounted a claim in the
    window. A Palette pool without nodes in Prometheus gets low confidence, because its pods were
    not checked. A cluster is production when its Palette label ``environment_label`` has one of the
    ``production_values``; a cluster without that label is production unless its name matches
    ``non_production_patterns``. The change is ``cloudConfig.capacityType: spot`` on AWS and EKS,
    ``cloudConfig.spotVMOptions: {}`` on Azure and AKS, and a manual change on GCP. Savings are
    the on-demand price minus the Spot price per node: Palette's rate API prices when Palette is
    configured, otherwise the packaged on-demand list price and the configured Spot discount.
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
        if pool.provider is None or _node_count(pool) == 0:
            return False
        if pool.is_control_plane or pool.is_system_pool or self._production(pool):
            return False
        if any(fnmatchcase(pool.name, p) for p in self.settings.excluded_pool_patterns):
            return False
        if pool.capacity_types == ("spot",):
            return False
        return not any((pool.cluster, node) in bundle.stateful_nodes for node in pool.nodes)

    def _production(self, pool: PoolRef) -> bool:
        environment = pool.cluster_label(self.settings.environment_label)
        if environment is not None:
            values = {value.lower() for value in self.settings.production_values}
            return environment.lower() in values
        patterns = self.settings.non_production_patterns
        return not any(fnmatchcase(pool.cluster, pattern) for pattern in patterns)

    def _recommendation(self, bundle: RecommendInput, pool: PoolRef) -> Recommendation:
        provider = pool.provider or ""
        api_call = None
        manual = None
        if provider == "aws":
            api_call = machine_pool_update(pool, cloud_config={"capacityType": "spot"})
            after: dict[str, object] = {"capacityType": "spot"}
        elif provider == "azure":
            api_call = machine_pool_update(pool, cloud_config={"spotVMOptions": {}})
            after = {"spotVMOptions": {}}
        else:
            after = {"spot": True}
            manual = ("Create a Spot node pool in Google Cloud for the cluster and move the "
                      "workloads to it; Palette's GCP pool entity has no Spot field")  # fmt: skip

        return Recommendation(
            kind=self.name,
            title=f"Run pool {pool.cluster}/{pool.name} ({_node_count(pool)} x "
            f"{pool.instance_type}) on Spot",
            target=Target(pool.cluster, "MachinePool", pool.name, pool=pool.name),
            before={"capacity_types": list(pool.capacity_types) or ["on-demand"]},
            after=after,
            savings=_savings(bundle.prices, pool),
            confidence="medium" if pool.nodes else "low",
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
    on_demand = on_demand_price(catalog, pool)
    if on_demand is None or pool.provider is None or pool.region is None:
        return Savings(Decimal(0), "USD", "not estimated: no list price for the pool")
    spot = catalog.spot_price(pool.provider, pool.region, on_demand.instance_type)

    nodes = _node_count(pool)
    per_hour = (on_demand.usd_per_hour - spot.usd_per_hour) * nodes
    method = (
        f"{nodes} node(s) x ({on_demand.instance_type} on-demand price - Spot price); Spot "
        "prices vary by zone and hour"
    )
    prices = (price_used(on_demand), price_used(spot))
    return Savings.from_hourly(per_hour, on_demand.currency, method, prices)


def _node_count(pool: PoolRef) -> int:
    """Return the nodes seen in Prometheus, else the node count Palette declares."""
    return len(pool.nodes) if pool.nodes else pool.size or 0
