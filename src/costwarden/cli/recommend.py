"""``costwarden recommend``: savings recommendations from Prometheus usage or Palette's pools."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from costwarden.cli.common import print_json, state, stderr, stdout
from costwarden.cli.render import money, recommendation_table
from costwarden.config import Settings
from costwarden.errors import ConfigError
from costwarden.recommend import RECOMMENDERS, RecommendationReport
from costwarden.recommend.palette_usage import palette_report
from costwarden.recommend.runner import prometheus_report
from costwarden.store import Store


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
        typer.Option(
            "--cluster",
            help="Only this cluster (repeatable): the Prometheus cluster label value, which is "
            "the Palette cluster name.",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="End of the usage window, ISO 8601 in UTC; default: now."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of recommendations on stdout.")
    ] = False,
) -> None:
    """Propose ranked changes with estimated savings, from Prometheus usage or Palette's pools.

    Usage comes from the Prometheus at COSTWARDEN_PROMETHEUS_URL. With COSTWARDEN_PALETTE_API_KEY
    too, pools, ids and prices come from Palette. With only the Palette key, Spot and idle-cluster
    changes come from Palette's pools and the cluster usage stored by costwarden run.
    """
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
    """Run the recommenders on Prometheus usage, or on Palette's pools when Prometheus is unset."""
    if settings.prometheus.url is None:
        return _palette_report(settings, end, clusters)

    report = prometheus_report(settings, end, clusters)
    if report.inputs_empty:
        scope = f" for cluster {', '.join(clusters)}" if clusters else ""
        stderr.print(
            f"[yellow]warning:[/] Prometheus returned no container, node or volume usage{scope} "
            f"in the {settings.recommend.window_days} days up to {end:%Y-%m-%d %H:%M} UTC; check "
            "--end, --cluster and the Prometheus URL",
            highlight=False,
        )
    return report


def _palette_report(
    settings: Settings, end: datetime, clusters: list[str] | None
) -> RecommendationReport:
    if settings.palette.api_key is None:
        raise ConfigError(
            "no usage source: set COSTWARDEN_PROMETHEUS_URL (prometheus.url) to the base URL of "
            "the Prometheus HTTP API, or COSTWARDEN_PALETTE_API_KEY for pool recommendations "
            "from Palette alone"
        )
    store = Store.open(settings.database_url)
    try:
        report, note = palette_report(store, settings, end, clusters)
    finally:
        store.close()
    assert report is not None
    stderr.print(f"[yellow]note:[/] recommendations {note}", highlight=False)
    return report


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
    table = recommendation_table(report.items, "Recommendations, best first")
    table.caption = (
        f"Total without overlap: {money(report.total_per_day, report.currency)} per day; "
        f"changes that add cost: {money(report.added_cost_per_day, report.currency)} per day"
    )
    return table


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
