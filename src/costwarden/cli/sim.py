"""``costwarden palette-sim``: run the Palette API simulator in the foreground.

``costwarden palette-sim-metrics`` writes the Kubernetes metrics of the planted waste clusters
(and, on request, generated clusters) as OpenMetrics text for a Prometheus backfill.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from costwarden.cli.common import stdout
from costwarden.cli.run import parse_as_of
from costwarden.errors import ConfigError
from costwarden.simulator.app import create_app
from costwarden.simulator.metrics import (
    DEFAULT_DAYS,
    DEFAULT_INTERVAL_SECONDS,
    generated_clusters,
    write_openmetrics,
)
from costwarden.simulator.planted import PLANTED_CLUSTER_COUNT
from costwarden.simulator.server import bind_socket, uvicorn_config
from costwarden.simulator.settings import (
    DEFAULT_API_KEY,
    DEFAULT_KUBERNETES_TOKEN,
    SimulatorSettings,
)
from costwarden.simulator.waste_plans import WASTE_CLUSTERS, WASTE_PROJECT


class TimestampUnit(StrEnum):
    SECONDS = "seconds"
    MILLISECONDS = "milliseconds"


def register(app: typer.Typer) -> None:
    app.command("palette-sim")(palette_sim)
    app.command("palette-sim-metrics")(palette_sim_metrics)


def palette_sim(
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="TCP port to listen on; 0 picks a free port."
        ),
    ] = 8765,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulated fleet.")] = 0,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Simulated current time, a date (midnight UTC) or an ISO 8601 time; default: now.",
        ),
    ] = None,
    api_key: Annotated[str, typer.Option("--api-key", help="API key the simulator accepts.")] = (
        DEFAULT_API_KEY
    ),
    timestamp_unit: Annotated[
        TimestampUnit,
        typer.Option("--timestamp-unit", help="Unit of epoch timestamps in cost data points."),
    ] = (TimestampUnit.SECONDS),
    retry_after: Annotated[
        int | None,
        typer.Option(
            "--retry-after",
            min=0,
            help="Send Retry-After with this many seconds on every 429; "
            "default: no header, as Palette documents none.",
        ),
    ] = None,
    fault_rate: Annotated[
        float,
        typer.Option(
            "--fault-rate",
            min=0.0,
            max=1.0,
            help="Fraction of calls that get an injected 429, 500, 502 or 503.",
        ),
    ] = 0.0,
    clusters: Annotated[
        int,
        typer.Option(
            "--clusters",
            min=PLANTED_CLUSTER_COUNT,
            help=f"Clusters in the fleet, the {PLANTED_CLUSTER_COUNT} planted ones included.",
        ),
    ] = 54,
    history_days: Annotated[
        int,
        typer.Option(
            "--history-days", min=1, help="Days of cost history before the day of --as-of."
        ),
    ] = 180,
    waste_clusters: Annotated[
        bool,
        typer.Option(
            "--waste-clusters",
            help=f"Add the {len(WASTE_CLUSTERS)} clusters of the {WASTE_PROJECT} project, which "
            "plant waste with known savings, on top of --clusters; palette-sim-metrics writes "
            "their Kubernetes metrics.",
        ),
    ] = False,
    no_rate_limit: Annotated[
        bool,
        typer.Option(
            "--no-rate-limit", help="Never return 429 for exceeding Palette's rate limits."
        ),
    ] = False,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to bind; anything but loopback exposes the simulator."
        ),
    ] = ("127.0.0.1"),
    kubernetes_api_url: Annotated[
        str | None,
        typer.Option(
            "--kubernetes-api-url",
            help="Kubernetes API server URL written into every cluster's kubeconfig, for the "
            "namespace actions; default: none, and the kubeconfig endpoint returns 404.",
        ),
    ] = None,
    kubernetes_token: Annotated[
        str,
        typer.Option(
            "--kubernetes-token", help="Bearer token of the user in the served kubeconfigs."
        ),
    ] = DEFAULT_KUBERNETES_TOKEN,
) -> None:
    """Run a simulated Palette API with a seeded fleet until Ctrl+C."""
    if kubernetes_api_url is not None and not kubernetes_api_url.startswith(
        ("http://", "https://")
    ):
        raise ConfigError(
            f"--kubernetes-api-url {kubernetes_api_url!r} is not an http or https URL; use the "
            "API server's address, e.g. https://127.0.0.1:6443"
        )

    try:
        settings = SimulatorSettings(
            api_keys=(api_key,),
            seed=seed,
            as_of=parse_as_of(as_of) if as_of else None,
            history_days=history_days,
            cluster_count=clusters,
            waste_clusters=waste_clusters,
            timestamp_unit=timestamp_unit.value,
            retry_after_seconds=retry_after,
            fault_rate=fault_rate,
            rate_limit_enabled=not no_rate_limit,
            kubernetes_api_url=kubernetes_api_url,
            kubernetes_token=kubernetes_token,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid simulator settings: {exc}") from exc

    app = create_app(settings)
    fleet = app.state.simulator.fleet
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host} port {port}: {exc.strerror}; pick another --port, or 0 "
            "for a free one"
        ) from exc
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}"

    stdout.print(
        f"Palette simulator on {url} (seed {seed}, as of {fleet.as_of.isoformat()}, "
        f"{len(fleet.clusters)} clusters)",
        highlight=False,
        soft_wrap=True,
    )
    stdout.print(f"API key: {api_key}", highlight=False)
    stdout.print(
        f"Point costwarden at it: COSTWARDEN_PALETTE_URL={url} "
        f"COSTWARDEN_PALETTE_API_KEY={api_key}",
        highlight=False,
        soft_wrap=True,
    )
    if kubernetes_api_url is not None:
        stdout.print(f"Kubeconfigs point at {kubernetes_api_url}", highlight=False)
    stdout.print("Press Ctrl+C to stop.")
    uvicorn.Server(uvicorn_config(app, access_log=True)).run(sockets=[sock])


def palette_sim_metrics(
    out: Annotated[
        Path, typer.Option("--out", help="OpenMetrics file to write; an existing file is replaced.")
    ],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the usage noise.")] = 0,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Time of the last sample, a date (midnight UTC) or an ISO 8601 time; use the "
            "simulator's --as-of. Default: now, rounded down to the sample interval.",
        ),
    ] = None,
    clusters: Annotated[
        int,
        typer.Option(
            "--clusters", min=0, help="Generated clusters of right-sized workloads to add."
        ),
    ] = 0,
    workloads_per_cluster: Annotated[
        int,
        typer.Option(
            "--workloads-per-cluster", min=1, help="Deployments in each generated cluster."
        ),
    ] = 50,
    days: Annotated[
        int, typer.Option("--days", min=1, max=60, help="Days of samples before --as-of.")
    ] = DEFAULT_DAYS,
    interval_seconds: Annotated[
        int,
        typer.Option("--interval-seconds", min=10, max=3600, help="Seconds between samples."),
    ] = DEFAULT_INTERVAL_SECONDS,
) -> None:
    """Write the planted waste clusters' Kubernetes metrics as OpenMetrics text.

    Load the file into a Prometheus data directory with
    `promtool tsdb create-blocks-from openmetrics --max-block-duration=240h FILE DATA_DIR`,
    then start Prometheus with `--storage.tsdb.path=DATA_DIR` and a retention longer than
    the age of the samples (e.g. `--storage.tsdb.retention.time=3650d`). Series carry a
    `cluster` label.
    """
    end = parse_as_of(as_of) if as_of else _floor(datetime.now(UTC), interval_seconds)
    plans = [*WASTE_CLUSTERS, *generated_clusters(clusters, workloads_per_cluster, seed)]
    try:
        samples = write_openmetrics(
            out, plans, end=end, days=days, interval_seconds=interval_seconds, seed=seed
        )
    except OSError as exc:
        raise ConfigError(
            f"failed to write {out}: {exc.strerror}; check that its directory exists and is "
            "writable"
        ) from exc
    stdout.print(
        f"Wrote {samples} samples of {len(plans)} clusters to {out}, ending {end.isoformat()}",
        highlight=False,
        soft_wrap=True,
    )
    stdout.print(
        f"Backfill: promtool tsdb create-blocks-from openmetrics --max-block-duration=240h "
        f"{out} DATA_DIR",
        highlight=False,
        soft_wrap=True,
    )


def _floor(moment: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, UTC)
