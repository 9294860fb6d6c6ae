"""``costwarden actions``: list, dry-run against the simulator, runs, show and resolve."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from action_helpers import current_pool, pick_pool
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.errors import CostwardenError
from costwarden.simulator.server import SimulatorServer


def write_config(tmp_path: Path, sim: SimulatorServer) -> Path:
    path = tmp_path / "costwarden.yaml"
    config = {
        "database_url": f"sqlite:///{tmp_path / 'cli.db'}",
        "palette": {"url": sim.url, "api_key": sim.api_key, "max_retries": 0},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def invoke(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), "actions", *args])
    if isinstance(result.exception, CostwardenError):
        return result.exception.exit_code, result.stdout, str(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_registry(tmp_path: Path, sim: SimulatorServer) -> None:
    code, out, _ = invoke(write_config(tmp_path, sim), "list", "--json")

    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0
    assert rows["palette.resize_pool"]["auto_allowed"] is True
    assert rows["palette.set_instance_type"]["safe"] is False
    assert rows["kubernetes.pause_namespace"]["scope_kinds"] == ["namespace"]


def test_dry_run_then_runs_and_show(tmp_path: Path, sim: SimulatorServer) -> None:
    config = write_config(tmp_path, sim)
    cluster, pool = pick_pool(sim, autoscaling=True)

    code, out, err = invoke(
        config,
        "dry-run",
        "palette.resize_pool",
        "--cluster",
        cluster.uid,
        "--pool",
        pool.name,
        "--param",
        f"size={pool.min_size}",
        "--expect",
        f"size={pool.size}",
        "--json",
    )

    assert code == 0, err
    planned = json.loads(out)
    assert planned["mode"] == "dry_run"
    assert planned["result"]["after"]["size"] == pool.min_size
    assert current_pool(sim, cluster.uid, pool.name).size == pool.size
    assert sim.state.writes == []

    code, out, _ = invoke(config, "runs", "--json")
    assert [item["id"] for item in json.loads(out)] == [planned["id"]]
    code, out, _ = invoke(config, "show", planned["id"][:8])
    assert code == 0
    assert "palette.resize_pool" in out


def test_dry_run_stale_exits_with_action_code(tmp_path: Path, sim: SimulatorServer) -> None:
    cluster, pool = pick_pool(sim)
    config = write_config(tmp_path, sim)

    code, _, message = invoke(
        config,
        "dry-run",
        "palette.resize_pool",
        "--cluster",
        cluster.uid,
        "--pool",
        pool.name,
        "--param",
        "size=1",
        "--expect",
        f"size={pool.size + 5}",
    )

    assert code == 9
    assert "expected" in message
    code, out, _ = invoke(config, "runs", "--status", "failed", "--json")
    assert len(json.loads(out)) == 1


def test_invalid_options(tmp_path: Path, sim: SimulatorServer) -> None:
    config = write_config(tmp_path, sim)

    bad_status = invoke(config, "runs", "--status", "weird")
    bad_param = invoke(config, "dry-run", "palette.resize_pool", "--cluster", "x", "--param", "s")
    unknown = invoke(config, "dry-run", "palette.nope", "--cluster", "x")
    missing = invoke(config, "show", "00000000")

    assert bad_status[0] == 2
    assert "--status 'weird' is invalid" in bad_status[2]
    assert bad_param[0] == 2
    assert "use KEY=VALUE" in bad_param[2]
    assert unknown[0] == 2
    assert "known actions" in unknown[2]
    assert "not found" in missing[2]


def test_dry_run_rejects_invalid_params(tmp_path: Path, sim: SimulatorServer) -> None:
    config = write_config(tmp_path, sim)
    pool_args = ("--cluster", "x", "--pool", "worker-pool", "--expect", "size=1")

    negative = invoke(config, "dry-run", "palette.resize_pool", *pool_args, "--param", "size=-1")
    misspelt = invoke(config, "dry-run", "palette.resize_pool", *pool_args, "--param", "sise=2")
    literal = invoke(
        config, "dry-run", "palette.set_capacity_type", *pool_args, "--param", "capacity_type=SPOT"
    )
    code, out, _ = invoke(config, "runs", "--json")

    assert negative[0] == 2
    assert "--param size=-1 is invalid: Input should be greater than or equal to 0" in negative[2]
    assert "size (required): Node count of the pool." in negative[2]
    assert misspelt[0] == 2
    assert "palette.resize_pool has no parameter sise" in misspelt[2]
    assert "--param size is missing" in misspelt[2]
    assert literal[0] == 2
    assert "--param capacity_type=SPOT is invalid" in literal[2]
    assert "'on-demand' or 'spot'" in literal[2]
    assert code == 0
    assert json.loads(out) == []
