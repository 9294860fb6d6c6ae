"""Commitments: a steady on-demand baseline that reservations or savings plans do not cover."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.errors import PriceNotFoundError
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.recommend.pricing import price_used
from costwarden.recommend.registry import RECOMMENDERS

COMMITMENT_NAMES = {
    "aws": "Savings Plan or Reserved Instances",
    "azure": "Azure reservation or savings plan",
    "gcp": "committed use discount",
}


class CommitmentSettings(BaseModel):
    """Options of the commitments recommender."""

    model_config = ConfigDict(extra="forbid")

    discount_percent: float = Field(
        30,
        gt=0,
        lt=100,
        description="Discount of the commitment against on-demand prices, in percent. The "
        "default is an assumption: set the rate your provider quotes for your term and payment.",
    )
    term_months: int = Field(12, ge=1, le=60, description="Term of the commitment, in months.")
    covered: dict[str, int] = Field(
        default_factory=dict,
        description="Nodes already covered per 'cluster/instance type', such as "
        "{'prod-eks/m5.xlarge': 2}.",
    )


@RECOMMENDERS.register("commitments", CommitmentSettings)
class CommitmentsRecommender:
    """Commit to the on-demand nodes that ran through the whole window.

    Method: the baseline of a cluster's instance type is the number of its non-Spot nodes with
    node-exporter data for at least ``min_history_days``, minus the nodes ``covered`` already
    lists. Savings are that baseline times the on-demand list price times
    ``discount_percent``. The commitment is paid whether or not the nodes run, so it breaks
    even when the nodes run at least (100 - ``discount_percent``)% of the term.
    """

    name: str

    def __init__(self, settings: CommitmentSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        steady: dict[tuple[PoolRef, str], int] = defaultdict(int)
        for usage in bundle.node_usage.items:
            info = usage.info
            pool = bundle.pool_of_node(usage.node.cluster, usage.node.node)
            if (
                info is None
                or pool is None
                or info.capacity_type == "spot"
                or not info.instance_type
            ):
                continue
            steady[(pool, info.instance_type)] += 1

        baseline: dict[tuple[str, str], list[PoolRef]] = defaultdict(list)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for (pool, instance_type), nodes in steady.items():
            baseline[(pool.cluster, instance_type)].append(pool)
            counts[(pool.cluster, instance_type)] += nodes

        found = []
        for (cluster, instance_type), pools in sorted(baseline.items()):
            covered = self.settings.covered.get(f"{cluster}/{instance_type}", 0)
            uncovered = counts[(cluster, instance_type)] - covered
            if uncovered > 0:
                recommendation = self._recommendation(
                    bundle, cluster, instance_type, pools, uncovered
                )
                if recommendation is not None:
                    found.append(recommendation)
        return found

    def _recommendation(
        self,
        bundle: RecommendInput,
        cluster: str,
        instance_type: str,
        pools: list[PoolRef],
        nodes: int,
    ) -> Recommendation | None:
        pool = pools[0]
        if pool.provider is None or pool.region is None:
            return None
        try:
            price = bundle.prices.instance_price(pool.provider, pool.region, instance_type)
        except PriceNotFoundError:
            return None

        already = self.settings.covered.get(f"{cluster}/{instance_type}", 0)
        discount = Decimal(str(self.settings.discount_percent)) / 100
        method = (
            f"{nodes} steady node(s) x {instance_type} on-demand price x {discount} assumed "
            f"commitment discount; breaks even at {100 - self.settings.discount_percent:g}% "
            "use of the term"
        )
        savings = Savings.from_hourly(
            price.usd_per_hour * nodes * discount, price.currency, method, (price_used(price),)
        )
        commitment = COMMITMENT_NAMES[pool.provider]
        return Recommendation(
            kind=self.name,
            title=f"Cover {nodes} x {instance_type} in {cluster} with a "
            f"{self.settings.term_months}-month {commitment}",
            target=Target(cluster, "InstanceType", instance_type),
            before={"covered_nodes": already},
            after={
                "covered_nodes": already + nodes,
                "term_months": self.settings.term_months,
                "break_even_use_percent": 100 - self.settings.discount_percent,
            },
            savings=savings,
            confidence="medium",
            risk="medium",
            risk_note="the commitment is paid for the whole term even if the nodes are removed "
            "or change type; apply pool changes first",
            effort="medium",
            reversible=False,
            resources=frozenset(item.resource for item in pools),
            manual_change=f"Buy a {commitment} in the {pool.provider} billing console; Palette "
            "does not manage commitments",
            ui_link=bundle.ui_link(pool),
            evidence={"region": pool.region, "window_days": bundle.window.days},
        )
