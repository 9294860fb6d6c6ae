"""``costwarden deliveries list|show|retry|send|test``: the notification outbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from costwarden.cli.common import print_json, state, stderr, stdout
from costwarden.config import Settings
from costwarden.errors import ConfigError, ConflictError, DeliveryError, NotFoundError
from costwarden.notify.deliveries import (
    STATUSES,
    delivery_detail,
    delivery_summary,
    find_delivery,
    list_deliveries,
    queue_test_notice,
    retry_dead,
    retry_delivery,
)
from costwarden.store import Store

deliveries_app = typer.Typer(
    help="Inspect and send the notification outbox: pending, sent and dead deliveries.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
PROGRESS_SECONDS = 1.0


@deliveries_app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only rows in this status: {', '.join(STATUSES)}."),
    ] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="Only rows of this channel.")
    ] = None,
    alert: Annotated[
        str | None, typer.Option("--alert", help="Only rows of this alert id.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Maximum rows shown.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List deliveries, newest first; --status dead shows the dead letters."""
    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status {status!r} is invalid; use one of {', '.join(STATUSES)}")
    with _session(ctx) as session:
        page = list_deliveries(session, status=status, channel=channel, alert_id=alert, limit=limit)
        items = [delivery_summary(record) for record in page.items]
    if as_json:
        print_json({"items": [_json_times(item) for item in items], "total": page.total})
        return
    stdout.print(_table(items, page.total))


@deliveries_app.command("show")
def show_command(
    ctx: typer.Context,
    delivery_id: Annotated[str, typer.Argument(help="Delivery id, or a unique prefix of it.")],
    as_json: JsonOption = False,
) -> None:
    """Show one delivery with its attempts, last error and notices."""
    with _session(ctx) as session:
        try:
            detail = delivery_detail(find_delivery(session, delivery_id))
        except NotFoundError as exc:
            raise ConfigError(str(exc)) from None
    if as_json:
        print_json(_json_times(detail))
        return
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in detail.items():
        if key == "notices":
            titles = ", ".join(str(notice.get("title")) for notice in value)
            value = f"{len(value)}: {titles}"
        table.add_row(key, escape(_text(value)))
    stdout.print(table)


@deliveries_app.command("retry")
def retry_command(
    ctx: typer.Context,
    delivery_id: Annotated[
        str | None, typer.Argument(help="Dead delivery id, or a unique prefix of it.")
    ] = None,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="Retry every dead delivery (of --channel).")
    ] = False,
    channel: Annotated[
        str | None, typer.Option("--channel", help="With --all-dead: only this channel.")
    ] = None,
) -> None:
    """Move dead deliveries back to pending with their attempts reset."""
    if (delivery_id is None) == (not all_dead):
        raise ConfigError("give a delivery id or --all-dead, not both")
    if channel is not None and not all_dead:
        raise ConfigError("--channel only applies with --all-dead")
    now = datetime.now(UTC)
    settings = state(ctx).settings()
    with _session(ctx) as session:
        if delivery_id is not None:
            try:
                record = retry_delivery(session, delivery_id, now)
            except (NotFoundError, ConflictError) as exc:
                raise ConfigError(str(exc)) from None
            stdout.print(f"Delivery {record.id} to {record.channel} is pending again.")
            return
        if channel is not None and channel not in settings.notify.channels:
            if not list_deliveries(session, channel=channel, limit=1).total:
                names = ", ".join(sorted(settings.notify.channels)) or "none"
                raise ConfigError(
                    f"--channel {channel!r} is not in notify.channels and has no deliveries; "
                    f"configured channels: {names}"
                )
        count = retry_dead(session, now, channel=channel)
    where = f" of channel {channel}" if channel else ""
    stdout.print(f"{count} dead deliveries{where} are pending again.")


