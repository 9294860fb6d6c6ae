"""Helpers of the approval tests: a Palette simulator pool turned into a recommendation, the
governance stage that opens its approval request, and the service app on 127.0.0.1.

Requests are opened by the real stage (``govern_recommendations``): it reads the stored cluster,
dry-runs the change against the simulator and stores the request, so the tests decide requests
exactly as a pass leaves them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from fakes.loopback import LoopbackServer
from sqlalchemy import select

from costwarden.approvals import GovernanceReport, govern_recommendations
from costwarden.config import Settings
from costwarden.domain import ClusterInfo, ProjectInfo
from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.service.app import create_app
from costwarden.service.state import ServiceState
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.simulator.model import MachinePool
from costwarden.store import Store, upsert_fleet
from costwarden.store.tables import ApprovalRequestRecord, AuditEntryRecord

AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
LINK_SECRET = "approval-tests-link-secret-0f3a9c1d2e"
PUBLIC_URL = "https://costwarden.example.com"
POLICY = "pools"
WAIT_SECONDS = 20.0


class IdleRunner:
    """A pass runner that starts nothing: these tests open requests without passes."""

    def request(self, trigger: str, scope: Any = None, *, key: str | None = None) -> str:
        return "run-none"


def simulator_settings() -> SimulatorSettings:
    return SimulatorSettings(seed=7, as_of=AS_OF, rate_limit_enabled=False, cluster_count=8)


def write_policy(
    path: Path, *, approvers: Sequence[str] = (), min_approvals: int = 1,
    mode: str = "approve",
) -> Path:
    """Write a policy that puts ``palette.resize_pool`` of every machine pool in ``mode``."""
    action: dict[str, Any] = {"action": "palette.resize_pool", "mode": mode,
                              "min_approvals": min_approvals}
    if approvers:
        action["approvers"] = list(approvers)
    policy = {"name": POLICY, "selector": {"kinds": ["machine_pool"]}, "actions": [action]}
    path.write_text(yaml.safe_dump({"policies": [policy]}), encoding="utf-8")
    return path


def approval_settings(
    database_url: str, sim: SimulatorServer, policy_file: Path, **overrides: Any
) -> Settings:
    """Return settings that reach the simulator and apply ``policy_file`` in approve mode.

    ``policy``, ``notify`` and ``service`` overrides are merged over the defaults here.
    """
    policy_settings = {"paths": [policy_file], "mode": "approve", **overrides.pop("policy", {})}
    notify = {"link_secret": LINK_SECRET, "public_url": PUBLIC_URL, **overrides.pop("notify", {})}
    service = {"schedule": None, "shutdown_grace_seconds": 5.0, **overrides.pop("service", {})}
    return Settings(
        database_url=database_url,
        palette={"url": sim.url, "api_key": sim.api_key, "max_retries": 1,
                 "backoff_base_seconds": 0, "backoff_max_seconds": 0},
        policy=policy_settings,
        notify=notify,
        service=service,
        **overrides,
    )


def find_pool(sim: SimulatorServer, cluster_name: str, pool_name: str) -> MachinePool:
    cluster = next(item for item in sim.state.fleet.clusters if item.name == cluster_name)
    return next(pool for pool in cluster.pools if pool.name == pool_name)


def pool_size(sim: SimulatorServer, cluster_name: str, pool_name: str) -> int:
    return find_pool(sim, cluster_name, pool_name).size


def relabel_in_palette(sim: SimulatorServer, cluster_name: str, labels: dict[str, str]) -> None:
    """Replace a cluster's Palette labels, as someone using the Palette console would."""
    cluster = next(item for item in sim.state.fleet.clusters if item.name == cluster_name)
    response = httpx.patch(
        f"{sim.url}/v1/spectroclusters/{cluster.uid}/metadata",
        json={"metadata": {"labels": labels}}, headers={"ApiKey": sim.api_key},
    )
    assert response.status_code == 204, response.text


def seed_cluster(
    store: Store, sim: SimulatorServer, cluster_name: str, labels: dict[str, str]
) -> None:
    """Give the simulator's cluster ``labels`` and store it, as an ingest would.

    The labels are set in the simulator's state directly, so ``sim.state.writes`` lists only
    the writes a test makes.
    """
    state = sim.state
    with state.write_lock:
        current = next(item for item in state.fleet.clusters if item.name == cluster_name)
        relabelled = dataclasses.replace(current, labels=dict(labels))
        state.fleet = dataclasses.replace(state.fleet, clusters=tuple(
            relabelled if item.uid == current.uid else item for item in state.fleet.clusters
        ))
    cluster = next(item for item in sim.state.fleet.clusters if item.name == cluster_name)
    project = ProjectInfo(cluster.project.uid, cluster.project.name)
    info = ClusterInfo(
        uid=cluster.uid, name=cluster.name, project_uid=project.uid, project_name=project.name,
        cloud=cluster.cloud_type, labels=labels,
    )
    with store.transaction() as session:
        upsert_fleet(session, [project], [info])


