"""Scheduled jobs from a calendar, their occurrences, and the cost they add to a budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class JobScope:
    """The place a scheduled job runs in: a cluster (name or uid) or a whole project.

    ``namespace`` is only set together with ``cluster``. ``labels`` are the job's own labels. They
    are merged over the labels of its cluster and namespace when a label budget is matched.
    """

    cluster: str | None = None
    project: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("project", self.project),
                ("cluster", self.cluster),
                ("namespace", self.namespace),
            )
            if value is not None
        ]
        if self.labels:
            parts.append("labels: " + ",".join(f"{k}={v}" for k, v in sorted(self.labels.items())))
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """One job of a calendar: the cost of each occurrence and the scope it runs in.

    ``in_history`` marks a job that the cost history already contains, such as a regular job that
    has run for months. Its occurrences are shown but not added to the forecast. ``origin`` names
    the file and the event or line the job comes from. ``pricing`` explains a cost computed from
    node-hours.
    """

    uid: str
    name: str
    cost: Decimal
    currency: str
    scope: JobScope
    origin: str
    in_history: bool = False
    pricing: str | None = None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One run of a scheduled job, from ``start`` to ``end`` (timezone-aware UTC datetimes)."""

    job: ScheduledJob
    start: datetime
    end: datetime

    def daily_cost(self) -> dict[date, Decimal]:
        """Split the job's cost over the UTC days the run covers, pro rata by time.

        A run of zero length puts its whole cost on the day it starts. The shares add up to the
        cost exactly, because the last day takes what the others leave.
        """
        if self.end <= self.start:
            return {self.start.date(): self.job.cost}

        length = Decimal((self.end - self.start).total_seconds())
        shares: dict[date, Decimal] = {}
        day = self.start.date()
        while datetime.combine(day, time(), UTC) < self.end:
            day_start = datetime.combine(day, time(), UTC)
            overlap = min(self.end, day_start + timedelta(days=1)) - max(self.start, day_start)
            shares[day] = self.job.cost * Decimal(overlap.total_seconds()) / length
            day += timedelta(days=1)

        last = max(shares)
        shares[last] = self.job.cost - sum((v for d, v in shares.items() if d != last), ZERO)
        return shares


@dataclass(frozen=True, slots=True)
class ScheduledOccurrence:
    """An occurrence that applies to a budget, with its cost on forecast days of the period."""

    name: str
    uid: str
    start: datetime
    end: datetime
    cost: Decimal
    in_history: bool


@dataclass(frozen=True, slots=True)
class ScheduledComponent:
    """Scheduled jobs in a budget's period: the cost added to the forecast and each occurrence.

    ``total`` excludes the occurrences marked ``in_history``, because the model already forecasts
    them. ``calendar`` is the file the jobs come from.
    """

    total: Decimal
    occurrences: tuple[ScheduledOccurrence, ...]
    calendar: str
