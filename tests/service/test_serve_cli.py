"""``costwarden serve`` start-up checks and ``costwarden db``, run as the installed command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect

COSTWARDEN = str(Path(sys.executable).with_name("costwarden"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    return subprocess.run(
        [COSTWARDEN, *args], capture_output=True, text=True, timeout=60,
        env={**base, "COLUMNS": "200", **(env or {})},
    )


def test_serve_bad_port_exits_2(tmp_path: Path) -> None:
    result = run_cli(
        "--database-url", f"sqlite:///{tmp_path / 'x.db'}", "serve",
        env={"COSTWARDEN_SERVICE_PORT": "99999"},
    )
    assert result.returncode == 2
    assert "service.port" in result.stderr
    assert "COSTWARDEN_SERVICE_PORT" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_serve_bad_cron_in_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("service:\n  schedule: every morning\n", encoding="utf-8")
    result = run_cli("--config", str(config), "serve")
    assert result.returncode == 2
    assert "service.schedule" in result.stderr
    assert "cron expression" in result.stderr


def test_serve_missing_budget_file_exits_2(tmp_path: Path) -> None:
    result = run_cli(
        "--database-url", f"sqlite:///{tmp_path / 'x.db'}", "serve",
        "--budgets", str(tmp_path / "missing.yaml"),
    )
    assert result.returncode == 2
    assert "budgets_file" in result.stderr
    assert "missing.yaml" in result.stderr


def test_serve_invalid_budget_file_exits_2(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        "budgets:\n  - name: broken\n    scope: {cluster: a}\n    amount: -5\n"
        "    thresholds: [{type: actual, percent: 80}]\n",
        encoding="utf-8",
    )
    result = run_cli(
        "--database-url", f"sqlite:///{tmp_path / 'x.db'}", "serve", "--budgets", str(budgets)
    )
    assert result.returncode == 2
    assert "amount" in result.stderr
    assert "broken" in result.stderr


def test_db_upgrade_fresh_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    result = run_cli("--database-url", f"sqlite:///{path}", "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert _head_revision() in result.stdout

    engine = create_engine(f"sqlite:///{path}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"budgets", "budget_statuses", "pass_leases", "runs", "cost_facts"} <= tables


def test_db_current_before_and_after(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'current.db'}"
    before = run_cli("--database-url", url, "db", "current")
    assert before.returncode == 0, before.stderr
    assert "revision none" in before.stdout
    assert "costwarden db upgrade" in before.stdout

    assert run_cli("--database-url", url, "db", "upgrade").returncode == 0
    after = run_cli("--database-url", url, "db", "current")
    assert "up to date" in after.stdout


def test_open_service_sqlite_wal(tmp_path: Path) -> None:
    from sqlalchemy import text

    from costwarden.config import Settings
    from costwarden.service.app import open_service

    state = open_service(Settings(database_url=f"sqlite:///{tmp_path / 'wal.db'}"))
    try:
        with state.store.engine.connect() as connection:
            mode = connection.execute(text("PRAGMA journal_mode")).scalar()
    finally:
        state.store.close()
    assert mode == "wal"


@pytest.mark.postgres
def test_open_service_postgres_pool(postgres_url: str) -> None:
    from costwarden.config import Settings
    from costwarden.service.app import open_service

    settings = Settings(
        database_url=postgres_url,
        service={"db_pool_size": 3, "db_max_overflow": 2, "db_pool_timeout_seconds": 7},
    )
    state = open_service(settings)
    try:
        pool = state.store.engine.pool
        assert pool.size() == 3  # type: ignore[attr-defined]
        assert pool._max_overflow == 2  # type: ignore[attr-defined]
        assert pool._timeout == 7  # type: ignore[attr-defined]
    finally:
        state.store.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _budget_file(tmp_path: Path) -> Path:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        "budgets:\n  - name: team-a\n    scope: {cluster: a}\n    amount: 100\n"
        "    currency: USD\n    thresholds: [{type: actual, percent: 80}]\n",
        encoding="utf-8",
    )
    return budgets


def test_serve_port_in_use_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "--database-url", f"sqlite:///{path}", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--budgets", str(_budget_file(tmp_path)),
            env={"COSTWARDEN_SERVICE_RUN_ON_START": "true"},
        )
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr
    # Neither the budget import nor a start pass touched the database.
    assert not path.exists()


def test_serve_prints_listening_line(tmp_path: Path) -> None:
    port = _free_port()
    base = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    env = {
        **base,
        "COSTWARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "COSTWARDEN_LOG_LEVEL": "INFO",
        "COSTWARDEN_LOG_FORMAT": "json",
        "COSTWARDEN_SERVICE_SCHEDULE": "off",
    }
    server = subprocess.Popen(
        [COSTWARDEN, "serve", "--host", "127.0.0.1", "--port", str(port)],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert server.stderr is not None
        announced, before = _read_until(server.stderr, "listening on")
        assert announced.strip() == (
            f"costwarden serve listening on http://127.0.0.1:{port} "
            f"(API docs at http://127.0.0.1:{port}/docs)"
        )
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=60)
    # uvicorn re-raises the signal once it has shut down.
    assert server.returncode in (0, -signal.SIGTERM), rest
    lines = [*before, *rest.splitlines()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    events = [record["event"] for record in records]
    assert "costwarden service stopped" in events
    assert any(event.startswith("no schedule configured") for event in events)


def _read_until(stream: Any, text: str) -> tuple[str, list[str]]:
    """Return the first line of ``stream`` that contains ``text`` and the JSON log lines before it."""
    seen: list[str] = []
    for line in stream:
        if text in line:
            return str(line), seen
        seen.append(line)
        assert line.startswith("{"), seen
    raise AssertionError(f"serve exited before printing {text!r}: {seen}")


def test_log_settings_flags_win(tmp_path: Path) -> None:
    env = {"COSTWARDEN_LOG_LEVEL": "DEBUG", "COSTWARDEN_LOG_FORMAT": "json"}
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    from_settings = run_cli("--database-url", url, "db", "current", env=env)
    assert from_settings.returncode == 0, from_settings.stderr
    opened = [json.loads(line) for line in from_settings.stderr.splitlines()]
    assert any(record["event"].startswith("opened database") for record in opened)

    from_flag = run_cli("-v", "--database-url", url, "db", "current", env=env)
    assert from_flag.returncode == 0, from_flag.stderr
    assert "opened database" not in from_flag.stderr


def test_db_current_unreachable_exits_5() -> None:
    url = f"postgresql+psycopg://costwarden@127.0.0.1:{_free_port()}/none"
    result = run_cli("--database-url", url, "db", "current")
    assert result.returncode == 5, result.stderr
    assert "cannot open database 127.0.0.1" in result.stderr
    assert "COSTWARDEN_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_misspelled_variable_suggests_name(tmp_path: Path) -> None:
    result = run_cli("db", "current", env={"COSTWARDEN_DATABSE_URL": "sqlite:///x.db"})
    assert result.returncode == 2
    assert "COSTWARDEN_DATABSE_URL" in result.stderr
    assert "did you mean COSTWARDEN_DATABASE_URL?" in result.stderr


@pytest.mark.parametrize("value", ["off", "null", "None", ""])
def test_schedule_off_from_environment(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from costwarden.config import load_settings

    monkeypatch.setenv("COSTWARDEN_SERVICE_SCHEDULE", value)
    assert load_settings().service.schedule is None


def _head_revision() -> str:
    """The newest migration's revision id, read from the file names (``0007_notify.py``)."""
    import costwarden.store

    versions = Path(costwarden.store.__file__).parent / "migrations" / "versions"
    return max(path.name[:4] for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
