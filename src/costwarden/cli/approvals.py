"""``costwarden approvals list|show|approve|reject|retry|rollback``: decide approval requests
from a shell, and ask for the rollback of an applied change.

Exit codes: 0 when the decision was recorded or changed nothing (the message says which), 2 for
an unknown or ambiguous request id, 8 when the decision was refused or the request was
superseded because its labels or policies changed, and the code of the error when the approved
action did not run (9 for an action error, 8 when the guard refused it, 4 when Palette could not
be read).

The actor is ``--as NAME`` or the operating system user, taken without further proof. Whoever
can run this command against the database is therefore trusted like an approver: give shell
access to the database only to operators who may approve.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from costwarden.approvals import STATUSES, decide, find_request, list_requests, request_json
from costwarden.approvals.decisions import DecisionOutcome, retry
from costwarden.approvals.requests import decisions_of
from costwarden.approvals.rollback import request_rollback
from costwarden.cli.common import print_json, state, stdout
from costwarden.config import Settings
from costwarden.domain.governance import Vote
from costwarden.errors import ConfigError, NotFoundError
from costwarden.store import Store
from costwarden.store.tables import ApprovalRequestRecord

approvals_app = typer.Typer(
    help="List approval requests and approve or reject them (trusted operators only).",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
ActorOption = Annotated[
    str | None,
    typer.Option("--as", help="Approver identity recorded and checked against approvals.groups; "
                 "default: the operating system user."),
]
RequestArgument = Annotated[str, typer.Argument(help="Request id, or a unique prefix of it.")]


@approvals_app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only requests in this status: {', '.join(STATUSES)}."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Maximum requests shown.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List approval requests, newest first."""
    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status {status!r} is invalid; use one of {', '.join(STATUSES)}")
    settings = state(ctx).settings()
    store = Store.open(settings.database_url)
    try:
        with store.transaction() as session:
            rows = list_requests(session, settings.service.tenant, status=status, limit=limit)
            items = [request_json(row) for row in rows]
    finally:
        store.close()
    if as_json:
        print_json(items)
        return
    stdout.print(_table(items))


@approvals_app.command("show")
def show_command(ctx: typer.Context, request_id: RequestArgument, as_json: JsonOption = False
                 ) -> None:
    """Show one request: the change, its evidence and every decision on it."""
    settings = state(ctx).settings()
    store = Store.open(settings.database_url)
    try:
        with store.transaction() as session:
            record = _find(session, settings, request_id)
            item = request_json(record, decisions_of(session, record.id))
    finally:
        store.close()
    if as_json:
        print_json(item)
        return
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in item.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        table.add_row(key, escape(text))
    stdout.print(table)


@approvals_app.command("approve")
def approve_command(
    ctx: typer.Context, request_id: RequestArgument, actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a request; the action runs once the required approvals are in."""
    _decide(ctx, request_id, "approve", actor, None, as_json)


@approvals_app.command("reject")
def reject_command(
    ctx: typer.Context,
    request_id: RequestArgument,
    actor: ActorOption = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; audited.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a request; it closes and nothing runs."""
    _decide(ctx, request_id, "reject", actor, reason, as_json)


@approvals_app.command("retry")
def retry_command(
    ctx: typer.Context, request_id: RequestArgument, actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a failed request again with its recorded approvals, e.g. after a Palette outage."""
    settings: Settings = state(ctx).settings()
    name = actor or getpass.getuser()
    store = Store.open(settings.database_url)
    try:
        with store.transaction() as session:
            full_id = _find(session, settings, request_id).id
        outcome = retry(store, settings, request_id=full_id, actor=name, now=datetime.now(UTC))
    finally:
        store.close()
    _print_outcome(outcome, as_json)


@approvals_app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(help="Id (or unique prefix) of a succeeded apply run; see "
                            "'costwarden actions runs'.")
    ],
    actor: Annotated[
        str | None,
        typer.Option("--as", help="Who asks for the rollback; audited. Default: the operating "
                     "system user."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the change is rolled back; audited.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Roll back an applied change under the policies: at once in auto mode outside
    production, otherwise through a new approval request."""
    settings: Settings = state(ctx).settings()
    name = actor or getpass.getuser()
    store = Store.open(settings.database_url)
    try:
        outcome = request_rollback(
            store, settings, run_id=run_id, actor=name, reason=reason, now=datetime.now(UTC)
        )
    except NotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN_ID") from None
    finally:
        store.close()
    if as_json:
        print_json({
            "status": outcome.status,
            "message": outcome.message,
            "request_id": outcome.request_id,
            "run_id": outcome.run_id,
        })
    else:
        stdout.print(escape(outcome.message))
    if outcome.status == "failed":
        raise typer.Exit(9)


def _decide(
    ctx: typer.Context,
    request_id: str,
    vote: Vote,
    actor: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    settings: Settings = state(ctx).settings()
    name = actor or getpass.getuser()
    detail: dict[str, Any] = {"via": "cli", "os_user": getpass.getuser()}
    if reason:
        detail["reason"] = reason
    store = Store.open(settings.database_url)
    try:
        with store.transaction() as session:
            full_id = _find(session, settings, request_id).id
        outcome = decide(
            store, settings, request_id=full_id, vote=vote, actor=name, channel="cli",
            now=datetime.now(UTC), detail=detail,
        )
    finally:
        store.close()
    _print_outcome(outcome, as_json)


def _find(session: Session, settings: Settings, request_id: str) -> ApprovalRequestRecord:
    """Return the request, or exit 2 (a usage error) when the id matches none or several."""
    try:
        return find_request(session, settings.service.tenant, request_id)
    except NotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="REQUEST_ID") from None


def _print_outcome(outcome: DecisionOutcome, as_json: bool) -> None:
    """Print the outcome. A run that failed or was superseded exits with the exit code of its
    error: 9 for an action error, 8 when the guard refused it or the request was superseded, 4
    when Palette could not be read."""
    if as_json:
        print_json({
            "status": outcome.status,
            "request_id": outcome.request_id,
            "request_status": outcome.request_status,
            "message": outcome.message,
            "run_id": outcome.run_id,
        })
    else:
        stdout.print(escape(outcome.message))
    if outcome.status in ("failed", "superseded"):
        raise typer.Exit(outcome.error.exit_code if outcome.error is not None else 9)


def _table(items: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Approval requests ({len(items)})", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for name in ("Id", "Status", "Action", "Target", "Approvals", "Savings/month", "Expires"):
        table.add_column(name, overflow="fold")
    for item in items:
        target = item["target"] or {}
        where = "/".join(
            str(part) for part in (target.get("cluster") or target.get("cluster_uid"),
                                   target.get("namespace"), target.get("name")) if part
        )
        evidence = item["evidence"] or {}
        savings = evidence.get("estimated_savings_per_month")
        money = f"{savings} {evidence.get('currency') or ''}".strip() if savings else "-"
        needed = f"{item['required_approvals']}" + (" (production)" if item["production"] else "")
        action = f"{item['action']} (rollback)" if item.get("rollback_of") else item["action"]
        table.add_row(
            item["id"][:8], item["status"], action, escape(where), needed, money,
            item["expires_at"][:16],
        )
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")
