"""``costwarden backtest``: score the forecaster on the stored cost history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table
from sqlalchemy.orm import Session

from costwarden.backtest import (
    Accuracy,
    BacktestOptions,
    BacktestResult,
    ProbabilityScore,
    result_json,
    run_backtest,
)
from costwarden.budgets import load_budgets
from costwarden.cli.common import print_json, state, stderr, stdout
from costwarden.errors import ConfigError
from costwarden.forecast.adjustment import MIN_RATIOS, AdjustmentFactor
from costwarden.store import Store
from costwarden.store.adjustments import save_adjustment

FEW_FORECASTS = 100
"""Forecasts below which a saved adjustment gets a warning that its factors are noisy."""
MAX_BAND_DAY = 10_000
"""The last day of the open-ended band of horizons."""


def backtest(
    ctx: typer.Context,
    budgets_file: Annotated[
        Path | None,
        typer.Option(
            "--budgets",
            "-b",
            dir_okay=False,
            help="Evaluate the scopes of this budget file instead of every cluster.",
        ),
    ] = None,
    scope: Annotated[
        str | None, typer.Option("--scope", help="Evaluate only this cluster or budget name.")
    ] = None,
    origins: Annotated[
        int, typer.Option("--origins", min=1, help="Number of rolling origins.")
    ] = 6,
    step: Annotated[int, typer.Option("--step", min=1, help="Days between rolling origins.")] = 14,
    horizons: Annotated[
        list[int] | None,
        typer.Option(
            "--horizon", min=1, help="Horizon in days; repeat for several. Default: 7, 14 and 30."
        ),
    ] = None,
    levels: Annotated[
        list[float] | None,
        typer.Option(
            "--level",
            help="Budget level of the exceedance events, as a multiple of the "
            "previous month's total; repeat for several. Default: 0.9, 1.0, 1.1, 1.25.",
        ),
    ] = None,
    min_history: Annotated[
        int | None,
        typer.Option(
            "--min-history",
            min=2,
            help="Days of data a scope needs before an origin; "
            "default: the forecast setting min_history_days.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout; logs go to stderr.")
    ] = False,
    plot_dir: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            file_okay=False,
            help="Write a reliability diagram and a fan chart (PNG) into this directory.",
        ),
    ] = None,
    plot_scope: Annotated[
        str | None,
        typer.Option("--plot-scope", help="Scope of the fan chart; default: the highest spend."),
    ] = None,
    save_adjustment: Annotated[
        bool,
        typer.Option(
            "--save-adjustment",
            help="Store the interval adjustment fitted on this backtest; later budget passes "
            "on the same cost source scale their intervals by it.",
        ),
    ] = False,
) -> None:
    """Score the forecaster on past origins of the stored history.

    Reports MASE, sMAPE, interval coverage and the Brier score of budget exceedance.
    """
    settings = state(ctx).settings()
    options = _options(
        origins=origins,
        step_days=step,
        horizons=horizons,
        levels=levels,
        min_history_days=min_history,
        scope=scope,
    )
    if save_adjustment and scope is not None:
        raise ConfigError(
            "--save-adjustment with --scope: an adjustment fitted on one scope would scale the "
            "intervals of every budget on this cost source; run without --scope"
        )
    budgets = load_budgets(budgets_file) if budgets_file is not None else None

    store = Store.open(settings.database_url)
    try:
        with store.transaction() as session:
            result = run_backtest(session, settings.forecast, options, budgets)
            if save_adjustment:
                _save(session, result)
    finally:
        store.close()

    if plot_dir is not None:
        from costwarden.backtest.plots import write_plots

        for path in write_plots(result, plot_dir, plot_scope):
            stderr.print(f"wrote {path}", highlight=False)
    if as_json:
        print_json(result_json(result))
        return
    show_result(result)


def _save(session: Session, result: BacktestResult) -> None:
    if result.adjustment is None:
        raise ConfigError(
            "--save-adjustment needs at least two rolling origins to fit the adjustment on; "
            "raise --origins or ingest more history"
        )
    record = save_adjustment(
        session,
        result.adjustment,
        source=result.source,
        scope_kind=result.scope_kind,
        now=datetime.now(UTC),
    )
    stderr.print(
        f"saved interval adjustment (id {record}) for {result.source} data: budget passes now "
        "scale their intervals by it",
        highlight=False,
    )
    if result.adjustment.forecasts < FEW_FORECASTS:
        stderr.print(
            f"[yellow]warning:[/] the adjustment comes from {result.adjustment.forecasts} "
            f"forecasts; with fewer than {FEW_FORECASTS} its factors are noisy. Backtest more "
            "scopes or --origins before saving.",
            highlight=False,
        )
    thin = [item for item in result.adjustment.factors if item.days < MIN_RATIOS]
    if thin:
        bands = ", ".join(f"{item.level}% {item.side} days {_band(item)}" for item in thin)
        stderr.print(
            f"[yellow]warning:[/] fewer than {MIN_RATIOS} forecast days for {bands}; those keep "
            "a factor of 1. Use more --origins or a longer --horizon to fit them.",
            highlight=False,
        )


def _band(item: AdjustmentFactor) -> str:
    if item.last_day >= MAX_BAND_DAY:
        return f"{item.first_day}+"
    return f"{item.first_day}-{item.last_day}"


def _options(**values: object) -> BacktestOptions:
    """Build the options from the flags, leaving unset flags at their defaults."""
    chosen = {key: value for key, value in values.items() if value is not None}
    try:
        return BacktestOptions(**chosen)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"invalid backtest options: {problems}") from exc


def show_result(result: BacktestResult) -> None:
    stdout.print(
        f"Backtest of {result.overall.forecasts} forecasts from {len(result.origins)} origins "
        f"and {result.exceedance.events} budget events, {result.source} data "
        f"{result.history_start} .. {result.history_end}"
    )
    stdout.print(_scope_table(result))
    stdout.print(_horizon_table(result))
    if result.exceedance.events:
        stdout.print(_reliability_table(result))
    else:
        stdout.print(
            "[dim]No budget exceedance events: they need a fully stored month before a month "
            "that has ended.[/]"
        )
    if result.skipped:
        stdout.print(f"[dim]{len(result.skipped)} scope origins skipped; --json lists them.[/]")


def _scope_table(result: BacktestResult) -> Table:
    table = Table(title="Accuracy per scope", title_justify="left")
    table.add_column("Scope", overflow="fold")
    for column in (
        "Forecasts",
        "MASE",
        "sMAPE",
        "Cov 80%",
        "Cov 95%",
        "Events",
        "Brier",
        "Baseline",
        "Skipped",
    ):
        table.add_column(column, justify="right")
    for scope in result.scopes:
        table.add_row(
            scope.name,
            *_accuracy_cells(scope.accuracy),
            *_score_cells(scope.exceedance),
            str(scope.skipped),
        )
    table.add_section()
    table.add_row(
        "[bold]overall[/]",
        *_accuracy_cells(result.overall),
        *_score_cells(result.exceedance),
        str(len(result.skipped)),
    )
    horizons = ", ".join(str(horizon) for horizon in result.horizons)
    table.caption = (
        f"MASE and sMAPE score the forecast mean, averaged over the horizons ({horizons} days). "
        "Baseline is the Brier score of the straight-line month-to-date projection."
    )
    return table


def _horizon_table(result: BacktestResult) -> Table:
    raw = result.overall.coverage_80_raw is not None
    adjusted = result.overall.coverage_80_adjusted is not None
    table = Table(title="Accuracy per horizon", title_justify="left")
    table.add_column("Horizon", justify="right")
    for column in ("Forecasts", "MASE", "sMAPE", "Cov 80%", "Cov 95%"):
        table.add_column(column, justify="right")
    if raw:
        table.add_column("Cov 80% raw", justify="right")
        table.add_column("Cov 95% raw", justify="right")
    if adjusted:
        table.add_column("Cov 80% adj", justify="right")
        table.add_column("Cov 95% adj", justify="right")
    rows = [*((f"{horizon} d", accuracy) for horizon, accuracy in result.by_horizon.items())]
    rows.append(("all", result.overall))
    for label, accuracy in rows:
        cells = _accuracy_cells(accuracy)
        if raw:
            cells += [_percent(accuracy.coverage_80_raw), _percent(accuracy.coverage_95_raw)]
        if adjusted:
            cells += [
                _percent(accuracy.coverage_80_adjusted),
                _percent(accuracy.coverage_95_adjusted),
            ]
        table.add_row(label, *cells)
    notes = []
    if raw:
        notes.append("raw: intervals before calibration.")
    if adjusted:
        notes.append(
            "adj: after the interval adjustment, each origin's fitted on the other origins "
            "(--save-adjustment stores the one fitted on all of them)."
        )
    table.caption = " ".join(notes) or None
    return table


def _reliability_table(result: BacktestResult) -> Table:
    table = Table(title="Reliability of exceedance probabilities", title_justify="left")
    for column in ("Predicted", "Events", "Mean predicted", "Observed"):
        table.add_column(column, justify="right")
    for row in result.reliability:
        table.add_row(
            f"{row.lower:.1f}-{row.upper:.1f}",
            str(row.count),
            _percent(row.mean_predicted),
            _percent(row.observed_frequency),
        )
    return table


def _accuracy_cells(accuracy: Accuracy) -> list[str]:
    return [
        str(accuracy.forecasts),
        _number(accuracy.mase, 2),
        _number(accuracy.smape, 1, "%"),
        _percent(accuracy.coverage_80),
        _percent(accuracy.coverage_95),
    ]


def _score_cells(score: ProbabilityScore) -> Iterable[str]:
    return [str(score.events), _number(score.brier, 3), _number(score.baseline_brier, 3)]


def _number(value: float | None, digits: int, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
