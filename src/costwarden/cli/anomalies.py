"""``costwarden anomalies list|show|mark|precision``: read stored anomalies and give feedback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlalchemy.orm import Session

from costwarden.anomaly import find_anomaly, list_anomalies, mark_anomaly
from costwarden.anomaly.feedback import latest_verdicts, load_feedback, precision
from costwarden.cli.common import print_json, state, stdout
from costwarden.cli.render import ANOMALY_KIND_NAMES, whole_money
from costwarden.domain.anomaly import Precision
from costwarden.errors import ConfigError
from costwarden.store import Store
from costwarden.store.tables import AnomalyRecord

anomalies_app = typer.Typer(
    help="List and explain detected cost and usage anomalies, and mark them as expected or as "
    "real problems.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
STATUSES = ("ongoing", "resolved", "new_normal")


@anomalies_app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="Only ongoing, resolved or new_normal anomalies.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only anomalies lasting to this day or later.")
    ] = None,
    related: Annotated[
        bool, typer.Option("--related", help="Also list scopes listed under another anomaly.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Maximum number of anomalies shown.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Show the stored anomalies, latest first, with the alert precision from feedback."""
    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    roles = ("alert", "suppressed", "related") if related else ("alert", "suppressed")
    with _session(ctx) as session:
        records = list_anomalies(
            session, roles=roles, status=status, since=_day(since, "--since"), limit=limit
        )
        feedback = load_feedback(session)
    verdicts = {key: item.verdict for key, item in latest_verdicts(feedback).items()}

    if as_json:
        print_json(
            {
                "anomalies": [
                    _summary(record, verdicts.get(record.anomaly_id)) for record in records
                ],
                "precision": _precision_json(precision(feedback)),
            }
        )
        return
    stdout.print(_list_table(records, verdicts))
    stdout.print(_precision_text(precision(feedback)))


@anomalies_app.command("show")
def show_command(
    ctx: typer.Context,
    anomaly_id: Annotated[str, typer.Argument(help="Anomaly id, or a unique prefix of it.")],
    as_json: JsonOption = False,
) -> None:
    """Explain one anomaly: triage summary, contributors, cost drivers, events and days."""
    with _session(ctx) as session:
        record = find_anomaly(session, anomaly_id)
        payload = dict(record.payload)
        verdict = latest_verdicts(load_feedback(session)).get(record.anomaly_id)
    payload["status"] = record.status
    if as_json:
        print_json(payload)
        return
    stdout.print(_detail(record, payload, verdict.verdict if verdict else None))


@anomalies_app.command("mark")
def mark_command(
    ctx: typer.Context,
    anomaly_id: Annotated[str, typer.Argument(help="Anomaly id, or a unique prefix of it.")],
    expected: Annotated[
        bool,
        typer.Option(
            "--expected",
            help="The rise was expected; later anomalies of the same scope and cause do not alert.",
        ),
    ] = False,
    problem: Annotated[
        bool, typer.Option("--problem", help="The alert was right: a real problem.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the rise was expected (required).")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Last day (YYYY-MM-DD) the expected pattern is suppressed."),
    ] = None,
) -> None:
    """Record a verdict on an anomaly: --expected --reason TEXT [--until DATE], or --problem."""
    if expected == problem:
        raise ConfigError("pass exactly one of --expected and --problem")
    verdict = "expected" if expected else "problem"
    with _session(ctx) as session:
        feedback = mark_anomaly(
            session,
            anomaly_id,
            verdict,
            reason=reason,
            until=_day(until, "--until"),
            now=datetime.now(UTC),
        )
        figure = precision(load_feedback(session))
        scope = find_anomaly(session, feedback.anomaly_id).scope_name
    if verdict == "expected":
        until_text = f" until {feedback.until}" if feedback.until else ""
        stdout.print(
            f"Marked {feedback.anomaly_id[:8]} as expected; anomalies of {scope} with cause "
            f"{feedback.cause.replace('_', ' ')} are suppressed{until_text}."
        )
    else:
        stdout.print(f"Marked {feedback.anomaly_id[:8]} as a problem.")
    stdout.print(_precision_text(figure))


