"""Read the stored Palette cost facts into one panel of daily series, one row per scope.

Scopes are clusters, namespaces and groups of clusters: projects, cluster profiles, cluster
labels and cloud types. A group is checked only when it contains at least two clusters, because
a group of one repeats its cluster. Groups with the same clusters are checked once, in the order
project, profile, label, cloud.

A series is NaN before its first fact, so the baseline does not read days before a cluster or
namespace existed as days without spend. After that, a day without facts is a day without spend.
The first day of a cluster created that day is NaN as well, because it is a partial day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from costwarden.domain.anomaly import AnomalyScope
from costwarden.store.tables import Cluster, CostFact

# NOTE: only Palette cost facts are checked; FOCUS billing rows (by account or service) are not.
SOURCE = "palette"
GROUP_ORDER = ("project", "profile", "label", "cloud")


@dataclass(frozen=True, slots=True)
class ClusterMeta:
    """Cluster metadata that the anomaly pass reads: names, project, cloud, labels, profiles."""

    uid: str
    name: str
    project_uid: str | None
    project_name: str | None
    cloud: str
    labels: dict[str, str] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    created_on: date | None = None


@dataclass(frozen=True, eq=False)
class CostPanel:
    """Daily cost series of every scope, and the cluster and namespace series they sum.

    Column 0 is ``first_day`` and the last column is ``last_day``. ``compute`` and ``storage``
    split each cluster's series where the facts carry that breakdown.
    """

    first_day: date
    last_day: date
    currency: str
    clusters: dict[str, ClusterMeta]
    cluster_series: dict[str, np.ndarray]
    compute: dict[str, np.ndarray]
    storage: dict[str, np.ndarray]
    namespace_series: dict[tuple[str, str], np.ndarray]
    scopes: tuple[AnomalyScope, ...]
    values: np.ndarray

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def day(self, column: int) -> date:
        return self.first_day + timedelta(days=column)

    def column(self, day: date) -> int:
        return (day - self.first_day).days


def last_cost_day(session: Session, before: date, currency: str) -> date | None:
    """Return the last day before ``before`` with a Palette cluster cost fact, or None."""
    query = select(func.max(CostFact.day)).where(
        CostFact.source == SOURCE,
        CostFact.grain == "cluster",
        CostFact.currency == currency,
        CostFact.day < before,
    )
    return session.scalar(query)


def load_panel(
    session: Session,
    first_day: date,
    last_day: date,
    currency: str,
    kinds: Sequence[str],
    label_keys: Sequence[str] | None,
) -> CostPanel:
    """Read the facts from ``first_day`` to ``last_day`` and build the scopes of ``kinds``."""
    days = (last_day - first_day).days + 1
    clusters = _clusters(session)
    totals, compute, storage = _cluster_series(session, first_day, last_day, currency, days)
    namespaces = _namespace_series(session, first_day, last_day, currency, days)
    _blank_partial_first_days(totals, clusters, first_day)

    scopes: list[AnomalyScope] = []
    rows: list[np.ndarray] = []
    if "cluster" in kinds:
        for uid in sorted(totals, key=lambda uid: _name(clusters, uid)):
            scopes.append(cluster_scope(uid, clusters))
            rows.append(totals[uid])
    if "namespace" in kinds:
        for (uid, name), series in sorted(
            namespaces.items(), key=lambda item: _ns_sort(item, clusters)
        ):
            scopes.append(namespace_scope(uid, name, clusters))
            rows.append(series)
    for scope in group_scopes(clusters, set(totals), kinds, label_keys):
        scopes.append(scope)
        rows.append(sum_series([totals[uid] for uid in sorted(scope.cluster_uids)], days))

    values = np.vstack(rows) if rows else np.zeros((0, days))
    return CostPanel(
        first_day,
        last_day,
        currency,
        clusters,
        totals,
        compute,
        storage,
        namespaces,
        tuple(scopes),
        values,
    )


def cluster_scope(uid: str, clusters: dict[str, ClusterMeta]) -> AnomalyScope:
    meta = clusters.get(uid)
    name = _name(clusters, uid)
    return AnomalyScope(
        "cluster",
        f"cluster:{uid}",
        name,
        frozenset({uid}),
        cluster_name=name,
        project_uid=meta.project_uid if meta else None,
    )


def namespace_scope(uid: str, namespace: str, clusters: dict[str, ClusterMeta]) -> AnomalyScope:
    meta = clusters.get(uid)
    cluster_name = _name(clusters, uid)
    return AnomalyScope(
        "namespace",
        f"namespace:{uid}/{namespace}",
        f"{cluster_name}/{namespace}",
        frozenset({uid}),
        cluster_name=cluster_name,
        namespace=namespace,
        project_uid=meta.project_uid if meta else None,
    )


def group_scopes(
    clusters: dict[str, ClusterMeta],
    with_data: set[str],
    kinds: Sequence[str],
    label_keys: Sequence[str] | None,
) -> list[AnomalyScope]:
    """Return the group scopes of at least two clusters with data, without repeated sets."""
    members: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for uid in with_data:
        meta = clusters.get(uid)
        if meta is None:
            continue
        for kind, key, name in _memberships(meta, label_keys):
            members[(kind, key, name)].add(uid)

    seen: set[frozenset[str]] = set()
    scopes = []
    for kind in GROUP_ORDER:
        if kind not in kinds:
            continue
        for (group_kind, key, name), uids in sorted(members.items()):
            frozen = frozenset(uids)
            if group_kind != kind or len(frozen) < 2 or frozen in seen:
                continue
            seen.add(frozen)
            project_uid = key.split(":", 1)[1] if kind == "project" else None
            scopes.append(AnomalyScope(kind, key, name, frozen, project_uid=project_uid))  # type: ignore[arg-type]
    return scopes


def _memberships(
    meta: ClusterMeta, label_keys: Sequence[str] | None
) -> Iterable[tuple[str, str, str]]:
    if meta.project_uid:
        yield "project", f"project:{meta.project_uid}", meta.project_name or meta.project_uid
    for profile in meta.profiles:
        yield "profile", f"profile:{profile}", profile
    for key, value in sorted(meta.labels.items()):
        if label_keys is None or key in label_keys:
            yield "label", f"label:{key}={value}", f"{key}={value}"
    yield "cloud", f"cloud:{meta.cloud}", meta.cloud


def sum_series(series: Sequence[np.ndarray], days: int) -> np.ndarray:
    """Sum series day by day, NaN only on days where every series is NaN."""
    if not series:
        return np.full(days, np.nan)
    stacked = np.vstack(series)
    total = np.nansum(stacked, axis=0)
    total[np.all(np.isnan(stacked), axis=0)] = np.nan
    return total


def _clusters(session: Session) -> dict[str, ClusterMeta]:
    found = {}
    for row in session.scalars(select(Cluster)):
        found[row.uid] = ClusterMeta(
            uid=row.uid,
            name=row.name,
            project_uid=row.project_uid,
            project_name=row.project_name,
            cloud=row.cloud,
            labels=dict(row.labels or {}),
            profiles=tuple(row.profiles or ()),
            created_on=row.created_at.date() if row.created_at else None,
        )
    return found


def _cluster_series(
    session: Session, first_day: date, last_day: date, currency: str, days: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    query = select(CostFact.cluster_uid, CostFact.day, CostFact.amount, CostFact.breakdown).where(
        CostFact.source == SOURCE,
        CostFact.grain == "cluster",
        CostFact.currency == currency,
        CostFact.day >= first_day,
        CostFact.day <= last_day,
    )
    totals: dict[str, np.ndarray] = {}
    compute: dict[str, np.ndarray] = {}
    storage: dict[str, np.ndarray] = {}
    for uid, day, amount, breakdown in session.execute(query):
        if uid is None:
            continue
        column = (day - first_day).days
        for target, value in (
            (totals, amount),
            (compute, (breakdown or {}).get("compute")),
            (storage, (breakdown or {}).get("storage")),
        ):
            if value is None:
                continue
            series = target.setdefault(uid, np.full(days, np.nan))
            series[column] = np.nan_to_num(series[column]) + float(value)
    for target in (totals, compute, storage):
        for series in target.values():
            _zero_after_first(series)
    return totals, compute, storage


def _namespace_series(
    session: Session, first_day: date, last_day: date, currency: str, days: int
) -> dict[tuple[str, str], np.ndarray]:
    query = (
        select(CostFact.cluster_uid, CostFact.namespace, CostFact.day, func.sum(CostFact.amount))
        .where(
            CostFact.source == SOURCE,
            CostFact.grain == "namespace",
            CostFact.currency == currency,
            CostFact.day >= first_day,
            CostFact.day <= last_day,
        )
        .group_by(CostFact.cluster_uid, CostFact.namespace, CostFact.day)
    )
    found: dict[tuple[str, str], np.ndarray] = {}
    for uid, namespace, day, amount in session.execute(query):
        if uid is None or namespace is None:
            continue
        series = found.setdefault((uid, namespace), np.full(days, np.nan))
        series[(day - first_day).days] = float(amount or 0.0)
    for series in found.values():
        _zero_after_first(series)
    return found


def _zero_after_first(series: np.ndarray) -> None:
    present = np.flatnonzero(~np.isnan(series))
    if present.size:
        tail = series[present[0] :]
        tail[np.isnan(tail)] = 0.0


def _blank_partial_first_days(
    totals: dict[str, np.ndarray], clusters: dict[str, ClusterMeta], first_day: date
) -> None:
    for uid, series in totals.items():
        meta = clusters.get(uid)
        if meta is None or meta.created_on is None:
            continue
        column = (meta.created_on - first_day).days
        if 0 <= column < len(series):
            series[column] = np.nan


def _name(clusters: dict[str, ClusterMeta], uid: str) -> str:
    meta = clusters.get(uid)
    return meta.name if meta else uid


def _ns_sort(item: tuple[tuple[str, str], np.ndarray], clusters: dict[str, ClusterMeta]) -> str:
    (uid, name), _ = item
    return f"{_name(clusters, uid)}/{name}"
