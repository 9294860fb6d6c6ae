"""``costwarden ingest focus``: load billing exports into the cost database."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from costwarden.cli.common import state, stdout
from costwarden.domain.cost import quantize_money
from costwarden.sources.focus import FocusIngestReport, ingest_focus_files
from costwarden.store import Store

ingest_app = typer.Typer(help="Load cost data from files into the database.", no_args_is_help=True)


class CostColumn(StrEnum):
    """The FOCUS cost columns that can be the amount of a cost fact."""

    EFFECTIVE = "EffectiveCost"
    BILLED = "BilledCost"
    LIST = "ListCost"
    CONTRACTED = "ContractedCost"


@ingest_app.command("focus")
def focus(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="FOCUS 1.0 to 1.2 exports: CSV, gzip-compressed CSV or Parquet.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    cost_column: Annotated[
        CostColumn | None,
        typer.Option(
            "--cost-column",
            help="FOCUS column used as the amount; default: focus.cost_column from the settings "
            "(EffectiveCost).",
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Treat the files as one restated export, written in one transaction: delete the "
            "stored FOCUS facts of its providers, sub-accounts and first to last charge day that "
            "none of its rows match.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object per file, one per line; logs go to stderr. totals are "
            "numbers rounded to cents per currency, and totals_exact the exact sums as decimal "
            "strings.",
        ),
    ] = False,
) -> None:
    """Ingest FOCUS billing exports in the order given, one transaction per file.

    A broken file stops the command with exit code 3 and nothing from it is stored.
    Files before it stay committed. With --replace all files share one transaction,
    so a broken file stores and deletes nothing.
    """
    column = cost_column.value if cost_column else None
    settings = state(ctx).settings(focus__cost_column=column)
    store = Store.open(settings.database_url)
    try:
        for report in ingest_focus_files(store, files, settings.focus, replace=replace):
            if as_json:
                typer.echo(json.dumps(report_json(report)))
            else:
                print_summary(report)
    finally:
        store.close()


def report_json(report: FocusIngestReport) -> dict[str, Any]:
    """Return the JSON form of one file's report.

    ``totals`` are numbers rounded to cents, as money is everywhere else in costwarden's JSON.
    ``totals_exact`` keeps the stored sums as decimal strings, to reconcile with the export.
    """
    totals = _sorted_totals(report)
    return {
        "source": report.source,
        "file": report.origin,
        "batch_id": report.batch_id,
        "cost_column": report.cost_column,
        "rows_read": report.rows_read,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "duplicates": report.duplicates,
        "window_start": report.window_start.isoformat() if report.window_start else None,
        "window_end": report.window_end.isoformat() if report.window_end else None,
        "totals": {currency: float(quantize_money(total)) for currency, total in totals},
        "totals_exact": {currency: format(total, "f") for currency, total in totals},
        "replace": report.replace,
        "replaced": report.replaced,
        "warning_count": report.warning_count,
        "warnings": list(report.warnings),
    }


def print_summary(report: FocusIngestReport) -> None:
    table = Table(title=Text(report.origin), title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")

    window = "-"
    if report.window_start and report.window_end:
        window = f"{report.window_start} to {report.window_end} (UTC days)"
    totals = ", ".join(
        f"{quantize_money(total):,.2f} {currency}" for currency, total in _sorted_totals(report)
    )
    rows = [
        ("rows read", f"{report.rows_read:,}"),
        ("inserted", f"{report.inserted:,}"),
        ("updated", f"{report.updated:,}"),
        ("unchanged", f"{report.unchanged:,}"),
        ("duplicate rows skipped", f"{report.duplicates:,}"),
    ]
    if report.replace:
        rows.append(("stored facts replaced", f"{report.replaced:,}"))
    rows += [
        ("charge days", window),
        (f"total {report.cost_column}", totals or "-"),
        ("warnings", f"{report.warning_count:,}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    stdout.print(table)

    for warning in report.warnings:
        stdout.print(Text(f"  warning: {warning}", style="yellow"))


def _sorted_totals(report: FocusIngestReport) -> list[tuple[str, Decimal]]:
    return sorted(report.totals.items())


def register(app: typer.Typer) -> None:
    app.add_typer(ingest_app, name="ingest")
