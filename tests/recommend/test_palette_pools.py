"""Machine pools and prices read from the Palette simulator, merged with the Prometheus pools."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import prometheus_data as fleet
import pytest
from recommend_expected import CATALOG, per_day

from costwarden.config import PaletteSettings, RecommendSettings, Settings
from costwarden.errors import PaletteAuthError
from costwarden.recommend import RECOMMENDERS, PoolRef, RecommendInput
from costwarden.recommend.palette import machine_pool_update
from costwarden.recommend.palette_pools import (
    PALETTE_RATE_SOURCE,
    merge_pools,
    price_catalog,
    read_palette_pools,
    read_palette_prices,
    with_palette_inputs,
)
from costwarden.simulator.model import Cluster, Fleet
from costwarden.simulator.rate_routes import SPOT_PRICE_RATIOS
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings
from costwarden.sources.palette.client import PaletteClient
from costwarden.sources.prices import SpotDiscount

AS_OF = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
UI = "https://console.example/projects/{project_uid}/clusters/{cluster_uid}"
DEV_AWS = "pay-settlement-dev"
STAGING_AZURE = "plat-vault-staging"
PROD_EKS = "recs-eks"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    settings = SimulatorSettings(seed=7, as_of=AS_OF, cluster_count=12, history_days=20)
    with SimulatorServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def palette(sim: SimulatorServer) -> Iterator[PaletteClient]:
    with PaletteClient(PaletteSettings(url=sim.url, api_key=sim.api_key)) as client:
        yield client


@pytest.fixture(scope="module")
def palette_pools(palette: PaletteClient) -> tuple[PoolRef, ...]:
    return read_palette_pools(palette)


def _sim_fleet(sim: SimulatorServer) -> Fleet:
    return sim.state.fleet


def _cluster(sim: SimulatorServer, name: str) -> Cluster:
    return _sim_fleet(sim).cluster_named(name)


def _settings(sim: SimulatorServer, **recommend: object) -> Settings:
    palette = PaletteSettings(url=sim.url, api_key=sim.api_key, ui_url_template=UI)
    return Settings(palette=palette, recommend=RecommendSettings(**recommend))


def _renamed(
    bundle: RecommendInput, renames: dict[tuple[str, str], tuple[str, str]]
) -> RecommendInput:
    """Return the bundle with some Prometheus pools named like simulator pools."""
    pools = []
    for pool in bundle.pools:
        cluster, name = renames.get((pool.cluster, pool.name), (pool.cluster, pool.name))
        pools.append(replace(pool, cluster=cluster, name=name))
    return replace(bundle, pools=tuple(pools))


def test_pools_read_for_every_cluster(sim, palette_pools) -> None:
    expected = {(c.name, p.name) for c in _sim_fleet(sim).clusters for p in c.pools}

    assert {(pool.cluster, pool.name) for pool in palette_pools} == expected
    assert all(pool.nodes == () for pool in palette_pools)


def test_pool_ids_and_shape(sim, palette_pools) -> None:
    cluster = _cluster(sim, DEV_AWS)
    found = {pool.name: pool for pool in palette_pools if pool.cluster == DEV_AWS}
    control, worker = found["control-plane-pool"], found["worker-pool-2"]
    declared = next(pool for pool in cluster.pools if pool.name == "worker-pool-2")

    assert worker.cloud_type == cluster.cloud_type == "aws"
    assert worker.config_uid == cluster.cloud_config_uid
    assert worker.cluster_uid == cluster.uid
    assert worker.project_uid == cluster.project.uid
    assert worker.provider == "aws"
    assert worker.region == cluster.region
    assert worker.instance_type == declared.instance_type
    assert (worker.size, worker.min_size, worker.max_size) == (
        declared.size,
        declared.min_size,
        declared.max_size,
    )
    assert worker.disk_gib == declared.disk_gib
    assert worker.capacity_types == ("on-demand",)
    assert worker.cluster_label("env") == "dev"
    assert control.is_control_plane
    assert not worker.is_control_plane


def test_azure_pools_use_location(sim, palette_pools) -> None:
    pools = [pool for pool in palette_pools if pool.cluster == STAGING_AZURE]

    assert {pool.region for pool in pools} == {_cluster(sim, STAGING_AZURE).region}
    assert {pool.provider for pool in pools} == {"azure"}


def test_aks_system_pool_flag(palette_pools) -> None:
    system = [pool for pool in palette_pools if pool.cloud_type == "aks" and pool.is_system_pool]

    assert system
    assert {pool.name for pool in system} == {"system-pool"}


def test_cluster_filter(palette) -> None:
    pools = read_palette_pools(palette, clusters=[DEV_AWS])

    assert {pool.cluster for pool in pools} == {DEV_AWS}
    assert len(pools) == 4


def test_merge_keeps_nodes_takes_ids(palette_pools, caplog) -> None:
    observed = PoolRef(DEV_AWS, "worker-pool", "aws", "us-east-1", "t3.large", ("n1", "n2"),
                       ("on-demand",))  # fmt: skip
    stray = PoolRef("elsewhere", "general", "aws", "us-east-1", "m5.large", ("n3",))

    with caplog.at_level(logging.WARNING):
        merge = merge_pools([observed, stray], palette_pools)

    merged = next(p for p in merge.pools if (p.cluster, p.name) == (DEV_AWS, "worker-pool"))
    assert merged.nodes == ("n1", "n2")
    assert merged.config_uid is not None
    assert merged.from_palette
    assert merge.prometheus_only == (stray,)
    assert stray in merge.pools
    assert len(merge.palette_only) == len(palette_pools) - 1
    assert set(merge.palette_only) <= set(merge.pools)
    assert "no Palette machine pool: elsewhere/general" in caplog.text
    assert "have no nodes in Prometheus" in caplog.text


def test_merge_prefers_palette_instance_type(palette_pools, caplog) -> None:
    observed = PoolRef(DEV_AWS, "worker-pool", "aws", "us-east-1", "m5.large", ("n1",))

    with caplog.at_level(logging.WARNING):
        merge = merge_pools([observed], palette_pools)

    merged = next(p for p in merge.pools if p.nodes)
    assert merged.instance_type == "t3.large"
    assert "nodes run m5.large but Palette declares t3.large" in caplog.text


def test_palette_prices_win(sim, palette, palette_pools) -> None:
    prices, shapes = read_palette_prices(palette, palette_pools)
    catalog = CATALOG.with_instance_prices(prices, shapes)

    on_demand = catalog.instance_price("aws", "us-east-1", "r5.2xlarge")
    spot = catalog.spot_price("aws", "us-east-1", "r5.2xlarge")

    assert on_demand.source == PALETTE_RATE_SOURCE.replace("{region}", "us-east-1")
    assert on_demand.published == datetime.now(UTC).date()
    assert on_demand.usd_per_hour == CATALOG.hourly_price("aws", "us-east-1", "r5.2xlarge")
    assert spot.usd_per_hour == pytest.approx(
        on_demand.usd_per_hour * SPOT_PRICE_RATIOS["aws"], abs=Decimal("1e-6")
    )
    assert spot.source.startswith("Palette rate API")
    assert catalog.shape("aws", "r5.2xlarge").vcpus == 8
    assert "karpenter" in CATALOG.instance_price("aws", "us-east-1", "r5.2xlarge").source


def test_packaged_spot_price_from_discount() -> None:
    on_demand = CATALOG.hourly_price("aws", "us-east-1", "m5.xlarge")
    discount = CATALOG.spot_discount("aws")
    spot = CATALOG.spot_price("aws", "us-east-1", "m5.xlarge")

    assert discount.discount == Decimal("0.7895")
    assert "opencost" in discount.source
    assert spot.usd_per_hour == on_demand * (1 - discount.discount)
    assert spot.capacity_type == "spot"
    assert "Spot discount" in spot.source


def test_configured_spot_discount(sim) -> None:
    settings = _settings(
        sim,
        spot_discounts={
            "azure": {"discount": "0.6", "source": "team estimate", "published": "2026-10-01"}
        },
    )
    catalog = price_catalog(settings)
    spot = catalog.spot_price("azure", "westeurope", "Standard_D4s_v5")
    on_demand = CATALOG.hourly_price("azure", "westeurope", "Standard_D4s_v5")

    assert catalog.spot_discount("azure") == SpotDiscount(
        "azure", Decimal("0.6"), "team estimate", date(2026, 10, 1)
    )
    assert spot.usd_per_hour == on_demand * Decimal("0.4")
    assert "team estimate" in spot.source
    assert catalog.spot_discount("aws").discount == Decimal("0.7895")


def test_configured_discount_range_checked() -> None:
    with pytest.raises(ValueError, match="discount"):
        RecommendSettings(spot_discounts={"aws": {"discount": 1.5, "source": "x",
                                                  "published": "2026-01-01"}})  # fmt: skip


def test_spot_with_palette_pools(sim, fleet_input) -> None:
    bundle = _renamed(fleet_input, {(fleet.PROD, "gpu"): (DEV_AWS, "worker-pool-2")})
    bundle = with_palette_inputs(bundle, _settings(sim))
    cluster = _cluster(sim, DEV_AWS)

    found = {
        (i.target.cluster, i.target.name): i for i in RECOMMENDERS.create("spot").recommend(bundle)
    }

    item = found[(DEV_AWS, "worker-pool-2")]
    assert item.confidence == "medium"
    assert item.evidence["stateful_nodes_checked"] == [fleet.GPU_NODE]
    assert item.api_call is not None
    assert item.api_call.path == (
        f"/v1/cloudconfigs/aws/{cluster.cloud_config_uid}/machinePools/worker-pool-2"
    )
    assert item.api_call.complete
    assert item.api_call.body["cloudConfig"] == {
        "instanceType": "m5.2xlarge",
        "capacityType": "spot",
    }
    assert item.api_call.body["poolConfig"]["name"] == "worker-pool-2"
    assert item.api_call.body["poolConfig"]["isControlPlane"] is False
    assert item.ui_link == UI.format(project_uid=cluster.project.uid, cluster_uid=cluster.uid)


def test_spot_savings_from_palette_prices(sim, fleet_input) -> None:
    bundle = _renamed(fleet_input, {(fleet.PROD, "gpu"): (DEV_AWS, "worker-pool-2")})
    bundle = with_palette_inputs(bundle, _settings(sim))
    nodes = len(
        next(p for p in fleet_input.pools if p.name == "gpu" and p.cluster == fleet.PROD).nodes
    )

    found = RECOMMENDERS.create("spot").recommend(bundle)
    item = next(i for i in found if (i.target.cluster, i.target.name) == (DEV_AWS, "worker-pool-2"))

    on_demand = CATALOG.hourly_price("aws", "us-east-1", "m5.2xlarge")
    expected = per_day(on_demand * (1 - SPOT_PRICE_RATIOS["aws"]) * nodes)
    assert float(item.savings.per_day) == pytest.approx(expected, abs=1e-4)
    assert [price.source.split(" (")[0] for price in item.savings.prices] == [
        "Palette rate API",
        "Palette rate API",
    ]
    assert [price.item.split()[-1] for price in item.savings.prices] == ["on-demand", "spot"]


def test_spot_azure_body_and_label(sim, fleet_input) -> None:
    """dev-aks's stateless system pool, named as a pool of the staging Azure cluster."""
    bundle = _renamed(fleet_input, {(fleet.DEV, "system"): (STAGING_AZURE, "worker-pool-2")})
    bundle = with_palette_inputs(bundle, _settings(sim))
    recommender = RECOMMENDERS.create("spot", {"non_production_patterns": []})

    found = {(i.target.cluster, i.target.name): i for i in recommender.recommend(bundle)}

    item = found[(STAGING_AZURE, "worker-pool-2")]
    assert item.api_call is not None
    assert item.api_call.body["cloudConfig"] == {
        "instanceType": "Standard_B2ms",
        "spotVMOptions": {},
    }
    assert item.api_call.path.startswith("/v1/cloudconfigs/azure/")


