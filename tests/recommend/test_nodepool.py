"""The node pool recommender against the seeded Prometheus fleet, and its packing helpers."""

from __future__ import annotations

import prometheus_data as fleet
import pytest
from recommend_expected import CATALOG, per_day

from costwarden.recommend import RECOMMENDERS, RecommendInput
from costwarden.recommend.nodepool import _first_fit_decreasing, family_of


def pools(fleet_input: RecommendInput, **options: object) -> dict:
    found = RECOMMENDERS.create("node-pool", options).recommend(fleet_input)
    return {(item.target.cluster, item.target.name): item for item in found}


def test_placements_resolve_workloads(fleet_input: RecommendInput) -> None:
    on_gpu = [p for p in fleet_input.placements if p.node.node == fleet.GPU_NODE]

    assert [p.container.workload.name for p in on_gpu] == ["report"]
    assert on_gpu[0].container.workload.kind == "Deployment"
    assert len(fleet_input.placements) == 10, "pods running at the end of the window"


def test_general_pool_to_smaller_type(fleet_input: RecommendInput) -> None:
    """api at 400m, redis and archive shrunk, 3 frontends at 500m: 2 x m5.large hold them."""
    general = pools(fleet_input)[(fleet.PROD, "general")]
    xlarge = CATALOG.hourly_price("aws", "us-east-1", "m5.xlarge")
    large = CATALOG.hourly_price("aws", "us-east-1", "m5.large")

    assert general.after == {"instanceType": "m5.large", "size": 2}
    assert float(general.savings.per_day) == pytest.approx(
        per_day(2 * xlarge - 2 * large), abs=1e-4
    )
    assert general.api_call is not None
    assert general.api_call.body["cloudConfig"] == {"instanceType": "m5.large"}
    assert general.api_call.body["poolConfig"]["size"] == 2


def test_pool_links_rightsized_workloads(fleet_input: RecommendInput) -> None:
    general = pools(fleet_input)[(fleet.PROD, "general")]

    assert "pool:prod-eks/general" in general.resources
    assert "workload:prod-eks/checkout/Deployment/api" in general.resources
    assert "workload:prod-eks/web/Deployment/frontend" not in general.resources, "too new"


def test_gpu_pool_keeps_gpu_count(fleet_input: RecommendInput) -> None:
    gpu = pools(fleet_input)[(fleet.PROD, "gpu")]
    g5_2x = CATALOG.hourly_price("aws", "us-east-1", "g5.2xlarge")
    g5_x = CATALOG.hourly_price("aws", "us-east-1", "g5.xlarge")

    assert gpu.after == {"instanceType": "g5.xlarge", "size": 1}
    assert float(gpu.savings.per_day) == pytest.approx(per_day(g5_2x - g5_x), abs=1e-4)


def test_azure_pool_same_series(fleet_input: RecommendInput) -> None:
    system = pools(fleet_input)[(fleet.DEV, "system")]

    assert system.after == {"instanceType": "Standard_D2s_v5", "size": 1}


def test_min_nodes_one_prefers_current_type(fleet_input: RecommendInput) -> None:
    """1 x m5.xlarge costs as much as 2 x m5.large; the current type wins the tie."""
    general = pools(fleet_input, min_nodes=1)[(fleet.PROD, "general")]

    assert general.after == {"instanceType": "m5.xlarge", "size": 1}


def test_headroom_can_rule_out_smaller_type(fleet_input: RecommendInput) -> None:
    """With 200% headroom the pods need both m5.xlarge nodes, so nothing is proposed."""
    found = pools(fleet_input, headroom_percent=200)

    assert (fleet.PROD, "general") not in found


@pytest.mark.parametrize(
    ("provider", "instance_type", "family"),
    [
        ("aws", "m5.xlarge", ("m5",)),
        ("aws", "m6g.large", ("m6g",)),
        ("azure", "Standard_D4s_v5", ("D", "s", "v5")),
        ("azure", "Standard_E8s_v5", ("E", "s", "v5")),
        ("gcp", "n2-standard-4", ("n2-standard",)),
        ("azure", "Basic_A1", None),
    ],
)
def test_family_of(provider: str, instance_type: str, family: tuple | None) -> None:
    assert family_of(provider, instance_type) == family  # type: ignore[arg-type]


def test_packing_counts_nodes() -> None:
    assert _first_fit_decreasing([(1.0, 1.0)] * 4, (2.0, 10.0)) == 2
    assert _first_fit_decreasing([(1.5, 1.0), (0.5, 1.0), (1.0, 1.0)], (2.0, 10.0)) == 2
    assert _first_fit_decreasing([(0.1, 6.0), (0.1, 6.0)], (4.0, 10.0)) == 2


def test_packing_rejects_oversized_pod() -> None:
    assert _first_fit_decreasing([(3.0, 1.0)], (2.0, 10.0)) is None
