"""docs/configuration.md and ``costwarden config check`` / ``config reference``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from costwarden.config import Settings
from costwarden.config_docs import render_reference

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "configuration.md"


def _costwarden(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the entry point in a fresh process, so that exit codes come from ``cli.main``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "costwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, "COLUMNS": "400", **(env or {})},
    )


def test_reference_is_up_to_date() -> None:
    stored = REFERENCE.read_text(encoding="utf-8")

    assert stored == render_reference(), (
        "docs/configuration.md is out of date; run "
        "`costwarden config reference --output docs/configuration.md`"
    )


def test_reference_lists_every_setting() -> None:
    text = render_reference()

    for group, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            assert f"## `{group}`" in text
            for name in model.model_fields:
                assert f"| `{name}` |" in text, f"{group}.{name} is missing"
                assert f"COSTWARDEN_{group.upper()}_{name.upper()}`" in text
        else:
            assert f"| `{group}` |" in text
            assert f"`COSTWARDEN_{group.upper()}`" in text


def test_settings_fields_have_descriptions() -> None:
    for group, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            assert field.description, f"{group} has no description"
            continue
        assert model.__doc__, f"the {group} settings class has no docstring"
        for name, inner in model.model_fields.items():
            assert inner.description, f"{group}.{name} has no description"


def test_reference_shows_defaults_and_types() -> None:
    text = render_reference()

    assert "| `port` | integer | `8080` | `COSTWARDEN_SERVICE_PORT` |" in text
    assert "| `event_secrets` | list of secret | `[]` |" in text
    assert '| `log_level` | one of `DEBUG`, `INFO`, `WARNING`, `ERROR` | `"WARNING"` |' in text
    assert "JSON in `COSTWARDEN_FORECAST_BATCH`" in text
    assert "## `service.api_keys[]`" in text
    assert "## `recommend.options.idle-pools`" in text


def test_reference_command_prints_page() -> None:
    result = _costwarden("config", "reference")

    assert result.returncode == 0, result.stderr
    assert result.stdout == render_reference()


def test_check_accepts_valid_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("service:\n  port: 9090\n  schedule: '*/30 * * * *'\n")

    result = _costwarden("config", "check", "--config", str(config))

    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("service:\n  port: 70000\n", "service.port", "less than or equal to 65535"),
        ("service:\n  schedule: every day\n", "service.schedule", "not a cron expression"),
        ("service:\n  colour: red\n", "service.colour", "Extra inputs are not permitted"),
        ("service:\n  event_secrets: ['whsec_']\n", "service.event_secrets", "secret 0"),
        ("palette:\n  url: ftp://palette\n", "palette.url", "not an http(s) URL"),
        ("- just\n- a list\n", "config.yaml", "must hold a mapping"),
    ],
)
def test_check_rejects_invalid_file(tmp_path: Path, text: str, key: str, reason: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)

    result = _costwarden("config", "check", "--config", str(config))

    assert result.returncode == 2
    assert key in result.stderr
    assert reason in result.stderr


def test_check_names_environment_variable() -> None:
    result = _costwarden("config", "check", env={"COSTWARDEN_SERVICE_PORT": "http"})

    assert result.returncode == 2
    assert "COSTWARDEN_SERVICE_PORT" in result.stderr
    assert "'http'" in result.stderr


def test_check_hides_secret_values(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("service:\n  event_secrets: ['whsec_x']\n")

    result = _costwarden("config", "check", "--config", str(config))

    assert result.returncode == 2
    assert "secret 0" in result.stderr
    assert "whsec_x" not in result.stderr


def test_check_parses_budget_file(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("version: 1\nbudgets:\n  - {name: a, scope: {cluster: x}, amount: -1}\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"budgets_file: {budgets}\n")

    result = _costwarden("config", "check", "--config", str(config))

    assert result.returncode == 2
    assert "amount" in result.stderr
