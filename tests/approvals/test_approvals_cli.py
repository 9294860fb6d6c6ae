"""``costwarden approvals list|show|approve|reject`` against requests opened by the governance
stage, with the Palette simulator receiving the approved change."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from approval_helpers import (
    LINK_SECRET,
    open_request,
    pool_recommendation,
    pool_size,
    puts,
    request_status,
    resize_directly,
    seed_cluster,
    write_policy,
)
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.config import Settings
from costwarden.errors import CostwardenError
from costwarden.simulator import SimulatorServer
from costwarden.store import Store

CLUSTER = "ml-training-eks"
POOL = "gpu-training"
OTHER_POOL = "worker-pool"


def cli_config(tmp_path: Path, sim: SimulatorServer, *, approvers: tuple[str, ...] = (),
               **sections: Any) -> tuple[Path, Settings]:
    """Write a config file and return it with the same settings, for opening requests."""
    policy_file = write_policy(tmp_path / "policy.yaml", approvers=approvers)
    config: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'cli.db'}",
        "palette": {"url": sim.url, "api_key": sim.api_key, "max_retries": 1,
                    "backoff_base_seconds": 0, "backoff_max_seconds": 0},
        "policy": {"paths": [str(policy_file)], "mode": "approve",
                   **sections.pop("policy", {})},
        "notify": {"link_secret": LINK_SECRET, "public_url": "https://costwarden.example.com"},
        **sections,
    }
    path = tmp_path / "costwarden.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, Settings(**config)


def invoke(config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``costwarden approvals ARGS``; a costwarden error gives its exit code and message,
    as ``costwarden.cli.main`` does."""
    result = CliRunner().invoke(app, ["--config", str(config), "approvals", *args])
    if isinstance(result.exception, CostwardenError):
        return result.exception.exit_code, result.stdout, str(result.exception)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def opened(tmp_path: Path, sim: SimulatorServer) -> Iterator[tuple[Path, Settings, Store]]:
    config, settings = cli_config(
        tmp_path, sim, approvers=("sre",), policy={"production_min_approvals": 2},
        approvals={"groups": {"sre": ["alice", "bob", "carol"]}},
    )
    store = Store.open(settings.database_url)
    seed_cluster(store, sim, CLUSTER, {"env": "production"})
    yield config, settings, store
    store.close()


