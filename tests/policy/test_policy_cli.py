"""``costwarden policy validate|schema|explain``, the committed schema and the example files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from policy_helpers import FLAGS
from typer.testing import CliRunner, Result

from costwarden.cli import app
from costwarden.policy.loader import builtin_actions, check_files, policy_files
from costwarden.policy.schema import policy_schema, render_schema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "docs" / "schemas" / "policy.schema.json"
EXAMPLES = REPO / "examples" / "policies"


def _costwarden(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the entry point in a fresh process, so that exit codes come from ``cli.main``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "costwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, "COLUMNS": "300", **(env or {})},
    )


def _invoke(*args: str, **env: str) -> Result:
    """Run the CLI in this process; costwarden errors propagate as exceptions."""
    environment = {key: None for key in os.environ if key.startswith("COSTWARDEN_")}
    return CliRunner().invoke(app, list(args), env={**environment, "COLUMNS": "300", **env})


def test_schema_file_is_up_to_date() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == render_schema(), (
        "docs/schemas/policy.schema.json is out of date; run "
        "`costwarden policy schema --output docs/schemas/policy.schema.json`"
    )


def test_examples_validate_with_builtin_actions() -> None:
    files = policy_files([EXAMPLES])
    registered = set(builtin_actions().names())

    reports = check_files(files)

    assert len(files) >= 4
    assert set(FLAGS) <= registered, f"not registered: {sorted(set(FLAGS) - registered)}"
    for report in reports:
        assert report.ok, [str(problem) for problem in report.problems]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_match_json_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), policy_schema())


def test_json_schema_rejects_unknown_key() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"policies": [{"name": "a", "filters": []}]}, policy_schema())


def test_validate_prints_policies() -> None:
    result = _invoke("policy", "validate", str(EXAMPLES / "gpu.yaml"))

    assert result.exit_code == 0, result.output
    assert "gpu-idle-pools" in result.stdout
    assert "palette.resize_pool: approve" in result.stdout
    assert "platform-leads" in result.stdout
    assert "ticket: auto" in result.stdout


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("policies:\n  - {name: ok, production: true}\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "policies:\n  - name: a\n    condition: 'pool.nope > 0'\n"
        "    actions: [{action: palette.set_instance_type, mode: auto}]\n",
        encoding="utf-8",
    )

    result = _costwarden("policy", "validate", str(good), str(bad))

    assert result.returncode == 2
    assert "ok (production)" in result.stdout
    assert f"{bad}, line 3, policy 'a', field condition: unknown field pool.nope" in result.stderr
    assert f"{bad}, line 4, policy 'a', field actions.0.mode: auto is allowed" in result.stderr


def test_validate_json_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies:\n  - {name: a, actions: [{action: ticket, mode: x}]}\n", "utf-8")

    result = _invoke("policy", "validate", "--json", str(bad))
    body = json.loads(result.stdout)

    assert result.exit_code == 2
    assert body["valid"] is False
    problem = body["files"][0]["problems"][0]
    assert (problem["line"], problem["policy"], problem["field"]) == (2, "a", "actions.0.mode")
    assert problem["value"] == "x"


def test_schema_command_writes_file(tmp_path: Path) -> None:
    target = tmp_path / "policy.schema.json"

    first = _invoke("policy", "schema", "--output", str(target))
    second = _invoke("policy", "schema", "--output", str(target))

    assert first.exit_code == 0
    assert "updated" in first.stdout
    assert "is up to date" in second.stdout
    assert json.loads(target.read_text("utf-8"))["title"] == "costwarden policy file"


def test_explain_prints_decision_and_reasons(tmp_path: Path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text("pool: {gpu: 4}\nworkload: {gpu_requested: 0}\n", encoding="utf-8")

    result = _invoke(
        "policy", "explain", "--policies", str(EXAMPLES), "--action", "palette.resize_pool",
        "--cloud", "aws", "--cluster", "ml-eks", "--name", "gpu-a", "--label", "team=ml",
        "--label", "tier=customer-facing", "--facts", str(facts), "--json",
        COSTWARDEN_POLICY_MODE="auto",
    )

    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["mode"] == "approve"
    assert decision["production"] is True
    assert decision["required_approvals"] == 2
    assert decision["approver_groups"] == ["platform-leads"]
    assert any("gpu-idle-pools" in reason for reason in decision["reasons"])
    assert "production: policy 'customer-facing-clusters' marks the scope" in decision["reasons"]


def test_explain_default_tenant_mode_is_monitor() -> None:
    result = _invoke(
        "policy", "explain", "--policies", str(EXAMPLES), "--action", "ticket",
        "--cluster", "ml-eks", "--label", "team=ml",
    )

    assert result.exit_code == 0, result.output
    assert "mode monitor" in result.stdout
    assert "reported only, nothing runs" in result.stdout
    assert "approval(s) needed" not in result.stdout
    assert "no matching policy allows ticket, so the mode is monitor" in result.stdout


def test_explain_rejects_unknown_fact_variable(tmp_path: Path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text("pools: {gpu: 4}\n", encoding="utf-8")

    result = _costwarden(
        "policy", "explain", "--policies", str(EXAMPLES), "--action", "ticket",
        "--facts", str(facts),
    )

    assert result.returncode == 2
    assert "unknown variable 'pools'" in result.stderr


def _group_files(tmp_path: Path) -> tuple[Path, Path]:
    policies = tmp_path / "groups.yaml"
    policies.write_text(
        "policies:\n  - name: a\n    actions:\n"
        "      - {action: ticket, mode: approve, approvers: [nosuchgroup]}\n",
        encoding="utf-8",
    )
    config = tmp_path / "costwarden.yaml"
    settings = {
        "database_url": f"sqlite:///{tmp_path / 'groups.db'}",
        "approvals": {"groups": {"finops": ["alice@example.com"]}},
        "policy": {"paths": [str(policies)]},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return policies, config


def test_validate_checks_approver_groups_with_config(tmp_path: Path) -> None:
    policies, config = _group_files(tmp_path)

    without = _invoke("policy", "validate", str(policies))
    checked = _invoke("policy", "validate", "--config", str(config), "--json", str(policies))
    problem = json.loads(checked.stdout)["files"][0]["problems"][0]

    assert without.exit_code == 0
    assert checked.exit_code == 2
    assert problem["field"] == "actions.0.approvers.0"
    assert "'nosuchgroup' is not defined in approvals.groups" in problem["message"]
    assert "(defined: finops)" in problem["message"]


def test_config_check_rejects_unknown_approver_group(tmp_path: Path) -> None:
    _, config = _group_files(tmp_path)

    result = _costwarden("config", "check", "--config", str(config))

    assert result.returncode == 2
    assert "approver group 'nosuchgroup' is not defined" in result.stderr
