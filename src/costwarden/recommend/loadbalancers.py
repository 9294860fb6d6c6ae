"""Idle load balancers: Services of type LoadBalancer that carried no traffic in the window."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from costwarden.domain.recommendation import PriceUsed, Recommendation, Savings, Target
from costwarden.recommend.idle import cluster_provider
from costwarden.recommend.inputs import RecommendInput
from costwarden.recommend.registry import RECOMMENDERS
from costwarden.recommend.services import LoadBalancerService

logger = logging.getLogger(__name__)


class LoadBalancerPrice(BaseModel):
    """The hourly list price of one provider load balancer, with its origin."""

    model_config = ConfigDict(extra="forbid")

    usd_per_hour: Decimal = Field(gt=0, description="Price of one load balancer per hour, in USD.")
    item: str = Field(description="The product the price is for.")
    source: str = Field(description="Where the price was read.")
    published: date = Field(description="Date the price was read from the source.")


# NOTE: hand-recorded list prices of one region each, for the hourly charge only. LCU and data
# processing charges are left out, and other regions may differ, so check them at the source.
DEFAULT_PRICES = {
    "aws": LoadBalancerPrice(
        usd_per_hour=Decimal("0.0225"),
        item="AWS Network Load Balancer hour, us-east-1",
        source="https://aws.amazon.com/elasticloadbalancing/pricing/",
        published=date(2026, 12, 5),
    ),
    "azure": LoadBalancerPrice(
        usd_per_hour=Decimal("0.025"),
        item="Azure Standard Load Balancer hour, first 5 rules",
        source="https://azure.microsoft.com/pricing/details/load-balancer/",
        published=date(2026, 12, 5),
    ),
    "gcp": LoadBalancerPrice(
        usd_per_hour=Decimal("0.025"),
        item="Google Cloud forwarding rule hour, first 5 rules",
        source="https://cloud.google.com/vpc/network-pricing",
        published=date(2026, 12, 5),
    ),
}


class IdleLoadBalancersSettings(BaseModel):
    """Options of the idle load balancers recommender."""

    model_config = ConfigDict(extra="forbid")

    idle_days: int = Field(
        7,
        ge=1,
        description="Days a Service must have existed without traffic; at most the window's "
        "days, because traffic is judged over the whole window.",
    )
    max_receive_bytes_per_second: float = Field(
        100,
        ge=0,
        description="Mean bytes per second the backing pods may receive, all together, and "
        "still count as idle; health probes and metric scrapes stay below it.",
    )
    hourly_prices: dict[str, LoadBalancerPrice] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="Hourly price of one load balancer per provider (aws, azure, gcp).",
    )


@RECOMMENDERS.register("idle-load-balancers", IdleLoadBalancersSettings)
class IdleLoadBalancersRecommender:
    """Delete Services of type LoadBalancer that carried no traffic, or make them ClusterIP.

    Method: a Service of type LoadBalancer (``kube_service_spec_type``) must exist at the end of
    the window and have existed for at least ``idle_days``. It is idle, with high confidence,
    when its Endpoints object had no ready address during the whole window
    (``kube_endpoint_address{ready="true"}``, or the older ``kube_endpoint_address_available``).
    When it had ready addresses, the backing pods are the pods whose IP (``kube_pod_info``
    ``pod_ip``, or ``kube_pod_ips``) was one of them, because the Service's selector is not in
    Prometheus. The Service is idle, with medium confidence, when those pods together received
    at most ``max_receive_bytes_per_second`` on average (cAdvisor's
    ``container_network_receive_bytes_total``, every interface but ``lo``). That counts all
    traffic to the pods, so it is an upper bound on the load balancer's traffic. Services with
    no Endpoints data, or backing pods without network data, are not judged. Traffic is judged
    over the whole window, which must be at least ``idle_days`` long. Savings are the
    provider's hourly load balancer price from ``hourly_prices``, and the provider is that of
    the cluster's node pools. The change is a Kubernetes change, so there is no Palette API
    call.
    """

    name: str

    def __init__(self, settings: IdleLoadBalancersSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        idle_for = timedelta(days=self.settings.idle_days)
        if bundle.window < idle_for:
            logger.warning("idle-load-balancers needs a window of %d days, got %s; skipped",
                           self.settings.idle_days, bundle.window)  # fmt: skip
            return []

        found = []
        for service in bundle.load_balancers.items:
            if service.first_seen > bundle.end - idle_for:
                continue
            reason = self._idle_reason(bundle, service)
            if reason is not None:
                found.append(self._recommendation(bundle, service, *reason))
        return found

    def _idle_reason(
        self, bundle: RecommendInput, service: LoadBalancerService
    ) -> tuple[str, str] | None:
        """Return the confidence and the reason a Service counts as idle, None when it does not."""
        if not service.endpoints_known:
            return None
        if not service.has_ready_endpoint:
            return "high", "no ready endpoint address"
        if service.received_bytes is None:
            return None
        rate = service.received_bytes / bundle.window.total_seconds()
        if rate <= self.settings.max_receive_bytes_per_second:
            return "medium", f"backing pods received {rate:.1f} bytes/s"
        return None

    def _recommendation(
        self, bundle: RecommendInput, service: LoadBalancerService, confidence: str, reason: str
    ) -> Recommendation:
        days = bundle.window.total_seconds() / 86_400
        return Recommendation(
            kind=self.name,
            title=f"Delete idle load balancer Service {service.namespace}/{service.name} "
            f"({reason} in {days:g} days)",
            target=Target(service.cluster, "Service", service.name, service.namespace),
            before={"type": "LoadBalancer", "ingress": list(service.ingress)},
            after={"exists": False, "or_patch": {"spec": {"type": "ClusterIP"}}},
            savings=self._savings(bundle, service),
            confidence=confidence,  # type: ignore[arg-type]
            risk="medium",
            risk_note="clients that still use the load balancer's address lose it, and a new "
            "load balancer gets a new address; traffic that skips the pods (for example a "
            "failing health check) is not measured",
            effort="low",
            reversible=True,
            resources=frozenset({service.resource}),
            manual_change=_change(service),
            evidence={
                "reason": reason,
                "first_seen": service.first_seen.isoformat(),
                "ready_ips": list(service.ready_ips),
                "ready_count_max": service.ready_count_max,
                "backing_pods": list(service.backing_pods),
                "received_bytes": service.received_bytes,
                "queries": list(bundle.load_balancers.queries),
            },
        )

    def _savings(self, bundle: RecommendInput, service: LoadBalancerService) -> Savings:
        provider = cluster_provider(bundle, service.cluster)
        price = self.settings.hourly_prices.get(provider or "")
        if price is None:
            return Savings(Decimal(0), "USD", "not estimated: no load balancer price for the "
                           f"cluster's provider {provider}")  # fmt: skip
        used = PriceUsed(
            item=price.item, amount=price.usd_per_hour, unit="per load balancer-hour",
            source=price.source, published=price.published,
        )  # fmt: skip
        method = f"1 load balancer x {price.usd_per_hour} per hour (hourly charge only)"
        return Savings.from_hourly(price.usd_per_hour, "USD", method, (used,))


def _change(service: LoadBalancerService) -> str:
    return (
        f"kubectl -n {service.namespace} delete service {service.name}; or, to keep in-cluster "
        "access, set spec.type: ClusterIP in its manifest (the cluster profile's manifest or "
        "Helm values under GitOps) and remove its nodePort fields. The cloud controller then "
        "deletes the load balancer. Palette's API does not manage Services, so this "
        "recommendation has no Palette API call"
    )
