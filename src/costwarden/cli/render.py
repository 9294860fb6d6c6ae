"""Rich rendering of pass results for people; machines get the JSON payloads instead."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from costwarden.domain.alert import Alert, BudgetStatus
from costwarden.domain.anomaly import Anomaly, AnomalyReport
from costwarden.domain.cost import IngestReport, quantize_money
from costwarden.domain.recommendation import DAYS_PER_MONTH, Recommendation
from costwarden.quota import QuotaAlert, QuotaProjection, QuotaReport
from costwarden.quota.model import LIMIT_NAMES
from costwarden.recommend.runner import RecommendOutcome

_SEVERITY_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}
MAX_SCHEDULED_SHOWN = 5


def money(value: Decimal | None, currency: str = "") -> str:
    if value is None:
        return "-"
    text = f"{quantize_money(value):,.2f}"
    return f"{text} {currency}".strip()


def whole_money(value: Decimal | None) -> str:
    """Format an amount in whole currency units, for tables where cents add only width."""
    if value is None:
        return "-"
    return f"{value:,.0f}"


def probability_text(probability: float) -> str:
    """Format a probability as a percentage, keeping small non-zero values visible."""
    if 0 < probability < 0.01:
        return "<1%"
    if 0.99 < probability < 1:
        return ">99%"
    return f"{probability:.0%}"


def period_label(status: BudgetStatus) -> str:
    window = status.window
    last = window.end - timedelta(days=1)
    kind = status.budget.period.kind
    if kind == "monthly":
        return f"{window.start:%b %Y}"
    if kind == "quarterly":
        return f"Q{(window.start.month - 1) // 3 + 1} {window.start:%Y}"
    if kind == "yearly":
        return f"{window.start:%Y}"
    return f"{window.start:%b %d}-\n{last:%b %d %Y}"


@contextmanager
def progress_bar(console: Console, enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """Yield a progress callback that drives one Rich progress bar per step description."""
    if not enabled:
        yield lambda description, completed, total: None
        return

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, int] = {}

        def update(description: str, completed: int, total: int) -> None:
            step = description.split(" ", 1)[0]
            if step not in tasks:
                tasks[step] = progress.add_task(description, total=total)
            progress.update(tasks[step], description=description, completed=completed, total=total)

        yield update


def ingest_summary(reports: Sequence[IngestReport]) -> Table:
    table = Table(title="Ingestion", title_justify="left")
    for column in ("Source", "Window", "Rows", "New", "Updated", "Unchanged", "Warnings"):
        table.add_column(column, justify="right" if column not in ("Source", "Window") else "left")
    for report in reports:
        window = "-"
        if report.window_start and report.window_end:
            window = f"{report.window_start} .. {report.window_end}"
        table.add_row(
            report.source,
            window,
            str(report.rows_read),
            str(report.inserted),
            str(report.updated),
            str(report.unchanged),
            str(len(report.warnings)),
        )
    return table


def field_table(item: Mapping[str, Any]) -> Table:
    """Build a borderless table with one row per field. Values that are not strings show as JSON."""
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in item.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        table.add_row(key, escape(text))
    return table


def _status_text(status: BudgetStatus) -> Text:
    if status.problem:
        return Text("NO DATA", style="dim")
    exceedance = status.exceedance
    assert exceedance is not None
    if exceedance.already_exceeded:
        return Text("EXCEEDED", style="bold red")
    if exceedance.probability >= 0.5:
        return Text("AT RISK", style="bold yellow")
    return Text("OK", style="green")


def budget_table(statuses: Sequence[BudgetStatus]) -> Table:
    """Return one row per budget: spend so far, the period forecast, and the breach outlook."""
    table = Table(title="Budgets", title_justify="left")
    table.add_column("Budget", overflow="fold", min_width=24)
    table.add_column("Period")
    for column in ("Amount", "Spent", "Forecast", "P(over)"):
        table.add_column(column, justify="right")
    table.add_column("Breach")
    table.add_column("Status")

    for status in statuses:
        budget = status.budget
        name = Text(budget.name)
        name.append(f"\n{budget.scope.describe()}", style="dim")
        if status.missing_days:
            name.append(f"\ndata ends {status.history_end:%b %d}, {status.missing_days} days late", style="yellow")
        forecast = probability = breach = "-"
        exceedance = status.exceedance
        if exceedance is not None:
            forecast = (
                f"{whole_money(exceedance.forecast_total)}\n"
                f"[dim]{whole_money(exceedance.total_lo80)}-{whole_money(exceedance.total_hi80)}[/]"
            )
            probability = probability_text(exceedance.probability)
            breach = _breach_text(status)
        table.add_row(
            name,
            period_label(status),
            f"{whole_money(budget.amount)}\n[dim]{budget.currency}[/]",
            whole_money(status.spent_to_date),
            forecast,
            probability,
            breach,
            _status_text(status),
        )
    table.caption = "Forecast: median period total, with its 80% interval below it."
    adjusted = _adjustment_end(statuses)
    if adjusted is not None:
        table.caption += (
            f" Intervals scaled by the backtest adjustment fitted on data up to {adjusted}."
        )
    return table


def _adjustment_end(statuses: Sequence[BudgetStatus]) -> str | None:
    """Return the history end of the backtest adjustment that any forecast used, or None."""
    for status in statuses:
        record = status.forecast.params.get("interval_adjustment") if status.forecast else None
        if isinstance(record, dict):
            return str(record.get("history_end") or "an unknown day")
    return None


def _breach_text(status: BudgetStatus) -> str:
    exceedance = status.exceedance
    assert exceedance is not None
    if exceedance.breach_date is None:
        return "-"
    if (
        exceedance.already_exceeded
        or exceedance.breach_date_p10 is None
        or exceedance.breach_date_p10 == exceedance.breach_date_p90
    ):
        return f"{exceedance.breach_date:%b %d}"
    return (
        f"{exceedance.breach_date:%b %d}\n"
        f"[dim]{exceedance.breach_date_p10:%b %d}-{exceedance.breach_date_p90:%b %d}[/]"
    )


def scheduled_text(status: BudgetStatus) -> str:
    """Describe the scheduled jobs of the period on one line, with the cost each adds."""
    scheduled = status.scheduled
    assert scheduled is not None
    currency = status.budget.currency
    parts = []
    for occurrence in scheduled.occurrences[:MAX_SCHEDULED_SHOWN]:
        note = ", already in history" if occurrence.in_history else ""
        parts.append(
            f"{occurrence.name} {occurrence.start:%b %d %H:%M} UTC "
            f"{money(occurrence.cost)}{note}"
        )
    hidden = len(scheduled.occurrences) - MAX_SCHEDULED_SHOWN
    if hidden > 0:
        parts.append(f"{hidden} more")
    return (
        f"Scheduled jobs add {money(scheduled.total, currency)} to the forecast: "
        + "; ".join(parts)
    )


def alert_panel(alert: Alert) -> Panel:
    status = alert.status
    currency = status.budget.currency
    lines: list[Text | Table] = [Text(alert.title)]

    exceedance = status.exceedance
    if exceedance is not None and exceedance.expected_overspend > 0:
        lines.append(
            Text(
                f"Expected overspend {money(exceedance.expected_overspend, currency)}, "
                f"at the median {money(exceedance.median_overspend, currency)}"
            )
        )
    if status.scheduled is not None:
        lines.append(Text(scheduled_text(status)))
    if status.contributors:
        contributors = Table(box=None, show_header=True, padding=(0, 2))
        for column in ("Top contributor", "Previous period", "Forecast", "Growth", "Share"):
            contributors.add_column(column, justify="left" if column == "Top contributor" else "right")
        for contributor in status.contributors:
            share = "-" if contributor.share_of_growth is None else f"{contributor.share_of_growth:.0%}"
            contributors.add_row(
                contributor.name,
                money(contributor.previous_total),
                money(contributor.forecast_total),
                money(contributor.growth),
                share,
            )
        lines.append(contributors)
    if alert.actions:
        lines.append(_actions_table(alert))
    if status.links:
        lines.append(Text(f"Palette: {status.links[0].url}", style="link " + status.links[0].url))

    style = _SEVERITY_STYLE.get(alert.severity, "white")
    title = f"[{style}]{alert.severity.upper()}[/] {status.budget.name} · {alert.threshold.key()}"
    return Panel(Group(*lines), title=title, title_align="left", border_style=style)


def _actions_table(alert: Alert) -> Table:
    table = Table(box=None, show_header=True, padding=(0, 2))
    table.add_column("Recommended action")
    table.add_column("Saves per month", justify="right")
    for item in alert.actions:
        table.add_row(item.title, money(item.savings.per_month, item.savings.currency))
    return table


def recommendation_table(items: Sequence[Recommendation], title: str) -> Table:
    """Return recommendations as a table: kind, change, savings, confidence and risk."""
    table = Table(title=title, title_justify="left")
    for column in ("#", "kind", "change", "per day", "per month", "confidence", "risk"):
        table.add_column(column, justify="right" if column.startswith("per") else "left")
    for number, item in enumerate(items, start=1):
        table.add_row(
            str(number),
            item.kind,
            item.title,
            money(item.savings.per_day),
            money(item.savings.per_month),
            item.confidence,
            item.risk,
        )
    return table


def recommendation_section(outcome: RecommendOutcome, limit: int = 10) -> Group | Text:
    """Return the run's recommendations: the best ``limit``, the total, and their usage source."""
    report = outcome.report
    if report is None:
        return Text(f"Recommendations: none ({outcome.note}).")
    if not report.items:
        return Text(f"Recommendations from {outcome.source} usage: none found.")
    title = (
        f"Recommendations from {outcome.source} usage, best {min(limit, len(report.items))} "
        f"of {len(report.items)}"
    )
    lines: list[Text | Table] = [recommendation_table(report.items[:limit], title)]
    lines.append(
        Text(
            f"Savings without overlap: "
            f"{money(report.total_per_day * DAYS_PER_MONTH, report.currency)} per month. "
            "costwarden recommend --json lists every change with its API call."
        )
    )
    if outcome.note:
        lines.append(Text(outcome.note, style="dim"))
    return Group(*lines)


