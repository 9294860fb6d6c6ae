"""``costwarden recommend``: savings recommendations from Prometheus usage and list prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from costwarden.cli.common import print_json, state, stderr, stdout
from costwarden.cli.render import money
from costwarden.config import Settings
from costwarden.errors import ConfigError
from costwarden.recommend import RECOMMENDERS, RecommendationReport, RecommendEngine, load_input
from costwarden.sources.prices import PriceCatalog
from costwarden.sources.prometheus import PrometheusSource


def recommend(
    ctx: typer.Context,
    kinds: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="Run only this recommender (repeatable); default: the configured ones. "
            f"Names: {', '.join(RECOMMENDERS.names())}.",
        ),
    ] = None,
    clusters: Annotated[
        list[str] | None,
        typer.Option("--cluster", help="Only this cluster label value (repeatable)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="End of the usage window, ISO 8601 in UTC; default: now."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of recommendations on stdout.")
    ] = False,
) -> None:
    """Propose ranked changes with estimated savings, from Prometheus usage and list prices."""
    settings = state(ctx).settings()
    if kinds:
        settings.recommend.enabled = list(kinds)
    report = build_report(settings, _end(end), clusters)

    if as_json:
        print_json([item.to_dict() for item in report.items])
        return
    stdout.print(_table(report))


def build_report(
    settings: Settings, end: datetime, clusters: list[str] | None
) -> RecommendationReport:
    """Read usage from the configured Prometheus and run the configured recommenders."""
    if settings.prometheus.url is None:
        raise ConfigError(
            "Prometheus is not configured: set COSTWARDEN_PROMETHEUS_URL (or prometheus.url in "
            "the --config file) to the base URL of the Prometheus HTTP API"
        )
    engine = RecommendEngine(settings.recommend)
    window = timedelta(days=settings.recommend.window_days)

    with PrometheusSource(settings.prometheus) as source:
        bundle = load_input(
            source,
            end=end,
            window=window,
            min_history=timedelta(days=settings.recommend.min_history_days),
            cpu_quantile=engine.cpu_quantile,
            prices=PriceCatalog.packaged(),
            clusters=clusters,
        )
    if not (bundle.cpu.items or bundle.node_info.items or bundle.volumes.items):
        scope = f" for cluster {', '.join(clusters)}" if clusters else ""
        stderr.print(
            f"[yellow]warning:[/] Prometheus returned no container, node or volume usage{scope} "
            f"in the {settings.recommend.window_days} days up to {end:%Y-%m-%d %H:%M} UTC; check "
            "--end, --cluster and the Prometheus URL",
            highlight=False,
        )
    return engine.run(bundle)


def _end(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--end {text!r} is not an ISO 8601 date or time, such as 2026-11-16T00:00:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _table(report: RecommendationReport) -> Table:
    table = Table(
        title="Recommendations, best first",
        caption=f"Total without overlap: {money(report.total_per_day, report.currency)} per day; "
        f"changes that add cost: {money(report.added_cost_per_day, report.currency)} per day",
    )
    for column in ("#", "kind", "change", "per day", "per month", "confidence", "risk"):
        table.add_column(column, justify="right" if column.startswith("per") else "left")
    for number, item in enumerate(report.items, start=1):
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


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
