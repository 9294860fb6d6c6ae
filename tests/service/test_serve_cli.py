"""``costwarden serve`` start-up checks and ``costwarden db``, run as the installed command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    assert "0006" in result.stdout

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
