"""Pool changes on clusters that a GitOps repository defines become pull requests, not Palette
API calls: the pass proposes gitops.pull_request, and the approval commits to a branch of a
real local git repository."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from approval_helpers import (
    approval_settings,
    open_request,
    pool_recommendation,
    pool_size,
    puts,
    seed_cluster,
    stored_request,
)
from pydantic import ValidationError
from sqlalchemy import select

from costwarden.approvals import decide, govern_recommendations
from costwarden.config import Settings
from costwarden.simulator import SimulatorServer
from costwarden.store import Store
from costwarden.store.tables import ApprovalRequestRecord

GITOPS_CLUSTER = "ml-training-eks"
API_CLUSTER = "checkout-aks"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
}
PROFILE_FILE = {
    "path": "clusters/{cluster}/profile.yaml",
    "pool_key": "machinePools[name={pool}].{field}",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
        env={**os.environ, **GIT_ENV},
    )
    return result.stdout.strip()


def fleet_repository(path: Path, sim: SimulatorServer) -> Path:
    """Create a git repository whose profile lists the GitOps cluster's pools as Palette has
    them."""
    cluster = next(item for item in sim.state.fleet.clusters if item.name == GITOPS_CLUSTER)
    profile = {
        "cluster": GITOPS_CLUSTER,
        "machinePools": [{"name": pool.name, "size": pool.size} for pool in cluster.pools],
    }
    (path / "clusters" / GITOPS_CLUSTER).mkdir(parents=True)
    (path / "clusters" / GITOPS_CLUSTER / "profile.yaml").write_text(
        yaml.safe_dump(profile, sort_keys=False), encoding="utf-8"
    )
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "Add the fleet")
    return path


def gitops_settings(tmp_path: Path, sim: SimulatorServer, repo: Path) -> Settings:
    actions = [
        {"action": "palette.resize_pool", "mode": "approve"},
        {"action": "gitops.pull_request", "mode": "approve"},
    ]
    policy = {"name": "pools", "selector": {"kinds": ["machine_pool"]}, "actions": actions}
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump({"policies": [policy]}), encoding="utf-8")
    repositories = {"fleet": {"provider": "local", "repository": str(repo),
                              "clusters": ["ml-training-*"], "files": {"profile": PROFILE_FILE}}}
    return approval_settings(
        f"sqlite:///{tmp_path / 'gitops.db'}", sim, policy_file,
        actions={"gitops": {"repositories": repositories}},
    )


def test_gitops_cluster_gets_pull_request(tmp_path: Path, sim: SimulatorServer) -> None:
    repo = fleet_repository(tmp_path / "fleet", sim)
    settings = gitops_settings(tmp_path, sim, repo)
    store = Store.open(settings.database_url)
    try:
        seed_cluster(store, sim, GITOPS_CLUSTER, {"env": "dev"})
        original = pool_size(sim, GITOPS_CLUSTER, "gpu-training")
        item = pool_recommendation(sim, GITOPS_CLUSTER, "gpu-training", original - 1)

        request_id, _ = open_request(store, settings, item)
        record = stored_request(store, request_id)
        outcome = decide(store, settings, request_id=request_id, vote="approve", actor="alice",
                         channel="cli")
    finally:
        store.close()

    assert record.action == "gitops.pull_request"
    assert record.params["repository"] == "fleet"
    assert record.params["pool"] == "gpu-training"
    assert record.params["size"] == original - 1
    assert record.evidence["expected"]["size"] == original
    assert outcome.status == "executed", outcome.message
    branch = next(name for name in git(repo, "branch", "--format=%(refname:short)").split()
                  if name.startswith("costwarden/"))
    changed = yaml.safe_load(git(repo, "show", f"{branch}:clusters/{GITOPS_CLUSTER}/profile.yaml"))
    sizes = {pool["name"]: pool["size"] for pool in changed["machinePools"]}
    assert sizes["gpu-training"] == original - 1
    assert pool_size(sim, GITOPS_CLUSTER, "gpu-training") == original
    assert puts(sim) == []


def test_new_gitops_cluster_supersedes_palette_request(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    repo = fleet_repository(tmp_path / "fleet", sim)
    settings = gitops_settings(tmp_path, sim, repo)
    before_gitops = settings.model_copy(update={"actions": settings.actions.model_copy(
        update={"gitops": settings.actions.gitops.model_copy(update={"repositories": {}})}
    )})
    store = Store.open(settings.database_url)
    try:
        seed_cluster(store, sim, GITOPS_CLUSTER, {"env": "dev"})
        item = pool_recommendation(sim, GITOPS_CLUSTER, "gpu-training",
                                   pool_size(sim, GITOPS_CLUSTER, "gpu-training") - 1)
        palette_id, _ = open_request(store, before_gitops, item)

        report = govern_recommendations(store, settings, [item], run_id="run-gitops",
                                        tenant=settings.service.tenant, now=datetime.now(UTC))
        palette = stored_request(store, palette_id)
        with store.transaction() as session:
            pending = session.scalars(
                select(ApprovalRequestRecord.action)
                .where(ApprovalRequestRecord.status == "pending")
            ).all()
    finally:
        store.close()

    assert palette.action == "palette.resize_pool"
    assert palette.status == "superseded"
    assert report.superseded == 1
    assert pending == ["gitops.pull_request"]


def test_other_clusters_keep_palette_action(tmp_path: Path, sim: SimulatorServer) -> None:
    repo = fleet_repository(tmp_path / "fleet", sim)
    settings = gitops_settings(tmp_path, sim, repo)
    store = Store.open(settings.database_url)
    try:
        seed_cluster(store, sim, API_CLUSTER, {"env": "dev"})
        cluster = next(item for item in sim.state.fleet.clusters if item.name == API_CLUSTER)
        pool = cluster.pools[-1]
        item = pool_recommendation(sim, API_CLUSTER, pool.name, max(pool.min_size, 1))
        request_id, _ = open_request(store, settings, item)
        record = stored_request(store, request_id)
    finally:
        store.close()

    assert record.action == "palette.resize_pool"


@pytest.mark.parametrize("files", [{}, {"profile": {"path": "clusters/{cluster}.yaml"}}])
def test_clusters_need_pool_file(files: dict[str, Any]) -> None:
    repository = {"provider": "local", "repository": "/srv/fleet", "clusters": ["prod-*"],
                  "files": files}

    with pytest.raises(ValidationError, match="exactly one file needs a pool_key"):
        Settings.model_validate({"actions": {"gitops": {"repositories": {"fleet": repository}}}})
