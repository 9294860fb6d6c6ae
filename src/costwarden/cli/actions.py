"""``costwarden actions list|runs|show|dry-run|resolve``: the action registry and its runs.

Applying and rolling back go through approvals. This group plans changes with dry runs, which
need no approval, shows the recorded runs, and resolves runs that a crash left ``running``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich import box
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from costwarden.actions import runner
from costwarden.actions.context import ActionContext
from costwarden.actions.registry import ACTIONS, ActionSpec
from costwarden.cli.common import print_json, state, stdout
from costwarden.cli.render import field_table
from costwarden.config import Settings
from costwarden.domain.governance import ActionRequest, ActionScope, PolicyDecision
from costwarden.errors import ConfigError
from costwarden.store import Store

actions_app = typer.Typer(
    help="List actions, plan a change with a dry run, and inspect recorded action runs.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
CLI_ACTOR = "cli"


@actions_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List the registered actions: whether each is safe and reversible, and its scope kinds."""
    rows = [
        {
            "name": spec.name,
            "safe": spec.safe,
            "reversible": spec.reversible,
            "auto_allowed": spec.auto_allowed,
            "scope_kinds": list(spec.factory.scope_kinds),
            "description": spec.description,
        }
        for spec in (ACTIONS.spec(name) for name in ACTIONS.names())
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1))
    for name in ("Action", "Safe", "Reversible", "Scope", "Description"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            _yes(row["safe"]),
            _yes(row["reversible"]),
            ", ".join(row["scope_kinds"]),
            escape(row["description"]),
        )
    stdout.print(table)


@actions_app.command("runs")
def runs_command(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only runs in this status: {', '.join(runner.STATUSES)}."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Maximum runs shown.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List action runs, newest first; --status running shows runs a crash may have left."""
    if status is not None and status not in runner.STATUSES:
        raise ConfigError(
            f"--status {status!r} is invalid; use one of {', '.join(runner.STATUSES)}"
        )
    settings = state(ctx).settings()
    with _session(settings) as session:
        rows = runner.list_runs(session, settings.service.tenant, status=status, limit=limit)
        items = [runner.run_json(row) for row in rows]
    if as_json:
        print_json(items)
        return
    stdout.print(_runs_table(items, datetime.now(UTC)))


@actions_app.command("show")
def show_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id, or a unique prefix of it.")],
    as_json: JsonOption = False,
) -> None:
    """Show one run: target, parameters, the state before, the result and any error."""
    settings = state(ctx).settings()
    with _session(settings) as session:
        item = runner.run_json(runner.find_run(session, settings.service.tenant, run_id))
    if as_json:
        print_json(item)
        return
    stdout.print(field_table(item))


