"""Benchmark inbound signed webhooks: a fixed arrival rate, then a count of what was stored.

Run from the repository root: ``.venv/bin/python bench/webhooks.py``. It prints a Markdown
report; ``--output FILE`` also writes it.

For each database (``--databases sqlite postgresql``) the benchmark starts ``costwarden serve``
in a subprocess on 127.0.0.1 with a fresh database: a SQLite file, or a throwaway PostgreSQL
server started like the test suite starts one (``scripts/ensure-postgres.sh`` installs the
binaries). Several load processes then send ``cost.facts`` events signed with the Standard
Webhooks scheme at ``--rate`` events per second for ``--seconds`` seconds, open loop: each event
leaves at its scheduled time whether or not earlier ones got a response. Every event has a unique
``webhook-id`` and one cost record with a unique day and cluster. About ``--redeliver`` of the
sends repeat an earlier id with the same body and a fresh signature, as a sender's retry does.

Latency runs from an event's scheduled send time to its response, so a server that falls
behind shows it as latency instead of sending less. After the load, the service's event worker
gets time to process every stored event. Then the benchmark checks the database: each unique id
is stored exactly once and got exactly one accepted response, and each event produced exactly
one cost fact.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from standardwebhooks import Webhook

from costwarden.store.tables import CostFact, WebhookEvent

SECRET = "whsec_" + "YmVuY2htYXJrLXNlY3JldC1ub3QtZm9yLXByb2R1Y3Rpb24="
FIRST_DAY = date(2020, 1, 1)
CLUSTERS = 1000
"""Distinct cluster names; with the day they make each event's record unique."""
CONNECTIONS = 32
"""Keep-alive connections per load process; a request waits for a free one."""


