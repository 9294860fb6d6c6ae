"""Benchmark the recommenders on a large fleet against a local Prometheus.

Run from the repository root: ``.venv/bin/python bench/recommend.py``. It needs ``prometheus`` and
``promtool`` on PATH (``make prometheus`` installs them) and prints a Markdown report; ``--output
FILE`` also writes it.

Set-up, not timed: the simulator generates ``--clusters`` clusters (default 1,000), each with
``--workloads-per-cluster`` Deployments (default 50). Their metrics are written as OpenMetrics
text for 8 days at one sample per ``--interval`` seconds, turned into TSDB blocks with promtool,
and served by a Prometheus on 127.0.0.1. ``--data DIR`` keeps the blocks there and reuses them
on the next run.

Timed: one ``costwarden recommend`` pass in this process (``prometheus_report``): every usage
query, batched as the settings set, and every recommender, with the packaged prices. The report
gives its wall time and peak resident memory, the queries Prometheus served and their slowest
time, and any query Prometheus refused.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx

from costwarden.config import Settings, load_settings
from costwarden.recommend.runner import prometheus_report
from costwarden.simulator.metrics import generated_clusters, write_openmetrics

END = datetime(2026, 11, 16, tzinfo=UTC)
DAYS = 8
READY_TIMEOUT_SECONDS = 300.0
PROMETHEUS_CONFIG = "global:\n  scrape_interval: 1h\nscrape_configs: []\n"


def main() -> None:
    args = _arguments()
    workdir = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="costwarden-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    setup = _prepare(workdir, args)

    process, url = _start_prometheus(workdir)
    try:
        settings = _settings(url, args)
        result = _timed(settings)
        served = _prometheus_stats(url)
        rss = _prometheus_rss(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
        if not args.data:
            shutil.rmtree(workdir, ignore_errors=True)

    report = _report(args, setup, result, served, rss)
    print(report)
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--workloads-per-cluster", type=int, default=50)
    parser.add_argument(
        "--interval", type=int, default=14400, help="Seconds between samples (default 4 hours)."
    )
    parser.add_argument("--concurrency", type=int, default=4, help="Queries sent at once.")
    parser.add_argument("--data", help="Directory for the TSDB blocks, kept and reused.")
    parser.add_argument("--output", help="Also write the report to this file.")
    return parser.parse_args()


def _prepare(workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    """Write the metrics and backfill them, unless ``workdir`` already holds the blocks."""
    blocks = workdir / "data"
    marker = workdir / "samples.txt"
    if blocks.exists() and marker.exists():
        return {"samples": float(marker.read_text()), "generate": 0.0, "backfill": 0.0}

    text = workdir / "fleet.om"
    clock = time.monotonic()
    samples = write_openmetrics(
        text,
        generated_clusters(args.clusters, args.workloads_per_cluster),
        end=END,
        days=DAYS,
        interval_seconds=args.interval,
    )
    generate = time.monotonic() - clock

    clock = time.monotonic()
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "--max-block-duration=240h", "openmetrics",
         "--quiet", str(text), str(blocks)],
        check=True,
    )  # fmt: skip
    backfill = time.monotonic() - clock
    text.unlink()
    marker.write_text(str(samples))
    return {"samples": float(samples), "generate": generate, "backfill": backfill}


def _start_prometheus(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG, encoding="utf-8")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"Prometheus exited with {process.returncode}; see prometheus.log")
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("Prometheus was not ready in time; see prometheus.log")


def _settings(url: str, args: argparse.Namespace) -> Settings:
    return load_settings(
        prometheus={
            "url": url,
            "step_seconds": args.interval,
            "rate_window_seconds": 4 * args.interval,
            "concurrency": args.concurrency,
            "timeout_seconds": 600,
        },
    )


def _timed(settings: Settings) -> dict[str, object]:
    clock = time.monotonic()
    report = prometheus_report(settings, END)
    seconds = time.monotonic() - clock
    kinds = Counter(item.kind for item in report.items)
    return {
        "seconds": seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "recommendations": len(report.items),
        "kinds": dict(sorted(kinds.items())),
        "per_day": report.total_per_day,
    }


def _prometheus_stats(url: str) -> dict[str, float]:
    """Read the query counters and the slowest query time from Prometheus's own metrics."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found: dict[str, float] = {}
    for name, pattern in (
        ("queries", r'^prometheus_http_requests_total\{code="200",handler="/api/v1/query"\} (\S+)'),
        ("range_queries",
         r'^prometheus_http_requests_total\{code="200",handler="/api/v1/query_range"\} (\S+)'),
        ("refused", r'^prometheus_http_requests_total\{code="(?:4|5)\d\d",handler="/api/v1/query'
                    r'(?:_range)?"\} (\S+)'),
        ("inner_eval_p99",
         r'^prometheus_engine_query_duration_seconds\{slice="inner_eval",quantile="0.99"\} (\S+)'),
    ):  # fmt: skip
        values = [float(match) for match in re.findall(pattern, text, flags=re.MULTILINE)]
        found[name] = sum(values) if values else 0.0
    return found


def _prometheus_rss(pid: int) -> float:
    """Return Prometheus's peak resident memory in MiB, from /proc."""
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return 0.0
    match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def _report(
    args: argparse.Namespace,
    setup: dict[str, float],
    result: dict[str, object],
    served: dict[str, float],
    prometheus_rss: float,
) -> str:
    workloads = args.clusters * args.workloads_per_cluster
    command = " ".join(["bench/recommend.py", *sys.argv[1:]])
    lines = [
        "## Recommendations",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Prometheus {_prometheus_version()}, costwarden "
        f"{version('costwarden')}. Command: `.venv/bin/python {command}`.",
        "",
        f"Fleet: {args.clusters:,} clusters, {workloads:,} Deployments, {DAYS} days at one sample "
        f"every {args.interval // 60} minutes, {int(setup['samples']):,} samples "
        f"(generated in {setup['generate']:.0f} s, backfilled in {setup['backfill']:.0f} s).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| wall time of one recommend pass | {result['seconds']:.1f} s |",
        f"| peak memory of the pass | {result['peak_rss_mib']:,.0f} MiB |",
        f"| peak memory of Prometheus | {prometheus_rss:,.0f} MiB |",
        f"| instant / range queries served | {served['queries']:.0f} / "
        f"{served['range_queries']:.0f} |",
        f"| queries refused (4xx or 5xx) | {served['refused']:.0f} |",
        f"| slowest query evaluation (p99) | {served['inner_eval_p99']:.2f} s |",
        f"| recommendations | {result['recommendations']:,} |",
        f"| by kind | {', '.join(f'{k} {v:,}' for k, v in result['kinds'].items()) or '-'} |",
        "",
    ]
    return "\n".join(lines)


def _prometheus_version() -> str:
    completed = subprocess.run(
        ["prometheus", "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"version (\S+)", completed.stdout + completed.stderr)
    return match.group(1) if match else "unknown"


if __name__ == "__main__":
    main()
