"""The commitments recommender against the seeded Prometheus fleet."""

from __future__ import annotations

import prometheus_data as fleet
import pytest
from recommend_expected import CATALOG, per_day

from costwarden.recommend import RECOMMENDERS, RecommendInput


def found(fleet_input: RecommendInput, **options: object) -> dict:
    recommendations = RECOMMENDERS.create("commitments", options).recommend(fleet_input)
    return {(item.target.cluster, item.target.name): item for item in recommendations}


def test_steady_on_demand_nodes_only(fleet_input: RecommendInput) -> None:
    """The Spot nodes of both clusters are left out; one node of each other type remains."""
    assert set(found(fleet_input)) == {
        (fleet.PROD, "m5.xlarge"),
        (fleet.PROD, "g5.2xlarge"),
        (fleet.DEV, "Standard_D4s_v5"),
    }


def test_savings_and_break_even(fleet_input: RecommendInput) -> None:
    m5 = found(fleet_input, discount_percent=40)[(fleet.PROD, "m5.xlarge")]
    price = CATALOG.hourly_price("aws", "us-east-1", "m5.xlarge")

    assert float(m5.savings.per_day) == pytest.approx(per_day(price) * 0.4, abs=1e-4)
    assert m5.after["break_even_use_percent"] == 60
    assert m5.reversible is False
    assert m5.resources == {"pool:prod-eks/general"}


def test_covered_nodes_removed(fleet_input: RecommendInput) -> None:
    by_target = found(fleet_input, covered={"prod-eks/m5.xlarge": 1})

    assert (fleet.PROD, "m5.xlarge") not in by_target
    assert (fleet.PROD, "g5.2xlarge") in by_target
