"""The workload requests recommender against the seeded Prometheus fleet."""

from __future__ import annotations

import math

import prometheus_data as fleet
import pytest
from recommend_expected import per_day, split_rates

from costwarden.domain.recommendation import Recommendation
from costwarden.recommend import RECOMMENDERS, RecommendInput

MIB = 2.0**20


def by_target(found: list[Recommendation]) -> dict[tuple[str, str, str], Recommendation]:
    return {
        (item.target.cluster, item.target.namespace or "", item.target.name): item for item in found
    }


@pytest.fixture(scope="module")
def found(fleet_input: RecommendInput) -> dict[tuple[str, str, str], Recommendation]:
    return by_target(RECOMMENDERS.create("workload-requests").recommend(fleet_input))


def test_api_cpu_at_p95(found) -> None:
    api = found[(fleet.PROD, "checkout", "api")]

    assert api.before["api"]["cpu_cores"] == fleet.API_CPU_REQUEST_CORES
    assert api.after["api"]["cpu_cores"] == pytest.approx(fleet.API_CPU_P95_CORES, rel=0.03)


def test_api_memory_peak_plus_headroom(found) -> None:
    api = found[(fleet.PROD, "checkout", "api")]
    expected = math.ceil(fleet.API_MEMORY_PEAK_BYTES * 1.15 / MIB) * MIB

    assert api.after["api"]["memory_bytes"] == pytest.approx(expected, rel=0.01)


def test_api_savings_from_m5_prices(found) -> None:
    """Savings: request change x 2 replicas at m5.xlarge's price per vCPU and per GiB (2%)."""
    api = found[(fleet.PROD, "checkout", "api")]
    cpu_rate, memory_rate = split_rates("aws", "us-east-1", "m5.xlarge")
    cores = (fleet.API_CPU_REQUEST_CORES - fleet.API_CPU_P95_CORES) * 2
    gib = (fleet.API_MEMORY_REQUEST_BYTES - 460 * MIB) / 2.0**30 * 2
    expected = per_day(cores * cpu_rate + gib * memory_rate)

    assert float(api.savings.per_day) == pytest.approx(expected, rel=0.02)
    assert api.savings.currency == "USD"
    assert any("m5.xlarge" in price.item for price in api.savings.prices)
    assert all(price.published is not None for price in api.savings.prices)


def test_api_hpa_lowers_confidence(found) -> None:
    api = found[(fleet.PROD, "checkout", "api")]

    assert api.confidence == "medium"
    assert "HorizontalPodAutoscaler api" in api.risk_note
    assert api.evidence["replicas"] == 2


def test_redis_oom_bumps_memory(found) -> None:
    redis = found[(fleet.PROD, "checkout", "redis")]
    expected = math.ceil(fleet.REDIS_MEMORY_LIMIT_BYTES * 1.15 * 1.2 / MIB) * MIB

    assert redis.after["redis"]["memory_bytes"] == expected
    assert redis.after["redis"]["memory_limit_bytes"] == expected
    assert "OOM-killed" in redis.risk_note


def test_report_cpu_rise_costs_money(found) -> None:
    report = found[(fleet.PROD, "batch", "report")]

    assert report.after["report"]["cpu_cores"] == pytest.approx(fleet.REPORT_CPU_AFTER, rel=0.03)
    assert report.savings.per_day < 0


def test_short_history_gets_nothing(found) -> None:
    assert (fleet.PROD, "web", "frontend") not in found


def test_no_palette_call_for_workloads(found) -> None:
    api = found[(fleet.PROD, "checkout", "api")]

    assert api.api_call is None
    assert api.manual_change is not None
    assert api.reversible


def test_headroom_setting(fleet_input: RecommendInput) -> None:
    recommender = RECOMMENDERS.create("workload-requests", {"memory_headroom_percent": 30})
    api = by_target(recommender.recommend(fleet_input))[(fleet.PROD, "checkout", "api")]
    expected = math.ceil(fleet.API_MEMORY_PEAK_BYTES * 1.3 / MIB) * MIB

    assert api.after["api"]["memory_bytes"] == pytest.approx(expected, rel=0.01)


def test_min_change_skips_small_changes(fleet_input: RecommendInput) -> None:
    recommender = RECOMMENDERS.create("workload-requests", {"min_change_percent": 100})
    found = by_target(recommender.recommend(fleet_input))

    assert (fleet.PROD, "checkout", "api") not in found, "no change reaches 100% of the request"
    assert (fleet.PROD, "batch", "report") in found, "report's CPU triples"
