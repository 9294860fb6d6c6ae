"""``costwarden serve`` (the long-lived service) and ``costwarden db`` (database migrations)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from costwarden.budgets.loader import parse_budget_specs
from costwarden.cli.common import state, stdout
from costwarden.config import Settings
from costwarden.errors import ConfigError

logger = logging.getLogger(__name__)

HTTP_SHUTDOWN_SECONDS = 10
"""Time open HTTP requests get at shutdown; a running pass then gets shutdown_grace_seconds."""

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (service.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port to listen on (service.port).")
    ] = None,
    budgets_file: Annotated[
        Path | None,
        typer.Option(
            "--budgets",
            "-b",
            help="Budget file (YAML) imported at start; default: budgets_file from settings.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Run the service: scheduled and requested passes, the REST API, webhooks and metrics.

    SIGTERM or SIGINT stops it gracefully: a running pass gets service.shutdown_grace_seconds
    to finish, then it is marked abandoned.
    """
    settings = _service_settings(ctx, host, port, budgets_file)

    import uvicorn

    from costwarden.service.app import create_app, open_service

    service = open_service(settings)
    app = create_app(service, close_store=True)
    config = uvicorn.Config(
        app,
        host=settings.service.host,
        port=settings.service.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=HTTP_SHUTDOWN_SECONDS,
    )
    logger.info(
        "costwarden serve listening on %s:%d", settings.service.host, settings.service.port
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(1)


def _service_settings(
    ctx: typer.Context, host: str | None, port: int | None, budgets_file: Path | None
) -> Settings:
    """Build the settings with the flags applied; invalid values stop ``serve`` with exit 2."""
    settings = state(ctx).settings(
        budgets_file=budgets_file, service__host=host, service__port=port
    )
    path = settings.budgets_file
    if path is not None:
        if not path.is_file():
            raise ConfigError(
                f"budgets_file: {path} is not a file; pass --budgets FILE or set "
                "COSTWARDEN_BUDGETS_FILE to an existing budget file"
            )
        # Check the budget file before the server starts, so an error stops it with exit 2.
        parse_budget_specs(path.read_text(encoding="utf-8"), path)
    return settings


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply every database migration that the database does not have yet."""
    from costwarden.store import Store
    from costwarden.store.db import current_revision

    settings = state(ctx).settings()
    store = Store.open(settings.database_url, migrate=True)
    try:
        revision = current_revision(store.engine)
    finally:
        store.close()
    stdout.print(f"database at revision {revision}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's migration revision and the newest one this version ships."""
    from costwarden.store import Store
    from costwarden.store.db import current_revision, head_revision

    settings = state(ctx).settings()
    store = Store.open(settings.database_url, migrate=False)
    try:
        revision = current_revision(store.engine)
    finally:
        store.close()
    head = head_revision()
    note = "up to date" if revision == head else "run 'costwarden db upgrade'"
    stdout.print(f"database at revision {revision or 'none'}; newest {head} ({note})")
