"""Cost and usage anomalies, and people's verdicts on them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from costwarden.anomaly.feedback import mark_anomaly
from costwarden.errors import ApiError, NotFoundError
from costwarden.service.api.deps import Admin, PageQuery, Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute, json_response
from costwarden.service.api.models import (
    AnomalyDetail,
    AnomalyStatus,
    AnomalySummary,
    FeedbackItem,
    FeedbackRequest,
    Page,
    UtcDateTime,
)
from costwarden.store.service_queries import anomaly_feedback, list_anomalies
from costwarden.store.tables import AnomalyFeedbackRecord, AnomalyRecord

logger = logging.getLogger(__name__)

router = APIRouter(tags=["anomalies"], route_class=ApiRoute, responses=ERROR_RESPONSES)
NOT_FOUND = {404: {"description": "No such anomaly."}}


@router.get("/anomalies", response_model=Page[AnomalySummary], summary="List anomalies")
def get_anomalies(
    page: PageQuery,
    state: State,
    _: Reader,
    status: Annotated[AnomalyStatus | None, Query()] = None,
    scope: Annotated[
        str | None,
        Query(description="Exact scope key or scope name, e.g. a cluster name."),
    ] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    since: Annotated[
        UtcDateTime | None,
        Query(
            description="Only anomalies last seen at or after this time; a date or a time "
            "without an offset is read as UTC."
        ),
    ] = None,
) -> Response:
    with state.store.transaction() as session:
        found = list_anomalies(
            session,
            status=status,
            scope=scope,
            severity=severity,
            since=since,
            limit=page.limit,
            offset=page.offset,
        )
        items = [_summary(record) for record in found.items]
    return json_response(Page(items=items, total=found.total, limit=page.limit, offset=page.offset))


@router.get(
    "/anomalies/{anomaly_id}",
    response_model=AnomalyDetail,
    summary="Read an anomaly",
    responses=NOT_FOUND,
)
def get_anomaly(
    anomaly_id: str,
    state: State,
    _: Reader,
) -> AnomalyDetail:
    with state.store.transaction() as session:
        record = _existing(session, anomaly_id)
        return AnomalyDetail(**_summary(record).model_dump(), payload=record.payload)


@router.post(
    "/anomalies/{anomaly_id}/feedback",
    response_model=FeedbackItem,
    status_code=201,
    summary="Give a verdict on an anomaly",
    description="`expected` (with a reason) suppresses later anomalies of the same scope and "
    "cause until `until`, or for good; `problem` confirms the anomaly.",
    responses=NOT_FOUND,
)
def post_feedback(
    anomaly_id: str,
    body: FeedbackRequest,
    response: Response,
    state: State,
    caller: Admin,
) -> FeedbackItem:
    with state.store.transaction() as session:
        record = _existing(session, anomaly_id)
        if body.until is not None and body.until < record.last_day:
            raise ApiError(
                f"until {body.until} is before the anomaly's last day {record.last_day}, so it "
                "would suppress nothing; give that day or later, or leave it out"
            )
        feedback = mark_anomaly(
            session,
            record.anomaly_id,
            body.verdict,
            reason=body.reason,
            until=body.until,
            now=datetime.now(UTC),
        )
    logger.info("caller %s marked anomaly %s as %s", caller.name, anomaly_id, body.verdict)
    response.headers["Location"] = f"/api/v1/anomalies/{record.anomaly_id}/feedback"
    return FeedbackItem(
        anomaly_id=feedback.anomaly_id,
        verdict=feedback.verdict,
        reason=feedback.reason,
        until=feedback.until,
        created_at=feedback.created_at,
    )


@router.get(
    "/anomalies/{anomaly_id}/feedback",
    response_model=list[FeedbackItem],
    summary="Verdicts on an anomaly, oldest first",
    responses=NOT_FOUND,
)
def get_feedback(
    anomaly_id: str,
    state: State,
    _: Reader,
) -> list[FeedbackItem]:
    with state.store.transaction() as session:
        record = _existing(session, anomaly_id)
        return [_feedback(row) for row in anomaly_feedback(session, record.anomaly_id)]


def _existing(session: object, anomaly_id: str) -> AnomalyRecord:
    record = session.get(AnomalyRecord, anomaly_id)  # type: ignore[attr-defined]
    if record is None:
        raise NotFoundError(f"no anomaly with id {anomaly_id!r}; GET /api/v1/anomalies lists them")
    return record


def _feedback(row: AnomalyFeedbackRecord) -> FeedbackItem:
    return FeedbackItem(
        anomaly_id=row.anomaly_id,
        verdict=row.verdict,
        reason=row.reason,
        until=row.until,
        created_at=row.created_at,
    )


def _summary(record: AnomalyRecord) -> AnomalySummary:
    return AnomalySummary(
        anomaly_id=record.anomaly_id,
        scope_kind=record.scope_kind,
        scope_key=record.scope_key,
        scope_name=record.scope_name,
        metric=record.metric,
        kind=record.kind,
        cause=record.cause,
        status=record.status,
        severity=record.severity,
        first_day=record.first_day,
        last_day=record.last_day,
        currency=record.currency,
        expected=_money(record.expected),
        actual=_money(record.actual),
        impact_total=_money(record.impact_total) if record.impact_total is not None else None,
        score=record.score,
        first_seen=record.first_seen,
        last_seen=record.last_seen,
    )


def _money(value: Decimal) -> str:
    """Return a decimal string without the trailing zeros that PostgreSQL's NUMERIC keeps."""
    return format(value.normalize(), "f")
