"""Shared fixtures: a real SQLite file per test, and one real PostgreSQL and one real Prometheus
server per session."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_fixtures import (  # noqa: F401
    prometheus_server,
    pytest_runtest_makereport,
    waste_prometheus_server,
)

from costwarden.store import Store

if os.environ.get("PYTEST_XDIST_WORKER"):
    # xdist workers inherit the controller's terminal size as COLUMNS and LINES. The CLI then
    # sizes tables for 80 columns instead of its 120-column default for pipes, so drop them.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL binary {name} not found; run 'make postgres' or set "
            "COSTWARDEN_TEST_POSTGRES_URL"
        )
    return candidates[-1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL server on 127.0.0.1 and yield its admin URL.

    PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user.
    ``COSTWARDEN_TEST_POSTGRES_URL`` points the tests at an existing server instead.
    """
    external = os.environ.get("COSTWARDEN_TEST_POSTGRES_URL")
    if external:
        yield external
        return

    base = Path(tempfile.mkdtemp(prefix="costwarden-pg-"))
    data = base / "data"
    port = _free_port()
    run_as: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        user = "postgres"
        run_as = ["runuser", "-u", user, "--"]
        shutil.chown(base, user=user)
        os.chmod(base, 0o700)

    subprocess.run(
        [*run_as, _postgres_bin("initdb"), "-D", str(data), "-U", "costwarden", "--auth=trust",
         "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    log_path = base / "postgres.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally block below
    server = subprocess.Popen(
        [*run_as, _postgres_bin("postgres"), "-D", str(data), "-p", str(port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={base}",
         "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"postgresql+psycopg://costwarden@127.0.0.1:{port}/postgres"
    try:
        _wait_for_postgres(port, server, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_postgres(port: int, server: subprocess.Popen[bytes], log_path: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = log_path.read_text(errors="replace")
            raise RuntimeError(f"PostgreSQL exited with {server.returncode}: {output}")
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=costwarden dbname=postgres").close()
            return
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("PostgreSQL did not accept connections within 30 s")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """Yield the URL of a fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'costwarden.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Yield a fresh database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'costwarden.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder beside the checkout; tests that need it skip when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} not found")
    return path
