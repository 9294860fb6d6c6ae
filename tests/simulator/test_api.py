"""The simulator's routes over real HTTP: auth, search, scope, cost shapes and values."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from sim_helpers import daily_hourly_price

from costwarden.simulator.fleet import PLANTED
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings
from costwarden.sources.prices import PriceCatalog

SEARCH = "/v1/dashboard/spectroclusters/search"
COST = "/v1/dashboard/spectroclusters/cost"
RESOURCES_COST = "/v1/dashboard/spectroclusters/resources/cost"


def _all_clusters(client: httpx.Client, limit: int | None = None, **kwargs: Any) -> list[dict]:
    items: list[dict] = []
    token = ""
    params: dict[str, Any] = {"limit": limit} if limit else {}
    for _ in range(100):
        if token:
            params["continue"] = token
        response = client.post(SEARCH, json={"filter": {}, "sort": []}, params=params, **kwargs)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        token = page["listmeta"]["continue"]
        if not token:
            return items
    raise AssertionError("pagination did not end")


def _day(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing ApiKey header"),
        ({"ApiKey": "wrong-key"}, "invalid API key"),
        ({"Authorization": "some.jwt.token"}, "JWT authorization is not supported"),
    ],
)
def test_requests_without_valid_key_get_401(
    sim: SimulatorServer, headers: dict[str, str], message: str
) -> None:
    for method, path in [("GET", "/v1/users/info"), ("POST", SEARCH), ("POST", COST)]:
        response = httpx.request(method, sim.url + path, headers=headers, json={})

        assert response.status_code == 401
        body = response.json()
        assert body["code"] == "Unauthorized"
        assert message in body["message"]
        assert body["ref"]


def test_api_key_header_name_is_case_insensitive(sim: SimulatorServer) -> None:
    response = httpx.get(sim.url + "/v1/users/info", headers={"apikey": sim.api_key})

    assert response.status_code == 200
    assert set(response.json()) == {"orgName", "tenantUid", "userUid"}


def test_projects_metadata(client: httpx.Client) -> None:
    items = client.get("/v1/dashboard/projects/metadata").json()["items"]
    names = {item["metadata"]["name"] for item in items}

    assert {"data-science", "payments", "platform"} <= names
    filtered = client.get("/v1/dashboard/projects/metadata", params={"name": "payments"}).json()
    assert [item["metadata"]["name"] for item in filtered["items"]] == ["payments"]


def test_search_pages_cover_fleet_once(client: httpx.Client, sim: SimulatorServer) -> None:
    first = client.post(SEARCH, json={"filter": {}, "sort": []}).json()
    fleet_uids = {cluster.uid for cluster in sim.state.fleet.clusters}

    assert len(fleet_uids) > 50
    assert len(first["items"]) == 50
    token = first["listmeta"]["continue"]
    assert json.loads(base64.b64decode(token)) == {
        "offset": 50,
        "count": len(fleet_uids),
        "token": "",
    }
    assert first["listmeta"]["count"] == len(fleet_uids)

    for limit in (None, 7, 50):
        uids = [item["metadata"]["uid"] for item in _all_clusters(client, limit)]
        assert len(uids) == len(set(uids))
        assert set(uids) == fleet_uids


def test_search_limit_is_clamped_to_50(client: httpx.Client) -> None:
    page = client.post(SEARCH, params={"limit": 500}, json={}).json()

    assert page["listmeta"]["limit"] == 50
    assert len(page["items"]) == 50


def test_last_page_has_empty_continue(client: httpx.Client) -> None:
    first = client.post(SEARCH, params={"limit": 50}, json={}).json()
    second = client.post(SEARCH, params={"continue": first["listmeta"]["continue"]}, json={})

    assert second.status_code == 200
    assert second.json()["listmeta"]["continue"] == ""
    assert second.json()["listmeta"]["offset"] == first["listmeta"]["count"]


def test_invalid_continue_token_gets_400(client: httpx.Client) -> None:
    response = client.post(SEARCH, params={"continue": "not-a-token"}, json={})

    assert response.status_code == 400
    assert response.json()["code"] == "BadRequest"
    assert "continue token" in response.json()["message"]


def test_search_sdk_filter_and_cluster_name(client: httpx.Client) -> None:
    def group(*filters: dict) -> dict:
        return {"conjunction": "and", "filters": list(filters)}

    not_nested = {
        "property": "environment",
        "type": "string",
        "condition": {
            "string": {
                "operator": "eq",
                "negation": True,
                "match": {"conjunction": "or", "values": ["nested"]},
                "ignoreCase": False,
            }
        },
    }
    not_deleted = {"property": "isDeleted", "type": "bool", "condition": {"bool": {"value": False}}}
    by_name = {
        "property": "clusterName",
        "type": "string",
        "condition": {
            "string": {
                "operator": "eq",
                "negation": False,
                "match": {"conjunction": "or", "values": ["ml-training-eks"]},
                "ignoreCase": False,
            }
        },
    }
    unknown = {
        "property": "someFutureField",
        "type": "string",
        "condition": {"string": {"operator": "eq", "match": {"values": ["x"]}}},
    }

    sdk_default = {
        "filter": {"conjunction": "and", "filterGroups": [group(not_nested, not_deleted)]},
        "sort": [],
    }
    everything = client.post(SEARCH, json=sdk_default).json()
    assert everything["listmeta"]["count"] > 50

    named = {
        "filter": {
            "conjunction": "and",
            "filterGroups": [group(not_nested, not_deleted), group(by_name, unknown)],
        },
        "sort": [],
    }
    items = client.post(SEARCH, json=named).json()["items"]
    assert [item["metadata"]["name"] for item in items] == ["ml-training-eks"]


def test_search_sort_desc(client: httpx.Client) -> None:
    body = {"filter": {}, "sort": [{"field": "clusterName", "order": "desc"}]}
    names = [item["metadata"]["name"] for item in client.post(SEARCH, json=body).json()["items"]]

    assert names == sorted(names, reverse=True)
    bad = client.post(SEARCH, json={"sort": [{"field": "memoryUsage", "order": "asc"}]})
    assert bad.status_code == 400


def test_search_item_shape(client: httpx.Client) -> None:
    item = _all_clusters(client)[0]

    assert {"uid", "name", "labels", "creationTimestamp"} <= set(item["metadata"])
    assert {"env", "team"} <= set(item["metadata"]["labels"])
    spec = item["specSummary"]
    assert spec["cloudConfig"]["uid"]
    assert spec["cloudConfig"]["cloudType"] in {"aws", "eks", "azure", "aks", "gcp", "gke"}
    assert all("size" in pool for pool in spec["cloudConfig"]["machinePools"])
    assert set(spec["projectMeta"]) == {"name", "uid"}
    assert set(spec["cloudAccountMeta"]) == {"name", "uid"}
    assert {"uid", "name", "type", "version"} <= set(spec["clusterProfileTemplates"][0])
    status = item["status"]
    assert status["state"] == "Running"
    assert status["cost"]["total"] > 0
    assert status["hourlyRate"]["cloud"]["compute"] > 0
    assert status["metrics"]["cpu"]["total"] > 0


def test_project_scope_header_and_query(client: httpx.Client, sim: SimulatorServer) -> None:
    fleet = sim.state.fleet
    project = next(p for p in fleet.projects if p.name == "payments")
    expected = {c.uid for c in fleet.clusters if c.project.uid == project.uid}

    by_header = _all_clusters(client, headers={"ProjectUid": project.uid})
    assert {item["metadata"]["uid"] for item in by_header} == expected
    assert {item["specSummary"]["projectMeta"]["uid"] for item in by_header} == {project.uid}

    for name in ("projectUid", "ProjectUid"):
        page = client.post(SEARCH, params={name: project.uid}, json={}).json()
        assert {item["metadata"]["uid"] for item in page["items"]} == expected

    cost = client.post(
        COST, headers={"ProjectUid": project.uid}, json={"options": {"groupBy": "cluster"}}
    ).json()
    assert {series["entity"]["uid"] for series in cost["resources"]} == expected


def test_project_scope_hides_other_projects(client: httpx.Client, sim: SimulatorServer) -> None:
    fleet = sim.state.fleet
    payments = next(p for p in fleet.projects if p.name == "payments")
    outsider = next(c for c in fleet.clusters if c.project.uid != payments.uid)

    assert client.get(f"/v1/spectroclusters/{outsider.uid}").status_code == 200
    hidden = client.get(f"/v1/spectroclusters/{outsider.uid}", headers={"ProjectUid": payments.uid})
    assert hidden.status_code == 404
    unknown = client.post(SEARCH, headers={"ProjectUid": "0" * 24}, json={})
    assert unknown.status_code == 403
    assert unknown.json()["code"] == "Forbidden"


def test_get_cluster_and_cloud_config(client: httpx.Client, sim: SimulatorServer) -> None:
    cluster = sim.state.fleet.cluster_named("ml-training-eks")
    body = client.get(f"/v1/spectroclusters/{cluster.uid}").json()

    assert body["metadata"]["name"] == "ml-training-eks"
    assert body["spec"]["cloudType"] == "eks"
    assert body["spec"]["cloudConfigRef"]["uid"] == cluster.cloud_config_uid
    assert body["spec"]["clusterType"] == "PureManage"
    assert body["spec"]["clusterProfileTemplates"][0]["type"] == "cluster"
    assert body["status"]["state"] == "Running"

    config = client.get(f"/v1/cloudconfigs/eks/{cluster.cloud_config_uid}").json()
    pools = {pool["name"]: pool for pool in config["spec"]["machinePoolConfig"]}
    assert pools["gpu-training"]["instanceType"] == "g5.2xlarge"
    assert pools["gpu-training"]["capacityType"] == "on-demand"
    assert pools["gpu-training"]["minSize"] < pools["gpu-training"]["maxSize"]
    assert config["spec"]["clusterConfig"]["region"] == "us-east-1"


def test_unknown_cluster_gets_v1error_404(client: httpx.Client) -> None:
    response = client.get("/v1/spectroclusters/000000000000000000000000")

    assert response.status_code == 404
    assert response.json()["code"] == "ResourceNotFound"
    assert "000000000000000000000000" in response.json()["message"]
    assert client.get("/v1/cloudconfigs/aws/nope").status_code == 404
    workloads = client.post("/v1/dashboard/spectroclusters/nope/workloads/namespace", json={})
    assert workloads.status_code == 404


def test_cluster_cost_matches_palette_formula(
    client: httpx.Client, sim: SimulatorServer, as_of: datetime
) -> None:
    fleet = sim.state.fleet
    catalog = PriceCatalog.packaged()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    body = {
        "filter": {"startTime": start.isoformat(), "endTime": as_of.isoformat()},
        "options": {"groupBy": "cluster", "period": 1440},
    }
    response = client.post(COST, json=body).json()

    assert len(response["resources"]) == len(fleet.clusters)
    for series in response["resources"]:
        cluster = fleet.cluster(series["entity"]["uid"])
        assert cluster is not None
        assert series["entity"] == {
            "kind": "spectrocluster",
            "name": cluster.name,
            "uid": cluster.uid,
        }
        storage_price = float(
            catalog.storage_price_per_gib_hour(cluster.cloud_type, cluster.region)
        )
        for point in series["data"][:-1]:
            day = (datetime.fromtimestamp(point["timestamp"], UTC) - fleet.start).days
            nodes = cluster.node_counts[:, day]
            compute = sum(
                nodes[i] * daily_hourly_price(catalog, fleet, cluster, pool)[day] * 24
                for i, pool in enumerate(cluster.pools)
            )
            storage = sum(
                nodes[i] * pool.disk_gib * storage_price * 24
                for i, pool in enumerate(cluster.pools)
            )
            assert point["compute"] == pytest.approx(compute, abs=1e-5)
            assert point["storage"] == pytest.approx(storage, abs=1e-5)
            assert point["total"] == pytest.approx(compute + storage, abs=2e-5)


def test_cost_response_shape_and_partial_day(
    client: httpx.Client, sim: SimulatorServer, as_of: datetime
) -> None:
    fleet = sim.state.fleet
    cluster = fleet.cluster_named("payments-prod")
    body = {
        "filter": {"startTime": "2026-03-13T00:00:00Z", "endTime": "2026-03-16T00:00:00Z"},
        "options": {"groupBy": "cluster", "period": 1440},
    }
    response = client.post(COST, json=body).json()
    series = next(s for s in response["resources"] if s["entity"]["uid"] == cluster.uid)

    assert set(response) == {"resources", "total"}
    assert set(series) == {"entity", "data", "total"}
    assert [p["timestamp"] for p in series["data"]] == [
        _day(datetime(2026, 3, day, tzinfo=UTC)) for day in (13, 14, 15)
    ]
    full_day = float(cluster.compute[-1])
    assert series["data"][-1]["compute"] == pytest.approx(full_day / 2, abs=1e-5)
    assert series["total"]["total"] == pytest.approx(
        sum(p["total"] for p in series["data"]), abs=1e-4
    )
    grand = sum(s["total"]["total"] for s in response["resources"])
    assert response["total"]["total"] == pytest.approx(grand, abs=1e-3)


def test_hourly_period_spreads_days_evenly(client: httpx.Client, sim: SimulatorServer) -> None:
    cluster = sim.state.fleet.cluster_named("payments-prod")
    window = {"startTime": "2026-03-14T00:00:00Z", "endTime": "2026-03-15T00:00:00Z"}
    daily = client.post(
        COST, json={"filter": window, "options": {"groupBy": "cluster", "period": 1440}}
    ).json()
    hourly = client.post(
        COST, json={"filter": window, "options": {"groupBy": "cluster", "period": 60}}
    ).json()

    day_point = next(s for s in daily["resources"] if s["entity"]["uid"] == cluster.uid)["data"]
    hours = next(s for s in hourly["resources"] if s["entity"]["uid"] == cluster.uid)["data"]
    assert len(day_point) == 1
    assert len(hours) == 24
    assert sum(p["compute"] for p in hours) == pytest.approx(day_point[0]["compute"], abs=1e-4)
    assert hours[0]["compute"] == pytest.approx(hours[23]["compute"], abs=1e-6)


def test_cost_group_by_project_tenant_cloud(client: httpx.Client, sim: SimulatorServer) -> None:
    fleet = sim.state.fleet
    totals = {}
    for group_by in ("tenant", "project", "cloud", "cluster"):
        body = {"filter": {"startTime": "2026-03-01T00:00:00Z"}, "options": {"groupBy": group_by}}
        response = client.post(COST, json=body).json()
        totals[group_by] = response["total"]["total"]
        if group_by == "tenant":
            assert [s["entity"]["uid"] for s in response["resources"]] == [fleet.tenant_uid]
        if group_by == "project":
            assert {s["entity"]["kind"] for s in response["resources"]} == {"project"}

    assert totals["tenant"] == pytest.approx(totals["project"], rel=1e-9)
    assert totals["tenant"] == pytest.approx(totals["cloud"], rel=1e-9)
    assert totals["tenant"] == pytest.approx(totals["cluster"], rel=1e-9)

    aws_only = client.post(
        COST, json={"filter": {"clouds": ["eks"]}, "options": {"groupBy": "cloud"}}
    ).json()
    assert [s["entity"]["name"] for s in aws_only["resources"]] == ["eks"]


def test_cost_query_errors(client: httpx.Client) -> None:
    cases = [
        ({"options": {"period": 45}}, 400, "period 45"),
        ({"options": {"period": 1000}}, 400, "period 1000"),
        ({"options": {"groupBy": "galaxy"}}, 400, "galaxy"),
        (
            {"filter": {"startTime": "2026-03-10T00:00:00Z", "endTime": "2026-03-01T00:00:00Z"}},
            400,
            "must be before",
        ),
        ({"filter": {"startTime": "yesterday"}}, 400, "startTime"),
    ]
    for body, status, message in cases:
        response = client.post(COST, json=body)
        assert response.status_code == status, body
        assert message in response.json()["message"]

    unmodelled = client.post(RESOURCES_COST, json={"options": {"groupBy": "deployment"}})
    assert unmodelled.status_code == 501


def _namespace_costs_by_cluster(client: httpx.Client, body: dict) -> dict[str, list[dict]]:
    response = client.post(RESOURCES_COST, json=body).json()
    by_cluster: dict[str, list[dict]] = defaultdict(list)
    for series in response["resources"]:
        assert series["entity"]["kind"] == "namespace"
        (owner,) = series["associatedResources"]
        assert owner["kind"] == "spectrocluster"
        by_cluster[owner["uid"]].append(series)
    return by_cluster


def test_namespaces_sum_to_at_most_the_cluster(client: httpx.Client) -> None:
    window = {
        "startTime": "2026-02-01T00:00:00Z",
        "endTime": "2026-03-15T00:00:00Z",
        "includeControlPlaneMachines": True,
    }
    namespaces = _namespace_costs_by_cluster(
        client, {"filter": window, "options": {"groupBy": "namespace", "period": 1440}}
    )
    clusters = client.post(COST, json={"filter": window, "options": {"groupBy": "cluster"}}).json()[
        "resources"
    ]

    idle = 0.0
    for cluster in clusters:
        cluster_days = {p["timestamp"]: p["total"] for p in cluster["data"]}
        summed: dict[int, float] = defaultdict(float)
        for series in namespaces[cluster["entity"]["uid"]]:
            for point in series["data"]:
                assert point["total"] == pytest.approx(
                    point["cpu"] + point["memory"] + point["storage"], abs=1e-5
                )
                summed[point["timestamp"]] += point["total"]
        for timestamp, value in summed.items():
            assert value <= cluster_days[timestamp] + 1e-6
            idle += cluster_days[timestamp] - value
    assert idle > 0


def test_namespace_filters_and_control_plane(client: httpx.Client, sim: SimulatorServer) -> None:
    cluster = next(
        c for c in sim.state.fleet.clusters if any(pool.is_control_plane for pool in c.pools)
    )
    base = {
        "clusters": [cluster.uid],
        "namespaces": ["kube-system"],
        "startTime": "2026-03-01T00:00:00Z",
    }
    without = client.post(
        RESOURCES_COST, json={"filter": base, "options": {"groupBy": "namespace"}}
    ).json()
    with_cp = client.post(
        RESOURCES_COST,
        json={
            "filter": {**base, "includeControlPlaneMachines": True},
            "options": {"groupBy": "namespace"},
        },
    ).json()

    assert [s["entity"]["name"] for s in without["resources"]] == ["kube-system"]
    assert with_cp["total"]["total"] > without["total"]["total"]
    by_cluster = client.post(
        RESOURCES_COST,
        json={
            "filter": {"clusters": [cluster.uid], "startTime": "2026-03-01T00:00:00Z"},
            "options": {"groupBy": "cluster", "period": 1440},
        },
    ).json()
    (series,) = by_cluster["resources"]
    assert series["entity"]["uid"] == cluster.uid
    assert series["associatedResources"][0]["kind"] == "project"


def test_workload_namespaces_carry_labels(client: httpx.Client, sim: SimulatorServer) -> None:
    cluster = sim.state.fleet.cluster_named("ml-training-eks")
    path = f"/v1/dashboard/spectroclusters/{cluster.uid}/workloads/namespace"
    everything = client.post(path, json={"filter": {"namespaces": []}}).json()["namespaces"]

    assert [ns["metadata"]["namespace"] for ns in everything] == [
        ns.name for ns in cluster.namespaces
    ]
    for namespace in everything:
        assert {"team", "env", "cost-center"} <= set(namespace["metadata"]["labels"])
        assert namespace["status"]["phase"] == "Active"
    some = client.post(path, json={"filter": {"namespaces": ["training", "kube-system"]}}).json()
    assert {ns["metadata"]["namespace"] for ns in some["namespaces"]} == {"training", "kube-system"}


def test_millisecond_timestamps(as_of: datetime) -> None:
    settings = SimulatorSettings(
        seed=7, as_of=as_of, timestamp_unit="milliseconds", rate_limit_enabled=False
    )
    body = {"filter": {"startTime": "2026-03-14T00:00:00Z"}, "options": {"groupBy": "tenant"}}
    with SimulatorServer(settings) as server:
        response = httpx.post(server.url + COST, json=body, headers={"ApiKey": server.api_key})

    points = response.json()["resources"][0]["data"]
    assert points[0]["timestamp"] == _day(datetime(2026, 3, 14, tzinfo=UTC)) * 1000


def test_same_seed_same_responses_other_seed_differs(as_of: datetime) -> None:
    def snapshot(seed: int) -> tuple[list[Any], Any]:
        settings = SimulatorSettings(seed=seed, as_of=as_of, rate_limit_enabled=False)
        with (
            SimulatorServer(settings) as server,
            httpx.Client(base_url=server.url, headers={"ApiKey": server.api_key}) as http,
        ):
            clusters = _all_clusters(http)
            cost = http.post(COST, json={"options": {"groupBy": "cluster"}}).json()
        return clusters, cost

    first, second, other = snapshot(21), snapshot(21), snapshot(22)
    assert first == second
    assert first[0] != other[0]
    assert first[1]["total"] != other[1]["total"]


def test_planted_overrun_over_http(
    client: httpx.Client, sim: SimulatorServer, as_of: datetime
) -> None:
    cluster = sim.state.fleet.cluster_named("ml-training-eks")
    start = as_of - timedelta(days=45)
    body = {"filter": {"startTime": start.isoformat()}, "options": {"groupBy": "cluster"}}
    series = next(
        s
        for s in client.post(COST, json=body).json()["resources"]
        if s["entity"]["uid"] == cluster.uid
    )
    daily = np.array([point["total"] for point in series["data"]])
    full = daily[:-1]

    assert full[-7:].mean() > 1.4 * full[-37:-30].mean()
    assert 600 < full[-1] < 850
    month_start = datetime(2026, 3, 1, tzinfo=UTC)
    month_to_date = sum(
        point["total"] for point in series["data"] if point["timestamp"] >= _day(month_start)
    )
    assert 9_000 <= month_to_date <= 10_000
    remaining_days = (datetime(2026, 4, 1, tzinfo=UTC) - as_of).total_seconds() / 86_400
    budget = float(PLANTED["ml-training-eks"].monthly_budget)
    assert full[-7:].mean() * remaining_days > 1.5 * (budget - month_to_date)


def test_planted_stable_over_http(
    client: httpx.Client, sim: SimulatorServer, as_of: datetime
) -> None:
    cluster = sim.state.fleet.cluster_named("payments-prod")
    body = {
        "filter": {"startTime": (as_of - timedelta(days=60)).isoformat()},
        "options": {"groupBy": "cluster"},
    }
    series = next(
        s
        for s in client.post(COST, json=body).json()["resources"]
        if s["entity"]["uid"] == cluster.uid
    )
    full = np.array([point["total"] for point in series["data"]])[:-1]

    monthly_projection = full[-28:].mean() * 30.4
    assert 0.5 < monthly_projection / float(PLANTED["payments-prod"].monthly_budget) < 0.7
    assert full.std() / full.mean() < 0.1
