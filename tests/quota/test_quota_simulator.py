"""The simulator's usage and quota routes over real HTTP: auth, shapes per the spec, values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from quota_helpers import AS_OF

from costwarden.simulator.fleet import build_fleet
from costwarden.simulator.generator import GPU_POOL_MAX_SIZE
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.usage import PLANTED_QUOTA_NAMESPACE, fleet_usage

CONSUMPTION = "/v1/dashboard/spectroclusters/resources/consumption"
WORKSPACES = "/v1/dashboard/workspaces"
WINDOW = {"startTime": "2026-11-10T00:00:00Z", "endTime": "2026-11-15T00:00:00Z"}


def _cluster_uid(client: httpx.Client, name: str) -> str:
    items = client.post("/v1/dashboard/spectroclusters/search", json={}).json()["items"]
    return next(item["metadata"]["uid"] for item in items if item["metadata"]["name"] == name)


def _consumption(client: httpx.Client, group_by: str, **filters: Any) -> dict[str, Any]:
    body = {"filter": {**WINDOW, **filters}, "options": {"groupBy": group_by, "period": 240}}
    response = client.post(CONSUMPTION, json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", CONSUMPTION),
        ("POST", "/v1/dashboard/spectroclusters/some-uid/resources/consumption"),
        ("GET", "/v1/spectroclusters/some-uid/config/namespaces"),
        ("GET", WORKSPACES),
    ],
)
def test_quota_routes_need_api_key(sim: SimulatorServer, method: str, path: str) -> None:
    missing = httpx.request(method, sim.url + path, json={})
    wrong = httpx.request(method, sim.url + path, json={}, headers={"ApiKey": "wrong"})

    assert missing.status_code == 401
    assert missing.json()["code"] == "Unauthorized"
    assert wrong.status_code == 401
    assert "invalid API key" in wrong.json()["message"]


@pytest.mark.parametrize("group_by", ["namespace", "cluster", "workspace", "project", "tenant"])
def test_consumption_matches_spec(
    client: httpx.Client, palette_validator: Callable[[str], Any], group_by: str
) -> None:
    body = _consumption(client, group_by)

    errors = list(palette_validator("v1ResourcesConsumption").iter_errors(body))
    assert errors == []
    assert body["cpuUnit"] == "cores"
    assert body["memoryUnit"] == "MiB"
    assert body["resources"]
    kinds = {series["entity"]["kind"] for series in body["resources"]}
    expected = {"namespace": "namespace", "cluster": "spectrocluster"}.get(group_by, group_by)
    assert kinds == {expected}


def test_namespace_config_and_workspaces_match_spec(
    client: httpx.Client, palette_validator: Callable[[str], Any]
) -> None:
    uid = _cluster_uid(client, "payments-prod")

    config = client.get(f"/v1/spectroclusters/{uid}/config/namespaces")
    workspaces = client.get(WORKSPACES)

    assert config.status_code == 200
    assert list(palette_validator("v1ClusterNamespaceResources").iter_errors(config.json())) == []
    assert workspaces.status_code == 200
    assert list(palette_validator("v1DashboardWorkspaces").iter_errors(workspaces.json())) == []


def test_namespace_points_average_buckets_of_hourly_usage(client: httpx.Client) -> None:
    uid = _cluster_uid(client, "payments-prod")
    body = _consumption(client, "namespace", clusters=[uid], namespaces=["ledger"])

    [series] = body["resources"]
    assert series["entity"]["name"] == "ledger"
    assert series["associatedResources"] == [
        {"kind": "spectrocluster", "name": "payments-prod", "uid": uid}
    ]
    points = series["data"]
    assert len(points) == 5 * 6
    assert [p["timestamp"] for p in points[:2]] == [1794268800, 1794268800 + 4 * 3600]
    assert all(p["allotted"]["memory"] > p["usage"]["memory"] > 0 for p in points)

    fleet = build_fleet(7, AS_OF)
    usage = fleet_usage(fleet).clusters[uid]
    row = usage.namespace_index("ledger")
    first_day = (fleet.days - 1) - 5
    day_mean = np.mean([p["usage"]["memory"] for p in points[:6]]) / 1024
    assert day_mean == pytest.approx(usage.namespace_memory[row, first_day], rel=1e-4)


def test_cluster_allotted_is_worker_capacity(client: httpx.Client) -> None:
    uid = _cluster_uid(client, "ml-training-eks")
    body = _consumption(client, "cluster", clusters=[uid])
    config_uid = next(
        item["specSummary"]["cloudConfig"]["uid"]
        for item in client.post("/v1/dashboard/spectroclusters/search", json={}).json()["items"]
        if item["metadata"]["uid"] == uid
    )
    pools = client.get(f"/v1/cloudconfigs/eks/{config_uid}").json()["spec"]["machinePoolConfig"]

    fleet = build_fleet(7, AS_OF)
    cluster = fleet.cluster(uid)
    assert cluster is not None
    last_day = fleet.days - 2
    expected = sum(
        cluster.node_counts[index, last_day] * pool["instanceConfig"]["numCPUs"]
        for index, pool in enumerate(pools)
        if not pool["isControlPlane"]
    )
    [series] = body["resources"]
    assert series["data"][-1]["allotted"]["cpu"] == pytest.approx(expected, rel=1e-6)
    assert series["data"][-1]["usage"]["cpu"] < series["data"][-1]["allotted"]["cpu"]


def test_planted_quota_and_pool_are_served(client: httpx.Client) -> None:
    uid = _cluster_uid(client, "payments-prod")
    items = client.get(f"/v1/spectroclusters/{uid}/config/namespaces").json()["items"]
    quotas = {item["metadata"]["name"]: item["spec"]["resourceAllocation"] for item in items}

    ledger = quotas[PLANTED_QUOTA_NAMESPACE]
    assert ledger["cpuCores"] > 0
    assert ledger["memoryMiB"] % 1024 == 0
    assert "kube-system" not in quotas

    ml_uid = _cluster_uid(client, "ml-training-eks")
    summary = next(
        item
        for item in client.post("/v1/dashboard/spectroclusters/search", json={}).json()["items"]
        if item["metadata"]["uid"] == ml_uid
    )
    config_uid = summary["specSummary"]["cloudConfig"]["uid"]
    pools = client.get(f"/v1/cloudconfigs/eks/{config_uid}").json()["spec"]["machinePoolConfig"]
    gpu = next(pool for pool in pools if pool["name"] == "gpu-training")
    assert gpu["maxSize"] == GPU_POOL_MAX_SIZE
    assert gpu["instanceType"] == "g5.2xlarge"
    assert gpu["minSize"] < gpu["size"] < gpu["maxSize"]


def test_gpu_quota_carries_nvidia_limit(client: httpx.Client) -> None:
    uid = _cluster_uid(client, "ml-training-eks")
    items = client.get(f"/v1/spectroclusters/{uid}/config/namespaces").json()["items"]

    gpu_limits = [
        item["spec"]["resourceAllocation"]["gpuConfig"]
        for item in items
        if "gpuConfig" in item["spec"]["resourceAllocation"]
    ]
    assert all(
        config == {"limit": GPU_POOL_MAX_SIZE, "provider": "nvidia"} for config in gpu_limits
    )


def test_workspaces_follow_project_scope(client: httpx.Client) -> None:
    everything = client.get(WORKSPACES).json()["items"]
    projects = client.get("/v1/dashboard/projects/metadata").json()["items"]
    payments = next(p["metadata"]["uid"] for p in projects if p["metadata"]["name"] == "payments")

    scoped = client.get(WORKSPACES, headers={"ProjectUid": payments}).json()["items"]

    assert len(everything) == 3
    assert [item["metadata"]["name"] for item in scoped] == ["payments-workspace"]
    quota = scoped[0]["spec"]["quota"]["resourceAllocation"]
    total = scoped[0]["status"]["total"]
    assert quota["cpu"] > total["cpu"]["usage"] > 0
    assert quota["memory"] > total["memory"]["usage"] > 0
    assert PLANTED_QUOTA_NAMESPACE in scoped[0]["spec"]["namespaces"]


@pytest.mark.parametrize(
    ("options", "status", "text"),
    [
        ({"groupBy": "deployment"}, 400, "groupBy 'deployment' is not valid"),
        ({"groupBy": "namespace", "period": 30}, 400, "period 30 is not supported"),
    ],
)
def test_consumption_rejects_bad_options(
    client: httpx.Client, options: dict[str, Any], status: int, text: str
) -> None:
    response = client.post(CONSUMPTION, json={"filter": WINDOW, "options": options})

    assert response.status_code == status
    assert response.json()["code"] == "BadRequest"
    assert text in response.json()["message"]


def test_unknown_cluster_consumption_is_404(client: httpx.Client) -> None:
    response = client.post(
        "/v1/dashboard/spectroclusters/not-a-cluster/resources/consumption", json={}
    )

    assert response.status_code == 404
    assert response.json()["code"] == "ResourceNotFound"
