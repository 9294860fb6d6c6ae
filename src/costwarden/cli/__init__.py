"""The ``costwarden`` command. Each command group lives in its own module and registers here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from costwarden import __version__
from costwarden.cli.common import CliState, stderr
from costwarden.errors import CostwardenError
from costwarden.logging_setup import configure_logging

app = typer.Typer(
    name="costwarden",
    help="Predictive budget alerts and cost control for Kubernetes fleets on Spectro Cloud Palette.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"costwarden {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML settings file (also COSTWARDEN_CONFIG).", dir_okay=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy database URL (also COSTWARDEN_DATABASE_URL); default: a SQLite file "
            "in the user data directory.",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="-v info, -vv debug; default: log_level."),
    ] = 0,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Write logs as JSON lines; default: log_format.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    level = {0: None, 1: "INFO"}.get(verbose, "DEBUG")
    fmt = "json" if log_json else None
    # Until the settings are loaded, the flags or the defaults apply.
    configure_logging(level or "WARNING", fmt or "console")
    ctx.obj = CliState(
        config_file=config,
        overrides={"database_url": database_url},
        log_level=level,
        log_format=fmt,
    )


def _register_commands() -> None:
    from costwarden.cli import (
        actions,
        anomalies,
        approvals,
        audit,
        backtest,
        budgets,
        deliveries,
        ingest,
        policy,
        recommend,
        review,
        run,
        serve,
        sim,
    )
    from costwarden.cli import config as config_commands

    modules = (
        run, ingest, budgets, sim, backtest, anomalies, recommend, deliveries, serve,
        review, audit, policy, actions, approvals, config_commands,
    )
    for module in modules:
        module.register(app)


_register_commands()


def main() -> None:
    """Run the CLI, turning costwarden errors into a message and the exit code of their class.

    Typer's standalone mode reports usage errors itself (exit 2) and exits with the code of a
    ``typer.Exit``; only costwarden's own errors propagate out of it.
    """
    try:
        app()
    except CostwardenError as exc:
        stderr.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