def pool_recommendation(
    sim: SimulatorServer, cluster_name: str, pool_name: str, new_size: int
) -> dict[str, Any]:
    """Return the recommendation dict of resizing a simulator pool to ``new_size`` nodes."""
    pool = find_pool(sim, cluster_name, pool_name)
    recommendation = Recommendation(
        kind="idle-pools",
        title=f"Scale pool {cluster_name}/{pool_name} from {pool.size} nodes to {new_size}",
        target=Target(cluster=cluster_name, kind="MachinePool", name=pool_name, pool=pool_name),
        before={"size": pool.size},
        after={"size": new_size},
        savings=Savings(per_day=Decimal("12.50"), currency="USD", method="test price"),
        confidence="medium",
        risk="low",
        risk_note="test pool",
        effort="low",
        reversible=True,
        resources=frozenset({f"pool:{cluster_name}/{pool_name}"}),
    )
    return recommendation.to_dict()


def open_request(
    store: Store,
    settings: Settings,
    item: dict[str, Any],
    *,
    now: datetime | None = None,
) -> tuple[str, GovernanceReport]:
    """Run the governance stage for one recommendation and return its new request id."""
    report = govern_recommendations(
        store, settings, [item], run_id="run-test", tenant=settings.service.tenant,
        now=now or datetime.now(UTC),
    )
    assert report.opened == 1, report
    with store.transaction() as session:
        record = session.scalars(
            select(ApprovalRequestRecord).where(ApprovalRequestRecord.subject_id == item["id"])
        ).one()
        return record.id, report


def stored_request(store: Store, request_id: str) -> ApprovalRequestRecord:
    """Return the stored approval request, detached from its session."""
    with store.transaction() as session:
        record = session.get(ApprovalRequestRecord, request_id)
        assert record is not None
        session.expunge(record)
        return record


def request_status(store: Store, request_id: str) -> str:
    with store.transaction() as session:
        record = session.get(ApprovalRequestRecord, request_id)
        assert record is not None
        return record.status


def audit_events(store: Store, request_id: str) -> list[str]:
    """Return the ``detail.event`` of the approval entries about ``request_id``, oldest first."""
    with store.transaction() as session:
        rows = session.scalars(
            select(AuditEntryRecord)
            .where(AuditEntryRecord.kind == "approval")
            .order_by(AuditEntryRecord.seq)
        ).all()
        return [
            str(row.detail.get("event")) for row in rows
            if row.detail.get("request_id") == request_id
        ]


def refusal_count(store: Store) -> int:
    with store.transaction() as session:
        details = session.scalars(select(AuditEntryRecord.detail)).all()
        return sum(1 for detail in details if detail.get("event") == "refused")


def resize_directly(sim: SimulatorServer, cluster_name: str, pool_name: str, size: int) -> None:
    """Change a pool behind costwarden's back, as someone using the Palette console would."""
    cluster = next(item for item in sim.state.fleet.clusters if item.name == cluster_name)
    pool = find_pool(sim, cluster_name, pool_name)
    path = (f"/v1/cloudconfigs/{cluster.cloud_type}/{cluster.cloud_config_uid}"
            f"/machinePools/{pool_name}")
    body = {
        "cloudConfig": {"instanceType": pool.instance_type, "capacityType": pool.capacity_type},
        "poolConfig": {"name": pool.name, "labels": ["worker"], "size": size,
                       "minSize": pool.min_size, "maxSize": pool.max_size,
                       "isControlPlane": pool.is_control_plane},
    }
    response = httpx.put(f"{sim.url}{path}", json=body, headers={"ApiKey": sim.api_key})
    assert response.status_code == 204, response.text


def puts(sim: SimulatorServer) -> list[tuple[str, str, int]]:
    return [entry for entry in sim.state.writes if entry[0] == "PUT"]


@contextmanager
def running_service(settings: Settings, store: Store) -> Iterator[str]:
    """Serve the service app for ``store`` on 127.0.0.1 and yield its base URL."""
    app = create_app(ServiceState(settings=settings, store=store, runner=IdleRunner()))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    server = LoopbackServer(app, "costwarden service", config=config)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def wait_for(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
