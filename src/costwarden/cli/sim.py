"""``costwarden palette-sim``: run the Palette API simulator in the foreground."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from costwarden.cli.common import stdout
from costwarden.cli.run import parse_as_of
from costwarden.errors import ConfigError
from costwarden.simulator.app import create_app
from costwarden.simulator.planted import PLANTED_CLUSTER_COUNT
from costwarden.simulator.server import bind_socket, uvicorn_config
from costwarden.simulator.settings import DEFAULT_API_KEY, SimulatorSettings


class TimestampUnit(StrEnum):
    SECONDS = "seconds"
    MILLISECONDS = "milliseconds"


def register(app: typer.Typer) -> None:
    app.command("palette-sim")(palette_sim)


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
) -> None:
    """Run a simulated Palette API with a seeded fleet until Ctrl+C."""
    try:
        settings = SimulatorSettings(
            api_keys=(api_key,),
            seed=seed,
            as_of=parse_as_of(as_of) if as_of else None,
            history_days=history_days,
            cluster_count=clusters,
            timestamp_unit=timestamp_unit.value,
            retry_after_seconds=retry_after,
            fault_rate=fault_rate,
            rate_limit_enabled=not no_rate_limit,
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
    stdout.print("Press Ctrl+C to stop.")
    uvicorn.Server(uvicorn_config(app, access_log=True)).run(sockets=[sock])
