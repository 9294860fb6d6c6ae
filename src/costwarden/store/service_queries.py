"""Read queries of the REST API: paginated lists of budgets, alerts, anomalies and runs.

Every list returns one page and the total number of matching rows, so clients can page through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.orm import Session

from costwarden.store.tables import (
    AlertRecord,
    AnomalyFeedbackRecord,
    AnomalyRecord,
    BudgetStatusRecord,
    RecommendationReportRecord,
    Run,
    StoredBudget,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list and the number of rows that match its filters."""

    items: Sequence[T]
    total: int


def _count(session: Session, query: Select[Any]) -> int:
    """Count the rows of ``query`` on its FROM and WHERE clauses only.

    The selected columns are left out, so JSON values that a page extracts are not computed for
    every matching row.
    """
    counted = query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
    return int(session.scalar(counted) or 0)


def _page(session: Session, query: Select[Any], limit: int, offset: int) -> Page[Any]:
    """Return one page of the ORM objects that ``query`` selects."""
    items = list(session.scalars(query.limit(limit).offset(offset)))
    return Page(items, _count(session, query))


def _rows(session: Session, query: Select[Any], limit: int, offset: int) -> Page[Row[Any]]:
    """Return one page of the column rows that ``query`` selects."""
    items = session.execute(query.limit(limit).offset(offset)).all()
    return Page(items, _count(session, query))


def list_budgets(
    session: Session, *, origin: str | None, limit: int, offset: int
) -> Page[Row[Any]]:
    """Return stored budgets by name, each with the summary fields of its latest status.

    The status fields are read out of the JSON payload in SQL, and only for the budgets of the
    page, so a page does not decode every stored status. They are None for a budget that no
    pass has evaluated.
    """
    names = select(StoredBudget.name).order_by(StoredBudget.name)
    if origin is not None:
        names = names.where(StoredBudget.origin == origin)
    page = names.limit(limit).offset(offset).subquery()

    payload = BudgetStatusRecord.payload
    query = (
        select(
            StoredBudget.name,
            StoredBudget.origin,
            StoredBudget.version,
            StoredBudget.spec,
            StoredBudget.updated_at,
            BudgetStatusRecord.as_of.label("status_as_of"),
            BudgetStatusRecord.run_id.label("status_run_id"),
            payload["spend_to_date"].as_string().label("spend_to_date"),
            payload["forecast_total"].as_string().label("forecast_total"),
            payload["exceedance_probability"].as_float().label("exceedance_probability"),
            payload["breach_date"].as_string().label("breach_date"),
            payload["problem"].as_string().label("problem"),
        )
        .join(page, page.c.name == StoredBudget.name)
        .outerjoin(BudgetStatusRecord, BudgetStatusRecord.budget == StoredBudget.name)
        .order_by(StoredBudget.name)
    )
    return Page(session.execute(query).all(), _count(session, names))


def budget_status(session: Session, name: str) -> BudgetStatusRecord | None:
    return session.get(BudgetStatusRecord, name)


def list_alerts(
    session: Session,
    *,
    budget: str | None,
    severity: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> Page[Row[Any]]:
    """Return alerts without their payloads, most recently seen first.

    Each row has the alert's columns and the payload's ``title``. ``since`` keeps the alerts seen
    at or after it.
    """
    query = select(
        AlertRecord.alert_id,
        AlertRecord.budget,
        AlertRecord.kind,
        AlertRecord.severity,
        AlertRecord.payload["title"].as_string().label("title"),
        AlertRecord.period_start,
        AlertRecord.first_seen,
        AlertRecord.last_seen,
        AlertRecord.run_id,
    ).order_by(AlertRecord.last_seen.desc(), AlertRecord.alert_id.desc())
    if budget is not None:
        query = query.where(AlertRecord.budget == budget)
    if severity is not None:
        query = query.where(AlertRecord.severity == severity)
    if since is not None:
        query = query.where(AlertRecord.last_seen >= since)
    return _rows(session, query, limit, offset)


def get_alert(session: Session, alert_id: str) -> AlertRecord | None:
    return session.get(AlertRecord, alert_id)


def list_anomalies(
    session: Session,
    *,
    status: str | None,
    scope: str | None,
    severity: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> Page[AnomalyRecord]:
    """Return anomalies, most recently seen first.

    ``scope`` matches the scope's key or its display name exactly.
    """
    query = select(AnomalyRecord).order_by(AnomalyRecord.last_seen.desc(), AnomalyRecord.anomaly_id)
    if status is not None:
        query = query.where(AnomalyRecord.status == status)
    if scope is not None:
        query = query.where(
            or_(AnomalyRecord.scope_key == scope, AnomalyRecord.scope_name == scope)
        )
    if severity is not None:
        query = query.where(AnomalyRecord.severity == severity)
    if since is not None:
        query = query.where(AnomalyRecord.last_seen >= since)
    return _page(session, query, limit, offset)


def anomaly_feedback(session: Session, anomaly_id: str) -> list[AnomalyFeedbackRecord]:
    """Return the verdicts on one anomaly, oldest first."""
    query = (
        select(AnomalyFeedbackRecord)
        .where(AnomalyFeedbackRecord.anomaly_id == anomaly_id)
        .order_by(AnomalyFeedbackRecord.created_at, AnomalyFeedbackRecord.id)
    )
    return list(session.scalars(query))


def list_runs(
    session: Session, *, status: str | None, trigger: str | None, limit: int, offset: int
) -> Page[Run]:
    """Return runs, most recently started first."""
    query = select(Run).order_by(Run.started_at.desc(), Run.id)
    if status is not None:
        query = query.where(Run.status == status)
    if trigger is not None:
        query = query.where(Run.trigger == trigger)
    return _page(session, query, limit, offset)


def latest_recommendations(session: Session) -> RecommendationReportRecord | None:
    query = select(RecommendationReportRecord).order_by(
        RecommendationReportRecord.created_at.desc()
    )
    return session.scalars(query.limit(1)).first()


def run_recommendations(session: Session, run_id: str) -> RecommendationReportRecord | None:
    return session.get(RecommendationReportRecord, run_id)
