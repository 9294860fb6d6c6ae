"""The idle load balancers recommender against the seeded Prometheus fleet."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import prometheus_data as fleet
import pytest
from prometheus_fixtures import PrometheusServer
from recommend_expected import fleet_settings

from costwarden.errors import ConfigError
from costwarden.recommend import RECOMMENDERS, RecommendInput
from costwarden.recommend.services import load_load_balancers
from costwarden.sources.prometheus import PrometheusSource

WINDOW = timedelta(days=7)

AWS_NLB_PER_DAY = Decimal("0.0225") * 24


def found(bundle: RecommendInput, **options: object) -> dict:
    recommendations = RECOMMENDERS.create("idle-load-balancers", options).recommend(bundle)
    return {(item.target.cluster, item.target.namespace, item.target.name): item
            for item in recommendations}  # fmt: skip


def test_services_read_with_endpoints(fleet_input: RecommendInput) -> None:
    services = {item.name: item for item in fleet_input.load_balancers.items}

    assert set(services) == {"api-public", "archive-lb", "legacy-lb", "toy-lb"}, "no ClusterIP"
    api = services["api-public"]
    assert len(api.ready_ips) == 4, "two pods before the rollout and two after"
    assert len(api.backing_pods) == 4
    assert api.ingress == ("api-public.elb.example",)
    assert api.received_bytes == pytest.approx(
        fleet.API_RECEIVE_BYTES_PER_SECOND * 2 * 7 * 86_400, rel=0.01
    )
    assert services["legacy-lb"].ready_count_max == 0
    assert services["legacy-lb"].ready_ips == ()


def test_idle_services_found(fleet_input: RecommendInput) -> None:
    """api-public carries traffic and toy-lb is two days old; the other two are idle."""
    assert set(found(fleet_input)) == {
        (fleet.PROD, "data", "archive-lb"),
        (fleet.PROD, "web", "legacy-lb"),
    }


def test_no_ready_endpoint_high_confidence(fleet_input: RecommendInput) -> None:
    legacy = found(fleet_input)[(fleet.PROD, "web", "legacy-lb")]

    assert legacy.confidence == "high"
    assert legacy.evidence["reason"] == "no ready endpoint address"
    assert legacy.savings.per_day == AWS_NLB_PER_DAY
    assert legacy.savings.prices[0].source.startswith("https://aws.amazon.com/")


def test_quiet_pods_medium_confidence(fleet_input: RecommendInput) -> None:
    archive = found(fleet_input)[(fleet.PROD, "data", "archive-lb")]

    assert archive.confidence == "medium"
    assert archive.evidence["backing_pods"] == ["archive-0"]
    assert archive.evidence["received_bytes"] == pytest.approx(
        fleet.ARCHIVE_RECEIVE_BYTES_PER_SECOND * 7 * 86_400, rel=0.01
    )


def test_receive_threshold_setting(fleet_input: RecommendInput) -> None:
    """The api pods receive 2 MB/s each, 4 MB/s together."""
    strict = found(fleet_input, max_receive_bytes_per_second=5)
    loose = found(fleet_input, max_receive_bytes_per_second=5e6)

    assert (fleet.PROD, "data", "archive-lb") not in strict
    assert (fleet.PROD, "web", "legacy-lb") in strict
    assert (fleet.PROD, "checkout", "api-public") in loose


def test_kubernetes_change_not_palette(fleet_input: RecommendInput) -> None:
    legacy = found(fleet_input)[(fleet.PROD, "web", "legacy-lb")]

    assert legacy.api_call is None
    assert legacy.target.kind == "Service"
    assert legacy.after["or_patch"] == {"spec": {"type": "ClusterIP"}}
    assert legacy.manual_change is not None
    assert "kubectl -n web delete service legacy-lb" in legacy.manual_change
    assert legacy.resources == {"service:prod-eks/web/legacy-lb"}


def test_young_service_waits(fleet_input: RecommendInput) -> None:
    """toy-lb has no endpoints but exists for 2 days only; with idle_days=1 it counts."""
    young = found(fleet_input, idle_days=1)

    assert (fleet.DEV, "sandbox", "toy-lb") in young
    assert young[(fleet.DEV, "sandbox", "toy-lb")].savings.per_day == Decimal("0.025") * 24


def test_window_shorter_than_idle_days(fleet_input: RecommendInput) -> None:
    assert found(replace(fleet_input, window=timedelta(days=3))) == {}


def test_unknown_provider_not_priced(fleet_input: RecommendInput) -> None:
    legacy = found(fleet_input, hourly_prices={})[(fleet.PROD, "web", "legacy-lb")]

    assert legacy.savings.per_day == 0
    assert "not estimated" in legacy.savings.method


def test_price_must_be_positive() -> None:
    price = {"usd_per_hour": 0, "item": "x", "source": "y", "published": "2026-01-01"}

    with pytest.raises(ConfigError, match="idle-load-balancers"):
        RECOMMENDERS.create("idle-load-balancers", {"hourly_prices": {"aws": price}})


def test_small_batches_same_services(
    fleet_input: RecommendInput, prometheus_server: PrometheusServer
) -> None:
    """With one series per query, every namespace is its own batch and the result is equal."""
    settings = fleet_settings(prometheus_server.url).model_copy(update={"max_series_per_query": 1})
    with PrometheusSource(settings) as source:
        report = load_load_balancers(source, fleet.END, WINDOW)

    assert report.items == fleet_input.load_balancers.items
