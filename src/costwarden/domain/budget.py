"""Budgets: a scope, an amount per period, and the thresholds that raise alerts."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from costwarden.domain.selector import Requirement

PeriodKind = Literal["weekly", "monthly", "quarterly", "yearly", "custom"]
Basis = Literal["actual", "forecast"]
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Scope:
    """The cluster, project, namespace, labels or billing fields a budget covers.

    Every field that is set must match (logical AND).

    ``cluster`` and ``project`` match a name or a uid. ``namespace`` without ``cluster`` matches
    that namespace in every cluster. ``labels`` is a parsed selector over the union of cluster and
    namespace labels. ``provider``, ``account`` and ``service`` match billing (FOCUS) rows.
    """

    cluster: str | None = None
    project: str | None = None
    namespace: str | None = None
    selector: str | None = None
    labels: tuple[Requirement, ...] = ()
    provider: str | None = None
    account: str | None = None
    service: str | None = None

    @property
    def is_namespace_scope(self) -> bool:
        """True when spend must be read per namespace rather than per cluster."""
        return self.namespace is not None or bool(self.labels)

    def describe(self) -> str:
        parts = []
        for name in ("project", "cluster", "namespace", "provider", "account", "service"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        if self.selector:
            parts.append(f"labels: {self.selector}")
        return ", ".join(parts) or "whole fleet"


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    """A budget period as UTC calendar days: ``start`` inclusive, ``end`` exclusive."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __contains__(self, day: date) -> bool:
        return self.start <= day < self.end


@dataclass(frozen=True, slots=True)
class Period:
    """The reset rule of a budget: a calendar period in a time zone, or one custom date range.

    Cost facts are daily UTC amounts, so a period in another time zone is mapped onto UTC days:
    each UTC day counts in the local period that contains its midday (12:00 UTC).
    """

    kind: PeriodKind
    timezone: str = "UTC"
    start: date | None = None
    end: date | None = None  # inclusive, for custom periods

    def _local_bounds(self, local_day: date) -> tuple[date, date]:
        """Return the local [start, end) dates of the period that contains ``local_day``."""
        if self.kind == "weekly":
            start = local_day - timedelta(days=local_day.weekday())
            return start, start + timedelta(days=7)
        if self.kind == "monthly":
            start = local_day.replace(day=1)
            days_in_month = calendar.monthrange(start.year, start.month)[1]
            return start, start + timedelta(days=days_in_month)
        if self.kind == "quarterly":
            first_month = 3 * ((local_day.month - 1) // 3) + 1
            start = date(local_day.year, first_month, 1)
            end_month = first_month + 3
            end = date(start.year + (end_month > 12), (end_month - 1) % 12 + 1, 1)
            return start, end
        if self.kind == "yearly":
            return date(local_day.year, 1, 1), date(local_day.year + 1, 1, 1)

        assert self.start is not None and self.end is not None
        return self.start, self.end + timedelta(days=1)

    def _utc_first_day(self, local_start: date) -> date:
        """Return the first UTC day whose midday falls at or after the local start instant."""
        instant = datetime.combine(local_start, time(), ZoneInfo(self.timezone)).astimezone(UTC)
        shifted = instant - timedelta(hours=12)
        first = shifted.date()
        if shifted.time() != time():
            first += timedelta(days=1)
        return first

    def window_for(self, day: date) -> PeriodWindow:
        """Return the period, as UTC days, that the UTC ``day`` counts in."""
        midday = datetime.combine(day, time(12), UTC).astimezone(ZoneInfo(self.timezone))
        local_start, local_end = self._local_bounds(midday.date())
        return PeriodWindow(self._utc_first_day(local_start), self._utc_first_day(local_end))

    def previous(self, window: PeriodWindow) -> PeriodWindow:
        """Return the period before ``window``; for a custom range, the same length just before."""
        if self.kind == "custom":
            return PeriodWindow(window.start - timedelta(days=window.days), window.start)
        return self.window_for(window.start - timedelta(days=1))


@dataclass(frozen=True, slots=True)
class Threshold:
    """When to alert: actual or forecast spend at a percentage of the budget or an amount.

    A forecast threshold with ``probability`` fires when the probability that the period total
    reaches the limit is at least that value; without it, it fires when the median forecast does.
    """

    basis: Basis
    percent: Decimal | None = None
    amount: Decimal | None = None
    probability: float | None = None
    severity: Severity = "warning"

    def limit(self, budget_amount: Decimal) -> Decimal:
        if self.amount is not None:
            return self.amount
        assert self.percent is not None
        return budget_amount * self.percent / Decimal(100)

    def key(self) -> str:
        """Return a stable text form, used in alert ids and tables."""
        level = f"{self.percent.normalize():f}%" if self.percent is not None else f"{self.amount}"
        text = f"{self.basis}>={level}"
        if self.probability is not None:
            text += f"@p{self.probability:g}"
        return text


@dataclass(frozen=True, slots=True)
class Budget:
    name: str
    scope: Scope
    amount: Decimal
    currency: str
    period: Period
    thresholds: tuple[Threshold, ...]
    source: str | None = None
    description: str | None = None
    owner: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
