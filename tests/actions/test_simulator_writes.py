"""The simulator's write routes over real HTTP: pool updates, cluster metadata, kubeconfig."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from action_helpers import pick_pool, simulator_settings
from fakes.kubernetes import FakeKubernetes

from costwarden.simulator.model import Cluster, MachinePool
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import RateLimitRule


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"ApiKey": sim.api_key}, timeout=10) as http:
        yield http


def pool_path(cluster: Cluster, pool_name: str) -> str:
    return (
        f"/v1/cloudconfigs/{cluster.cloud_type}/{cluster.cloud_config_uid}/machinePools/{pool_name}"
    )


def pool_body(pool: MachinePool, **changes: Any) -> dict[str, Any]:
    pool_config = {
        "name": pool.name,
        "labels": ["worker"],
        "size": pool.size,
        "minSize": pool.min_size,
        "maxSize": pool.max_size,
        "isControlPlane": pool.is_control_plane,
    }
    cloud_config = {"instanceType": pool.instance_type, "capacityType": pool.capacity_type}
    for key, value in changes.items():
        (cloud_config if key in ("instanceType", "capacityType") else pool_config)[key] = value
    return {"cloudConfig": cloud_config, "poolConfig": pool_config}


def read_pool(client: httpx.Client, cluster: Cluster, name: str) -> dict[str, Any]:
    config = client.get(f"/v1/cloudconfigs/{cluster.cloud_type}/{cluster.cloud_config_uid}")
    assert config.status_code == 200
    return next(p for p in config.json()["spec"]["machinePoolConfig"] if p["name"] == name)


def test_pool_put_changes_later_reads(sim: SimulatorServer, client: httpx.Client) -> None:
    cluster, pool = pick_pool(sim, provider="aws", autoscaling=True)
    body = pool_body(pool, size=pool.size + 1, maxSize=pool.max_size + 2, capacityType="spot")

    response = client.put(pool_path(cluster, pool.name), json=body)

    assert response.status_code == 204
    assert response.content == b""
    read = read_pool(client, cluster, pool.name)
    assert read["size"] == pool.size + 1
    assert read["maxSize"] == pool.max_size + 2
    assert read["capacityType"] == "spot"
    summary = client.get(f"/v1/spectroclusters/{cluster.uid}").json()
    assert summary["metadata"]["lastModifiedTimestamp"] == "2026-03-15T12:00:00.000Z"
    assert sim.state.writes == [("PUT", pool_path(cluster, pool.name), 204)]


def test_pool_put_new_instance_type_is_priced(sim: SimulatorServer, client: httpx.Client) -> None:
    cluster, pool = pick_pool(sim, provider="aws")
    new_type = "m5.large" if pool.instance_type != "m5.large" else "m5.xlarge"

    response = client.put(
        pool_path(cluster, pool.name), json=pool_body(pool, instanceType=new_type)
    )

    assert response.status_code == 204
    read = read_pool(client, cluster, pool.name)
    assert read["instanceType"] == new_type
    assert read["instanceConfig"]["numCPUs"] == (2 if new_type == "m5.large" else 4)


@pytest.mark.parametrize(
    ("changes", "status", "fragment"),
    [
        ({"size": 99}, 422, "must lie between minSize"),
        ({"size": -1}, 422, "must be >= 0"),
        ({"minSize": 5, "maxSize": 2}, 422, "0 <= minSize <= maxSize"),
        ({"name": "other-pool"}, 400, "does not match the machine pool"),
        ({"instanceType": "z9.mega"}, 422, "is not offered"),
        ({"capacityType": "host-resource-group"}, 422, "capacityType"),
        ({"isControlPlane": True}, 422, "isControlPlane"),
    ],
)
def test_pool_put_invalid_body(
    sim: SimulatorServer,
    client: httpx.Client,
    changes: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    cluster, pool = pick_pool(sim, provider="aws", autoscaling=True)

    response = client.put(pool_path(cluster, pool.name), json=pool_body(pool, **changes))

    assert response.status_code == status
    assert fragment in response.json()["message"]
    assert read_pool(client, cluster, pool.name)["size"] == pool.size


def test_pool_put_malformed_bodies(sim: SimulatorServer, client: httpx.Client) -> None:
    cluster, pool = pick_pool(sim, provider="aws")
    path = pool_path(cluster, pool.name)

    not_json = client.put(path, content=b"{", headers={"Content-Type": "application/json"})
    no_pool = client.put(path, json={"cloudConfig": {"instanceType": pool.instance_type}})
    no_cloud = client.put(path, json={"poolConfig": {"name": pool.name, "labels": [], "size": 1}})
    no_type = client.put(
        path, json={"cloudConfig": {}, "poolConfig": pool_body(pool)["poolConfig"]}
    )

    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["message"]
    assert no_pool.status_code == 400
    assert "poolConfig is required" in no_pool.json()["message"]
    assert no_cloud.status_code == 400
    assert "cloudConfig" in no_cloud.json()["message"]
    assert no_type.status_code == 400
    assert "instanceType is required" in no_type.json()["message"]


def test_pool_put_unknown_targets(sim: SimulatorServer, client: httpx.Client) -> None:
    cluster, pool = pick_pool(sim, provider="aws")
    body = pool_body(pool)
    config = cluster.cloud_config_uid
    cloud = cluster.cloud_type

    unknown_config = client.put(
        f"/v1/cloudconfigs/{cloud}/{'0' * 24}/machinePools/{pool.name}", json=body
    )
    unknown_pool = client.put(f"/v1/cloudconfigs/{cloud}/{config}/machinePools/nope", json=body)
    wrong_cloud = client.put(f"/v1/cloudconfigs/gcp/{config}/machinePools/{pool.name}", json=body)
    unknown_cloud = client.put(f"/v1/cloudconfigs/vsphere/{config}/machinePools/x", json=body)

    for response in (unknown_config, unknown_pool, wrong_cloud, unknown_cloud):
        assert response.status_code == 404
        assert response.json()["code"] == "ResourceNotFound"
    assert "its pools are" in unknown_pool.json()["message"]


def test_writes_need_api_key(sim: SimulatorServer) -> None:
    cluster, pool = pick_pool(sim, provider="aws")
    with httpx.Client(base_url=sim.url, headers={"ApiKey": "wrong"}) as http:
        put = http.put(pool_path(cluster, pool.name), json=pool_body(pool, size=pool.size))
        patch = http.patch(
            f"/v1/spectroclusters/{cluster.uid}/metadata", json={"metadata": {"labels": {}}}
        )

    assert put.status_code == 401
    assert patch.status_code == 401
    assert sim.state.writes == []


def test_metadata_patch_sets_labels(sim: SimulatorServer, client: httpx.Client) -> None:
    cluster = sim.state.fleet.clusters[0]
    labels = {**cluster.labels, "costwarden.io/owner": "finops", "idle": "spectro__tag"}

    response = client.patch(
        f"/v1/spectroclusters/{cluster.uid}/metadata",
        json={"metadata": {"labels": labels, "annotations": {"note": "resized"}}},
    )

    assert response.status_code == 204
    metadata = client.get(f"/v1/spectroclusters/{cluster.uid}").json()["metadata"]
    assert metadata["labels"] == labels
    assert metadata["annotations"] == {"note": "resized"}
    search = client.post("/v1/dashboard/spectroclusters/search", json={}).json()["items"]
    summary = next(item for item in search if item["metadata"]["uid"] == cluster.uid)
    assert summary["metadata"]["labels"] == labels


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "metadata"),
        ({"metadata": {"labels": {"bad key!": "x"}}}, "not a valid label key"),
        ({"metadata": {"labels": {"env": "has space"}}}, "not a valid label value"),
        ({"metadata": {"name": "renamed"}}, "cannot be changed"),
        ({"metadata": {"labels": {"env": 5}}}, "labels.env"),
    ],
)
def test_metadata_patch_rejects_invalid(
    sim: SimulatorServer,
    client: httpx.Client,
    body: dict[str, Any],
    fragment: str,
) -> None:
    cluster = sim.state.fleet.clusters[0]

    response = client.patch(f"/v1/spectroclusters/{cluster.uid}/metadata", json=body)

    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert sim.state.fleet.cluster(cluster.uid).labels == cluster.labels  # type: ignore[union-attr]


def test_metadata_patch_unknown_cluster(client: httpx.Client) -> None:
    response = client.patch(f"/v1/spectroclusters/{'f' * 24}/metadata", json={"metadata": {}})

    assert response.status_code == 404


def test_kubeconfig_points_at_configured_server(
    sim: SimulatorServer,
    client: httpx.Client,
    kube: FakeKubernetes,
) -> None:
    cluster = sim.state.fleet.clusters[0]

    response = client.get(f"/v1/spectroclusters/{cluster.uid}/assets/kubeconfig")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    config = yaml.safe_load(response.text)
    assert config["clusters"][0]["cluster"]["server"] == kube.url
    assert config["users"][0]["user"]["token"] == kube.token
    assert config["current-context"] == config["contexts"][0]["name"]


def test_kubeconfig_without_server_is_404(kube: FakeKubernetes) -> None:
    settings = simulator_settings(kube, kubernetes_api_url=None)
    with SimulatorServer(settings) as server, httpx.Client(base_url=server.url) as http:
        uid = server.state.fleet.clusters[0].uid
        response = http.get(
            f"/v1/spectroclusters/{uid}/assets/kubeconfig", headers={"ApiKey": server.api_key}
        )

    assert response.status_code == 404
    assert "kubernetes_api_url" in response.json()["message"]


def test_writes_are_rate_limited(kube: FakeKubernetes) -> None:
    rule = RateLimitRule(prefix="/v1/cloudconfigs", rate_per_second=0.001, burst=1)
    settings = simulator_settings(
        kube, rate_limit_enabled=True, rate_limits=(rule,), retry_after_seconds=3
    )
    with SimulatorServer(settings) as server:
        cluster, pool = pick_pool(server, provider="aws")
        path = pool_path(cluster, pool.name)
        with httpx.Client(base_url=server.url, headers={"ApiKey": server.api_key}) as http:
            first = http.put(path, json=pool_body(pool, size=pool.size))
            second = http.put(path, json=pool_body(pool, size=pool.size))

    assert first.status_code == 204
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "3"
