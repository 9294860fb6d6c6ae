"""Real Prometheus servers on 127.0.0.1, backfilled with generated OpenMetrics text.

``prometheus_server`` serves the seeded fleet of ``prometheus_data``, and
``waste_prometheus_server`` the planted waste clusters of ``costwarden.simulator.metrics``.

``tests/conftest.py`` imports the fixture and the report hook from here. The session's server
reads a TSDB that ``promtool tsdb create-blocks-from openmetrics`` builds from the generated
text, and scrapes nothing. A failed test that used it gets the end of the server's log in its
report.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_data import build_fleet

from costwarden.simulator.metrics import write_openmetrics
from costwarden.simulator.waste_plans import WASTE_CLUSTERS

START_TIMEOUT_SECONDS = 30.0
LOG_TAIL_CHARACTERS = 4000
CONFIG = """\
global:
  scrape_interval: 1h
  evaluation_interval: 1h
scrape_configs: []
"""
WASTE_END = datetime(2026, 11, 16, tzinfo=UTC)
"""End of the planted waste metrics: a Monday at midnight, so the 7-day window covers each
weekday once."""


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    data_dir: Path
    log_path: Path
    samples: int

    def log_tail(self) -> str:
        if not self.log_path.exists():
            return "(no log written)"
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARACTERS:]


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"Prometheus binary {name} not found; run 'make prometheus' (as root on Debian it "
            "installs the prometheus package) or put prometheus and promtool on PATH"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_fleet(path: Path) -> int:
    return build_fleet().write_openmetrics(path)


def _write_waste(path: Path) -> int:
    return write_openmetrics(path, WASTE_CLUSTERS, end=WASTE_END)


def _backfill(base: Path, write: Callable[[Path], int] = _write_fleet) -> tuple[Path, int]:
    """Write OpenMetrics text with ``write`` and turn it into TSDB blocks; return the data dir."""
    text = base / "fleet.om"
    samples = write(text)
    data = base / "data"
    # One block per 10 days: with the default of 2 hours promtool rereads the input per block.
    completed = subprocess.run(
        [_binary("promtool"), "tsdb", "create-blocks-from", "--max-block-duration=240h",
         "openmetrics", "--quiet", str(text), str(data)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(
            f"promtool could not backfill {text} (exit {completed.returncode}): "
            f"{completed.stderr.strip() or completed.stdout.strip()}"
        )
    text.unlink()
    return data, samples


def _wait_ready(url: str, process: subprocess.Popen[bytes], server: PrometheusServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"Prometheus exited with {process.returncode} before it was ready:\n"
                f"{server.log_tail()}"
            )
        try:
            if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(
        f"Prometheus was not ready within {START_TIMEOUT_SECONDS:g} s:\n{server.log_tail()}"
    )


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Start Prometheus on a free loopback port over the backfilled fleet, and stop it after."""
    yield from _serve(tmp_path_factory.mktemp("prometheus"), _write_fleet)


@pytest.fixture(scope="session")
def waste_prometheus_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrometheusServer]:
    """Start Prometheus over the planted waste clusters' metrics, ending at ``WASTE_END``."""
    yield from _serve(tmp_path_factory.mktemp("prometheus-waste"), _write_waste)


def _serve(base: Path, write: Callable[[Path], int]) -> Iterator[PrometheusServer]:
    data, samples = _backfill(base, write)
    config = base / "prometheus.yml"
    config.write_text(CONFIG, encoding="utf-8")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = PrometheusServer(url, data, base / "prometheus.log", samples)
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            [_binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_ready(url, process, server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the end of the Prometheus log to the report of a failed test that used the server."""
    report = yield
    for name in ("prometheus_server", "waste_prometheus_server"):
        server = getattr(item, "funcargs", {}).get(name)
        if report.failed and isinstance(server, PrometheusServer):
            report.sections.append(("Prometheus log", server.log_tail()))
    return report
