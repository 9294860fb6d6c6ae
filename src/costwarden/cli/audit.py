"""``costwarden audit list|show|head|verify|export|prune``: the hash-chained audit trail."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from costwarden.audit import (
    KINDS,
    Anchor,
    entry_json,
    find_entry,
    head,
    iter_entries,
    list_entries,
    prune,
    read_anchor_file,
    verify,
    write_jsonl,
)
from costwarden.cli.common import print_json, state, stderr, stdout
from costwarden.cli.render import field_table
from costwarden.errors import ConfigError
from costwarden.store import Store

audit_app = typer.Typer(
    help="Read, verify, export and prune the hash-chained audit trail.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
TenantOption = Annotated[
    str | None,
    typer.Option("--tenant", help="Tenant whose trail to use; default: service.tenant."),
]
KindOption = Annotated[
    list[str] | None,
    typer.Option("--kind", help=f"Only entries of this kind (repeatable): {', '.join(KINDS)}."),
]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Only entries recorded at or after this date or ISO time (UTC)."),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", help="Only entries recorded before this date or ISO time (UTC)."),
]


@audit_app.command("list")
def list_command(
    ctx: typer.Context,
    kind: KindOption = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only entries about this subject.")
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Maximum entries shown.")] = 50,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """List entries, newest first."""
    kinds = _kinds(kind)
    with _session(ctx) as (session, name):
        page = list_entries(
            session, tenant or name, kinds=kinds, subject=subject,
            since=parse_time(since, "--since"), until=parse_time(until, "--until"), limit=limit,
        )
        items = [entry_json(record) for record in page.items]
    if as_json:
        print_json({"items": items, "total": page.total})
        return
    stdout.print(_table(items, page.total))


@audit_app.command("show")
def show_command(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="Sequence number of the entry.")],
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one entry with its detail and hashes."""
    with _session(ctx) as (session, name):
        entry = entry_json(find_entry(session, tenant or name, seq))
    if as_json:
        print_json(entry)
        return
    stdout.print(field_table({key: value for key, value in entry.items() if key != "detail"}))
    print_json(entry["detail"])


@audit_app.command("head")
def head_command(
    ctx: typer.Context, tenant: TenantOption = None, as_json: JsonOption = False
) -> None:
    """Print the newest entry as SEQ:HASH, an anchor to keep outside the database.

    'costwarden audit verify --expect-head SEQ:HASH' or '--anchors FILE' checks it later, which
    detects deleted newest entries and a rewritten trail.
    """
    with _session(ctx) as (session, name):
        current = head(session, tenant or name)
    if as_json:
        print_json({"tenant": current.tenant, "seq": current.seq, "hash": current.entry_hash})
        return
    typer.echo(current.anchor())


