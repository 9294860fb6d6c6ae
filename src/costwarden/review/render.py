"""Render a review dict as Rich tables for a terminal or as Markdown for a file or a ticket."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def review_tables(review: dict[str, Any]) -> RenderableType:
    """Return the review as a group of Rich tables, or the "nothing to review" note."""
    title = Text(f"Governance review {review['since']} to {review['until']}", style="bold")
    if review["empty"]:
        return Group(title, Text(review["notes"][0]))

    parts: list[RenderableType] = [title]
    for heading, rows in _sections(review):
        table = Table(title=heading, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
        for column in rows[0]:
            table.add_column(column, overflow="fold")
        for row in rows[1:]:
            table.add_row(*(escape(cell) for cell in row))
        parts.append(table)
    return Group(*parts)


def review_markdown(review: dict[str, Any]) -> str:
    """Return the review as a Markdown document with one table per section."""
    lines = [f"# Governance review {review['since']} to {review['until']}", ""]
    if review["empty"]:
        return "\n".join([*lines, review["notes"][0], ""])

    for heading, rows in _sections(review):
        lines += [f"## {heading}", ""]
        lines.append("| " + " | ".join(rows[0]) + " |")
        lines.append("|" + "---|" * len(rows[0]))
        for row in rows[1:]:
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        lines.append("")
    return "\n".join(lines)


def _sections(review: dict[str, Any]) -> list[tuple[str, list[list[str]]]]:
    """Return (heading, header row + rows) for each section that has something to show."""
    sections = []
    alerts = review["alerts"]
    if alerts["count"]:
        sections.append((_alert_heading(alerts), _alert_rows(alerts)))
        sections.append(("Alerted budget periods", _period_rows(alerts)))
    savings = review["savings"]
    if savings["count"] or savings["runs_without_result"]:
        sections.append((_savings_heading(savings), _savings_rows(savings)))
    approvals = review["approvals"]
    if approvals["count"]:
        sections.append(("Approvals", _approval_rows(approvals)))
    actions = review["actions"]
    if actions["count"]:
        heading = f"Action runs (rollbacks: {actions['rollbacks']['count']})"
        sections.append((heading, _action_rows(actions)))
    anomalies = review["anomaly_feedback"]
    if anomalies["count"]:
        sections.append(("Anomaly feedback", _anomaly_rows(anomalies)))
    return sections


def _alert_heading(alerts: dict[str, Any]) -> str:
    return (
        f"Budget alerts: precision {_percent(alerts['precision'])} "
        f"({alerts['true_positives']} of {alerts['evaluated']} evaluated; "
        f"{alerts['pending']} pending, {alerts['unknown']} unknown)"
    )


def _alert_rows(alerts: dict[str, Any]) -> list[list[str]]:
    rows = [["Kind", "Alerts", "Evaluated", "True pos.", "False pos.", "Precision", "Median lead"]]
    for kind in alerts["by_kind"]:
        lead = kind["lead_days"]["median"]
        rows.append(
            [
                kind["kind"],
                str(kind["count"]),
                str(kind["evaluated"]),
                str(kind["true_positives"]),
                str(kind["false_positives"]),
                _percent(kind["precision"]),
                "-" if lead is None else f"{lead:g} days",
            ]
        )
    return rows


def _period_rows(alerts: dict[str, Any]) -> list[list[str]]:
    rows = [["Budget", "Period", "Budget amount", "Actual", "Exceeded", "Alerts", "True pos."]]
    for period in alerts["periods"]:
        exceeded = period["exceeded"]
        rows.append(
            [
                period["budget"],
                f"{period['start']} to {period['end']}",
                f"{period['budget_amount']} {period['currency']}",
                _text(period["actual_total"]) if exceeded is not None else period["status"],
                _yes_no(exceeded),
                str(period["alerts"]),
                str(period["true_positives"]),
            ]
        )
    return rows


def _savings_heading(savings: dict[str, Any]) -> str:
    waiting = len(savings["runs_without_result"])
    return (
        f"Savings estimates: realised against estimated ({waiting} applied runs not evaluated yet)"
    )


def _savings_rows(savings: dict[str, Any]) -> list[list[str]]:
    rows = [
        [
            "Action",
            "Runs",
            "With estimate",
            "Estimated / month",
            "Realised / month",
            "Sum ratio",
            "MdAPE",
            "Within noise",
        ]
    ]
    for group in [
        *savings["by_action"],
        *({**item, "action": "all"} for item in savings["overall"]),
    ]:
        rows.append(
            [
                group["action"],
                str(group["runs"]),
                str(group["runs_with_estimate"]),
                f"{group['estimated_per_month']} {group['currency']}",
                f"{group['realised_per_month']} {group['currency']}",
                _number(group["sum_ratio"]),
                _percent(group["median_absolute_percentage_error"]),
                str(group["within_noise"]),
            ]
        )
    return rows


def _approval_rows(approvals: dict[str, Any]) -> list[list[str]]:
    hours = approvals["median_hours_to_decision"]
    rows = [["Requests", "By status", "Decided", "Median time to decision", "Expired"]]
    rows.append(
        [
            str(approvals["count"]),
            ", ".join(f"{status} {count}" for status, count in approvals["by_status"].items()),
            str(approvals["decided"]),
            "-" if hours is None else f"{hours:g} h",
            str(approvals["expired"]),
        ]
    )
    return rows


def _action_rows(actions: dict[str, Any]) -> list[list[str]]:
    rows = [["Action", "Mode", "Status", "Runs"]]
    for item in actions["by_action"]:
        rows.append([item["action"], item["mode"], item["status"], str(item["count"])])
    return rows


def _anomaly_rows(anomalies: dict[str, Any]) -> list[list[str]]:
    return [
        ["Verdicts", "Problems", "Expected", "Precision"],
        [
            str(anomalies["count"]),
            str(anomalies["problems"]),
            str(anomalies["expected"]),
            _percent(anomalies["precision"]),
        ],
    ]


def _yes_no(value: bool | None) -> str:
    if value is None:
        return "-"
    return "yes" if value else "no"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _text(value: Any) -> str:
    return "-" if value is None else str(value)