def test_list_and_show(opened: tuple[Path, Settings, Store], sim: SimulatorServer) -> None:
    config, settings, store = opened
    gpu_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
    worker_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, OTHER_POOL, 2))

    code, table, _ = invoke(config, "list")
    assert code == 0
    assert gpu_id[:8] in table
    assert worker_id[:8] in table
    assert "palette.resize_pool" in table
    assert "(production)" in table

    code, out, _ = invoke(config, "list", "--json", "--limit", "1")
    assert code == 0
    assert len(json.loads(out)) == 1

    code, out, _ = invoke(config, "list", "--status", "executed", "--json")
    assert code == 0
    assert json.loads(out) == []

    code, _, message = invoke(config, "list", "--status", "done")
    assert code == 2
    assert "--status 'done' is invalid" in message

    code, out, _ = invoke(config, "show", gpu_id[:10], "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == gpu_id
    assert shown["required_approvals"] == 2
    assert shown["approver_groups"] == ["sre"]
    assert shown["decisions"] == []

    code, out, _ = invoke(config, "show", gpu_id[:10])
    assert code == 0
    assert "approver_groups" in out

    code, _, message = invoke(config, "show", "ffffffff-none")
    assert code == 2
    assert "not found" in message


def test_two_approvers_with_as(opened: tuple[Path, Settings, Store], sim: SimulatorServer
                               ) -> None:
    config, settings, store = opened
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
    prefix = request_id[:8]

    code, out, _ = invoke(config, "approve", prefix, "--as", "alice", "--json")
    assert code == 0
    first = json.loads(out)
    assert first["status"] == "recorded"
    assert first["request_status"] == "pending"
    assert first["request_id"] == request_id

    code, out, _ = invoke(config, "approve", prefix, "--as", "ALICE", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "unchanged"
    assert "does not count" in json.loads(out)["message"]

    code, _, message = invoke(config, "approve", prefix, "--as", "mallory")
    assert code == 8
    assert "not a member" in message
    assert puts(sim) == []

    code, out, _ = invoke(config, "approve", prefix, "--as", "bob")
    assert code == 0
    assert "succeeded" in out
    assert pool_size(sim, CLUSTER, POOL) == 4
    assert len(puts(sim)) == 1

    code, out, _ = invoke(config, "approve", prefix, "--as", "carol", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "unchanged"
    assert "already executed" in json.loads(out)["message"]
    assert len(puts(sim)) == 1

    code, out, _ = invoke(config, "show", prefix, "--json")
    shown = json.loads(out)
    assert shown["status"] == "executed"
    assert [item["actor"] for item in shown["decisions"]] == ["alice", "bob"]
    assert {item["channel"] for item in shown["decisions"]} == {"cli"}


def test_reject_with_reason(opened: tuple[Path, Settings, Store], sim: SimulatorServer) -> None:
    config, settings, store = opened
    request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))

    code, out, _ = invoke(config, "reject", request_id, "--as", "carol", "--reason",
                          "quarter-end batch jobs", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "rejected"

    code, out, _ = invoke(config, "approve", request_id, "--as", "alice", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "unchanged"
    assert "already rejected" in json.loads(out)["message"]

    _, out, _ = invoke(config, "show", request_id, "--json")
    [decision] = json.loads(out)["decisions"]
    assert decision["decision"] == "reject"
    assert decision["detail"]["reason"] == "quarter-end batch jobs"
    assert request_status(store, request_id) == "rejected"
    assert sim.state.writes == []


def test_os_user_is_default_actor(tmp_path: Path, sim: SimulatorServer) -> None:
    config, settings = cli_config(tmp_path, sim)
    store = Store.open(settings.database_url)
    try:
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
        code, out, _ = invoke(config, "approve", request_id, "--json")
        _, shown, _ = invoke(config, "show", request_id, "--json")
    finally:
        store.close()

    assert code == 0
    assert json.loads(out)["status"] == "executed"
    [decision] = json.loads(shown)["decisions"]
    assert decision["actor"] == getpass.getuser()
    assert decision["detail"]["os_user"] == getpass.getuser()
    assert len(puts(sim)) == 1


def test_failed_run_exits_9(tmp_path: Path, sim: SimulatorServer) -> None:
    config, settings = cli_config(tmp_path, sim)
    store = Store.open(settings.database_url)
    try:
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
        resize_directly(sim, CLUSTER, POOL, 20)
        code, out, _ = invoke(config, "approve", request_id, "--as", "alice", "--json")
    finally:
        store.close()

    assert code == 9
    result = json.loads(out)
    assert result["status"] == "failed"
    assert result["request_status"] == "failed"
    assert "changed" in result["message"]
    assert pool_size(sim, CLUSTER, POOL) == 20
    assert len(puts(sim)) == 1



def test_approved_runs_after_actions_enabled(tmp_path: Path, sim: SimulatorServer) -> None:
    disabled, settings = cli_config(tmp_path, sim, approvers=("sre",),
                                    approvals={"groups": {"sre": ["alice"]}},
                                    actions={"enabled": False})
    store = Store.open(settings.database_url)
    try:
        seed_cluster(store, sim, CLUSTER, {"env": "dev"})
        request_id, _ = open_request(store, settings, pool_recommendation(sim, CLUSTER, POOL, 4))
        code, out, _ = invoke(disabled, "approve", request_id, "--as", "alice", "--json")
        assert code == 0
        assert json.loads(out)["status"] == "approved"
        assert "actions.enabled is false" in json.loads(out)["message"]
        assert sim.state.writes == []

        enabled = tmp_path / "enabled.yaml"
        config = yaml.safe_load(disabled.read_text(encoding="utf-8"))
        config["actions"] = {"enabled": True}
        enabled.write_text(yaml.safe_dump(config), encoding="utf-8")
        rejected = invoke(enabled, "reject", request_id, "--as", "mallory", "--json")
        outsider = invoke(enabled, "approve", request_id, "--as", "mallory", "--json")
        writes_before = list(sim.state.writes)
        code, out, _ = invoke(enabled, "approve", request_id, "--as", "alice", "--json")
        status = request_status(store, request_id)
    finally:
        store.close()

    assert rejected[0] == 0
    assert json.loads(rejected[1])["status"] == "unchanged"
    assert outsider[0] == 8
    assert "not a member" in outsider[2]
    assert writes_before == []
    assert code == 0
    assert json.loads(out)["status"] == "executed"
    assert status == "executed"
    assert len(puts(sim)) == 1
