"""The simulator's estimated-rate routes over real HTTP: shapes, prices, errors and limits."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from costwarden.simulator.model import Cluster
from costwarden.simulator.rate_routes import PERIOD_HOURS, SPOT_PRICE_RATIOS
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import RateLimitRule, SimulatorSettings
from costwarden.sources.prices import PriceCatalog

CATALOG = PriceCatalog.packaged()


def _cluster_with_spot(sim: SimulatorServer) -> Cluster:
    return next(
        cluster
        for cluster in sim.state.fleet.clusters
        if any(pool.capacity_type == "spot" for pool in cluster.pools)
    )


def test_cluster_rate_shape(sim: SimulatorServer, client: httpx.Client) -> None:
    cluster = sim.state.fleet.clusters[0]
    body = client.get(f"/v1/spectroclusters/{cluster.uid}/rate").json()

    assert body["name"] == cluster.name
    assert set(body["rate"]) == {"compute", "storage", "total"}
    assert [pool["name"] for pool in body["machinePools"]] == [p.name for p in cluster.pools]
    first = body["machinePools"][0]
    assert first["nodesCount"] == cluster.pools[0].size
    assert first["rate"]["compute"]["type"] == cluster.pools[0].instance_type
    assert first["rate"]["storage"][0]["sizeGB"] == cluster.pools[0].disk_gib
    assert set(body["resourceMetadata"]["instanceTypes"]) == {
        p.instance_type for p in cluster.pools
    }


def test_cluster_rate_adds_up(sim: SimulatorServer, client: httpx.Client) -> None:
    cluster = sim.state.fleet.clusters[0]
    body = client.get(f"/v1/spectroclusters/{cluster.uid}/rate").json()
    pools = body["machinePools"]

    compute = sum(pool["rate"]["compute"]["rate"] for pool in pools)
    storage = sum(disk["rate"] for pool in pools for disk in pool["rate"]["storage"])
    assert body["rate"]["compute"] == pytest.approx(compute, abs=1e-5)
    assert body["rate"]["storage"] == pytest.approx(storage, abs=1e-5)
    assert body["rate"]["total"] == pytest.approx(compute + storage, abs=1e-5)


def test_instance_prices_on_demand_and_spot(sim: SimulatorServer, client: httpx.Client) -> None:
    cluster = _cluster_with_spot(sim)
    body = client.get(f"/v1/spectroclusters/{cluster.uid}/rate").json()
    spot_pool = next(pool for pool in cluster.pools if pool.capacity_type == "spot")
    info = body["resourceMetadata"]["instanceTypes"][spot_pool.instance_type]
    ratio = float(SPOT_PRICE_RATIOS[cluster.provider])

    assert info["cost"]["price"][0]["onDemand"] == pytest.approx(float(spot_pool.hourly_price))
    assert info["cost"]["price"][0]["spot"] == pytest.approx(float(spot_pool.hourly_price) * ratio)
    assert info["cost"]["price"][0]["os"] == "linux"
    line = next(pool for pool in body["machinePools"] if pool["name"] == spot_pool.name)
    expected = float(spot_pool.hourly_price) * ratio * spot_pool.size
    assert line["rate"]["compute"]["rate"] == pytest.approx(expected, rel=1e-5)


def test_monthly_period_scales_hourly(sim: SimulatorServer, client: httpx.Client) -> None:
    uid = sim.state.fleet.clusters[1].uid
    hourly = client.get(f"/v1/spectroclusters/{uid}/rate", params={"periodType": "hourly"})
    monthly = client.get(f"/v1/spectroclusters/{uid}/rate", params={"periodType": "monthly"})

    expected = hourly.json()["rate"]["total"] * PERIOD_HOURS["monthly"]
    assert monthly.json()["rate"]["total"] == pytest.approx(expected, rel=1e-5)


def test_bad_period_is_400(sim: SimulatorServer, client: httpx.Client) -> None:
    uid = sim.state.fleet.clusters[0].uid
    response = client.get(f"/v1/spectroclusters/{uid}/rate", params={"periodType": "daily"})

    assert response.status_code == 400
    assert response.json()["code"] == "BadRequest"
    assert "daily" in response.json()["message"]


def test_unknown_cluster_rate_is_404(client: httpx.Client) -> None:
    response = client.get("/v1/spectroclusters/no-such-cluster/rate")

    assert response.status_code == 404
    assert response.json()["code"] == "ResourceNotFound"


def test_what_if_spot_pool(client: httpx.Client) -> None:
    body = {
        "cloudConfig": {"region": "us-east-1"},
        "machinepoolconfig": [
            {
                "cloudConfig": {"instanceType": "m5.xlarge", "capacityType": "spot"},
                "poolConfig": {"name": "workers", "size": 3},
            }
        ],
    }
    response = client.post("/v1/spectroclusters/eks/rate", json=body)
    on_demand = CATALOG.hourly_price("aws", "us-east-1", "m5.xlarge")
    expected = on_demand * SPOT_PRICE_RATIOS["aws"] * 3

    assert response.status_code == 200
    pool = response.json()["machinePools"][0]
    assert pool["name"] == "workers"
    assert pool["nodesCount"] == 3
    assert Decimal(str(pool["rate"]["compute"]["rate"])) == pytest.approx(
        expected, abs=Decimal("1e-6")
    )


def test_what_if_azure_spot_vm_options(client: httpx.Client) -> None:
    pool = {"cloudConfig": {"instanceType": "Standard_D4s_v5"}, "poolConfig": {"size": 2}}
    spot = {"cloudConfig": {"instanceType": "Standard_D4s_v5", "spotVMOptions": {}},
            "poolConfig": {"size": 2}}  # fmt: skip
    config = {"location": "westeurope", "subscriptionId": "s", "sshKey": ""}
    regular = client.post(
        "/v1/spectroclusters/aks/rate", json={"cloudConfig": config, "machinepoolconfig": [pool]}
    )
    on_spot = client.post(
        "/v1/spectroclusters/aks/rate", json={"cloudConfig": config, "machinepoolconfig": [spot]}
    )

    ratio = float(SPOT_PRICE_RATIOS["azure"])
    regular_compute = regular.json()["rate"]["compute"]
    assert on_spot.json()["rate"]["compute"] == pytest.approx(regular_compute * ratio, rel=1e-5)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"machinepoolconfig": []}, "cloudConfig.region is required"),
        (
            {"cloudConfig": {"region": "us-east-1"}, "machinepoolconfig": [{"poolConfig": {}}]},
            "instanceType is required",
        ),
        (
            {
                "cloudConfig": {"region": "us-east-1"},
                "machinepoolconfig": [{"cloudConfig": {"instanceType": "m5.huge"}}],
            },
            "m5.huge",
        ),
        (
            {
                "cloudConfig": {"region": "us-east-1"},
                "machinepoolconfig": [
                    {"cloudConfig": {"instanceType": "m5.large", "capacityType": "reserved"}}
                ],
            },
            "capacityType 'reserved'",
        ),
    ],
)
def test_what_if_bad_body_is_400(client: httpx.Client, body: dict, message: str) -> None:
    response = client.post("/v1/spectroclusters/aws/rate", json=body)

    assert response.status_code == 400
    assert message in response.json()["message"]


def test_what_if_unknown_cloud_is_404(client: httpx.Client) -> None:
    response = client.post("/v1/spectroclusters/oracle/rate", json={})

    assert response.status_code == 404


def test_rate_needs_api_key(sim: SimulatorServer) -> None:
    uid = sim.state.fleet.clusters[0].uid
    with httpx.Client(base_url=sim.url, timeout=10) as anonymous:
        missing = anonymous.get(f"/v1/spectroclusters/{uid}/rate")
        wrong = anonymous.get(f"/v1/spectroclusters/{uid}/rate", headers={"ApiKey": "nope"})
        what_if = anonymous.post("/v1/spectroclusters/aws/rate", json={})

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert what_if.status_code == 401


def test_rate_routes_are_rate_limited(as_of: datetime) -> None:
    rules = (RateLimitRule(prefix="/v1/spectroclusters", rate_per_second=0.01, burst=2),)
    settings = SimulatorSettings(seed=1, as_of=as_of, rate_limits=rules, retry_after_seconds=2)
    with SimulatorServer(settings) as server:
        uid = server.state.fleet.clusters[0].uid
        headers = {"ApiKey": server.api_key}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
            statuses = [http.get(f"/v1/spectroclusters/{uid}/rate").status_code for _ in range(2)]
            limited = http.post("/v1/spectroclusters/aws/rate", json={})

    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited.json()["code"] == "TooManyRequests"
    assert limited.headers["Retry-After"] == "2"
