"""``costwarden audit``: list, show, head, verify with anchors, export and prune."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from audit_helpers import execute, fill
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.errors import CostwardenError
from costwarden.store import Store

TENANT = "default"


def write_config(tmp_path: Path, database_url: str, **extra: object) -> Path:
    path = tmp_path / "costwarden.yaml"
    path.write_text(yaml.safe_dump({"database_url": database_url, **extra}), encoding="utf-8")
    return path


def invoke(config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``costwarden audit ARGS``; a costwarden error gives its exit code and message."""
    result = CliRunner().invoke(app, ["--config", str(config), "audit", *args])
    if isinstance(result.exception, CostwardenError):
        return result.exception.exit_code, result.stdout, str(result.exception)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str, sqlite_store: Store) -> Path:
    return write_config(tmp_path, sqlite_url)


def test_verify_intact_then_edited(config: Path, sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3, tenant=TENANT)

    code, out, _ = invoke(config, "verify")
    assert code == 0
    assert "3 entries" in out

    execute(sqlite_store, "UPDATE audit_entries SET summary = 'x' WHERE seq = :seq", seq=seqs[1])
    code, _, message = invoke(config, "verify")
    assert code == 11
    assert f"at seq {seqs[1]}: entry was changed" in message


def test_head_anchor_detects_deleted_newest(config: Path, sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3, tenant=TENANT)
    code, out, _ = invoke(config, "head")
    anchor = out.strip()
    assert code == 0
    assert anchor.startswith(f"{seqs[-1]}:")

    code, _, _ = invoke(config, "verify", "--expect-head", anchor)
    assert code == 0
    execute(sqlite_store, "DELETE FROM audit_entries WHERE seq = :seq", seq=seqs[-1])
    code, _, _ = invoke(config, "verify")
    assert code == 0
    code, _, message = invoke(config, "verify", "--expect-head", anchor)
    assert code == 11
    assert "no longer exists" in message


def test_anchor_file(config: Path, sqlite_store: Store, tmp_path: Path) -> None:
    fill(sqlite_store, 2, tenant=TENANT)
    _, first, _ = invoke(config, "head")
    fill(sqlite_store, 1, tenant=TENANT)
    _, second, _ = invoke(config, "head")
    anchors = tmp_path / "anchors.txt"
    anchors.write_text(f"# kept daily\n{first}\n\n{second}", encoding="utf-8")

    code, out, _ = invoke(config, "verify", "--anchors", str(anchors), "--json")

    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["anchors_checked"] == 2


def test_invalid_anchor_names_line(config: Path, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.txt"
    anchors.write_text("1:abc\n", encoding="utf-8")

    code, _, message = invoke(config, "verify", "--anchors", str(anchors))

    assert code == 2
    assert f"{anchors}, line 1: anchor '1:abc' is invalid" in message


def test_list_and_show(config: Path, sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3, tenant=TENANT)
    fill(sqlite_store, 1, tenant=TENANT, kind="forecast")

    code, out, _ = invoke(config, "list", "--kind", "alert", "--limit", "2", "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["total"] == 3
    assert [item["seq"] for item in listed["items"]] == [seqs[2], seqs[1]]

    code, out, _ = invoke(config, "list")
    assert code == 0
    assert "entry 2" in out

    code, out, _ = invoke(config, "show", str(seqs[0]), "--json")
    assert code == 0
    assert json.loads(out)["detail"] == {"index": 0, "probability": 0.25}

    code, _, message = invoke(config, "show", "999")
    assert code == 1
    assert "no audit entry with seq 999" in message


def test_invalid_kind(config: Path) -> None:
    code, _, message = invoke(config, "list", "--kind", "deploy")
    assert code == 2
    assert "--kind 'deploy' is invalid" in message


def test_export_filters(config: Path, sqlite_store: Store, tmp_path: Path) -> None:
    old = datetime(2026, 1, 10, tzinfo=UTC)
    fill(sqlite_store, 2, tenant=TENANT, recorded_at=old)
    fill(sqlite_store, 2, tenant=TENANT, kind="forecast", recorded_at=old + timedelta(days=5))
    target = tmp_path / "export.jsonl"

    code, _, _ = invoke(config, "export", "--since", "2026-01-12", "--output", str(target))
    assert code == 0
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["forecast", "forecast"]
    assert not (tmp_path / "export.jsonl.partial").exists()

    code, out, _ = invoke(config, "export", "--kind", "alert", "--until", "2026-01-11T00:00:00Z")
    assert code == 0
    entries = [json.loads(line) for line in out.splitlines()]
    assert [entry["kind"] for entry in entries] == ["alert", "alert"]
    assert set(entries[0]) == {
        "seq", "id", "tenant", "time", "kind", "subject", "actor", "summary", "detail",
        "prev_hash", "entry_hash",
    }
    assert entries[0]["time"] == "2026-01-10T00:00:00.000000Z"


def test_export_bad_time(config: Path) -> None:
    code, _, message = invoke(config, "export", "--since", "yesterday")
    assert code == 2
    assert "--since 'yesterday' is not a date or time" in message


def test_prune_uses_setting(tmp_path: Path, sqlite_url: str, sqlite_store: Store) -> None:
    fill(sqlite_store, 2, tenant=TENANT, recorded_at=datetime.now(UTC) - timedelta(days=40))
    fill(sqlite_store, 1, tenant=TENANT)
    without = write_config(tmp_path, sqlite_url)

    code, _, message = invoke(without, "prune")
    assert code == 2
    assert "pass --retention-days or set audit.retention_days" in message

    config = write_config(tmp_path, sqlite_url, audit={"retention_days": 30})
    code, out, _ = invoke(config, "prune", "--json")
    assert code == 0
    assert json.loads(out)["deleted"] == 2
    code, out, _ = invoke(config, "verify", "--json")
    assert code == 0
    assert json.loads(out)["entries"] == 2


def test_verify_exit_code_from_shell(config: Path, sqlite_store: Store) -> None:
    """The installed entry point maps AuditIntegrityError to exit code 11."""
    seqs = fill(sqlite_store, 2, tenant=TENANT)
    execute(sqlite_store, "DELETE FROM audit_entries WHERE seq = :seq", seq=seqs[0])

    result = subprocess.run(
        [sys.executable, "-m", "costwarden", "--config", str(config), "audit", "verify"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )

    assert result.returncode == 11
    assert f"does not verify at seq {seqs[1]}" in result.stderr
