"""Read queries: which stored facts a budget scope covers, and its daily spend."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from costwarden.domain.budget import Budget, Scope
from costwarden.domain.selector import matches_all
from costwarden.store.tables import Cluster, CostFact, Namespace

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ResolvedScope:
    """A budget scope turned into the facts it covers.

    ``clusters`` and ``namespaces`` are ``None`` when the scope does not filter on them. An empty
    set means the scope matched nothing, and ``problem`` gives the reason.
    """

    source: str
    grain: str
    clusters: frozenset[str] | None = None
    namespaces: frozenset[tuple[str, str]] | None = None
    filters: dict[str, str] = field(default_factory=dict)
    tag_requirements: tuple = ()
    problem: str | None = None
    currency: str | None = None

    @property
    def child_dimension(self) -> str:
        """The dimension that contributors of this scope are ranked by."""
        if self.source == "focus":
            return "service"
        if self.grain == "namespace":
            return "namespace"
        if self.clusters is not None and len(self.clusters) == 1:
            return "namespace"
        return "cluster"


def resolve_scope(session: Session, budget: Budget) -> ResolvedScope:
    """Decide the source and grain of a budget and find the clusters and namespaces it covers."""
    scope = budget.scope
    source = budget.source or _default_source(session, scope)
    if source == "focus":
        resolved = _resolve_billing(scope)
    else:
        resolved = _resolve_palette(session, scope)
    return replace(resolved, currency=budget.currency)


def _default_source(session: Session, scope: Scope) -> str:
    """Return "focus" for billing scopes, or when only billing data is stored; else "palette"."""
    if scope.provider or scope.account or scope.service:
        return "focus"
    has_palette = session.scalar(select(CostFact.id).where(CostFact.source == "palette").limit(1))
    if has_palette is not None:
        return "palette"
    has_focus = session.scalar(select(CostFact.id).where(CostFact.source == "focus").limit(1))
    return "focus" if has_focus is not None else "palette"


def _resolve_palette(session: Session, scope: Scope) -> ResolvedScope:
    grain = "namespace" if scope.is_namespace_scope else "cluster"
    clusters: set[str] | None = None

    if scope.cluster is not None:
        clusters = _match_clusters(
            session, Cluster.uid == scope.cluster, Cluster.name == scope.cluster
        )
        if not clusters:
            return ResolvedScope(
                "palette", grain, frozenset(), problem=f"no cluster {scope.cluster!r}"
            )

    if scope.project is not None:
        in_project = _match_clusters(
            session, Cluster.project_uid == scope.project, Cluster.project_name == scope.project
        )
        if not in_project:
            return ResolvedScope(
                "palette", grain, frozenset(), problem=f"no project {scope.project!r}"
            )
        clusters = in_project if clusters is None else clusters & in_project

    if grain == "cluster":
        frozen = None if clusters is None else frozenset(clusters)
        return ResolvedScope("palette", grain, frozen)

    pairs = _match_namespaces(session, scope, clusters)
    problem = None if pairs else f"no namespace matches {scope.describe()}"
    return ResolvedScope(
        "palette",
        grain,
        None if clusters is None else frozenset(clusters),
        frozenset(pairs),
        problem=problem,
    )


def _match_clusters(session: Session, *conditions: object) -> set[str]:
    return set(session.scalars(select(Cluster.uid).where(or_(*conditions))))  # type: ignore[arg-type]


def _match_namespaces(
    session: Session, scope: Scope, clusters: set[str] | None
) -> set[tuple[str, str]]:
    cluster_labels = {
        row.uid: row.labels or {} for row in session.execute(select(Cluster.uid, Cluster.labels))
    }

    query = select(Namespace.cluster_uid, Namespace.name, Namespace.labels)
    if clusters is not None:
        query = query.where(Namespace.cluster_uid.in_(clusters))
    if scope.namespace is not None:
        query = query.where(Namespace.name == scope.namespace)

    pairs = set()
    for cluster_uid, name, labels in session.execute(query):
        merged = {**cluster_labels.get(cluster_uid, {}), **(labels or {})}
        if matches_all(scope.labels, merged):
            pairs.add((cluster_uid, name))
    return pairs


def _resolve_billing(scope: Scope) -> ResolvedScope:
    filters = {}
    for name, column in (
        ("provider", "cloud"),
        ("account", "account_id"),
        ("service", "service"),
        ("namespace", "namespace"),
        ("cluster", "cluster_name"),
    ):
        value = getattr(scope, name)
        if value is not None:
            filters[column] = value.lower() if column == "cloud" else value
    return ResolvedScope("focus", "resource", filters=filters, tag_requirements=scope.labels)


def _filtered(query: Select, resolved: ResolvedScope, *, any_currency: bool = False) -> Select:
    query = query.where(CostFact.source == resolved.source, CostFact.grain == resolved.grain)
    if resolved.currency is not None and not any_currency:
        query = query.where(CostFact.currency == resolved.currency)
    if resolved.clusters is not None:
        query = query.where(CostFact.cluster_uid.in_(resolved.clusters))
    if resolved.namespaces is not None:
        query = query.where(
            tuple_(CostFact.cluster_uid, CostFact.namespace).in_(resolved.namespaces)
        )
    for column, value in resolved.filters.items():
        query = query.where(getattr(CostFact, column) == value)
    return query


def daily_spend(
    session: Session, resolved: ResolvedScope, start: date, end: date
) -> dict[date, Decimal]:
    """Return spend per UTC day in [start, end) for the scope; days without facts are absent."""
    if resolved.problem:
        return {}
    by_child = daily_spend_by(session, resolved, start, end, dimension=None)
    return by_child.get("", {})


def daily_spend_by(
    session: Session,
    resolved: ResolvedScope,
    start: date,
    end: date,
    dimension: str | None,
) -> dict[str, dict[date, Decimal]]:
    """Return spend per child and UTC day in [start, end).

    ``dimension`` is "cluster", "namespace", "service" or ``None`` (one series under the key "").
    Namespace children are keyed "cluster-name/namespace".
    """
    if resolved.problem:
        return {}

    window = and_(CostFact.day >= start, CostFact.day < end)
    if resolved.tag_requirements:
        return _daily_spend_by_tags(session, resolved, window, dimension)

    keys = _dimension_columns(dimension)
    query = _filtered(select(*keys, CostFact.day, func.sum(CostFact.amount)), resolved)
    query = query.where(window).group_by(*keys, CostFact.day)

    series: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for row in session.execute(query):
        *key_parts, day, amount = row
        series[_child_key(dimension, key_parts)][day] = summed_money(amount)
    return dict(series)


def summed_money(value: object) -> Decimal:
    """Return a SQL ``SUM`` of money as a Decimal.

    SQLite sums the stored decimal text as a float, so its result keeps the 15 significant
    digits a double holds, which drops binary noise such as ``7423.5494870000003``.
    """
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(format(value, ".15g"))
    return Decimal(value)


def _dimension_columns(dimension: str | None) -> list:
    if dimension is None:
        return []
    if dimension == "cluster":
        return [CostFact.cluster_name]
    if dimension == "namespace":
        return [CostFact.cluster_name, CostFact.namespace]
    if dimension == "service":
        return [CostFact.service]
    raise ValueError(f"unknown dimension {dimension!r}; use cluster, namespace or service")


def _child_key(dimension: str | None, parts: list) -> str:
    if dimension is None:
        return ""
    if dimension == "namespace":
        return f"{parts[0] or '?'}/{parts[1] or '?'}"
    return str(parts[0] or "(untagged)")


def _daily_spend_by_tags(
    session: Session, resolved: ResolvedScope, window: object, dimension: str | None
) -> dict[str, dict[date, Decimal]]:
    """Filter billing rows on their tags in Python, because tags are JSON and not indexed."""
    keys = _dimension_columns(dimension)
    query = _filtered(select(*keys, CostFact.day, CostFact.amount, CostFact.tags), resolved)
    series: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for row in session.execute(query.where(window)):  # type: ignore[arg-type]
        *key_parts, day, amount, tags = row
        if matches_all(resolved.tag_requirements, tags or {}):
            series[_child_key(dimension, key_parts)][day] += Decimal(amount)
    return {key: dict(days) for key, days in series.items()}


def data_bounds(session: Session, resolved: ResolvedScope) -> tuple[date, date] | None:
    """Return the first and last day with facts for the scope, or ``None`` when it has none."""
    if resolved.problem:
        return None
    query = _filtered(select(func.min(CostFact.day), func.max(CostFact.day)), resolved)
    first, last = session.execute(query).one()
    if first is None:
        return None
    return first, last


def other_currencies(session: Session, resolved: ResolvedScope) -> list[str]:
    """Return the currencies of the scope's facts other than the budget's, which it ignores."""
    if resolved.problem or resolved.currency is None:
        return []
    query = _filtered(select(CostFact.currency).distinct(), resolved, any_currency=True)
    query = query.where(CostFact.currency != resolved.currency)
    return sorted(session.scalars(query))


def source_last_day(session: Session, resolved: ResolvedScope) -> date | None:
    """Return the last day with any fact of the scope's source and grain, across all scopes.

    A scope whose own facts end earlier had no spend on the later days (a cluster turned off). When
    the whole source ends earlier, those days are missing: the source has not reported them yet.
    """
    query = select(func.max(CostFact.day)).where(
        CostFact.source == resolved.source, CostFact.grain == resolved.grain
    )
    return session.scalar(query)


def cluster_links(session: Session, resolved: ResolvedScope) -> list[tuple[str, str | None, str]]:
    """Return (cluster uid, project uid, cluster name) for the clusters a scope covers."""
    query = select(Cluster.uid, Cluster.project_uid, Cluster.name)
    if resolved.clusters is not None:
        query = query.where(Cluster.uid.in_(resolved.clusters))
    elif resolved.namespaces is not None:
        query = query.where(Cluster.uid.in_({uid for uid, _ in resolved.namespaces}))
    return [tuple(row) for row in session.execute(query.order_by(Cluster.name))]  # type: ignore[misc]
