"""Latency of the REST API's budget and alert listings under a fixed request rate.

The benchmark fills a database with budgets, their latest statuses and alerts, starts
``costwarden serve`` on 127.0.0.1 as a subprocess, and sends requests on a fixed schedule (open
loop). Request i leaves at start + i / rate whether or not earlier ones have returned, so a slow
server cannot slow the load down. Latency runs from each request's scheduled time to its
response, so time spent waiting for a free connection counts. Half of the requests list budgets
and half list alerts, 100 per page, at varying offsets and filters.

    .venv/bin/python bench/api.py --database sqlite
    .venv/bin/python bench/api.py --database postgresql   # starts a throwaway server
    .venv/bin/python bench/api.py --database-url postgresql+psycopg://user@127.0.0.1/db

The load generator runs on the same machine as the service, so both share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml

from costwarden import __version__
from costwarden.store import Store
from costwarden.store.budgets import import_budgets
from costwarden.store.tables import AlertRecord, BudgetStatusRecord

API_KEY = "bench-admin-key"
START_TIMEOUT_SECONDS = 60.0
SEVERITIES = ("info", "warning", "critical")


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="costwarden-bench-api-") as directory:
        workdir = Path(directory)
        with _database(args, workdir) as url:
            seconds = _seed(url, args.budgets, args.alerts)
            print(f"seeded {args.budgets} budgets and {args.alerts} alerts in {seconds:.1f} s")
            with _service(url, workdir) as base_url:
                asyncio.run(_drive(base_url, args.rate, 5.0, args.budgets, args.alerts))
                latencies, errors = asyncio.run(
                    _drive(base_url, args.rate, args.seconds, args.budgets, args.alerts)
                )
    _report(args, url, latencies, errors)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", help="Use this database instead of starting one.")
    parser.add_argument("--budgets", type=int, default=1000, help="Budgets to store.")
    parser.add_argument("--alerts", type=int, default=3000, help="Alerts to store.")
    parser.add_argument("--rate", type=float, default=50.0, help="Requests per second.")
    parser.add_argument("--seconds", type=float, default=60.0, help="Measured duration.")
    return parser.parse_args()


@contextmanager
def _database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
    elif args.database == "sqlite":
        yield f"sqlite:///{workdir / 'costwarden.db'}"
    else:
        with _postgres(workdir) as url:
            yield url


@contextmanager
def _postgres(workdir: Path) -> Iterator[str]:
    """Start a throwaway PostgreSQL server on 127.0.0.1; as root, it runs as user postgres."""
    base = Path(tempfile.mkdtemp(prefix="costwarden-bench-pg-"))
    run_as: list[str] = []
    if os.getuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, user="postgres")
    port = _free_port()
    data = base / "data"
    subprocess.run(
        [
            *run_as,
            _postgres_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "costwarden",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [
            *run_as,
            _postgres_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={base}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server)
        yield f"postgresql+psycopg://costwarden@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise SystemExit(
            f"PostgreSQL's {name} not found; run 'make postgres' or pass --database-url"
        )
    return str(candidates[-1])


def _seed(url: str, budgets: int, alerts: int) -> float:
    """Store the budgets with a status each, and alerts spread over the last 90 days."""
    started = time.perf_counter()
    store = Store.open(url)
    rng = random.Random(7)
    now = datetime.now(UTC)
    try:
        names = [f"team-{index:04d}" for index in range(budgets)]
        with store.transaction() as session:
            import_budgets(session, [_budget_spec(name, rng) for name in names], "api")
        with store.transaction() as session:
            session.add_all(_status(name, now, rng) for name in names)
        with store.transaction() as session:
            session.add_all(_alert(index, rng.choice(names), now, rng) for index in range(alerts))
    finally:
        store.close()
    return time.perf_counter() - started


def _budget_spec(name: str, rng: random.Random) -> dict[str, Any]:
    return {
        "name": name,
        "owner": f"{name}@example.com",
        "scope": {"cluster": f"cluster-{rng.randrange(200):03d}", "namespace": name},
        "amount": rng.randrange(500, 50_000),
        "thresholds": [
            {"type": "actual", "percent": 80},
            {"type": "forecast", "percent": 100, "probability": 0.7, "severity": "critical"},
        ],
    }


def _status(name: str, now: datetime, rng: random.Random) -> BudgetStatusRecord:
    spend = Decimal(rng.randrange(100, 40_000))
    payload = {
        "budget": name,
        "run_id": "seed",
        "as_of": now.isoformat(),
        "currency": "USD",
        "period_start": now.date().replace(day=1).isoformat(),
        "spend_to_date": str(spend),
        "forecast_total": str(spend * 2),
        "forecast_mean_total": str(spend * 2),
        "interval": {
            key: str(spend * Decimal(factor))
            for key, factor in (("lo80", "1.8"), ("hi80", "2.2"), ("lo95", "1.7"), ("hi95", "2.4"))
        },
        "exceedance_probability": rng.random(),
        "breach_date": None,
        "problem": None,
        "thresholds": [{"key": "actual:80", "probability": rng.random(), "reached": False}],
    }
    return BudgetStatusRecord(
        budget=name, run_id="seed", as_of=now, payload=payload, updated_at=now
    )


def _alert(index: int, budget: str, now: datetime, rng: random.Random) -> AlertRecord:
    seen = now - timedelta(minutes=rng.randrange(90 * 24 * 60))
    severity = rng.choice(SEVERITIES)
    payload = {
        "schema_version": "1",
        "alert_id": f"alert-{index:06d}",
        "kind": "forecast",
        "severity": severity,
        "title": f"Budget {budget} is forecast to exceed its amount",
        "currency": "USD",
        "budget": {"name": budget, "amount": 10000.0, "period_kind": "monthly"},
        "scope": {"cluster": "cluster-001", "namespace": budget},
        "forecast": {"total": 12000.0, "interval_80": {"lower": 11000.0, "upper": 13000.0}},
        "contributors": [
            {"name": f"workload-{part}", "kind": "namespace", "growth": 100.0 * part}
            for part in range(3)
        ],
        "recommended_actions": [{"kind": "rightsize_pool", "title": "Resize pool workers"}],
        "generated_at": seen.isoformat(),
    }
    return AlertRecord(
        alert_id=payload["alert_id"],
        budget=budget,
        period_start=date(seen.year, seen.month, 1),
        kind="forecast:forecast:100",
        severity=severity,
        payload=payload,
        first_seen=seen,
        last_seen=seen,
        run_id=str(uuid.uuid4()),
    )


@contextmanager
def _service(url: str, workdir: Path) -> Iterator[str]:
    """Run ``costwarden serve`` on a free loopback port until the block ends."""
    port = _free_port()
    config = workdir / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": url,
                "log_level": "WARNING",
                "service": {
                    "host": "127.0.0.1",
                    "port": port,
                    "schedule": None,
                    "api_keys": [{"name": "bench", "key": API_KEY, "role": "admin"}],
                },
            }
        )
    )
    env = {**os.environ, "COSTWARDEN_CONFIG": str(config)}
    command = [sys.executable, "-m", "costwarden", "serve"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        _wait_for_port(port, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=60)


async def _drive(
    base_url: str, rate: float, seconds: float, budgets: int, alerts: int
) -> tuple[list[float], int]:
    """Send ``rate`` requests per second for ``seconds``; return latencies in ms and errors."""
    rng = random.Random(11)
    count = int(rate * seconds)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    headers = {"X-API-Key": API_KEY}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=30
    ) as client:
        start = time.perf_counter() + 0.1
        tasks = [
            asyncio.create_task(
                _one(client, start + index / rate, _target(index, rng, budgets, alerts))
            )
            for index in range(count)
        ]
        results = await asyncio.gather(*tasks)
    latencies = [latency for latency, ok in results if ok]
    return latencies, sum(1 for _, ok in results if not ok)


def _target(
    index: int, rng: random.Random, budgets: int, alerts: int
) -> tuple[str, dict[str, Any]]:
    if index % 2 == 0:
        return "/api/v1/budgets", {"limit": 100, "offset": rng.randrange(0, max(budgets - 100, 1))}
    params: dict[str, Any] = {"limit": 100, "offset": rng.choice((0, 0, 100, 500))}
    choice = rng.random()
    if choice < 0.3:
        params["severity"] = rng.choice(SEVERITIES)
    elif choice < 0.5:
        params["budget"] = f"team-{rng.randrange(budgets):04d}"
    return "/api/v1/alerts", params


async def _one(
    client: httpx.AsyncClient, scheduled: float, target: tuple[str, dict[str, Any]]
) -> tuple[float, bool]:
    delay = scheduled - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    path, params = target
    try:
        response = await client.get(path, params=params)
        ok = response.status_code == 200
        if not ok:
            print(f"GET {path} returned {response.status_code}: {response.text[:200]}")
    except httpx.HTTPError as exc:
        print(f"GET {path} failed: {type(exc).__name__}: {exc}")
        ok = False
    return (time.perf_counter() - scheduled) * 1000, ok


def _report(args: argparse.Namespace, url: str, latencies: list[float], errors: int) -> None:
    database = url.split(":", 1)[0].split("+")[0]
    ordered = sorted(latencies)

    def pct(share: float) -> float:
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, costwarden {__version__}; load generator on the same host"
    )
    print(
        f"{len(latencies) + errors} requests at {args.rate:g}/s for {args.seconds:g} s, "
        f"{errors} errors; mean {statistics.fmean(ordered) if ordered else float('nan'):.1f} ms, "
        f"max {ordered[-1] if ordered else float('nan'):.1f} ms"
    )
    print()
    print(
        "| database | budgets | alerts | rate (req/s) | requests | errors | p50 (ms) | p95 (ms) "
        "| p99 (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {database} | {args.budgets} | {args.alerts} | {args.rate:g} | "
        f"{len(latencies) + errors} | {errors} | {pct(0.50):.1f} | {pct(0.95):.1f} | "
        f"{pct(0.99):.1f} |"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listened on 127.0.0.1:{port} within {START_TIMEOUT_SECONDS:g} s")


if __name__ == "__main__":
    main()
