"""``costwarden deliveries``: list, show, retry, send and test against a loopback receiver."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from delivery_helpers import Receiver, Reply, add_rows, outbox_rows, webhook_channel
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.errors import CostwardenError
from costwarden.store import Store


def write_config(tmp_path: Path, database_url: str, receiver: Receiver) -> Path:
    path = tmp_path / "costwarden.yaml"
    config = {
        "database_url": database_url,
        "notify": {
            "channels": {
                "hook": webhook_channel(receiver.url("hook"), burst=20),
                "other": webhook_channel(receiver.url("other"), burst=20),
            },
            "delivery": {"backoff_base_seconds": 60},
        },
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def invoke(config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``costwarden deliveries ARGS``; a costwarden error gives its exit code and message,
    as ``costwarden.cli.main`` does."""
    result = CliRunner().invoke(app, ["--config", str(config), "deliveries", *args])
    if isinstance(result.exception, CostwardenError):
        return result.exception.exit_code, result.stdout, str(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_send_then_list_and_retry_dead(
    tmp_path: Path, sqlite_store: Store, sqlite_url: str, receiver: Receiver
) -> None:
    config = write_config(tmp_path, sqlite_url, receiver)
    receiver.script("hook", Reply(401, body=b"invalid signature"))
    hook_ids = add_rows(sqlite_store, "hook", 3)
    other_ids = add_rows(sqlite_store, "other", 2)

    code, out, _ = invoke(config, "send", "--json")
    assert code == 0, out
    assert json.loads(out) == {
        "sent": 4, "retried": 0, "dead": 1, "deferred": 0, "skipped": {}, "digests": 0,
    }
    [dead] = outbox_rows(sqlite_store, status="dead")

    code, out, _ = invoke(config, "list", "--status", "dead", "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == dead.id
    assert listed["items"][0]["last_status"] == 401

    code, out, _ = invoke(config, "list", "--channel", "other")
    assert code == 0
    assert "Deliveries (2 of 2)" in out

    code, out, _ = invoke(config, "show", dead.id[:8])
    assert code == 0
    assert "invalid signature" in out
    assert dead.id in out

    code, out, _ = invoke(config, "retry", dead.id)
    assert code == 0
    assert "pending again" in out

    code, _, err = invoke(config, "retry", dead.id)
    assert code != 0
    assert "only dead deliveries can be retried" in err

    code, out, _ = invoke(config, "send")
    assert code == 0
    assert "1 sent" in out

    assert sorted(receiver.accepted["/hook"]) == sorted(hook_ids)
    assert sorted(receiver.accepted["/other"]) == sorted(other_ids)


def test_retry_all_dead_of_one_channel(
    tmp_path: Path, sqlite_store: Store, sqlite_url: str, receiver: Receiver
) -> None:
    config = write_config(tmp_path, sqlite_url, receiver)
    receiver.script("hook", Reply(404), Reply(404))
    receiver.script("other", Reply(404))
    add_rows(sqlite_store, "hook", 2)
    add_rows(sqlite_store, "other", 1)
    assert invoke(config, "send")[0] == 0
    assert len(outbox_rows(sqlite_store, status="dead")) == 3

    code, out, _ = invoke(config, "retry", "--all-dead", "--channel", "hook")

    assert code == 0
    assert "2 dead deliveries of channel hook are pending again" in out
    assert len(outbox_rows(sqlite_store, status="pending")) == 2
    assert [row.channel for row in outbox_rows(sqlite_store, status="dead")] == ["other"]


def test_retry_needs_one_target(tmp_path: Path, sqlite_url: str, receiver: Receiver) -> None:
    config = write_config(tmp_path, sqlite_url, receiver)

    code, _, err = invoke(config, "retry")

    assert code == 2
    assert "--all-dead" in err


def test_test_command_reports_result(
    tmp_path: Path, sqlite_store: Store, sqlite_url: str, receiver: Receiver
) -> None:
    config = write_config(tmp_path, sqlite_url, receiver)

    code, out, _ = invoke(config, "test", "hook")
    assert code == 0, out
    assert "sent to hook" in out
    [body] = receiver.bodies["/hook"]
    assert b"costwarden test notice" in body

    receiver.script("other", Reply(403, body=b"forbidden"))
    code, _, err = invoke(config, "test", "other")
    assert code == 7
    assert "dead" in err
    assert "403" in err

    code, _, err = invoke(config, "test", "nowhere")
    assert code == 2
    assert "not in notify.channels" in err
