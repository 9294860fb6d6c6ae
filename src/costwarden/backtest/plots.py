"""PNG charts of a backtest: a reliability diagram and a forecast fan chart.

Figures are drawn with matplotlib's object API on the Agg canvas, so no display and no pyplot
global state are involved.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from costwarden.backtest.results import BacktestResult, OriginForecast
from costwarden.errors import ConfigError

logger = logging.getLogger(__name__)

CONTEXT_DAYS = 56
"""Days of actual spend drawn before the first origin shown in the fan chart."""

RELIABILITY_FILE = "reliability.png"


def write_plots(result: BacktestResult, directory: Path, scope: str | None = None) -> list[Path]:
    """Write the reliability diagram and the fan chart of ``scope`` into ``directory``.

    ``scope`` defaults to the scope with the highest total spend. Returns the files written.
    Raises ConfigError when ``scope`` is not part of the result.
    """
    name = scope or default_plot_scope(result)
    if name not in result.series:
        valid = ", ".join(sorted(result.series)[:20])
        raise ConfigError(f"--plot-scope {name!r} is not among the scopes backtested: {valid}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"--plot {directory}: cannot create the directory ({exc.strerror}); pass a "
            "directory you can write to"
        ) from exc

    written = [_save(reliability_figure(result), directory / RELIABILITY_FILE)]
    cells = [cell for cell in result.forecasts if cell.scope == name]
    if cells:
        written.append(_save(fan_figure(result, name, cells), directory / fan_file_name(name)))
    else:
        logger.warning("backtest plot: scope %s has no scored forecasts, so no fan chart", name)
    return written


def default_plot_scope(result: BacktestResult) -> str:
    """Return the scope with the highest total spend."""
    return result.scopes[0].name


def fan_file_name(scope: str) -> str:
    """Return a file name for the fan chart of ``scope``, safe on every file system."""
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in scope)
    return f"fan-{safe.strip('.') or 'scope'}.png"


def reliability_figure(result: BacktestResult) -> Figure:
    """Draw observed frequency against mean predicted probability per bin, with event counts."""
    figure = Figure(figsize=(7, 7), layout="constrained")
    diagram, histogram = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    rows = [row for row in result.reliability if row.count]

    diagram.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    if rows:
        predicted = [row.mean_predicted for row in rows]
        observed = [row.observed_frequency for row in rows]
        diagram.plot(predicted, observed, marker="o", color="tab:blue", label="forecaster")
        for row, x, y in zip(rows, predicted, observed, strict=True):
            diagram.annotate(
                f"n={row.count}", (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8
            )
    else:
        diagram.text(0.5, 0.5, "no exceedance events", ha="center", va="center")
    diagram.set_xlim(-0.02, 1.02)
    diagram.set_ylim(-0.02, 1.02)
    diagram.set_ylabel("observed frequency")
    diagram.set_title(_reliability_title(result))
    diagram.legend(loc="upper left")

    centres = [(row.lower + row.upper) / 2 for row in result.reliability]
    widths = [row.upper - row.lower for row in result.reliability]
    histogram.bar(
        centres,
        [row.count for row in result.reliability],
        width=widths,
        color="tab:blue",
        alpha=0.6,
        edgecolor="white",
    )
    histogram.set_xlabel("predicted probability of exceeding the budget")
    histogram.set_ylabel("events")
    return figure


def fan_figure(result: BacktestResult, scope: str, cells: list[OriginForecast]) -> Figure:
    """Draw the latest origin's forecast with its 80% and 95% bands over the actual spend.

    Earlier origins appear as thin forecast-mean lines, so drift between origins is visible.
    """
    series = result.series[scope]
    latest = max(cells, key=lambda cell: cell.origin)
    start = max(series.first_day, min(cell.origin for cell in cells) - timedelta(days=CONTEXT_DAYS))
    days = np.array(
        [start + timedelta(days=offset) for offset in range((series.last_day - start).days + 1)]
    )

    figure = Figure(figsize=(11, 5), layout="constrained")
    axes = figure.subplots()
    axes.plot(
        days,
        series.between(start, series.last_day + timedelta(days=1)),
        color="black",
        linewidth=1,
        label="actual",
    )
    dates = np.array(latest.days.dates)
    axes.fill_between(
        dates, latest.days.lo95, latest.days.hi95, color="tab:blue", alpha=0.2, label="95% interval"
    )
    axes.fill_between(
        dates,
        latest.days.lo80,
        latest.days.hi80,
        color="tab:blue",
        alpha=0.35,
        label="80% interval",
    )
    axes.plot(
        dates,
        latest.days.mean,
        color="tab:blue",
        linewidth=2,
        label=f"forecast from {latest.origin} ({latest.model})",
    )
    earlier = sorted((cell for cell in cells if cell is not latest), key=lambda cell: cell.origin)
    for position, cell in enumerate(earlier):
        axes.plot(
            np.array(cell.days.dates),
            cell.days.mean,
            color="tab:orange",
            linewidth=1,
            alpha=0.7,
            label="forecasts from earlier origins" if position == 0 else None,
        )
    for cell in cells:
        axes.axvline(cell.origin, color="grey", linestyle=":", linewidth=0.8)

    currency = f" ({series.currency})" if series.currency else ""
    axes.set_ylabel(f"daily spend{currency}")
    axes.set_title(f"{scope}: forecasts from {len(cells)} origins, marked by dotted lines")
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    return figure


def _reliability_title(result: BacktestResult) -> str:
    score = result.exceedance
    if score.brier is None or score.baseline_brier is None:
        return "Budget exceedance reliability: no events"
    return (
        f"Budget exceedance reliability, {score.events} events\n"
        f"Brier {score.brier:.3f}, straight-line baseline {score.baseline_brier:.3f}"
    )


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise ConfigError(
            f"--plot: cannot write {path} ({exc.strerror or exc}); pass a directory you can "
            "write to"
        ) from exc
    logger.info("backtest plot written to %s", path)
    return path
