"""Helpers of the Palette and Kubernetes action tests: settings that reach the simulator, and
functions that pick pools and build requests, decisions and approvals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fakes.kubernetes import FakeKubernetes

from costwarden.config import Settings
from costwarden.domain.governance import ActionRequest, ActionScope, ApprovalVote, PolicyDecision
from costwarden.simulator.model import Cluster, MachinePool
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import SimulatorSettings

AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 15, 13, 0, tzinfo=UTC)


class SleepRecorder:
    """Stands in for ``time.sleep``: records each requested wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def simulator_settings(kube: FakeKubernetes, **overrides: Any) -> SimulatorSettings:
    options: dict[str, Any] = {
        "seed": 7,
        "as_of": AS_OF,
        "rate_limit_enabled": False,
        "kubernetes_api_url": kube.url,
        "kubernetes_token": kube.token,
    }
    options.update(overrides)
    return SimulatorSettings(**options)


def action_settings(sim: SimulatorServer, tmp_path: Path, **overrides: Any) -> Settings:
    palette = {
        "url": sim.url,
        "api_key": sim.api_key,
        "max_retries": 2,
        "backoff_base_seconds": 0,
        "backoff_max_seconds": 0,
    }
    palette.update(overrides.pop("palette", {}))
    overrides.setdefault("policy", {"mode": "auto"})
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'actions.db'}",
        palette=palette,
        **overrides,
    )


def pick_pool(
    sim: SimulatorServer, *, provider: str = "aws", autoscaling: bool = False
) -> tuple[Cluster, MachinePool]:
    """Return a worker pool of a cluster of ``provider``, with or without autoscaling limits."""
    for cluster in sim.state.fleet.clusters:
        if cluster.provider != provider:
            continue
        for pool in cluster.pools:
            scales = pool.min_size != pool.max_size
            if not pool.is_control_plane and scales == autoscaling and pool.size >= 1:
                return cluster, pool
    raise LookupError(f"no {provider} worker pool with autoscaling={autoscaling} in the fleet")


def current_pool(sim: SimulatorServer, cluster_uid: str, pool_name: str) -> MachinePool:
    cluster = sim.state.fleet.cluster(cluster_uid)
    assert cluster is not None
    return next(pool for pool in cluster.pools if pool.name == pool_name)


def pool_request(
    cluster: Cluster,
    pool: MachinePool,
    action: str,
    params: dict[str, Any],
    expected: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
) -> ActionRequest:
    scope = ActionScope(
        kind="machine_pool",
        cluster_uid=cluster.uid,
        cluster=cluster.name,
        name=pool.name,
        project=cluster.project.name,
        cloud=cluster.cloud_type,
        labels=dict(cluster.labels) if labels is None else labels,
    )
    return ActionRequest(
        action=action,
        scope=scope,
        params=params,
        subject_kind="recommendation",
        subject_id=f"rec-{cluster.name}-{pool.name}",
        expected=expected,
    )


def decision_for(
    request: ActionRequest, *, mode: str = "approve", production: bool = False, approvals: int = 1
) -> PolicyDecision:
    return PolicyDecision(
        action=request.action,
        mode=mode,  # type: ignore[arg-type]
        policy="test-policy",
        production=production,
        required_approvals=approvals,
        digest=request.digest,
    )


def approval(request: ActionRequest, actor: str = "alice@example.com") -> ApprovalVote:
    return ApprovalVote(actor=actor, vote="approve", digest=request.digest, decided_at=NOW)


def writes(sim: SimulatorServer, method: str | None = None) -> list[tuple[str, str, int]]:
    return [entry for entry in sim.state.writes if method is None or entry[0] == method]
