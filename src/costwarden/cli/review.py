"""``costwarden review``: the periodic governance review of alerts, savings and approvals."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from costwarden.budgets import load_budgets
from costwarden.cli.common import state, stderr, stdout
from costwarden.config import Settings
from costwarden.domain.budget import Budget
from costwarden.errors import ConfigError
from costwarden.review import ReviewRange, build_review, record_realised_savings
from costwarden.review.render import review_markdown, review_tables
from costwarden.store import Store
from costwarden.store.budgets import stored_budgets

FORMATS: tuple[str, ...] = ("table", "json", "markdown")


def review_command(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="First day reviewed (YYYY-MM-DD); default: 90 days before --until."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Last day reviewed (YYYY-MM-DD); default: yesterday (UTC)."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: table, json or markdown.")
    ] = "table",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the review to this file instead of stdout.",
            dir_okay=False,
        ),
    ] = None,
    budgets_file: Annotated[
        Path | None,
        typer.Option(
            "--budgets", "-b", help="Budget file (YAML); default: budgets_file from settings."
        ),
    ] = None,
    record_savings: Annotated[
        bool,
        typer.Option(
            "--record-savings",
            help="First record the realised savings of windows that have become complete, as a "
            "pass does.",
        ),
    ] = False,
) -> None:
    """Review alert precision and lead time, savings estimates, approvals and action runs."""
    if output_format not in FORMATS:
        raise ConfigError(f"--format {output_format!r} is invalid; use one of {', '.join(FORMATS)}")
    now = datetime.now(UTC)
    review_range = ReviewRange.default(now, _day("--since", since), _day("--until", until))
    if review_range.since > review_range.until:
        raise ConfigError(
            f"--since {review_range.since} is after --until {review_range.until}; swap them"
        )

    settings = state(ctx).settings()
    store = Store.open(settings.database_url)
    try:
        if record_savings:
            with store.transaction() as session:
                outcome = record_realised_savings(session, settings, now)
            stderr.print(f"Recorded {outcome.recorded} realised savings windows.", highlight=False)
        with store.transaction() as session:
            budgets = _budgets(session, settings, budgets_file)
            review = build_review(session, budgets, review_range, now)
    finally:
        store.close()
    _write(review, output_format, output)


def _day(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def _budgets(session: Session, settings: Settings, path: Path | None) -> list[Budget]:
    """Return the stored budgets, replaced by name by those of the budget file when one is set."""
    by_name = {budget.name: budget for budget in stored_budgets(session)}
    path = path or settings.budgets_file
    if path is not None:
        by_name.update((budget.name, budget) for budget in load_budgets(path))
    return list(by_name.values())


def _write(review: dict[str, Any], output_format: str, output: Path | None) -> None:
    if output_format == "table":
        if output is None:
            stdout.print(review_tables(review))
            return
        with output.open("w", encoding="utf-8") as handle:
            Console(file=handle, width=120).print(review_tables(review))
        return

    text = (
        json.dumps(review, indent=2) + "\n" if output_format == "json" else review_markdown(review)
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.command("review")(review_command)