@anomalies_app.command("precision")
def precision_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the alert precision: problems / (problems + anomalies marked expected)."""
    with _session(ctx) as session:
        figure = precision(load_feedback(session))
    if as_json:
        print_json(_precision_json(figure))
        return
    stdout.print(_precision_text(figure))


@contextmanager
def _session(ctx: typer.Context) -> Iterator[Session]:
    """Open the configured store for one command, in one transaction, and close it afterwards."""
    store = Store.open(state(ctx).settings().database_url)
    try:
        with store.transaction() as session:
            yield session
    finally:
        store.close()


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{flag} {value!r} is not a date; use YYYY-MM-DD") from exc


def _summary(record: AnomalyRecord, verdict: str | None) -> dict[str, Any]:
    payload = record.payload
    return {
        "anomaly_id": record.anomaly_id,
        "scope": payload["scope"]["description"],
        "kind": record.kind,
        "metric": record.metric,
        "status": record.status,
        "role": record.role,
        "severity": record.severity,
        "first_day": record.first_day.isoformat(),
        "last_day": record.last_day.isoformat(),
        "first_seen": record.first_seen.isoformat().replace("+00:00", "Z"),
        "values": payload["values"],
        "impact": payload["impact"],
        "top_contributor": payload["contributors"][0] if payload["contributors"] else None,
        "cause": record.cause,
        "likely_cause": payload["triage"]["likely_cause"],
        "verdict": verdict,
    }


def _list_table(records: list[AnomalyRecord], verdicts: dict[str, str]) -> Table:
    table = Table(title="Anomalies", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("Id")
    table.add_column("Scope", overflow="fold", max_width=24)
    table.add_column("Kind")
    table.add_column("Days")
    table.add_column("Expected -> actual", justify="right")
    table.add_column("Impact/day", justify="right")
    table.add_column("Top contributor", overflow="fold", max_width=18)
    table.add_column("Likely cause", overflow="fold", ratio=1)

    for record in records:
        payload = record.payload
        kind = Text(ANOMALY_KIND_NAMES.get(record.kind, record.kind))
        kind.append(f"\n{record.status.replace('_', ' ')}", style="dim")
        note = verdicts.get(record.anomaly_id) or (
            "suppressed" if record.role == "suppressed" else ""
        )
        if note:
            kind.append(f"\n{note}", style="yellow")
        top = payload["contributors"][0] if payload["contributors"] else None
        table.add_row(
            record.anomaly_id[:8],
            Text(payload["scope"]["description"]),
            kind,
            f"{record.first_day:%b %d}-{record.last_day:%b %d}",
            _values_text(payload),
            "-" if record.impact_per_day is None else f"+{whole_money(record.impact_per_day)}",
            "-" if top is None else f"{top['value']}\n[dim]{top['dimension']}[/]",
            payload["triage"]["likely_cause"],
        )
    if not records:
        table.caption = "No anomalies stored; `costwarden run` detects them on each pass."
    return table


def _values_text(payload: dict[str, Any]) -> str:
    values = payload["values"]
    unit = "" if payload["metric"] == "cost" else f" {values['unit']}"
    return f"{values['expected_per_day']:,.1f} -> {values['actual_per_day']:,.1f}{unit}"


def _detail(record: AnomalyRecord, payload: dict[str, Any], verdict: str | None) -> Group:
    triage = payload["triage"]
    lines: list[Text | Table] = [
        Text(payload["title"]),
        Text(
            f"Likely cause: {triage['likely_cause']} ({triage['confidence']} confidence)",
            style="bold",
        ),
    ]
    lines.extend(Text(f"  - {item}") for item in triage["evidence"])
    lines.append(Text(f"Next step: {triage['next_step']}"))
    if triage["link"]:
        lines.append(Text(f"Palette: {triage['link']}", style="link " + triage["link"]))
    # The payload is from the last pass, so a later "problem" verdict outranks its suppression.
    if payload.get("suppressed_by") and verdict != "problem":
        lines.append(Text(f"Suppressed: {payload['suppressed_by']}", style="yellow"))
    if verdict:
        lines.append(Text(f"Verdict: {verdict}", style="yellow"))
    for table in (_contributors(payload), _drivers(payload), _events(payload), _days(payload)):
        if table.row_count:
            lines.append(table)
    title = f"{record.severity.upper()} {payload['scope']['description']} · {record.anomaly_id}"
    return Group(Panel(Group(*lines), title=title, title_align="left"))


def _contributors(payload: dict[str, Any]) -> Table:
    unit = payload["values"]["unit"]
    title = f"Contributors ({unit})"
    if payload["metric"] == "cost":
        title = f"Contributors ({unit} a day)"
    table = Table(title=title, title_justify="left", box=None)
    for column in ("Dimension", "Value", "Expected", "Actual", "Change", "Share"):
        table.add_column(column, justify="left" if column in ("Dimension", "Value") else "right")
    for item in payload["contributors"]:
        table.add_row(
            item["dimension"],
            item["value"],
            _number(item["expected"]),
            _number(item["actual"]),
            _number(item["delta"], signed=True),
            "-" if item["share"] is None else f"{item['share']:.0%}",
        )
    return table


def _drivers(payload: dict[str, Any]) -> Table:
    table = Table(title="Cost drivers", title_justify="left", box=None)
    for column in ("Driver", "Side", "Change/day", "Share", "Detail"):
        table.add_column(column, justify="right" if column in ("Change/day", "Share") else "left")
    for item in payload["drivers"]:
        table.add_row(
            item["name"].replace("_", " "),
            item["side"],
            _number(item["amount"], signed=True),
            "-" if item["share"] is None else f"{item['share']:.0%}",
            item["detail"],
        )
    return table


def _events(payload: dict[str, Any]) -> Table:
    table = Table(title="Cluster events", title_justify="left", box=None)
    for column in ("Time (UTC)", "Cluster", "Reason", "Message"):
        table.add_column(column, overflow="fold")
    for item in sorted(payload["events"], key=lambda event: event["created_at"]):
        table.add_row(
            item["created_at"][:16].replace("T", " "),
            item["cluster_name"] or "",
            item["reason"],
            item["message"],
        )
    return table


def _days(payload: dict[str, Any]) -> Table:
    # The score is a robust z-score on cost days only; utilisation days carry no day score.
    scored = payload["metric"] == "cost"
    table = Table(title="Days", title_justify="left", box=None)
    for column in ("Day", "Expected", "Actual", "Band", "Score"):
        table.add_column(column, justify="left" if column == "Day" else "right")
    for item in payload["daily"]:
        score = "-"
        if scored:
            score = f"{item['score']:,.1f}" if item["score"] < 1000 else ">1000"
        table.add_row(
            item["day"],
            _number(item["expected"]),
            _number(item["actual"]),
            f"{item['lower']:,.1f}-{item['upper']:,.1f}",
            score,
        )
    return table


def _number(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _precision_json(figure: Precision) -> dict[str, Any]:
    return {"problems": figure.problems, "expected": figure.expected, "precision": figure.value}


def _precision_text(figure: Precision) -> str:
    if figure.value is None:
        return "Alert precision: no verdicts yet (mark anomalies with --expected or --problem)."
    total = figure.problems + figure.expected
    return (
        f"Alert precision: {figure.value:.0%} ({figure.problems} of {total} marked anomalies "
        "were real problems)."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(anomalies_app, name="anomalies")