@actions_app.command("dry-run")
def dry_run_command(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="Action name, such as palette.resize_pool.")],
    cluster: Annotated[str, typer.Option("--cluster", help="Palette cluster uid.")],
    pool: Annotated[
        str | None, typer.Option("--pool", help="Machine pool name, for pool actions.")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace, for namespace actions.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Parameter KEY=VALUE; VALUE is read as JSON when it parses."),
    ] = None,
    expect: Annotated[
        list[str] | None,
        typer.Option("--expect", help="Expected current state KEY=VALUE, checked before planning."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Plan an action without changing anything, and record the dry run; needs no approval."""
    settings = state(ctx).settings()
    spec = ACTIONS.spec(action)
    kind = spec.factory.scope_kinds[0] if spec.factory.scope_kinds else "cluster"
    scope = ActionScope(kind=kind, cluster_uid=cluster, name=pool, namespace=namespace)
    params = _pairs(param or [], "--param")
    _check_params(spec, params)
    request = ActionRequest(
        action=action,
        scope=scope,
        params=params,
        subject_kind="recommendation",
        subject_id="cli",
        expected=_pairs(expect or [], "--expect"),
    )
    decision = PolicyDecision(
        action=action,
        mode="monitor",
        policy=None,
        production=False,
        required_approvals=0,
        digest=request.digest,
    )
    now = datetime.now(UTC)
    with _session(settings) as session, ActionContext.from_settings(settings) as context:
        record = runner.run(
            session,
            request,
            decision,
            [],
            mode="dry_run",
            context=context,
            now=now,
            actor=CLI_ACTOR,
        )
        item = runner.run_json(record)
    if as_json:
        print_json(item)
        return
    stdout.print(escape(item["result"]["summary"]))
    stdout.print(f"Recorded as dry run {item['id']}.")


@actions_app.command("resolve")
def resolve_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Id (or unique prefix) of a run left running.")],
    outcome: Annotated[
        str, typer.Option("--as", help="succeeded or failed, after checking the resource.")
    ],
    note: Annotated[str, typer.Option("--note", help="What the check found; audited.")],
    actor: Annotated[str, typer.Option("--actor", help="Who checked; audited.")] = CLI_ACTOR,
) -> None:
    """Mark a run that a crash left 'running' as succeeded or failed; failed frees its run key."""
    if outcome not in ("succeeded", "failed"):
        raise ConfigError(f"--as {outcome!r} is invalid; use succeeded or failed")
    settings = state(ctx).settings()
    with _session(settings) as session:
        record = runner.resolve_stuck(
            session,
            settings.service.tenant,
            run_id,
            status=outcome,  # type: ignore[arg-type]
            note=note,
            actor=actor,
            now=datetime.now(UTC),
        )
    stdout.print(f"Run {record.id} is now {record.status}.")


def _pairs(items: list[str], option: str) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} {item!r} is invalid; use KEY=VALUE")
        try:
            pairs[key] = json.loads(text)
        except json.JSONDecodeError:
            pairs[key] = text
    return pairs


def _check_params(spec: ActionSpec, params: dict[str, Any]) -> None:
    """Raise ``ConfigError`` naming each invalid ``--param`` and the parameters the action takes."""
    try:
        spec.factory.params_class.model_validate(params)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {_param_problem(error, params, spec.name)}" for error in exc.errors()
        )
        raise ConfigError(
            f"invalid parameters for {spec.name}:\n{problems}\n"
            f"Parameters of {spec.name}:\n{_param_list(spec)}"
        ) from None


def _param_problem(error: Any, params: dict[str, Any], action: str) -> str:
    location = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if not location:
        return message

    name = location[0]
    if error["type"] == "missing":
        return f"--param {name} is missing; it is required"
    value = params.get(name, error.get("input"))
    value_text = value if isinstance(value, str) else json.dumps(value)
    if error["type"] == "extra_forbidden":
        return f"--param {name}={value_text} is invalid: {action} has no parameter {name}"
    where = f" (at {'.'.join(location)})" if len(location) > 1 else ""
    return f"--param {name}={value_text} is invalid{where}: {message}"


def _param_list(spec: ActionSpec) -> str:
    """List an action's parameters, one a line: name, whether it is required, what it sets."""
    lines = []
    for name, field in spec.factory.params_class.model_fields.items():
        required = " (required)" if field.is_required() else ""
        about = f": {field.description}" if field.description else ""
        lines.append(f"  {name}{required}{about}")
    return "\n".join(lines)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _runs_table(items: list[dict[str, Any]], now: datetime) -> Table:
    table = Table(title=f"Action runs ({len(items)})", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("Id", "Action", "Mode", "Status", "Target", "Started", "Summary or error"):
        table.add_column(name, overflow="fold")
    for item in items:
        target = item["target"] or {}
        where = "/".join(
            str(part)
            for part in (target.get("cluster") or target.get("cluster_uid"), target.get("name"))
            if part
        )
        status = item["status"]
        if status == "running":
            started = datetime.fromisoformat(item["started_at"])
            minutes = (now - started.replace(tzinfo=started.tzinfo or UTC)).total_seconds() / 60
            status = f"running for {minutes:.0f} min"
        text = item["error"] or (item["result"] or {}).get("summary") or ""
        table.add_row(
            item["id"][:8],
            item["action"],
            item["mode"],
            status,
            escape(where),
            item["started_at"][:19],
            escape(text),
        )
    return table


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """Open the store and a session that the runner may commit itself."""
    store = Store.open(settings.database_url)
    try:
        with Session(store.engine, expire_on_commit=False) as session:
            yield session
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.add_typer(actions_app, name="actions")
