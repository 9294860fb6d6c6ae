"""Cost and utilisation anomalies, their root cause, and the feedback users give on them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from costwarden.domain.event import ClusterEvent

ScopeKind = Literal["cluster", "namespace", "project", "profile", "label", "cloud", "pool"]
AnomalyKind = Literal["spike", "level_shift", "sustained_cpu", "gpu_misuse", "egress_jump"]
AnomalyStatus = Literal["ongoing", "resolved", "new_normal"]
Metric = Literal["cost", "cpu", "memory", "gpu", "egress"]
Verdict = Literal["expected", "problem"]
Dimension = Literal[
    "cloud",
    "project",
    "cluster",
    "profile",
    "node_pool",
    "instance_type",
    "namespace",
    "label",
]
DriverName = Literal[
    "more_nodes",
    "pricier_instances",
    "storage",
    "more_requests",
    "new_workloads",
    "idle_capacity",
]

COST_KINDS: tuple[AnomalyKind, ...] = ("spike", "level_shift")
UTILISATION_KINDS: tuple[AnomalyKind, ...] = ("sustained_cpu", "gpu_misuse", "egress_jump")


@dataclass(frozen=True, slots=True)
class AnomalyScope:
    """A series that anomalies are detected on: a cluster, a namespace or a group of clusters.

    ``key`` is stable across passes, for example ``cluster:<uid>``, ``namespace:<uid>/<name>``,
    ``project:<uid>``, ``profile:<name>``, ``label:<key>=<value>`` or ``cloud:<type>``.
    ``cluster_uids`` are the clusters whose cost the series sums.
    """

    kind: ScopeKind
    key: str
    name: str
    cluster_uids: frozenset[str]
    cluster_name: str | None = None
    namespace: str | None = None
    project_uid: str | None = None

    def describe(self) -> str:
        """Return a label such as ``cluster ml-training-eks`` or ``label team=ml``."""
        return f"{self.kind} {self.name}"

    @property
    def cluster_uid(self) -> str | None:
        """The single cluster of a cluster, namespace or pool scope, or None for a group."""
        if self.kind in ("cluster", "namespace", "pool") and len(self.cluster_uids) == 1:
            return next(iter(self.cluster_uids))
        return None


@dataclass(frozen=True, slots=True)
class AnomalyContributor:
    """One value of a dimension and how much of the anomaly's change it carries, per day.

    Values are in the anomaly's unit: money for cost, cores or GPUs for usage. ``delta`` is
    ``actual - expected`` averaged over the anomalous days. ``share`` is ``delta``
    divided by the whole scope's delta, or None when the scope did not rise. ``expected`` and
    ``actual`` are None when only the change is known, such as a price change attributed to the
    pool that a Palette event names.
    """

    dimension: Dimension
    value: str
    expected: Decimal | None
    actual: Decimal | None
    delta: Decimal
    share: float | None


@dataclass(frozen=True, slots=True)
class CostDriver:
    """One part of a cluster's cost change, per day.

    Capacity drivers (``more_nodes``, ``pricier_instances``, ``storage``) split the change of
    what the nodes cost. Allocation drivers (``more_requests``, ``new_workloads``,
    ``idle_capacity``) split the same change by who the cost is allocated to.
    """

    name: DriverName
    side: Literal["capacity", "allocation"]
    amount: Decimal
    share: float | None
    detail: str


@dataclass(frozen=True, slots=True)
class Triage:
    """The short summary a person reads first: likely cause, evidence and next step."""

    cause: str
    likely_cause: str
    evidence: tuple[str, ...]
    next_step: str
    confidence: Literal["high", "medium", "low"]
    link: str | None = None


@dataclass(frozen=True, slots=True)
class DayValue:
    """Expected and actual value of one day of an anomaly's series, with the band around it."""

    day: date
    expected: float
    actual: float
    lower: float
    upper: float
    score: float


@dataclass(frozen=True, slots=True)
class RelatedScope:
    """Another scope that rose at the same time and is explained by this anomaly."""

    scope: AnomalyScope
    impact_per_day: Decimal | None
    anomaly_id: str


@dataclass(frozen=True, eq=False)
class Anomaly:
    """A detected anomaly with its evidence, root cause and triage summary.

    ``expected``, ``actual``, ``lower`` and ``upper`` are means per day over the anomalous days,
    in ``unit``: the currency for cost, cores, GiB or GPUs for utilisation. ``impact_per_day``
    and ``impact_total`` are money in ``currency``; they are None for a utilisation anomaly whose
    cost is unknown. ``first_day`` and ``last_day`` are the first and last anomalous UTC days.
    """

    anomaly_id: str
    scope: AnomalyScope
    kind: AnomalyKind
    metric: Metric
    unit: str
    currency: str
    first_day: date
    last_day: date
    status: AnomalyStatus
    expected: Decimal
    actual: Decimal
    lower: Decimal
    upper: Decimal
    impact_per_day: Decimal | None
    impact_total: Decimal | None
    percent: float | None
    score: float
    as_of: datetime
    data_start: date
    data_end: date
    daily: tuple[DayValue, ...] = ()
    contributors: tuple[AnomalyContributor, ...] = ()
    drivers: tuple[CostDriver, ...] = ()
    events: tuple[ClusterEvent, ...] = ()
    triage: Triage | None = None
    related: tuple[RelatedScope, ...] = ()
    suppressed_by: str | None = None
    first_seen: datetime | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cause(self) -> str:
        return self.triage.cause if self.triage is not None else "unknown"

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def suppressed(self) -> bool:
        return self.suppressed_by is not None

    @property
    def top_contributor(self) -> AnomalyContributor | None:
        return self.contributors[0] if self.contributors else None


def anomaly_fingerprint(scope_key: str, metric: str, first_day: date) -> str:
    """Return the id of an anomaly: the same scope, metric and first day always give the same id.

    The kind is left out, so a spike that lasts and becomes a level shift keeps its id.
    """
    text = f"anomaly\x1f{scope_key}\x1f{metric}\x1f{first_day.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Feedback:
    """A person's verdict on an anomaly.

    ``expected`` suppresses later anomalies of the same scope and cause until ``until``
    (inclusive), or with no end when it is None. ``problem`` confirms the alert was right.
    """

    anomaly_id: str
    scope_key: str
    cause: str
    verdict: Verdict
    reason: str | None
    until: date | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Precision:
    """Alert precision from feedback: confirmed problems over all anomalies with a verdict."""

    problems: int
    expected: int

    @property
    def value(self) -> float | None:
        total = self.problems + self.expected
        return None if total == 0 else self.problems / total


@dataclass(frozen=True, eq=False)
class AnomalyReport:
    """Everything one anomaly pass found.

    ``anomalies`` are the alerting anomalies, biggest impact first. ``suppressed`` matched an
    ``expected`` verdict and do not alert. ``related`` rose with a reported anomaly and are listed
    in its ``related`` field. ``scopes_checked`` counts series with enough history; ``scope_days``
    is the number of (scope, day) pairs judged.
    """

    as_of: datetime
    data_end: date | None
    anomalies: tuple[Anomaly, ...] = ()
    suppressed: tuple[Anomaly, ...] = ()
    related: tuple[Anomaly, ...] = ()
    scopes_checked: int = 0
    scopes_skipped: int = 0
    scope_days: int = 0
    precision: Precision = field(default_factory=lambda: Precision(0, 0))
    notes: tuple[str, ...] = ()