@deliveries_app.command("send")
def send_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Send every due delivery now, then exit; rows waiting for a retry time stay queued.

    Run it from cron after 'costwarden run' when no 'costwarden serve' delivers.
    """
    settings = state(ctx).settings()
    report = drain_outbox(settings, progress=not as_json)
    if as_json:
        print_json(_report_json(report))
        return
    stdout.print(report_line(report))


@deliveries_app.command("test")
def test_command(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="Channel name under notify.channels.")],
) -> None:
    """Queue one sample notice to a channel and send it, to check the channel's settings."""
    settings = state(ctx).settings()
    if channel not in settings.notify.channels:
        names = ", ".join(sorted(settings.notify.channels)) or "none"
        raise ConfigError(f"channel {channel!r} is not in notify.channels; configured: {names}")
    store = Store.open(settings.database_url)
    try:
        with store.transaction() as session:
            delivery_id = queue_test_notice(session, channel, datetime.now(UTC)).id
        drain_outbox(settings, progress=False, store=store)
        with store.transaction() as session:
            record = find_delivery(session, delivery_id)
            status, error, due = record.status, record.last_error, record.next_attempt_at
    finally:
        store.close()
    if status == "sent":
        stdout.print(f"Test notice {delivery_id} sent to {channel}.")
        return
    reason = error or "not sent yet"
    if status == "pending":
        reason = f"{_waiting_reason(settings, channel)}; next attempt at {due:%Y-%m-%d %H:%M} UTC"
        if error:
            reason += f"; last error: {error}"
    raise DeliveryError(
        f"test notice {delivery_id} to {channel} is {status}: {reason}; "
        f"'costwarden deliveries show {delivery_id[:8]}' has the details",
        channel=channel,
    )


def _waiting_reason(settings: Settings, channel: str) -> str:
    """Say why a row of ``channel`` is still pending: disabled, quiet hours or a retry."""
    from costwarden.notify.pacing import quiet_until
    from costwarden.notify.registry import CHANNELS

    options = CHANNELS.validate(channel, settings.notify.channels[channel])
    if not options.enabled:
        return "not sent, the channel is disabled (enabled: false)"
    quiet_end = quiet_until(options.quiet_hours, datetime.now(UTC))
    if quiet_end is not None:
        return f"held by the channel's quiet hours until {quiet_end:%Y-%m-%d %H:%M} UTC"
    return "not sent yet, waiting for a retry"


def drain_outbox(settings: Settings, *, progress: bool, store: Store | None = None) -> Any:
    """Send every due outbox row with the configured channels and return the worker's report."""
    from costwarden.notify.channels import build_channels
    from costwarden.notify.worker import DeliveryWorker, WorkerReport

    channels = build_channels(settings.notify)
    owned = store is None
    store = store or Store.open(settings.database_url)
    worker = DeliveryWorker(
        store, settings.notify, channels, audit_tenant=settings.service.tenant
    )
    shown = time.monotonic()

    def show(report: WorkerReport) -> None:
        nonlocal shown
        if progress and time.monotonic() - shown >= PROGRESS_SECONDS:
            stderr.print(report_line(report), highlight=False)
            shown = time.monotonic()

    try:
        return worker.drain(show)
    finally:
        worker.close()
        if owned:
            store.close()


def report_line(report: Any) -> str:
    line = (
        f"{report.sent} sent, {report.retried} to retry, {report.dead} dead, "
        f"{report.deferred} deferred"
    )
    if report.skipped:
        waiting = ", ".join(f"{name} {count}" for name, count in sorted(report.skipped.items()))
        line += f"; waiting for disabled or unknown channels: {waiting}"
    return line


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "sent": report.sent,
        "retried": report.retried,
        "dead": report.dead,
        "deferred": report.deferred,
        "skipped": report.skipped,
        "digests": report.digests,
    }


def _table(items: list[dict[str, Any]], total: int) -> Table:
    table = Table(
        title=f"Deliveries ({len(items)} of {total})", title_justify="left",
        box=box.SIMPLE_HEAD, padding=(0, 1),
    )
    for name in ("Id", "Channel", "Event", "Status", "Attempts", "Created", "Last error"):
        table.add_column(name, overflow="fold")
    for item in items:
        table.add_row(
            item["id"][:8], escape(item["channel"]), item["event"], item["status"],
            str(item["attempts"]), _text(item["created_at"]), escape(item["last_error"] or ""),
        )
    return table


def _json_times(item: dict[str, Any]) -> dict[str, Any]:
    """Write the times of a row as ISO 8601 UTC with ``Z``, as the API does."""
    return {
        key: value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(value, datetime) else value
        for key, value in item.items()
    }


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


@contextmanager
def _session(ctx: typer.Context) -> Iterator[Session]:
    """Open the configured store for one command, in one transaction, and close it afterwards."""
    store = Store.open(state(ctx).settings().database_url)
    try:
        with store.transaction() as session:
            yield session
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.add_typer(deliveries_app, name="deliveries")