@audit_app.command("verify")
def verify_command(
    ctx: typer.Context,
    expect_head: Annotated[
        list[str] | None,
        typer.Option(
            "--expect-head",
            help="Anchor SEQ:HASH from 'costwarden audit head' that must still verify "
            "(repeatable).",
        ),
    ] = None,
    anchors_file: Annotated[
        Path | None,
        typer.Option(
            "--anchors", dir_okay=False, help="File of SEQ:HASH anchors, one per line."
        ),
    ] = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every hash and link; exit 11 naming the first bad entry when it fails."""
    anchors = [Anchor.parse(text) for text in expect_head or ()]
    if anchors_file is not None:
        anchors += read_anchor_file(anchors_file)
    with _session(ctx) as (session, name):
        report = verify(session, tenant or name, anchors=anchors)
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        stdout.print(_verified_line(report))
    else:
        for problem in report.problems:
            stderr.print(f"seq {problem.seq}: {problem.kind}: {escape(problem.message)}")
    report.raise_for_problems()


def _verified_line(report: Any) -> str:
    if report.entries == 0:
        line = f"Audit trail of tenant {report.tenant} is empty"
    else:
        line = (
            f"Audit trail of tenant {report.tenant} verifies: {report.entries} entries, seq "
            f"{report.first_seq} to {report.last_seq}, head {report.head_hash}"
        )
    if report.checkpoint_seq is not None:
        line += f"; starts after the retention checkpoint at seq {report.checkpoint_seq}"
    if report.anchors_checked:
        line += f"; {report.anchors_checked} anchors match"
    if report.anchors_skipped:
        line += f"; {len(report.anchors_skipped)} anchors predate retention and were not checked"
    return line + "."


@audit_app.command("export")
def export_command(
    ctx: typer.Context,
    since: SinceOption = None,
    until: UntilOption = None,
    kind: KindOption = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="JSON Lines file to write, or - for stdout.")
    ] = "-",
    tenant: TenantOption = None,
) -> None:
    """Write entries oldest first as JSON Lines for a SIEM, streaming from the database."""
    kinds = _kinds(kind)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with _session(ctx) as (session, name):
        entries = iter_entries(session, tenant or name, since=start, until=end, kinds=kinds)
        if output == "-":
            count = write_jsonl(entries, sys.stdout)
            sys.stdout.flush()
        else:
            count = _write_file(Path(output), entries)
    where = "stdout" if output == "-" else output
    stderr.print(f"Exported {count} audit entries to {escape(where)}.", highlight=False)


def _write_file(path: Path, entries: Iterator[dict[str, Any]]) -> int:
    """Write to a temporary file beside ``path`` and rename it, so no partial export remains."""
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as stream:
            count = write_jsonl(entries, stream)
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot write --output {path}: {exc.strerror or exc}") from exc
    return count


@audit_app.command("prune")
def prune_command(
    ctx: typer.Context,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--retention-days", min=1, help="Keep this many days; default: audit.retention_days."
        ),
    ] = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete entries older than the retention, keeping a checkpoint so the rest verifies."""
    settings = state(ctx).settings()
    days = retention_days or settings.audit.retention_days
    if days is None:
        raise ConfigError(
            "no retention set; pass --retention-days or set audit.retention_days "
            "(COSTWARDEN_AUDIT_RETENTION_DAYS)"
        )
    with _session(ctx) as (session, name):
        result = prune(session, tenant or name, retention_days=days, now=datetime.now(UTC))
    if as_json:
        print_json({
            "tenant": result.tenant, "cutoff": result.cutoff.isoformat(),
            "deleted": result.deleted, "checkpoint_seq": result.checkpoint_seq,
            "checkpoint_hash": result.checkpoint_hash,
        })
        return
    if result.deleted == 0:
        stdout.print(f"No audit entries recorded before {result.cutoff.isoformat()}.")
        return
    stdout.print(
        f"Deleted {result.deleted} audit entries through seq {result.checkpoint_seq}; "
        "verification now starts from that checkpoint."
    )


def parse_time(value: str | None, option: str) -> datetime | None:
    """Parse a date (midnight UTC) or an ISO 8601 time (UTC unless it has an offset)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"{option} {value!r} is not a date or time; use e.g. 2026-11-15 or "
            "2026-11-15T10:00:00Z"
        ) from exc
    if len(value) == 10:
        parsed = datetime.combine(parsed.date(), time(), UTC)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _kinds(values: list[str] | None) -> list[str]:
    kinds = list(values or ())
    for kind in kinds:
        if kind not in KINDS:
            raise ConfigError(f"--kind {kind!r} is invalid; use one of {', '.join(KINDS)}")
    return kinds


def _table(items: list[dict[str, Any]], total: int) -> Table:
    table = Table(
        title=f"Audit entries ({len(items)} of {total})", title_justify="left",
        box=box.SIMPLE_HEAD, padding=(0, 1),
    )
    for name in ("Seq", "Time", "Kind", "Subject", "Actor", "Summary"):
        table.add_column(name, overflow="fold")
    for item in items:
        table.add_row(
            str(item["seq"]), item["time"][:19] + "Z", item["kind"], escape(item["subject"]),
            escape(item["actor"]), escape(item["summary"]),
        )
    return table


@contextmanager
def _session(ctx: typer.Context) -> Iterator[tuple[Session, str]]:
    """Open the configured store in one transaction; yield the session and the default tenant."""
    settings = state(ctx).settings()
    store = Store.open(settings.database_url)
    try:
        with store.transaction() as session:
            yield session, settings.service.tenant
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