@dataclass
class LoadResult:
    sent: int = 0
    unique_ids: list[str] = field(default_factory=list)
    redeliveries: int = 0
    accepted: list[str] = field(default_factory=list)
    duplicates: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    first_send: float = 0.0
    last_response: float = 0.0
    cpu_seconds: float = 0.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _body(index: int) -> bytes:
    record = {
        "day": (FIRST_DAY + timedelta(days=index // CLUSTERS)).isoformat(),
        "amount": f"{(index % 9973) / 100:.2f}",
        "currency": "USD",
        "cluster": f"bench-{index % CLUSTERS:04d}",
        "service": "webhook-bench",
    }
    return json.dumps({"type": "cost.facts", "data": {"records": [record]}}).encode()


def _headers(webhook: Webhook, event_id: str, body: bytes) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(event_id, now, body),
        "content-type": "application/json",
    }


class Connection:
    """One keep-alive HTTP/1.1 connection that sends one request at a time.

    httpx spends several milliseconds of CPU per request, which on a small machine starves the
    service under test, so the load processes write requests and parse responses themselves.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return status, payload


async def _connection_worker(
    queue: asyncio.Queue[tuple[str, bytes, float] | None],
    host: str,
    port: int,
    webhook: Webhook,
    result: LoadResult,
) -> None:
    connection = Connection(host, port)
    while True:
        item = await queue.get()
        if item is None:
            return
        event_id, body, due = item
        try:
            status, payload = await connection.post(
                "/webhooks/events", body, _headers(webhook, event_id, body)
            )
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            key = type(exc).__name__
            result.errors[key] = result.errors.get(key, 0) + 1
            connection = Connection(host, port)
            continue
        result.last_response = time.perf_counter()
        result.latencies.append(result.last_response - due)
        if status != 202:
            key = f"HTTP {status}"
            result.errors[key] = result.errors.get(key, 0) + 1
        elif json.loads(payload)["status"] == "accepted":
            result.accepted.append(event_id)
        else:
            result.duplicates += 1


async def _load(
    url: str,
    worker: int,
    workers: int,
    rate: float,
    seconds: float,
    redeliver: float,
    start_at: float,
) -> LoadResult:
    """Send this worker's share of the schedule: events worker, worker + workers, ..."""
    webhook = Webhook(SECRET)
    result = LoadResult()
    rng = random.Random(worker)
    address = httpx.URL(url)
    total = int(rate * seconds)
    interval = 1.0 / rate
    # perf_counter is per process; start_at is wall time shared by every load process.
    origin = time.perf_counter() + (start_at - time.time())

    queue: asyncio.Queue[tuple[str, bytes, float] | None] = asyncio.Queue()
    connections = [
        asyncio.create_task(
            _connection_worker(queue, address.host, address.port or 80, webhook, result)
        )
        for _ in range(CONNECTIONS)
    ]
    cpu_start = time.process_time()

    for slot in range(worker, total, workers):
        due = origin + slot * interval
        earlier = len(result.unique_ids)
        if earlier > 50 and rng.random() < redeliver:
            event_id = result.unique_ids[rng.randrange(earlier - 50)]
            body = _body(int(event_id.rsplit("_", 1)[1]))
            result.redeliveries += 1
        else:
            event_id = f"msg_bench_{slot}"
            body = _body(slot)
            result.unique_ids.append(event_id)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((event_id, body, due))
        result.sent += 1

    for _ in connections:
        queue.put_nowait(None)
    await asyncio.gather(*connections)

    result.first_send = origin
    result.cpu_seconds = time.process_time() - cpu_start
    return result


def _load_process(args: tuple[str, int, int, float, float, float, float]) -> LoadResult:
    return asyncio.run(_load(*args))


def _start_postgres(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a throwaway PostgreSQL server on 127.0.0.1, as the test suite does."""

    def binary(name: str) -> str:
        found = shutil.which(name) or sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))[-1]
        return str(found)

    data = base / "pgdata"
    port = _free_port()
    run_as: list[str] = []
    if os.getuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, user="postgres")
    subprocess.run(
        [
            *run_as,
            binary("initdb"),
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
            binary("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={base}",
            "-c",
            "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"postgresql+psycopg://costwarden@127.0.0.1:{port}/postgres"
    engine = create_engine(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            break
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    engine.dispose()
    return server, url


def _start_service(database_url: str, base: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``costwarden serve`` on a free loopback port and wait until /readyz reports ready."""
    port = _free_port()
    config = base / "config.yaml"
    config.write_text(
        f"database_url: {database_url}\n"
        "log_level: WARNING\n"
        "service:\n"
        "  schedule: null\n"
        f"  event_secrets: ['{SECRET}']\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("COSTWARDEN_")}
    env["COSTWARDEN_CONFIG"] = str(config)

    command = [
        sys.executable,
        "-m",
        "costwarden",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = open(base / "service.log", "wb")  # noqa: SIM115 - the process keeps it open
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"costwarden serve exited: {(base / 'service.log').read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("costwarden serve did not become ready within 60 s")


def _cpu_seconds(pid: int) -> float:
    """Return the user and system CPU time of a running process, from /proc (Linux only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_for_worker(database_url: str, timeout: float) -> tuple[float, int]:
    """Wait until no event is pending; return the seconds waited and the events still pending."""
    engine = create_engine(database_url)
    started = time.monotonic()
    pending_query = (
        select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "pending")
    )
    try:
        while True:
            with engine.connect() as connection:
                pending = int(connection.scalar(pending_query) or 0)
            if pending == 0 or time.monotonic() - started > timeout:
                return time.monotonic() - started, pending
            time.sleep(0.5)
    finally:
        engine.dispose()


def _check(database_url: str, results: list[LoadResult]) -> dict[str, int]:
    unique = {event_id for result in results for event_id in result.unique_ids}
    accepted = [event_id for result in results for event_id in result.accepted]
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = [row[0] for row in connection.execute(select(WebhookEvent.id))]
            statuses = dict(
                connection.execute(
                    select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
                ).all()
            )
            facts = int(connection.scalar(select(func.count()).select_from(CostFact)) or 0)
    finally:
        engine.dispose()
    stored_set = set(stored)
    return {
        "unique ids sent": len(unique),
        "rows stored": len(stored),
        "lost (sent, not stored)": len(unique - stored_set),
        "duplicate rows": len(stored) - len(stored_set),
        "ids accepted twice": len(accepted) - len(set(accepted)),
        "ids never accepted": len(unique - set(accepted)),
        "events done": int(statuses.get("done", 0)),
        "events failed": int(statuses.get("failed", 0)),
        "cost facts": facts,
    }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run_one(database: str, args: argparse.Namespace) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix=f"costwarden-bench-{database}-"))
    postgres = None
    try:
        if database == "postgresql":
            postgres, database_url = _start_postgres(base)
        else:
            database_url = f"sqlite:///{base / 'costwarden.db'}"
        service, url = _start_service(database_url, base)
        try:
            start_at = time.time() + 2.0
            cpu_before = _cpu_seconds(service.pid)
            jobs = [
                (
                    url,
                    worker,
                    args.load_processes,
                    args.rate,
                    args.seconds,
                    args.redeliver,
                    start_at,
                )
                for worker in range(args.load_processes)
            ]
            with multiprocessing.get_context("spawn").Pool(args.load_processes) as pool:
                results = pool.map(_load_process, jobs)
            load_cpu = _cpu_seconds(service.pid) - cpu_before
            drain_seconds, still_pending = _wait_for_worker(database_url, args.drain_timeout)
        finally:
            _stop(service)
        checks = _check(database_url, results)
    finally:
        if postgres is not None:
            _stop(postgres)
        shutil.rmtree(base, ignore_errors=True)

    latencies = [value for result in results for value in result.latencies]
    sent = sum(result.sent for result in results)
    span = max(result.last_response for result in results) - min(
        result.first_send for result in results
    )
    errors: dict[str, int] = {}
    for result in results:
        for key, count in result.errors.items():
            errors[key] = errors.get(key, 0) + count
    return {
        "database": database,
        "sent": sent,
        "redeliveries": sum(result.redeliveries for result in results),
        "duplicates answered": sum(result.duplicates for result in results),
        "rate": sent / span if span > 0 else float("nan"),
        "p50 ms": 1000 * _percentile(latencies, 0.50),
        "p99 ms": 1000 * _percentile(latencies, 0.99),
        "max ms": 1000 * max(latencies, default=float("nan")),
        "errors": errors,
        "drain s": drain_seconds,
        "service cpu s": load_cpu,
        "load cpu s": sum(result.cpu_seconds for result in results),
        "pending after drain": still_pending,
        **checks,
    }


def render(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    lines = [
        "## Inbound webhooks",
        "",
        f"Command: `.venv/bin/python bench/webhooks.py --rate {args.rate:g} "
        f"--seconds {args.seconds:g} --load-processes {args.load_processes}`. Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; the "
        "load processes, the service and the database share these cores.",
        "",
        "| Database | Target /s | Achieved /s | Sent | Re-deliveries | p50 ms | p99 ms | Errors "
        "| Lost | Duplicate rows | Cost facts | Worker drain s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        errors = sum(row["errors"].values()) if isinstance(row["errors"], dict) else row["errors"]
        lines.append(
            f"| {row['database']} | {args.rate:g} | {row['rate']:.0f} | {row['sent']} | "
            f"{row['redeliveries']} | {row['p50 ms']:.1f} | {row['p99 ms']:.1f} | {errors} | "
            f"{row['lost (sent, not stored)']} | {row['duplicate rows']} | {row['cost facts']} | "
            f"{row['drain s']:.1f} |"
        )
    lines.append("")
    for row in rows:
        lines.append(
            f"{row['database']}: "
            + ", ".join(f"{key} {value}" for key, value in row.items() if key != "database")
        )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="Events sent per second.")
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="Length of the load, in seconds."
    )
    parser.add_argument(
        "--redeliver", type=float, default=0.05, help="Share of sends that repeat an earlier id."
    )
    parser.add_argument("--load-processes", type=int, default=2, help="Processes that send events.")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=300.0,
        help="Seconds the event worker gets to finish.",
    )
    parser.add_argument(
        "--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--output", type=Path, help="Also write the report to this file.")
    args = parser.parse_args()

    rows = [run_one(database, args) for database in args.databases]
    report = render(rows, args)
    print(report)
    if args.output:
        args.output.write_text(report)


if __name__ == "__main__":
    main()
