"""``costwarden budgets list|validate``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from costwarden.budgets import load_budgets
from costwarden.budgets.history import period_actuals
from costwarden.cli.common import print_json, state, stdout
from costwarden.cli.render import money
from costwarden.cli.run import BudgetsOption, parse_as_of, resolve_budget_file
from costwarden.store import Store

budgets_app = typer.Typer(help="Show and check budget files.", no_args_is_help=True)


@budgets_app.command("validate")
def validate(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Budget files to check.", dir_okay=False)],
) -> None:
    """Check budget files and print how many budgets each holds; exit 2 on the first error."""
    for path in files:
        budgets = load_budgets(path)
        thresholds = sum(len(budget.thresholds) for budget in budgets)
        stdout.print(f"{path}: {len(budgets)} budgets, {thresholds} thresholds, valid")


@budgets_app.command("list")
def list_budgets(
    ctx: typer.Context,
    budgets_file: BudgetsOption = None,
    periods: Annotated[int, typer.Option("--periods", min=1, help="Periods shown per budget.")] = 6,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Today, for the current period.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Show each budget with its past periods: the amount against actual spend."""
    settings = state(ctx).settings()
    budgets = load_budgets(resolve_budget_file(budgets_file, settings))
    today = parse_as_of(as_of).date() if as_of else datetime.now(UTC).date()

    store = Store.open(settings.database_url)
    try:
        with store.transaction() as session:
            history = {budget.name: period_actuals(session, budget, today, periods) for budget in budgets}
    finally:
        store.close()

    if as_json:
        print_json([_budget_json(budget, history[budget.name]) for budget in budgets])
        return

    for budget in budgets:
        stdout.print(_budget_history_table(budget, history[budget.name]))


def _budget_json(budget, rows) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "name": budget.name,
        "scope": budget.scope.describe(),
        "amount": float(budget.amount),
        "currency": budget.currency,
        "period": budget.period.kind,
        "thresholds": [threshold.key() for threshold in budget.thresholds],
        "periods": [
            {
                "start": row.window.start.isoformat(),
                "end": (row.window.end - timedelta(days=1)).isoformat(),
                "actual": None if row.actual is None else round(float(row.actual), 2),
                "used": None if row.used is None else round(row.used, 4),
                "complete": row.complete,
            }
            for row in rows
        ],
    }


def _budget_history_table(budget, rows) -> Table:  # type: ignore[no-untyped-def]
    title = (
        f"{budget.name} · {budget.scope.describe()} · {money(budget.amount, budget.currency)} "
        f"{budget.period.kind} · thresholds: {', '.join(t.key() for t in budget.thresholds)}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("Period")
    table.add_column("Budget", justify="right")
    table.add_column("Actual", justify="right")
    table.add_column("Used", justify="right")
    table.add_column("")
    for row in rows:
        used = "-" if row.used is None else f"{row.used:.0%}"
        flag = ""
        if not row.complete:
            flag = "in progress"
        elif row.used is not None and row.used > 1:
            flag = "[red]over[/]"
        table.add_row(
            f"{row.window.start} .. {row.window.end - timedelta(days=1)}",
            money(row.amount),
            money(row.actual),
            used,
            flag,
        )
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(budgets_app, name="budgets")
