"""Outbox rows of the notification channels: pending, sent and dead deliveries."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from costwarden.notify.deliveries import (
    DeliveryStatus,
    delivery_detail,
    delivery_summary,
    find_delivery,
    list_deliveries,
    retry_delivery,
)
from costwarden.service.api.deps import Admin, PageQuery, Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute, json_response
from costwarden.service.api.models import Page

logger = logging.getLogger(__name__)

router = APIRouter(tags=["deliveries"], route_class=ApiRoute, responses=ERROR_RESPONSES)


class DeliverySummary(BaseModel):
    id: str = Field(description="Outbox row id; channels send it as their idempotency key.")
    channel: str
    alert_id: str | None = Field(None, description="Alert id; null for digests.")
    event: str = Field(description="trigger, update, resolve or digest.")
    route: str | None = None
    status: DeliveryStatus = Field(
        description="pending, sending, sent, dead (gave up; retry with POST .../retry) or "
        "cancelled (snoozed or resolved before sending)."
    )
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    last_status: int | None = Field(None, description="HTTP status of the last failed attempt.")
    last_error: str | None = Field(None, description="Error of the last failed attempt.")
    external_ref: str | None = Field(
        None, description="What the channel returned: a message timestamp, ticket key or id."
    )


class DeliveryDetail(DeliverySummary):
    claimed_by: str | None = Field(None, description="Worker that claimed the row last.")
    claimed_until: datetime | None = None
    notices: list[dict[str, Any]] = Field(description="The notices the message renders.")


@router.get("/deliveries", response_model=Page[DeliverySummary], summary="List deliveries")
def get_deliveries(
    page: PageQuery,
    state: State,
    _: Reader,
    status: Annotated[DeliveryStatus | None, Query(description="Only rows in this status.")] = None,
    channel: Annotated[str | None, Query(description="Only rows of this channel.")] = None,
    alert: Annotated[str | None, Query(description="Only rows of this alert id.")] = None,
) -> Response:
    with state.store.transaction() as session:
        found = list_deliveries(
            session, status=status, channel=channel, alert_id=alert, limit=page.limit,
            offset=page.offset,
        )
        items = [DeliverySummary(**delivery_summary(record)) for record in found.items]
    return json_response(Page(items=items, total=found.total, limit=page.limit, offset=page.offset))


@router.get(
    "/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="Read a delivery",
    responses={404: {"description": "No such delivery."}},
)
def get_one_delivery(delivery_id: str, state: State, _: Reader) -> DeliveryDetail:
    with state.store.transaction() as session:
        return DeliveryDetail(**delivery_detail(find_delivery(session, delivery_id)))


@router.post(
    "/deliveries/{delivery_id}/retry",
    response_model=DeliveryDetail,
    summary="Retry a dead delivery",
    description="Move a dead delivery back to pending with its attempts reset; the delivery "
    "worker sends it on its next scan.",
    responses={
        404: {"description": "No such delivery."},
        409: {"description": "The delivery is not dead."},
    },
)
def post_retry(delivery_id: str, state: State, caller: Admin) -> DeliveryDetail:
    with state.store.transaction() as session:
        record = retry_delivery(session, delivery_id, datetime.now(UTC))
        detail = DeliveryDetail(**delivery_detail(record))
    logger.info("caller %s moved dead delivery %s back to pending", caller.name, detail.id)
    return detail
