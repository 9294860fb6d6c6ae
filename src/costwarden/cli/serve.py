"""``costwarden serve`` (the long-lived service) and ``costwarden db`` (database migrations)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from costwarden.budgets.loader import parse_budget_specs
from costwarden.cli.common import state, stderr, stdout
from costwarden.config import Settings
from costwarden.errors import ConfigError, StoreError

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
    # Bind before anything else, so a port in use stops serve before budgets or passes.
    sock = _bind(settings.service.host, settings.service.port)

    import uvicorn

    from costwarden.service.app import create_app, open_service

    try:
        service = open_service(settings)
    except BaseException:
        sock.close()
        raise
    app = create_app(service, close_store=True)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=HTTP_SHUTDOWN_SECONDS,
    )
    server = _server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise typer.Exit(1)


def _bind(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to ``host:port``; an address in use or refused stops serve."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {_address(host, port)}: {exc.strerror or exc}; stop the process "
            "that uses it or choose another address with --host/--port "
            "(COSTWARDEN_SERVICE_HOST, COSTWARDEN_SERVICE_PORT)"
        ) from exc
    sock.set_inheritable(True)
    return sock


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _server(config: Any) -> Any:
    """Return a uvicorn server that prints one line to stderr, at any log level, once it listens."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and sockets:
                host, port = sockets[0].getsockname()[:2]
                url = f"http://{_address(host, port)}"
                stderr.print(
                    f"costwarden serve listening on {url} (API docs at {url}/docs)",
                    highlight=False, soft_wrap=True,
                )

    return Server(config)


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
    except SQLAlchemyError as exc:
        where = store.engine.url.render_as_string(hide_password=True).split("@")[-1]
        raise StoreError(
            f"cannot open database {where}: {type(exc).__name__}: {exc.args[0]}; "
            "check --database-url or COSTWARDEN_DATABASE_URL"
        ) from exc
    finally:
        store.close()
    head = head_revision()
    note = "up to date" if revision == head else "run 'costwarden db upgrade'"
    stdout.print(f"database at revision {revision or 'none'}; newest {head} ({note})")
