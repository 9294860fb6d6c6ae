"""``costwarden deliveries`` answers wrong ids and channels with exit 2, and prints Z times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from delivery_helpers import START, Receiver, Reply, add_rows, outbox_rows, webhook_channel
from sqlalchemy import update
from typer.testing import CliRunner

from costwarden.cli import app
from costwarden.errors import CostwardenError
from costwarden.store import Store
from costwarden.store.tables import OutboxRecord


def write_config(tmp_path: Path, database_url: str, receiver: Receiver, **hook: object) -> Path:
    path = tmp_path / "costwarden.yaml"
    config = {
        "database_url": database_url,
        "notify": {"channels": {"hook": webhook_channel(receiver.url("hook"), burst=20, **hook)}},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def invoke(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), "deliveries", *args])
    if isinstance(result.exception, CostwardenError):
        return result.exception.exit_code, result.stdout, str(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_retry_wrong_targets_exit_2(
    tmp_path: Path, sqlite_store: Store, sqlite_url: str, receiver: Receiver
) -> None:
    config = write_config(tmp_path, sqlite_url, receiver)
    add_rows(sqlite_store, "hook", 20)
    assert invoke(config, "send")[0] == 0
    sent = outbox_rows(sqlite_store)[0]
    prefixes = [row.id[:1] for row in outbox_rows(sqlite_store)]
    shared = max(set(prefixes), key=prefixes.count)

    cases = {
        (sent.id,): "only dead deliveries can be retried",
        ("zzzz",): "no delivery with id 'zzzz'",
        (shared,): "matches several rows",
        ("--all-dead", "--channel", "nosuch"): "'nosuch' is not in notify.channels",
    }
    for args, expected in cases.items():
        code, _, err = invoke(config, "retry", *args)
        assert (code, expected in err) == (2, True), (args, err)

    code, _, err = invoke(config, "show", "zzzz")
    assert code == 2


def test_list_json_times_end_with_z(
    tmp_path: Path, sqlite_store: Store, sqlite_url: str, receiver: Receiver
) -> None:
    config = write_config(tmp_path, sqlite_url, receiver)
    add_rows(sqlite_store, "hook")

    code, out, _ = invoke(config, "list", "--json")

    assert code == 0
    [item] = json.loads(out)["items"]
    assert item["created_at"] == START.isoformat().replace("+00:00", "Z")
    assert item["next_attempt_at"].endswith("Z")


def test_sent_row_drops_earlier_error(
    tmp_path: Path, sqlite_store: Store, sqlite_url: str, receiver: Receiver
) -> None:
    config = write_config(tmp_path, sqlite_url, receiver)
    receiver.script("hook", Reply(503, body=b"busy"))
    add_rows(sqlite_store, "hook", created_at=datetime.now(UTC) - timedelta(minutes=1))
    assert invoke(config, "send")[0] == 0
    [failed] = outbox_rows(sqlite_store)
    assert failed.last_status == 503
    with sqlite_store.transaction() as session:
        session.execute(update(OutboxRecord).values(next_attempt_at=datetime.now(UTC)))

    assert invoke(config, "send")[0] == 0

    [row] = outbox_rows(sqlite_store)
    assert (row.status, row.last_status, row.last_error) == ("sent", None, None)


def test_test_notice_held_by_quiet_hours_says_until(
    tmp_path: Path, sqlite_store: Store, sqlite_url: str, receiver: Receiver
) -> None:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    quiet = {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}", "timezone": "UTC",
             "hold_critical": True}
    config = write_config(tmp_path, sqlite_url, receiver, quiet_hours=quiet)

    code, _, err = invoke(config, "test", "hook")

    assert code == 7
    assert "is pending: held by the channel's quiet hours until" in err
    assert "next attempt at" in err
