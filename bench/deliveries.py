"""Benchmark the delivery worker: outbox rows sent per second to a loopback receiver.

Run from the repository root: ``.venv/bin/python bench/deliveries.py``. It prints a Markdown
report; ``--output FILE`` also writes it.

The outbox gets ``--rows`` pending rows spread over ``--channels`` ``webhook`` channels (signed
Standard Webhooks POSTs). A receiver on 127.0.0.1, served by uvicorn in a thread of the same
process, returns 200 for every POST and counts them by ``webhook-id``. The worker drains the
outbox with rate limits high enough never to wait, so the figure is the cost of claiming,
rendering, signing, sending and recording. The receiver shares the Python process, and so the
GIL, with the worker: a receiver elsewhere would leave the worker more CPU.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import insert

from costwarden.config import DeliverySettings, NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.notice import Notice
from costwarden.notify.worker import DeliveryWorker
from costwarden.simulator.server import LOOPBACK, bind_socket, uvicorn_config
from costwarden.store import Store
from costwarden.store.tables import OutboxRecord

SECRET = "whsec_" + base64.b64encode(b"costwarden-benchmark-key-32bytes").decode()


class Receiver:
    """An ASGI app that returns 200 for every request and counts ``webhook-id`` headers."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        headers = dict(scope["headers"])
        with self._lock:
            self.counts[headers.get(b"webhook-id", b"").decode()] += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def serve(app: Receiver) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn_config(app)  # type: ignore[arg-type]
    config.interface = "asgi3"
    server = uvicorn.Server(config)
    sock = bind_socket(LOOPBACK, 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, f"http://{LOOPBACK}:{sock.getsockname()[1]}"


def fill_outbox(store: Store, rows: int, channels: int) -> None:
    now = datetime.now(UTC)
    values = []
    for index in range(rows):
        alert_id = f"bench-{index}"
        notice = Notice(
            alert_id=alert_id, kind="budget", severity="warning",
            title=f"Budget prod-{index % 50} will exceed its amount", generated_at=now,
            facts=(("Budget", "10,000.00 USD"), ("Forecast", "11,204.50 USD")),
        )
        values.append(
            {
                "id": str(uuid.uuid4()), "channel": f"hook-{index % channels}",
                "alert_id": alert_id, "event": "trigger", "route": "bench",
                "notices": [notice.to_json()], "status": "pending", "attempts": 0,
                "next_attempt_at": now, "created_at": now + timedelta(microseconds=index),
                "updated_at": now,
            }
        )
    with store.transaction() as session:
        session.execute(insert(OutboxRecord), values)


def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    receiver = Receiver()
    server, thread, url = serve(receiver)
    store = Store.open(database_url)
    try:
        fill_outbox(store, args.rows, args.channels)
        channels = {
            f"hook-{index}": {
                "type": "webhook", "url": f"{url}/hook-{index}", "secret": SECRET,
                "rate_per_second": 1_000_000, "burst": 1_000_000,
            }
            for index in range(args.channels)
        }
        settings = NotifySettings(
            channels=channels,
            delivery=DeliverySettings(batch_size=args.batch_size, concurrency=args.concurrency),
        )
        worker = DeliveryWorker(store, settings, build_channels(settings))
        started = time.perf_counter()
        report = worker.drain()
        elapsed = time.perf_counter() - started
        worker.close()
    finally:
        store.close()
        server.should_exit = True
        thread.join(10)
    duplicates = sum(count - 1 for count in receiver.counts.values() if count > 1)
    return {"sent": report.sent, "seconds": elapsed, "received": sum(receiver.counts.values()),
            "duplicates": duplicates}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{nproc or os.cpu_count()} CPUs, {cpu}"


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "## Delivery worker",
        "",
        f"- Command: `.venv/bin/python bench/deliveries.py --rows {args.rows} --channels "
        f"{args.channels} --concurrency {args.concurrency} --batch-size {args.batch_size}`",
        f"- Machine: {machine()}; run on {datetime.now(UTC):%Y-%m-%d}",
        f"- Software: Python {platform.python_version()}, httpx {version('httpx')}, "
        f"uvicorn {version('uvicorn')}, SQLAlchemy {version('sqlalchemy')}",
        "",
        "| database | rows sent | seconds | rows per second | duplicates |",
        "|---|---|---|---|---|",
    ]
    for name, result in results.items():
        rate = result["sent"] / result["seconds"] if result["seconds"] else 0.0
        lines.append(
            f"| {name} | {result['sent']:,} | {result['seconds']:.1f} | {rate:,.0f} | "
            f"{result['duplicates']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="Outbox rows to send.")
    parser.add_argument("--channels", type=int, default=20, help="Webhook channels.")
    parser.add_argument(
        "--concurrency", type=int, default=8,
        help="Channels sent to at once (delivery.concurrency).",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1_000, help="Rows claimed per scan (delivery.batch_size)."
    )
    parser.add_argument(
        "--postgres-url", help="Also measure on this PostgreSQL database (it must be empty)."
    )
    parser.add_argument("--output", type=Path, help="Also write the report to this file.")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="costwarden-bench-") as directory:
        results["SQLite (file)"] = run(args, f"sqlite:///{Path(directory) / 'bench.db'}")
    if args.postgres_url:
        results["PostgreSQL"] = run(args, args.postgres_url)

    text = report(args, results)
    sys.stdout.write(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
