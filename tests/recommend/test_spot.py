"""The Spot recommender against the seeded Prometheus fleet."""

from __future__ import annotations

from decimal import Decimal

import prometheus_data as fleet
import pytest
from recommend_expected import CATALOG, per_day

from costwarden.recommend import RECOMMENDERS, RecommendInput


def spot_savings_per_hour(cloud: str, region: str, instance_type: str) -> Decimal:
    on_demand = CATALOG.hourly_price(cloud, region, instance_type)
    discount = CATALOG.spot_discount(cloud).discount
    return on_demand - on_demand * (1 - discount)


def test_stateful_nodes_found(fleet_input: RecommendInput) -> None:
    assert fleet_input.stateful_nodes == {
        (fleet.PROD, "ip-10-0-1-10"),
        (fleet.PROD, "ip-10-0-1-11"),
    }


def test_no_spot_for_system_or_spot_pools(fleet_input: RecommendInput) -> None:
    """dev-aks has a system pool, which AKS keeps on regular VMs, and a pool already on Spot."""
    assert RECOMMENDERS.create("spot").recommend(fleet_input) == []


def test_aks_pool_gets_spot_vm_options(fleet_input: RecommendInput) -> None:
    recommender = RECOMMENDERS.create("spot", {"excluded_pool_patterns": []})
    found = recommender.recommend(fleet_input)
    expected = per_day(spot_savings_per_hour("azure", "westeurope", "Standard_D4s_v5"))

    assert [(item.target.cluster, item.target.name) for item in found] == [(fleet.DEV, "system")]
    system = found[0]
    assert system.api_call is not None
    assert system.api_call.body["cloudConfig"] == {"spotVMOptions": {}}
    assert float(system.savings.per_day) == pytest.approx(expected, abs=1e-4)
    assert "30-second" in system.risk_note


def test_stateful_pools_stay_on_demand(fleet_input: RecommendInput) -> None:
    """With every cluster non-production, only prod-eks's GPU pool is stateless."""
    recommender = RECOMMENDERS.create(
        "spot", {"non_production_patterns": ["*"], "excluded_pool_patterns": ["system*"]}
    )
    found = {
        (item.target.cluster, item.target.name): item for item in recommender.recommend(fleet_input)
    }

    assert set(found) == {(fleet.PROD, "gpu")}
    gpu = found[(fleet.PROD, "gpu")]
    assert gpu.api_call is not None
    assert gpu.api_call.body["cloudConfig"] == {"capacityType": "spot"}
    assert "2-minute" in gpu.risk_note