def _quantity(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("nodes", "GPUs") and value == round(value):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _quota_breach_text(projection: QuotaProjection) -> str:
    if projection.breach_date is None:
        return "-"
    if projection.status == "at_limit":
        return f"since {projection.breach_date:%b %d}"
    low, high = projection.breach_date_p10, projection.breach_date_p90
    spread = f"{low:%b %d}" if low else "?"
    spread += f"-{high:%b %d}" if high else "-later"
    return f"{projection.breach_date:%b %d}\n[dim]{spread}[/]"


def quota_table(report: QuotaReport) -> Table:
    """Return one row per quota alert: usage against the limit and when it is reached."""
    table = Table(title="Quota breaches", title_justify="left")
    table.add_column("Scope", overflow="fold", min_width=24)
    table.add_column("Resource")
    for column in ("Usage", "Limit", "Used"):
        table.add_column(column, justify="right")
    table.add_column("Breach")
    table.add_column("P(breach)", justify="right")
    table.add_column("Status")

    for alert in report.alerts:
        projection = alert.projection
        target = projection.target
        scope = Text(target.describe())
        scope.append(f"\n{LIMIT_NAMES[target.limit_kind]}", style="dim")
        utilisation = projection.utilisation
        status = (
            Text("AT LIMIT", style="bold red")
            if projection.status == "at_limit"
            else Text("BREACH SOON", style="bold yellow")
        )
        table.add_row(
            scope,
            f"{target.resource}\n[dim]{target.unit}[/]",
            _quantity(projection.current, target.unit),
            _quantity(target.limit, target.unit),
            "-" if utilisation is None else f"{utilisation:.0%}",
            _quota_breach_text(projection),
            probability_text(projection.probability),
            status,
        )
    table.caption = (
        f"Usage: latest daily peak. Breach: median date, 10th-90th percentile below it. "
        f"P(breach): within {report.window_days} days."
    )
    return table


def quota_alert_panel(alert: QuotaAlert) -> Panel:
    projection = alert.projection
    lines: list[Text] = [Text(alert.title)]
    if projection.model:
        method = projection.params.get("method")
        model = f"{projection.model} {method}" if method else projection.model
        lines.append(
            Text(
                f"Model {model}, daily peaks {projection.history_start} to "
                f"{projection.history_end}",
                style="dim",
            )
        )
    if alert.link:
        lines.append(Text(f"Palette: {alert.link}", style="link " + alert.link))

    style = _SEVERITY_STYLE.get(alert.severity, "white")
    target = projection.target
    title = f"[{style}]{alert.severity.upper()}[/] {target.describe()} · {target.resource}"
    return Panel(Group(*lines), title=title, title_align="left", border_style=style)


def quota_section(report: QuotaReport) -> Group:
    """Return the quota table and one panel per alert, or one line when nothing is projected."""
    if not report.alerts:
        checked = len(report.projections)
        return Group(
            Text(
                f"No quota breach projected within {report.window_days} days "
                f"({checked} limits checked).",
                style="green",
            )
        )
    panels = [quota_alert_panel(alert) for alert in report.alerts]
    heading = Text(f"{len(report.alerts)} quota alert(s)", style="bold")
    return Group(quota_table(report), heading, *panels)


ANOMALY_KIND_NAMES = {
    "spike": "spike",
    "level_shift": "level shift",
    "sustained_cpu": "CPU saturation",
    "gpu_misuse": "GPU misuse",
    "egress_jump": "egress jump",
}


def anomaly_values(anomaly: Anomaly) -> str:
    """Format expected against actual per day: money for cost, the unit for usage."""
    if anomaly.metric == "cost":
        return f"{whole_money(anomaly.expected)} -> {whole_money(anomaly.actual)}"
    return f"{float(anomaly.expected):,.1f} -> {float(anomaly.actual):,.1f} {anomaly.unit}"


def anomaly_table(anomalies: Sequence[Anomaly], title: str = "Anomalies") -> Table:
    """Return one row per anomaly: scope, kind, days, expected against actual and impact per day,
    the top contributor and the likely cause."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("Scope", overflow="fold", max_width=24)
    table.add_column("Kind")
    table.add_column("First day")
    table.add_column("Per day: expected\n-> actual, impact", justify="right")
    table.add_column("Top contributor", overflow="fold", max_width=18)
    table.add_column("Likely cause", overflow="fold", ratio=1)

    for anomaly in anomalies:
        scope = Text(anomaly.scope.describe())
        scope.append(f"\n{anomaly.anomaly_id[:8]}", style="dim")
        kind = Text(ANOMALY_KIND_NAMES.get(anomaly.kind, anomaly.kind))
        kind.append(f"\n{anomaly.status.replace('_', ' ')}", style="dim")
        plural = "s" if anomaly.days > 1 else ""
        days = f"{anomaly.first_day:%b %d}\n[dim]{anomaly.days} day{plural}[/]"
        top = anomaly.top_contributor
        contributor = "-"
        if top is not None:
            share = "" if top.share is None else f" {top.share:.0%}"
            contributor = f"{top.value}\n[dim]{top.dimension.replace('_', ' ')}{share}[/]"
        cause = anomaly.triage.likely_cause if anomaly.triage else "-"
        table.add_row(scope, kind, days, _anomaly_change(anomaly), contributor, cause)
    return table


def _anomaly_change(anomaly: Anomaly) -> str:
    change = anomaly_values(anomaly)
    percent = "" if anomaly.percent is None else f"{anomaly.percent:+.0%}"
    if anomaly.impact_per_day is not None:
        percent = f"+{whole_money(anomaly.impact_per_day)} ({percent})" if percent else ""
    return f"{change}\n[dim]{percent}[/]" if percent else change


def anomaly_section(report: AnomalyReport) -> Group:
    """Return the anomaly table, or one line when nothing was found."""
    checked = f"{report.scopes_checked} scopes, {report.scope_days} scope-days checked"
    warnings = [Text(f"Anomalies: {note}", style="yellow") for note in report.notes]
    if not report.anomalies:
        line = f"No cost or usage anomalies ({checked}"
        if report.suppressed:
            line += f"; {len(report.suppressed)} suppressed as expected"
        return Group(*warnings, Text(line + ").", style="green"))
    table = anomaly_table(report.anomalies)
    currencies = sorted({item.currency for item in report.anomalies if item.metric == "cost"})
    notes = [checked]
    if currencies:
        notes.append(f"amounts in {', '.join(currencies)}")
    if report.suppressed:
        notes.append(f"{len(report.suppressed)} suppressed as expected")
    if report.related:
        notes.append(f"{len(report.related)} related scopes listed under their anomaly")
    table.caption = "; ".join(notes) + "."
    return Group(*warnings, table)
