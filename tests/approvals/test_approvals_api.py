"""The approvals API over real HTTP on 127.0.0.1: list, read, approve and reject, with the
Palette simulator receiving the approved change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import httpx
from approval_helpers import (
    approval_settings,
    audit_events,
    find_pool,
    open_request,
    pool_recommendation,
    pool_size,
    puts,
    refusal_count,
    request_status,
    resize_directly,
    running_service,
    seed_cluster,
    write_policy,
)
from sqlalchemy import select

from costwarden.approvals import STATUSES, govern_recommendations
from costwarden.config import Settings
from costwarden.service.api.approvals import ApprovalStatus
from costwarden.simulator import SimulatorServer
from costwarden.store import Store
from costwarden.store.tables import ApprovalRequestRecord

CLUSTER = "ml-training-eks"
POOL = "gpu-training"
OTHER_POOL = "worker-pool"
KEYS = {
    "alice": "alice-admin-key-51c0",
    "bob": "bob-admin-key-7d22",
    "carol": "carol-admin-key-0be9",
    "viewer": "viewer-read-key-4a18",
}
API_KEYS = [
    {"name": name, "key": key, "role": "read" if name == "viewer" else "admin"}
    for name, key in KEYS.items()
]
DEV = {"env": "dev"}
PRODUCTION = {"env": "production"}


def make_settings(database_url: str, sim: SimulatorServer, tmp_path: Path, **overrides: Any
                  ) -> Settings:
    policy = write_policy(tmp_path / "policy.yaml", approvers=overrides.pop("approvers", ()))
    service = {"api_keys": API_KEYS}
    return approval_settings(database_url, sim, policy, service=service, **overrides)


def client(url: str, name: str | None) -> httpx.Client:
    headers = {"X-API-Key": KEYS[name]} if name else {}
    return httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30)


def approve(url: str, name: str, request_id: str, **body: Any) -> httpx.Response:
    with client(url, name) as http:
        return http.post(f"/approvals/{request_id}/approve", json=body or None)


def reject(url: str, name: str, request_id: str, **body: Any) -> httpx.Response:
    with client(url, name) as http:
        return http.post(f"/approvals/{request_id}/reject", json=body or None)


def test_statuses_match_model() -> None:
    assert set(get_args(ApprovalStatus)) == set(STATUSES)


def test_list_filters_and_detail(
    store: Store, database_url: str, sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = make_settings(database_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    gpu = pool_recommendation(sim, CLUSTER, POOL, 4)
    worker = pool_recommendation(sim, CLUSTER, OTHER_POOL, 2)
    report = govern_recommendations(store, settings, [gpu, worker], run_id="run-test",
                                    tenant=settings.service.tenant, now=datetime.now(UTC))
    assert report.opened == 2
    with store.transaction() as session:
        ids = {row.subject_id: row.id for row in session.scalars(select(ApprovalRequestRecord))}
    gpu_id, worker_id = ids[gpu["id"]], ids[worker["id"]]

    with running_service(settings, store) as url, client(url, "viewer") as http:
        everything = http.get("/approvals")
        first_page = http.get("/approvals", params={"limit": 1})
        second_page = http.get("/approvals", params={"limit": 1, "offset": 1})
        pending = http.get("/approvals", params={"status": "pending"})
        executed = http.get("/approvals", params={"status": "executed"})
        by_subject = http.get("/approvals", params={"subject": gpu["id"]})
        by_kind_subject = http.get("/approvals", params={"subject": f"recommendation:{gpu['id']}"})
        by_action = http.get("/approvals", params={"action": "palette.resize_pool"})
        other_action = http.get("/approvals", params={"action": "palette.tag_cluster"})
        bad_status = http.get("/approvals", params={"status": "done"})
        detail = http.get(f"/approvals/{gpu_id[:12]}")
        missing = http.get("/approvals/ffffffff-no-such-request")
        anonymous = httpx.get(f"{url}/api/v1/approvals")

    assert everything.status_code == 200
    assert everything.json()["total"] == 2
    assert {item["id"] for item in everything.json()["items"]} == {gpu_id, worker_id}
    assert first_page.json()["total"] == 2
    assert len(first_page.json()["items"]) == 1
    assert first_page.json()["items"][0]["id"] != second_page.json()["items"][0]["id"]
    assert pending.json()["total"] == 2
    assert executed.json()["total"] == 0
    assert [item["id"] for item in by_subject.json()["items"]] == [gpu_id]
    assert [item["id"] for item in by_kind_subject.json()["items"]] == [gpu_id]
    assert by_action.json()["total"] == 2
    assert other_action.json()["total"] == 0
    assert bad_status.status_code == 422
    assert bad_status.json()["error"]["field"] == "query.status"

    assert detail.status_code == 200
    body = detail.json()
    assert body["id"] == gpu_id
    assert body["status"] == "pending"
    assert body["params"] == {"size": 4}
    assert body["evidence"]["expected"]["size"] == find_pool(sim, CLUSTER, POOL).size
    assert body["evidence"]["estimated_savings_per_month"] is not None
    assert body["decisions"] == []
    assert body["runs"] == []
    [entry] = body["audit_entries"]
    assert entry["kind"] == "approval"
    assert "approval requested" in entry["summary"]
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert anonymous.status_code == 401


def test_approve_executes_once(store: Store, database_url: str, sim: SimulatorServer,
                               tmp_path: Path) -> None:
    settings = make_settings(database_url, sim, tmp_path)
    seed_cluster(store, sim, CLUSTER, DEV)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))

    with running_service(settings, store) as url:
        forbidden = approve(url, "viewer", request_id)
        first = approve(url, "alice", request_id, reason="the GPU pool idles since March")
        writes_after_first = list(sim.state.writes)
        repeat = approve(url, "alice", request_id)
        other = approve(url, "bob", request_id)
        late_reject = reject(url, "bob", request_id)

    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["outcome"] == "executed"
    assert result["request"]["status"] == "executed"
    [decision] = result["request"]["decisions"]
    assert decision["actor"] == "alice"
    assert decision["channel"] == "api"
    assert decision["detail"]["reason"] == "the GPU pool idles since March"
    [run] = result["request"]["runs"]
    assert run["id"] == result["run_id"]
    assert run["status"] == "succeeded"
    kinds = [entry["kind"] for entry in result["request"]["audit_entries"]]
    assert kinds.count("approval") == 2
    assert "action" in kinds
    assert pool_size(sim, CLUSTER, POOL) == 4
    assert len(puts(sim)) == 1

    for response in (repeat, other, late_reject):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "already_executed"
        assert response.json()["request"]["status"] == "executed"
    assert "already executed" in other.json()["error"]["message"]
    assert sim.state.writes == writes_after_first


def test_two_approvers_on_production(store: Store, database_url: str, sim: SimulatorServer,
                                     tmp_path: Path) -> None:
    settings = make_settings(
        database_url, sim, tmp_path, approvers=["sre"],
        policy={"production_min_approvals": 2}, approvals={"groups": {"sre": ["alice", "bob"]}},
    )
    seed_cluster(store, sim, CLUSTER, PRODUCTION)
    original = pool_size(sim, CLUSTER, POOL)
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))

    with running_service(settings, store) as url:
        first = approve(url, "alice", request_id)
        again = approve(url, "alice", request_id)
        outsider = approve(url, "carol", request_id)
        assert puts(sim) == []
        second = approve(url, "bob", request_id)

    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "recorded"
    assert first.json()["request"]["production"] is True
    assert first.json()["request"]["required_approvals"] == 2
    assert "1 of 2" in first.json()["message"]
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_decided"
    assert again.json()["decision"]["actor"] == "alice"
    assert again.json()["decision"]["decision"] == "approve"
    assert outsider.status_code == 403
    assert outsider.json()["error"]["code"] == "approval_refused"
    assert "not a member" in outsider.json()["error"]["message"]
    assert second.status_code == 200, second.text
    assert second.json()["outcome"] == "executed"
    actors = [item["actor"] for item in second.json()["request"]["decisions"]]
    assert actors == ["alice", "bob"]
    assert original != 4
    assert pool_size(sim, CLUSTER, POOL) == 4
    assert len(puts(sim)) == 1
    assert refusal_count(store) == 1


def test_reject_closes_request(sqlite_url: str, sim: SimulatorServer, tmp_path: Path) -> None:
    settings = make_settings(sqlite_url, sim, tmp_path)
    store = Store.open(sqlite_url)
    try:
        seed_cluster(store, sim, CLUSTER, DEV)
        request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
        with running_service(settings, store) as url:
            rejected = reject(url, "alice", request_id, reason="training starts Monday")
            later = approve(url, "bob", request_id)
        events = audit_events(store, request_id)
    finally:
        store.close()

    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["outcome"] == "rejected"
    assert rejected.json()["request"]["status"] == "rejected"
    [decision] = rejected.json()["request"]["decisions"]
    assert decision["detail"]["reason"] == "training starts Monday"
    assert later.status_code == 409
    assert later.json()["error"]["code"] == "request_closed"
    assert "already rejected" in later.json()["error"]["message"]
    assert events == ["requested", "reject"]
    assert sim.state.writes == []


def test_stale_pool_answers_409(sqlite_url: str, sim: SimulatorServer, tmp_path: Path) -> None:
    settings = make_settings(sqlite_url, sim, tmp_path)
    store = Store.open(sqlite_url)
    try:
        seed_cluster(store, sim, CLUSTER, DEV)
        request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
        resize_directly(sim, CLUSTER, POOL, 20)
        with running_service(settings, store) as url:
            response = approve(url, "alice", request_id)
        status = request_status(store, request_id)
    finally:
        store.close()

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "stale_state"
    assert "decision is recorded" in response.json()["error"]["message"]
    assert response.json()["request"]["status"] == "failed"
    assert status == "failed"
    assert pool_size(sim, CLUSTER, POOL) == 20
    assert len(puts(sim)) == 1


def test_stricter_settings_answer_409(sqlite_url: str, sim: SimulatorServer, tmp_path: Path
                                      ) -> None:
    """A request opened when production needed one approval does not run after the setting
    rose to two: the decision is made again under the current settings, and the request is
    superseded."""
    opened_under = make_settings(sqlite_url, sim, tmp_path)
    served_with = make_settings(sqlite_url, sim, tmp_path, policy={"production_min_approvals": 2})
    store = Store.open(sqlite_url)
    try:
        seed_cluster(store, sim, CLUSTER, PRODUCTION)
        request_id, _ = open_request(store, opened_under,
                                     pool_recommendation(sim, CLUSTER, POOL, 4))
        with running_service(served_with, store) as url:
            response = approve(url, "alice", request_id)
    finally:
        store.close()

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "request_superseded"
    assert "now require 2 approval(s), not 1" in response.json()["error"]["message"]
    assert response.json()["request"]["status"] == "superseded"
    assert sim.state.writes == []


def test_expired_request_answers_409(sqlite_url: str, sim: SimulatorServer, tmp_path: Path
                                     ) -> None:
    settings = make_settings(sqlite_url, sim, tmp_path)
    store = Store.open(sqlite_url)
    try:
        seed_cluster(store, sim, CLUSTER, DEV)
        long_ago = datetime.now(UTC) - timedelta(hours=settings.approvals.ttl_hours + 1)
        request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4),
                                     now=long_ago)
        with running_service(settings, store) as url:
            response = approve(url, "alice", request_id)
        status = request_status(store, request_id)
    finally:
        store.close()

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "request_closed"
    assert "expired" in response.json()["error"]["message"]
    assert status == "expired"
    assert sim.state.writes == []


def test_decision_body_is_checked(sqlite_url: str, sim: SimulatorServer, tmp_path: Path) -> None:
    settings = make_settings(sqlite_url, sim, tmp_path)
    store = Store.open(sqlite_url)
    try:
        seed_cluster(store, sim, CLUSTER, DEV)
        request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
        with running_service(settings, store) as url:
            unknown = approve(url, "alice", request_id, why="typo of reason")
            too_long = reject(url, "alice", request_id, reason="x" * 2001)
            missing = approve(url, "alice", "ffffffff-no-such-request")
        status = request_status(store, request_id)
    finally:
        store.close()

    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "why"
    assert too_long.status_code == 422
    assert too_long.json()["error"]["field"] == "reason"
    assert missing.status_code == 404
    assert status == "pending"
    assert sim.state.writes == []