def test_production_label_blocks_spot(sim, fleet_input) -> None:
    bundle = _renamed(fleet_input, {(fleet.PROD, "gpu"): (PROD_EKS, "worker-pool")})
    bundle = with_palette_inputs(bundle, _settings(sim))
    recommender = RECOMMENDERS.create("spot", {"non_production_patterns": ["*"]})

    targets = {(item.target.cluster, item.target.name) for item in recommender.recommend(bundle)}

    assert (PROD_EKS, "worker-pool") not in targets


def test_palette_failure_keeps_prometheus_pools(fleet_input, caplog) -> None:
    settings = Settings(
        palette=PaletteSettings(url="http://127.0.0.1:9", api_key="key-0123", max_retries=0)
    )

    with caplog.at_level(logging.WARNING):
        bundle = with_palette_inputs(fleet_input, settings)

    assert bundle.pools == fleet_input.pools
    assert bundle.ui_url_template is None
    assert "reading Palette pools failed" in caplog.text


def test_without_palette_only_discounts(fleet_input) -> None:
    bundle = with_palette_inputs(fleet_input, Settings())

    assert bundle.pools == fleet_input.pools
    assert bundle.prices.spot_discount("aws").discount == Decimal("0.7895")


def test_spot_for_palette_only_pool(sim, fleet_input) -> None:
    """A Palette pool without nodes in Prometheus is sized from Palette, with low confidence."""
    bundle = with_palette_inputs(fleet_input, _settings(sim))
    declared = next(p for p in _cluster(sim, DEV_AWS).pools if p.name == "worker-pool-3")

    found = {
        (i.target.cluster, i.target.name): i for i in RECOMMENDERS.create("spot").recommend(bundle)
    }

    item = found[(DEV_AWS, "worker-pool-3")]
    assert item.confidence == "low"
    assert f"({declared.size} x r5.2xlarge)" in item.title
    assert (DEV_AWS, "control-plane-pool") not in found
    assert not any(cluster == PROD_EKS for cluster, _ in found)
    on_demand = CATALOG.hourly_price("aws", "us-east-1", "r5.2xlarge")
    expected = per_day(on_demand * (1 - SPOT_PRICE_RATIOS["aws"]) * declared.size)
    assert float(item.savings.per_day) == pytest.approx(expected, abs=1e-4)


def test_wrong_palette_key_fails(sim, fleet_input) -> None:
    settings = Settings(palette=PaletteSettings(url=sim.url, api_key="wrong-key", max_retries=0))

    with pytest.raises(PaletteAuthError):
        with_palette_inputs(fleet_input, settings)


def test_resize_widens_pool_limits(palette_pools) -> None:
    pool = replace(next(p for p in palette_pools if p.size), size=4, min_size=4, max_size=4)

    smaller = machine_pool_update(pool, pool_config={"size": 2})
    larger = machine_pool_update(pool, pool_config={"size": 6})

    assert (smaller.body["poolConfig"]["minSize"], smaller.body["poolConfig"]["maxSize"]) == (2, 4)
    assert (larger.body["poolConfig"]["minSize"], larger.body["poolConfig"]["maxSize"]) == (4, 6)
