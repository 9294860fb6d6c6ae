"""The Palette client's rate calls and cloud config details against the simulator on loopback."""

from decimal import Decimal

import pytest
from palette_helpers import palette_settings

from costwarden.errors import PaletteApiError, PaletteAuthError, PaletteRateLimitError
from costwarden.simulator.rate_routes import SPOT_PRICE_RATIOS
from costwarden.sources.palette.client import RESOURCE_BURST, RESOURCE_RATE_PER_SECOND
from costwarden.sources.prices import PriceCatalog

CATALOG = PriceCatalog.packaged()


def test_cluster_rate_parsed(start_simulator, make_client):
    sim = start_simulator()
    cluster = sim.state.fleet.clusters[0]
    client, transport = make_client(palette_settings(sim))

    rate = client.cluster_rate(cluster.uid, "monthly")

    assert rate.name == cluster.name
    assert [pool.name for pool in rate.machine_pools] == [pool.name for pool in cluster.pools]
    assert isinstance(rate.rate.total, Decimal)
    assert rate.rate.total == pytest.approx(
        rate.rate.compute + rate.rate.storage, abs=Decimal("1e-5")
    )
    pool = cluster.pools[0]
    info = rate.resource_metadata.instance_types[pool.instance_type]
    assert info.cost.price[0].on_demand == pytest.approx(pool.hourly_price, abs=Decimal("1e-6"))
    assert info.cpu == pool.vcpus
    assert transport.exchanges[0].params == {"periodType": "monthly"}


def test_what_if_rate_spot(start_simulator, make_client):
    sim = start_simulator()
    client, _ = make_client(palette_settings(sim))
    body = {
        "cloudConfig": {"region": "us-east-1"},
        "machinepoolconfig": [
            {
                "cloudConfig": {"instanceType": "m5.large", "capacityType": "spot"},
                "poolConfig": {"name": "batch", "size": 4},
            }
        ],
    }

    rate = client.what_if_rate("aws", body)

    expected = CATALOG.hourly_price("aws", "us-east-1", "m5.large") * SPOT_PRICE_RATIOS["aws"] * 4
    assert rate.machine_pools[0].nodes_count == 4
    assert rate.machine_pools[0].rate.compute.rate == pytest.approx(expected, abs=Decimal("1e-6"))


def test_what_if_bad_body_not_retried(start_simulator, make_client, fake_time):
    sim = start_simulator()
    client, transport = make_client(palette_settings(sim))

    with pytest.raises(PaletteApiError) as raised:
        client.what_if_rate("eks", {"machinepoolconfig": []})

    assert raised.value.status == 400
    assert "cloudConfig.region" in str(raised.value)
    assert transport.statuses() == [400]


def test_rate_unknown_cluster_404(start_simulator, make_client):
    sim = start_simulator()
    client, _ = make_client(palette_settings(sim))

    with pytest.raises(PaletteApiError) as raised:
        client.cluster_rate("0123456789abcdef01234567")

    assert raised.value.status == 404
    assert raised.value.code == "ResourceNotFound"


def test_rate_wrong_key_401(start_simulator, make_client):
    sim = start_simulator()
    client, transport = make_client(palette_settings(sim, api_key="wrong-key-0123456789"))

    with pytest.raises(PaletteAuthError):
        client.cluster_rate(sim.state.fleet.clusters[0].uid)

    assert transport.statuses() == [401]


def test_rate_429_retried_then_raised(start_simulator, make_client, fake_time):
    sim = start_simulator(fault_rate=1.0, fault_statuses=(429,), retry_after_seconds=2)
    client, transport = make_client(palette_settings(sim, max_retries=2))

    with pytest.raises(PaletteRateLimitError) as caught:
        client.cluster_rate(sim.state.fleet.clusters[0].uid)

    assert "after 3 attempts; raise COSTWARDEN_PALETTE_MAX_RETRIES" in str(caught.value)
    assert transport.statuses() == [429] * 3
    assert fake_time.sleeps == [2.0, 2.0]


def test_rate_period_checked(start_simulator, make_client):
    sim = start_simulator()
    client, transport = make_client(palette_settings(sim))

    with pytest.raises(ValueError, match="daily"):
        client.cluster_rate("any", "daily")  # type: ignore[arg-type]

    assert transport.exchanges == []


def test_limiter_keeps_cloudconfig_rate(start_simulator, make_client, fake_time):
    sim = start_simulator(rate_limit_enabled=False)
    cluster = sim.state.fleet.clusters[0]
    client, transport = make_client(palette_settings(sim))

    for _ in range(RESOURCE_BURST + 20):
        client.cloud_config(cluster.cloud_type, cluster.cloud_config_uid)

    sent = [item.sent_at for item in transport.exchanges]
    assert sent[RESOURCE_BURST - 1] == sent[0]
    rate = 20 / (sent[-1] - sent[RESOURCE_BURST - 1])
    assert rate <= RESOURCE_RATE_PER_SECOND + 1e-9
    assert RESOURCE_RATE_PER_SECOND < 50


def test_cloud_config_pool_details(start_simulator, make_client):
    sim = start_simulator()
    cluster = next(c for c in sim.state.fleet.clusters if c.cloud_type in ("aws", "eks"))
    client, _ = make_client(palette_settings(sim))

    config = client.cloud_config(cluster.cloud_type, cluster.cloud_config_uid)

    assert config.spec.cluster_config.region == cluster.region
    for entry, pool in zip(config.spec.machine_pool_config, cluster.pools, strict=True):
        assert entry.capacity_type == pool.capacity_type
        assert entry.root_device_size == pool.disk_gib
        assert entry.instance_config is not None
        assert entry.instance_config.disk_gib == pool.disk_gib
