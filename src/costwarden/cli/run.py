"""``costwarden run`` (one pass of the main job) and ``costwarden demo`` (the embedded default)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from costwarden.approvals import GovernanceReport
from costwarden.budgets import load_budgets
from costwarden.cli.common import print_json, state, stderr, stdout
from costwarden.cli.deliveries import drain_outbox, report_line
from costwarden.cli.render import (
    alert_panel,
    anomaly_section,
    budget_table,
    ingest_summary,
    progress_bar,
    quota_section,
    recommendation_section,
)
from costwarden.config import PaletteSettings, PolicySettings, Settings
from costwarden.domain.budget import Budget
from costwarden.errors import ALERTS_FIRED_EXIT_CODE, ConfigError
from costwarden.pipeline import RunResult, run_pass
from costwarden.sources.calendar import cached_calendar
from costwarden.store import Store

DEMO_SEED = 7
DEMO_AS_OF = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
"""The demo clock: mid-month, so the planted overrun shows before the budget is crossed."""

BudgetsOption = Annotated[
    Path | None,
    typer.Option("--budgets", "-b", help="Budget file (YAML); default: budgets_file from settings.",
                 dir_okay=False),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the alerts as a JSON array on stdout; logs go to stderr.")
]


def parse_as_of(value: str | None) -> datetime:
    """Parse ``--as-of`` (a date or an ISO 8601 time, UTC unless an offset is given)."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"--as-of {value!r} is not a date or time; use e.g. 2026-11-15 or 2026-11-15T10:00:00Z"
        ) from exc
    if len(value) == 10:
        parsed = datetime.combine(parsed.date(), time(), UTC)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not datetime(2000, 1, 1, tzinfo=UTC) <= parsed <= datetime(2100, 1, 1, tzinfo=UTC):
        raise ConfigError(f"--as-of {value!r} is outside the years 2000 to 2099")
    return parsed.astimezone(UTC)


def resolve_budget_file(option: Path | None, settings: Settings) -> Path:
    path = option or settings.budgets_file
    if path is None:
        raise ConfigError(
            "no budget file; pass --budgets FILE or set COSTWARDEN_BUDGETS_FILE "
            "(examples/budgets.yaml shows the format)"
        )
    return path


def demo_budgets_file() -> Path:
    """Return the budget file the demo uses, shipped inside the package."""
    return Path(str(resources.files("costwarden") / "data" / "demo" / "budgets.yaml"))


def demo_policies_file() -> Path:
    """Return the policies the demo uses, shipped inside the package."""
    return Path(str(resources.files("costwarden") / "data" / "demo" / "policies.yaml"))


def demo_calendar_file() -> Path:
    """Return the calendar of scheduled jobs the demo uses, shipped inside the package."""
    return Path(str(resources.files("costwarden") / "data" / "demo" / "calendar.ics"))


def check_calendar(settings: Settings) -> None:
    """Read the calendar file before the pass, so a broken file stops the run before ingestion."""
    if settings.calendar_file is not None:
        cached_calendar(settings.calendar_file)


def show_result(result: RunResult, as_json: bool, *, approvals_hint: bool = True) -> None:
    if as_json:
        print_json(result.payloads())
        return

    if result.ingest:
        stdout.print(ingest_summary(result.ingest))
    stdout.print(budget_table(result.statuses))
    if result.quota is not None:
        stdout.print(quota_section(result.quota))
    if result.anomalies is not None:
        stdout.print(anomaly_section(result.anomalies))
    if result.recommendations is not None:
        stdout.print(recommendation_section(result.recommendations))
    if result.governance is not None and not result.governance.empty:
        stdout.print(governance_line(result.governance, hint=approvals_hint))
    if not result.alerts:
        stdout.print("[green]No budget thresholds crossed.[/]")
        return
    stdout.print(f"\n[bold]{len(result.alerts)} alert(s)[/]")
    for alert in result.alerts:
        stdout.print(alert_panel(alert))


