"""Budget alerts that passes raised, newest first."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from costwarden.errors import NotFoundError
from costwarden.service.api.deps import PageQuery, Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute, json_response
from costwarden.service.api.models import AlertDetail, AlertSummary, Page, UtcDateTime
from costwarden.store.service_queries import get_alert, list_alerts
from costwarden.store.tables import AlertRecord

router = APIRouter(tags=["alerts"], route_class=ApiRoute, responses=ERROR_RESPONSES)


@router.get("/alerts", response_model=Page[AlertSummary], summary="List alerts")
def get_alerts(
    page: PageQuery,
    state: State,
    _: Reader,
    budget: Annotated[str | None, Query(description="Only alerts of this budget.")] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    since: Annotated[
        UtcDateTime | None,
        Query(
            description="Only alerts last seen at or after this time; a date or a time without "
            "an offset is read as UTC."
        ),
    ] = None,
) -> Response:
    with state.store.transaction() as session:
        found = list_alerts(
            session,
            budget=budget,
            severity=severity,
            since=since,
            limit=page.limit,
            offset=page.offset,
        )
        items = [_summary(record) for record in found.items]
    return json_response(Page(items=items, total=found.total, limit=page.limit, offset=page.offset))


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertDetail,
    summary="Read an alert",
    responses={404: {"description": "No such alert."}},
)
def get_one_alert(
    alert_id: str,
    state: State,
    _: Reader,
) -> AlertDetail:
    with state.store.transaction() as session:
        record = get_alert(session, alert_id)
        if record is None:
            raise NotFoundError(f"no alert with id {alert_id!r}; GET /api/v1/alerts lists them")
        return _detail(record)


def _summary(row: Any) -> AlertSummary:
    return AlertSummary(
        alert_id=row.alert_id,
        budget=row.budget,
        kind=row.kind,
        severity=row.severity,
        title=row.title,
        period_start=row.period_start,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        run_id=row.run_id,
    )


def _detail(record: AlertRecord) -> AlertDetail:
    return AlertDetail(
        alert_id=record.alert_id,
        budget=record.budget,
        kind=record.kind,
        severity=record.severity,
        title=record.payload.get("title"),
        period_start=record.period_start,
        first_seen=record.first_seen,
        last_seen=record.last_seen,
        run_id=record.run_id,
        payload=record.payload,
    )
