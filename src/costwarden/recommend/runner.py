"""Recommendations for one pass: read usage, run the recommenders, pick actions per budget.

Usage comes from Prometheus when ``prometheus.url`` is set. Without it, or when Prometheus
fails during a pass, the pass falls back to what Palette reports (``recommend.palette_usage``):
machine pools from the cloud configs and the cluster usage the Palette ingestion stored. That
fallback has no workload data, so only the pool-level recommenders run on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.config import Settings
from costwarden.domain.budget import Budget
from costwarden.domain.recommendation import Recommendation
from costwarden.errors import ConfigError, PaletteError, SourceError
from costwarden.recommend.engine import RecommendationReport, RecommendEngine
from costwarden.recommend.inputs import load_input
from costwarden.recommend.palette_pools import with_palette_inputs
from costwarden.sources.prices import PriceCatalog
from costwarden.store import Store
from costwarden.store.queries import resolve_scope
from costwarden.store.tables import Cluster

logger = logging.getLogger(__name__)

UsageSourceName = str
"""``prometheus`` or ``palette``: where the usage behind a report came from."""


@dataclass(frozen=True, slots=True)
class RecommendOutcome:
    """The recommendations of a pass, where their usage came from, and what limited them.

    ``report`` is None when no recommender could run, and ``note`` then gives the reason.
    """

    report: RecommendationReport | None
    source: UsageSourceName | None
    note: str | None = None

    @property
    def items(self) -> tuple[Recommendation, ...]:
        return self.report.items if self.report is not None else ()


def prometheus_report(
    settings: Settings, end: datetime, clusters: list[str] | None = None
) -> RecommendationReport:
    """Read usage from the configured Prometheus and run the configured recommenders."""
    from costwarden.sources.prometheus import PrometheusSource

    if settings.prometheus.url is None:
        raise ConfigError(
            "Prometheus is not configured: set COSTWARDEN_PROMETHEUS_URL (or prometheus.url in "
            "the --config file) to the base URL of the Prometheus HTTP API"
        )
    engine = RecommendEngine(settings.recommend)

    with PrometheusSource(settings.prometheus) as source:
        bundle = load_input(
            source,
            end=end,
            window=timedelta(days=settings.recommend.window_days),
            min_history=timedelta(days=settings.recommend.min_history_days),
            cpu_quantile=engine.cpu_quantile,
            prices=PriceCatalog.packaged(),
            clusters=clusters,
        )
    bundle = with_palette_inputs(bundle, settings, clusters=clusters)
    empty = not (bundle.cpu.items or bundle.node_info.items or bundle.volumes.items)
    if empty:
        logger.warning(
            "Prometheus returned no container, node or volume usage in the %d days up to %s",
            settings.recommend.window_days,
            end.isoformat(),
        )
    return replace(engine.run(bundle), inputs_empty=empty)


def recommend_for_pass(store: Store, settings: Settings, as_of: datetime) -> RecommendOutcome:
    """Return the recommendations of a pass; failures of a usage source never stop the pass."""
    if not settings.recommend.in_run:
        return RecommendOutcome(None, None, "recommendations are off (recommend.in_run)")

    failed = ""
    if settings.prometheus.url is not None:
        try:
            return RecommendOutcome(prometheus_report(settings, as_of), "prometheus")
        except PaletteError as exc:
            logger.error("recommendations: Palette failed: %s", exc)
            return RecommendOutcome(None, None, f"Palette failed: {exc}")
        except SourceError as exc:
            logger.error("recommendations: Prometheus failed, using Palette's usage: %s", exc)
            failed = f"Prometheus failed ({exc}), so "

    from costwarden.recommend.palette_usage import palette_report

    try:
        report, note = palette_report(store, settings, as_of, prometheus_set=bool(failed))
    except SourceError as exc:
        logger.error("recommendations: Palette failed: %s", exc)
        return RecommendOutcome(None, None, f"{failed}no usage source was reachable: {exc}")
    return RecommendOutcome(report, "palette" if report is not None else None, failed + note)


def actions_for_scope(
    items: tuple[Recommendation, ...],
    clusters: frozenset[str] | None,
    namespaces: frozenset[tuple[str, str]] | None,
    limit: int,
) -> tuple[Recommendation, ...]:
    """Return up to ``limit`` recommendations that lower a scope's cost, best first.

    ``clusters`` and ``namespaces`` are cluster names and (cluster name, namespace) pairs; None
    means the scope does not filter on them. A namespace scope gets only changes inside its
    namespaces, because a pool change does not lower a namespace's usage-based share by a known
    amount. Changes that add cost are left out.
    """
    chosen = []
    for item in items:
        if item.savings.per_day <= Decimal(0):
            continue
        target = item.target
        if namespaces is not None:
            if (target.cluster, target.namespace or "") not in namespaces:
                continue
        elif clusters is not None and target.cluster not in clusters:
            continue
        chosen.append(item)
    return tuple(chosen[:limit])


def scope_filter(
    session: Session, budget: Budget
) -> tuple[frozenset[str] | None, frozenset[tuple[str, str]] | None]:
    """Return the cluster names and (cluster name, namespace) pairs a budget covers.

    None means no filter. A budget on billing data (FOCUS) names no clusters, so it gets an
    empty set of clusters and no actions.
    """
    resolved = resolve_scope(session, budget)
    if resolved.source != "palette":
        return frozenset(), None
    uids = set(resolved.clusters or ()) | {uid for uid, _ in resolved.namespaces or ()}
    query = select(Cluster.uid, Cluster.name).where(Cluster.uid.in_(uids))
    names = {uid: name for uid, name in session.execute(query)}
    clusters = (
        None
        if resolved.clusters is None
        else frozenset(names.get(uid, uid) for uid in resolved.clusters)
    )
    namespaces = None
    if resolved.namespaces is not None:
        namespaces = frozenset((names.get(uid, uid), name) for uid, name in resolved.namespaces)
    return clusters, namespaces
