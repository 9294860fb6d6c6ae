"""The component events routes over real HTTP: auth, pagination, order, filters, limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from costwarden.simulator.anomalies import PLANTED_ANOMALIES, SPOT_CLUSTER
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import RateLimitRule, SimulatorSettings

ALL_EVENTS = "/v1/events/components"


def _cluster_path(uid: str) -> str:
    return f"/v1/events/components/spectrocluster/{uid}"


def _read_all(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    for _ in range(200):
        query = dict(params)
        if token:
            query["continue"] = token
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 50
        items.extend(page["items"])
        token = page["listmeta"]["continue"]
        if not token:
            return items
    raise AssertionError("pagination did not end")


def _created(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "headers", [{}, {"ApiKey": "wrong-key"}], ids=["missing key", "wrong key"]
)
def test_events_without_valid_key_get_401(sim: SimulatorServer, headers: dict[str, str]) -> None:
    uid = sim.state.fleet.clusters[0].uid
    for path in (ALL_EVENTS, _cluster_path(uid)):
        response = httpx.get(sim.url + path, headers=headers)

        assert response.status_code == 401
        assert response.json()["code"] == "Unauthorized"


def test_pages_cover_every_event_once(client: httpx.Client, sim: SimulatorServer) -> None:
    fleet = sim.state.fleet

    items = _read_all(client, ALL_EVENTS, limit=500)

    assert len(items) == len(fleet.events) > 50
    assert {item["metadata"]["uid"] for item in items} == {event.uid for event in fleet.events}
    first = client.get(ALL_EVENTS).json()["listmeta"]
    assert first["count"] == len(fleet.events)
    assert first["limit"] == 50
    assert first["offset"] == 50


def test_cluster_events_match_the_fleet(client: httpx.Client, sim: SimulatorServer) -> None:
    fleet = sim.state.fleet
    cluster = fleet.cluster_named(SPOT_CLUSTER)
    expected = [event for event in fleet.events if event.cluster_uid == cluster.uid]

    items = _read_all(client, _cluster_path(cluster.uid), orderBy="metadata.creationTimestamp=1")

    assert [item["metadata"]["uid"] for item in items] == [event.uid for event in expected]
    fallback = next(item for item in items if item["reason"] == "SpotCapacityFallback")
    assert fallback["relatedObject"] == {
        "kind": "spectrocluster",
        "name": cluster.name,
        "uid": cluster.uid,
    }
    assert fallback["involvedObject"]["kind"] == "MachinePool"
    assert fallback["involvedObject"]["name"] == "batch-workers"
    assert fallback["severity"] == "Warning"
    assert fallback["source"]["component"] == "cluster-autoscaler"
    anomaly = PLANTED_ANOMALIES["batch-spot-fallback"]
    assert _created(fallback).date() == anomaly.dates(sim.state.fleet.as_of)[0]


def test_default_order_is_newest_first(client: httpx.Client, as_of: datetime) -> None:
    items = client.get(ALL_EVENTS).json()["items"]
    times = [_created(item) for item in items]

    assert times == sorted(times, reverse=True)
    assert times[0] <= as_of
    assert times[0].tzinfo == UTC


def test_offset_and_continue_agree(client: httpx.Client) -> None:
    by_token = client.get(ALL_EVENTS, params={"limit": 10}).json()
    token = by_token["listmeta"]["continue"]

    second = client.get(ALL_EVENTS, params={"limit": 10, "continue": token}).json()
    by_offset = client.get(ALL_EVENTS, params={"limit": 10, "offset": 10}).json()

    assert second["items"] == by_offset["items"]
    assert second["items"][0] != by_token["items"][0]


def test_filters_select_events(client: httpx.Client, sim: SimulatorServer) -> None:
    cluster = sim.state.fleet.cluster_named(SPOT_CLUSTER)
    spot = _read_all(client, ALL_EVENTS, filters="reason=SpotCapacityFallback")
    either = _read_all(
        client,
        ALL_EVENTS,
        filters=f"reason=SpotCapacityFallbackANDrelatedObject.uid={cluster.uid}"
        "ORreason=NamespaceCreatedANDinvolvedObject.name=checkout-v2",
    )

    assert [item["relatedObject"]["name"] for item in spot] == [SPOT_CLUSTER]
    assert sorted(item["reason"] for item in either) == [
        "NamespaceCreated",
        "SpotCapacityFallback",
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filters": "metadata.creationTimestamp=2026-03-01"}, "filter field"),
        ({"filters": "reason"}, "write field=value"),
        ({"orderBy": "message=1"}, "orderBy field"),
        ({"orderBy": "reason=up"}, "orderBy direction"),
        ({"continue": "not-a-token"}, "continue token"),
    ],
)
def test_invalid_queries_get_400(
    client: httpx.Client, params: dict[str, str], message: str
) -> None:
    response = client.get(ALL_EVENTS, params=params)

    assert response.status_code == 400
    assert response.json()["code"] == "BadRequest"
    assert message in response.json()["message"]


def test_unknown_objects(client: httpx.Client) -> None:
    assert client.get(_cluster_path("0" * 24)).status_code == 404
    assert client.get("/v1/events/components/edgehost/abc").status_code == 404
    wrong_kind = client.get("/v1/events/components/cluster/abc")
    assert wrong_kind.status_code == 400
    assert "spectrocluster" in wrong_kind.json()["message"]


def test_project_scope_limits_events(client: httpx.Client, sim: SimulatorServer) -> None:
    fleet = sim.state.fleet
    project = fleet.cluster_named(SPOT_CLUSTER).project

    items = _read_all(client, ALL_EVENTS, ProjectUid=project.uid)

    members = {cluster.uid for cluster in fleet.clusters if cluster.project.uid == project.uid}
    assert {item["relatedObject"]["uid"] for item in items} <= members
    assert len(items) == sum(1 for event in fleet.events if event.cluster_uid in members)


def test_events_rate_limit_returns_429(as_of: datetime) -> None:
    rule = RateLimitRule(prefix="/v1/events/components", rate_per_second=0.01, burst=3)
    settings = SimulatorSettings(
        seed=7,
        as_of=as_of,
        history_days=30,
        cluster_count=8,
        rate_limits=(rule,),
        retry_after_seconds=7,
    )
    with SimulatorServer(settings) as server:
        headers = {"ApiKey": server.api_key}
        uid = server.state.fleet.clusters[0].uid
        paths = [ALL_EVENTS, _cluster_path(uid), ALL_EVENTS, _cluster_path(uid)]
        responses = [httpx.get(server.url + path, headers=headers) for path in paths]

    assert [response.status_code for response in responses] == [200, 200, 200, 429]
    assert responses[-1].headers["Retry-After"] == "7"
    assert responses[-1].json()["code"] == "TooManyRequests"
    assert "/v1/events/components" in responses[-1].json()["message"]


def test_injected_faults_reach_event_routes(as_of: datetime) -> None:
    settings = SimulatorSettings(
        seed=7, as_of=as_of, history_days=30, cluster_count=8, fault_rate=1.0, fault_statuses=(500,)
    )
    with SimulatorServer(settings) as server:
        response = httpx.get(server.url + ALL_EVENTS, headers={"ApiKey": server.api_key})

    assert response.status_code == 500
    assert response.json()["code"] == "InternalError"
