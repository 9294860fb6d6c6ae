"""Scheduled jobs that apply to a budget: match them to its scope and add their cost.

A job applies to a budget when every field set in the budget's scope matches where the job runs:

- ``cluster``: the job's cluster, by name or uid;
- ``project``: the project of the job's cluster, or the job's own project, by name or uid;
- ``namespace``: the job's namespace;
- ``labels``: the job names a namespace, and the selector matches the cluster's labels merged with
  the namespace's labels and the job's own labels, in that order;
- ``provider``, ``account`` or ``service``: never, because jobs name none of them.

So a budget with an empty scope (the whole fleet) counts every job, a cluster job counts in the
budgets of its cluster and its project, and a project-wide job counts in that project's budgets
only. Clusters and namespaces are looked up in the store. A job whose cluster is not stored yet
is matched on the names written in the calendar.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from costwarden.domain.budget import Budget, PeriodWindow, Scope
from costwarden.domain.forecast import Forecast
from costwarden.domain.schedule import (
    Occurrence,
    ScheduledComponent,
    ScheduledJob,
    ScheduledOccurrence,
)
from costwarden.domain.selector import matches_all
from costwarden.forecast.scheduled import add_scheduled_cost, daily_cost_array
from costwarden.sources.calendar import Calendar
from costwarden.store.tables import Cluster, Namespace, Project

logger = logging.getLogger(__name__)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class JobPlace:
    """A cluster or project a job runs in, with the labels that label budgets see.

    ``stored`` is False when the store has no such cluster or project, and the names are the ones
    written in the calendar.
    """

    cluster_uid: str | None
    cluster_name: str | None
    project_uid: str | None
    project_name: str | None
    namespace: str | None
    labels: dict[str, str]
    stored: bool = True


def scope_covers(scope: Scope, place: JobPlace) -> bool:
    """Return True when a budget scope covers a job running at ``place``."""
    if scope.provider is not None or scope.account is not None or scope.service is not None:
        return False
    if scope.cluster is not None and scope.cluster not in (place.cluster_uid, place.cluster_name):
        return False
    if scope.project is not None and scope.project not in (place.project_uid, place.project_name):
        return False
    if scope.namespace is not None and scope.namespace != place.namespace:
        return False
    if scope.labels and (place.namespace is None or not matches_all(scope.labels, place.labels)):
        return False
    return True


def job_places(session: Session, job: ScheduledJob) -> list[JobPlace]:
    """Look up the clusters (or the project) a job names. A reused cluster name gives several."""
    if job.scope.cluster is None:
        return [_project_place(session, job)]

    wanted = job.scope.cluster
    query = select(Cluster).where(or_(Cluster.uid == wanted, Cluster.name == wanted))
    clusters = session.scalars(query.order_by(Cluster.uid))
    project = job.scope.project
    places = [
        _cluster_place(session, job, cluster)
        for cluster in clusters
        if project is None or project in (cluster.project_uid, cluster.project_name)
    ]
    if places:
        return places
    labels = dict(job.scope.labels)
    return [JobPlace(wanted, wanted, project, project, job.scope.namespace, labels, stored=False)]


def _cluster_place(session: Session, job: ScheduledJob, cluster: Cluster) -> JobPlace:
    namespace_labels: dict[str, str] = {}
    if job.scope.namespace is not None:
        stored = session.get(Namespace, (cluster.uid, job.scope.namespace))
        namespace_labels = dict(stored.labels or {}) if stored is not None else {}
    return JobPlace(
        cluster_uid=cluster.uid,
        cluster_name=cluster.name,
        project_uid=cluster.project_uid,
        project_name=cluster.project_name,
        namespace=job.scope.namespace,
        labels={**(cluster.labels or {}), **namespace_labels, **job.scope.labels},
    )


def _project_place(session: Session, job: ScheduledJob) -> JobPlace:
    wanted = job.scope.project
    query = select(Project).where(or_(Project.uid == wanted, Project.name == wanted))
    project = session.scalars(query.order_by(Project.uid)).first()
    if project is None:
        return JobPlace(None, None, wanted, wanted, None, dict(job.scope.labels), stored=False)
    return JobPlace(None, None, project.uid, project.name, None, dict(job.scope.labels))


def apply_schedule(
    session: Session,
    budget: Budget,
    forecast: Forecast,
    window: PeriodWindow,
    calendar: Calendar,
) -> tuple[Forecast, ScheduledComponent | None]:
    """Add the cost of the budget's scheduled jobs to its forecast, and summarise the period.

    Only forecast days count, the days after ``forecast.history_end``, because the spend of past
    days already contains the jobs that ran. Occurrences of jobs marked ``in_history`` are listed
    but not added. The component is ``None`` when no occurrence has cost in the period's
    forecast days.
    """
    if not forecast.days.dates:
        return forecast, None

    first_day = forecast.history_end + timedelta(days=1)
    after_last_day = forecast.days.dates[-1] + timedelta(days=1)
    occurrences = calendar.occurrences(_midnight(first_day), _midnight(after_last_day))
    applicable = _applicable(session, budget, calendar, occurrences)
    if not applicable:
        return forecast, None

    added: dict[date, Decimal] = {}
    listed = []
    for occurrence in applicable:
        shares = {day: cost for day, cost in occurrence.daily_cost().items() if day >= first_day}
        if not occurrence.job.in_history:
            for day, cost in shares.items():
                added[day] = added.get(day, ZERO) + cost
        in_period = [cost for day, cost in shares.items() if day in window]
        if in_period:
            listed.append(_listed(occurrence, sum(in_period, ZERO)))

    if added:
        forecast = add_scheduled_cost(forecast, daily_cost_array(forecast, added))
    if not listed:
        return forecast, None
    total = sum((entry.cost for entry in listed if not entry.in_history), ZERO)
    return forecast, ScheduledComponent(total, tuple(listed), calendar.path)


def _applicable(
    session: Session, budget: Budget, calendar: Calendar, occurrences: list[Occurrence]
) -> list[Occurrence]:
    """Keep the occurrences whose job the budget's scope covers and whose currency it uses."""
    covered: dict[int, bool] = {}
    kept = []
    for occurrence in occurrences:
        job = occurrence.job
        if id(job) not in covered:
            covered[id(job)] = _covers(session, budget, calendar, job)
        if covered[id(job)]:
            kept.append(occurrence)
    return kept


def _covers(session: Session, budget: Budget, calendar: Calendar, job: ScheduledJob) -> bool:
    places = job_places(session, job)
    if not places[0].stored and calendar.report_once(("not stored", job.uid)):
        logger.warning(
            "scheduled job %s (%s): %s is not in the store; matching budgets on the names in "
            "the calendar",
            job.uid,
            job.origin,
            job.scope.describe(),
        )

    if not any(scope_covers(budget.scope, place) for place in places):
        return False
    if job.currency != budget.currency:
        if calendar.report_once(("currency", job.uid, budget.name)):
            logger.warning(
                "scheduled job %s (%s) costs %s but budget %s is in %s; the job is left out of "
                "that budget",
                job.uid,
                job.origin,
                job.currency,
                budget.name,
                budget.currency,
            )
        return False
    return True


def _listed(occurrence: Occurrence, cost: Decimal) -> ScheduledOccurrence:
    return ScheduledOccurrence(
        name=occurrence.job.name,
        uid=occurrence.job.uid,
        start=occurrence.start,
        end=occurrence.end,
        cost=cost,
        in_history=occurrence.job.in_history,
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)