def governance_line(report: GovernanceReport, *, hint: bool = True) -> str:
    """Summarise what the policies decided; ``hint`` adds the command that lists open approvals."""
    parts = [
        f"{report.pending} approval request(s) waiting ({report.opened} new)",
        f"{report.auto_runs} change(s) applied automatically",
        f"{report.monitored} only reported",
    ]
    if report.auto_failed:
        parts.append(f"{report.auto_failed} automatic change(s) failed (costwarden actions runs)")
    if report.stale:
        parts.append(f"{report.stale} skipped because the resource changed")
    if report.expired:
        parts.append(f"{report.expired} expired")
    line = "[bold]Governance:[/] " + ", ".join(parts) + "."
    if hint and report.pending:
        line += " [dim]costwarden approvals list shows them.[/]"
    return line


def execute(settings: Settings, budgets: list[Budget], as_of: datetime, *, ingest: bool,
            as_json: bool, approvals_hint: bool = True) -> RunResult:
    store = Store.open(settings.database_url)
    try:
        with progress_bar(stderr, enabled=stderr.is_terminal) as progress:
            result = run_pass(store, settings, budgets, as_of, ingest=ingest, progress=progress)
    finally:
        store.close()
    show_result(result, as_json, approvals_hint=approvals_hint)
    return result


def run(
    ctx: typer.Context,
    budgets_file: BudgetsOption = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Clock of the pass (date or ISO time, UTC); default: now."),
    ] = None,
    no_ingest: Annotated[
        bool, typer.Option("--no-ingest", help="Skip Palette; use the cost data already stored.")
    ] = False,
    as_json: JsonOption = False,
    calendar: Annotated[
        Path | None,
        typer.Option(
            "--calendar",
            help="Calendar of scheduled jobs (.ics or CSV) whose cost is added to the forecasts; "
            "default: calendar_file from settings.",
            dir_okay=False,
        ),
    ] = None,
    fail_on_alert: Annotated[
        bool,
        typer.Option("--fail-on-alert", help=f"Exit with {ALERTS_FIRED_EXIT_CODE} when an alert fires."),
    ] = False,
    deliver: Annotated[
        bool,
        typer.Option(
            "--deliver/--no-deliver",
            help="After the pass, send the queued notifications to the channels in notify.channels.",
        ),
    ] = True,
) -> None:
    """Ingest from Palette (or use stored data), forecast every budget, and report alerts."""
    settings = state(ctx).settings(calendar_file=calendar)
    budgets = load_budgets(resolve_budget_file(budgets_file, settings))
    check_calendar(settings)
    result = execute(settings, budgets, parse_as_of(as_of), ingest=not no_ingest, as_json=as_json)
    if deliver and settings.notify.channels:
        report = drain_outbox(settings, progress=not as_json)
        stderr.print(f"Notifications: {report_line(report)}", highlight=False)
    if fail_on_alert and (result.alerts or result.quota_alerts or result.anomaly_alerts):
        raise typer.Exit(ALERTS_FIRED_EXIT_CODE)


def demo(
    ctx: typer.Context,
    as_json: JsonOption = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated fleet.")] = DEMO_SEED,
) -> None:
    """Run one pass on the embedded default, with the Palette simulator.

    Uses the example budgets, a temporary SQLite database, a fixed mid-month clock, and
    policies under which every machine pool change waits for an approval.
    """
    from costwarden.simulator.app import SimulatorSettings
    from costwarden.simulator.server import SimulatorServer

    budgets = load_budgets(demo_budgets_file())
    base = state(ctx).settings()
    with tempfile.TemporaryDirectory(prefix="costwarden-demo-") as directory:
        with SimulatorServer(SimulatorSettings(seed=seed, as_of=DEMO_AS_OF)) as simulator:
            settings = base.model_copy(
                update={
                    "database_url": f"sqlite:///{Path(directory) / 'costwarden.db'}",
                    "palette": PaletteSettings(url=simulator.url, api_key=simulator.api_key),
                    "calendar_file": demo_calendar_file(),
                    "policy": PolicySettings(
                        paths=[demo_policies_file()], mode="approve", production_min_approvals=2
                    ),
                }
            )
            check_calendar(settings)
            if not as_json:
                stderr.print(
                    f"Palette simulator on {simulator.url} (seed {seed}), clock {DEMO_AS_OF:%Y-%m-%d %H:%M} UTC"
                )
            # The demo's database is deleted on exit, so `approvals list` would find nothing.
            execute(
                settings, budgets, DEMO_AS_OF, ingest=True, as_json=as_json, approvals_hint=False
            )


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("demo")(demo)
