"""GPU misuse, idle volumes, idle pools and storage class against the seeded Prometheus fleet."""

from __future__ import annotations

from dataclasses import replace

import prometheus_data as fleet
import pytest
from recommend_expected import CATALOG, gp2_bundle, per_day

from costwarden.errors import ConfigError
from costwarden.recommend import RECOMMENDERS, RecommendInput

GIB = 2.0**30


def test_gpu_pool_without_gpu_pods(fleet_input: RecommendInput) -> None:
    found = RECOMMENDERS.create("gpu-misuse").recommend(fleet_input)

    assert [(item.target.cluster, item.target.name) for item in found] == [(fleet.PROD, "gpu")]
    gpu = found[0]
    assert gpu.before["non_gpu_workloads"] == ["batch/Deployment/report"]
    assert gpu.after["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert gpu.confidence == "high"


def test_gpu_savings_replace_g5_with_m5(fleet_input: RecommendInput) -> None:
    """One g5.2xlarge (8 vCPU, 32 GiB) costs its price minus that of an m5.2xlarge."""
    gpu = RECOMMENDERS.create("gpu-misuse").recommend(fleet_input)[0]
    g5 = CATALOG.hourly_price("aws", "us-east-1", "g5.2xlarge")
    m5 = CATALOG.hourly_price("aws", "us-east-1", "m5.2xlarge")

    assert float(gpu.savings.per_day) == pytest.approx(per_day(g5 - m5), abs=1e-4)
    assert [price.item.split()[2] for price in gpu.savings.prices] == ["g5.2xlarge", "m5.2xlarge"]


def test_gpu_palette_call_placeholders(fleet_input: RecommendInput) -> None:
    gpu = RECOMMENDERS.create("gpu-misuse").recommend(fleet_input)[0]

    assert gpu.api_call is not None
    assert gpu.api_call.method == "PUT"
    assert gpu.api_call.path == "/v1/cloudconfigs/{cloudType}/{configUid}/machinePools/gpu"
    assert not gpu.api_call.complete


def test_gpu_pool_shrinks_by_idle_nodes(fleet_input: RecommendInput) -> None:
    """The one GPU node ran no GPU pod, so the pool goes to zero and a CPU pool takes its pods."""
    gpu = RECOMMENDERS.create("gpu-misuse").recommend(fleet_input)[0]

    assert (gpu.before["size"], gpu.after["size"]) == (1, 0)
    assert gpu.api_call.body["poolConfig"]["size"] == 0
    assert "m5.2xlarge" in gpu.manual_change
    assert gpu.api_call.body["poolConfig"]["name"] == "gpu"


def test_gpu_palette_call_with_ids(fleet_input: RecommendInput) -> None:
    pools = tuple(
        replace(pool, cloud_type="eks", config_uid="cfg-1", cluster_uid="c-1", project_uid="p-1")
        for pool in fleet_input.pools
    )
    bundle = replace(
        fleet_input, pools=pools, ui_url_template="https://console/{project_uid}/{cluster_uid}"
    )
    gpu = RECOMMENDERS.create("gpu-misuse").recommend(bundle)[0]

    assert gpu.api_call is not None
    assert gpu.api_call.path == "/v1/cloudconfigs/eks/cfg-1/machinePools/gpu"
    assert gpu.api_call.complete
    assert gpu.ui_link == "https://console/p-1/c-1"


def test_unmounted_claim_is_idle(fleet_input: RecommendInput) -> None:
    found = {
        item.target.name: item
        for item in RECOMMENDERS.create("idle-volumes").recommend(fleet_input)
    }
    storage = CATALOG.storage_price_per_gib_hour("aws", "us-east-1")
    expected = per_day(storage * 500)

    assert found["old-export"].confidence == "high"
    assert found["old-export"].reversible is False
    assert float(found["old-export"].savings.per_day) == pytest.approx(expected, abs=1e-4)


def test_unchanged_mounted_claim_low_confidence(fleet_input: RecommendInput) -> None:
    found = {
        item.target.name: item
        for item in RECOMMENDERS.create("idle-volumes").recommend(fleet_input)
    }

    assert found["data-archive-0"].confidence == "low"
    assert found["data-archive-0"].risk == "high"


def test_mounted_claims_can_be_excluded(fleet_input: RecommendInput) -> None:
    recommender = RECOMMENDERS.create("idle-volumes", {"include_mounted": False})

    assert [item.target.name for item in recommender.recommend(fleet_input)] == ["old-export"]


def test_no_pool_idle_at_five_percent(fleet_input: RecommendInput) -> None:
    """The emptiest node, dev-aks's Spot node, runs at 0.2 of 3.92 cores: 5.1%."""
    assert RECOMMENDERS.create("idle-pools").recommend(fleet_input) == []


def test_idle_pool_above_threshold(fleet_input: RecommendInput) -> None:
    """dev-aks's pool ``spot`` runs on Spot, so its node is priced at the Spot price."""
    found = RECOMMENDERS.create("idle-pools", {"max_cpu_percent": 6}).recommend(fleet_input)
    price = CATALOG.spot_price("azure", "westeurope", "Standard_D4s_v5").usd_per_hour
    on_demand = CATALOG.hourly_price("azure", "westeurope", "Standard_D4s_v5")

    assert [(item.target.cluster, item.target.name) for item in found] == [(fleet.DEV, "spot")]
    assert found[0].after == {"size": 0, "minSize": 0}
    assert price < on_demand
    assert float(found[0].savings.per_day) == pytest.approx(per_day(price), abs=1e-4)
    assert found[0].savings.prices[0].item.endswith("Standard_D4s_v5 spot")
    assert found[0].api_call is not None
    assert found[0].api_call.body["poolConfig"] == {"name": "spot", "size": 0, "minSize": 0}


def test_gp3_claims_stay(fleet_input: RecommendInput) -> None:
    assert RECOMMENDERS.create("storage-class").recommend(fleet_input) == []


def test_gp2_claim_moves_to_gp3(fleet_input: RecommendInput) -> None:
    found = {
        item.target.name: item
        for item in RECOMMENDERS.create("storage-class").recommend(gp2_bundle(fleet_input))
    }
    storage = CATALOG.storage_price_per_gib_hour("aws", "us-east-1")

    assert found["data-archive-0"].after == {"storage_class": "gp3"}
    assert float(found["data-archive-0"].savings.per_day) == pytest.approx(
        per_day(storage * 100) * 0.2, abs=1e-4
    )
    assert float(found["old-export"].savings.per_day) == pytest.approx(
        per_day(storage * 500) * 0.2, abs=1e-4
    )


def test_storage_settings_need_ratio() -> None:
    with pytest.raises(ConfigError, match="price_ratios has no entry"):
        RECOMMENDERS.create("storage-class", {"conversions": {"premium": "standard"}})
