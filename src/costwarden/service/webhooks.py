"""Inbound webhooks: Palette alert channels and signed cost events.

Both routes store the delivery in ``webhook_events`` before they respond 202, and
``service.events.process_events`` does the work later. A repeated delivery finds the stored row
and gets a duplicate response, so senders that retry never cause a second event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from standardwebhooks import Webhook
from starlette.concurrency import run_in_threadpool

from costwarden.errors import WebhookPayloadError
from costwarden.service import events
from costwarden.service.state import ServiceState, service_state
from costwarden.service.telemetry import WEBHOOKS_RECEIVED
from costwarden.store.tables import WebhookEvent

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

State = Annotated[ServiceState, Depends(service_state)]

RETRY_AFTER_SECONDS = 10
"""Retry-After of a 503 response, sent when the database cannot store an event."""

MAX_EVENT_ID_LENGTH = 200
"""Longest ``webhook-id`` accepted: the length of the ``webhook_events.id`` column."""

PALETTE_DESCRIPTION = """\
Receive a Palette project alert (component ClusterHealth, channel type `http`).

Palette posts the body template configured on the channel, for example
`{"text": "{{message}}"}`, without a signature or an event id. Configure the channel with the
header named by `service.palette_webhook_header` carrying `service.palette_webhook_secret`.
Identical bodies within `service.webhook_dedupe_seconds` count once. Each accepted alert queues a
refresh of the clusters whose uid or name appears in the message, or of the whole fleet when
none does.
"""

EVENTS_DESCRIPTION = """\
Receive a cost event signed with the Standard Webhooks scheme (`webhook-id`,
`webhook-timestamp` and `webhook-signature` headers, HMAC-SHA256 over `id.timestamp.body`
with any of `service.event_secrets`). The `webhook-id` is the idempotency key: a second
delivery with the same id gets `{"status": "duplicate"}` and changes nothing.

The body is `{"type": ..., "timestamp": ..., "data": {...}}`. Types:

* `cost.facts`: `data.records` is a list of
  `{day, amount, currency, cluster?, cluster_uid?, project?, namespace?, service?, provider?,
  account?, tags?}`, stored as cost facts of source `webhook` in one transaction.
  A record with the same day, currency and scope as an earlier one replaces its amount.
  Example: `{"type": "cost.facts", "data": {"records": [{"day": "2026-11-30",
  "amount": "412.50", "currency": "USD", "cluster": "prod-eu-1", "service": "gpu-burst"}]}}`
* `cluster.event`: `data` is `{cluster_uid, reason, message, time, severity?, cluster_name?,
  involved_kind?, involved_name?}`, stored with the Palette cluster events that anomaly root
  cause reads. Example: `{"type": "cluster.event", "data": {"cluster_uid": "c-123",
  "reason": "MachinePoolScaled", "message": "worker pool scaled 3 -> 9",
  "time": "2026-11-30T14:02:00Z"}}`
* `refresh.requested`: `data` is `{clusters?: [uid or name, ...], days?: 1-31}` and queues a
  refresh of those clusters (all when empty). Example:
  `{"type": "refresh.requested", "data": {"clusters": ["prod-eu-1"], "days": 2}}`

Invalid data gets a 422 response with the record index, field and value, and the event is
stored as failed. A later delivery with the same `webhook-id` gets the same 422 response, so a
corrected event needs a new id.
"""

_ACCEPTED = {
    202: {"description": "Stored for processing, or a duplicate of a stored delivery."},
    401: {"description": "Missing or wrong secret, signature or timestamp."},
    404: {"description": "The endpoint is not configured."},
    413: {"description": "The body is larger than service.max_body_bytes."},
    503: {"description": "The database could not store the event; deliver it again later."},
}


@router.post(
    "/palette",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Palette alert channel",
    description=PALETTE_DESCRIPTION,
    responses=_ACCEPTED,
)
async def palette_alert(request: Request, state: State) -> JSONResponse:
    settings = state.settings.service
    secret = settings.palette_webhook_secret
    if secret is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "palette webhooks are not configured")

    token = request.headers.get(settings.palette_webhook_header, "")
    if not hmac.compare_digest(token.encode(), secret.get_secret_value().encode()):
        _count("palette", "rejected")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"missing or wrong {settings.palette_webhook_header} header",
        )

    body = await _read_body(request, settings.max_body_bytes, "palette")
    event_id = _palette_event_id(body, settings.webhook_dedupe_seconds)
    try:
        new = await run_in_threadpool(_store_palette_alert, state, event_id, body)
    except SQLAlchemyError as exc:
        _unavailable("palette", exc)
    if not new:
        _count("palette", "duplicate")
        return _accepted({"status": "duplicate", "id": event_id})
    _count("palette", "accepted")
    logger.info("palette alert %s stored", event_id)
    return _accepted({"status": "accepted", "id": event_id})


def _palette_event_id(body: bytes, window_seconds: int) -> str:
    """Return the dedupe id: the body's SHA-256 and the index of the current time window."""
    digest = hashlib.sha256(body).hexdigest()
    if window_seconds <= 0:
        return f"palette:{digest}:{uuid.uuid4().hex}"
    window = math.floor(time.time() / window_seconds)
    return f"palette:{digest}:{window}"


def _store_palette_alert(state: ServiceState, event_id: str, body: bytes) -> bool:
    message = events.palette_alert_message(body)
    with state.store.transaction() as session:
        scope = events.clusters_in_message(session, message, state.settings.service.refresh_days)
        payload = {
            "body": body.decode("utf-8", errors="replace"),
            "message": message,
            "scope": scope.as_json(),
        }
        row = events.event_row(event_id, "palette", events.PALETTE_ALERT, payload)
        return events.insert_event(session, row)


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Signed cost events",
    description=EVENTS_DESCRIPTION,
    responses={
        **_ACCEPTED,
        422: {
            "description": "Unknown type or invalid data; stored as failed, and every later "
            "delivery with the same webhook-id gets this response again."
        },
    },
)
async def signed_event(request: Request, state: State) -> JSONResponse:
    settings = state.settings.service
    if not settings.event_secrets:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "signed events are not configured")

    body = await _read_body(request, settings.max_body_bytes, "events")
    event_id = _verified_id(request, body, state)

    try:
        event_type, data = events.validate_event(body)
    except WebhookPayloadError as exc:
        return await _reject_payload(state, event_id, body, exc)

    payload = {"type": event_type, "data": data}
    row = events.event_row(event_id, "events", event_type, payload)
    try:
        new = await _writer(request, state).insert(row)
    except SQLAlchemyError as exc:
        _unavailable("events", exc)
    if not new:
        return await _replayed(state, event_id)
    _count("events", "accepted")
    return _accepted({"status": "accepted", "id": event_id})


def _verified_id(request: Request, body: bytes, state: ServiceState) -> str:
    """Check the Standard Webhooks headers and return the webhook-id; raise 401 when they fail.

    The timestamp is checked here because ``Webhook.verify`` of the standardwebhooks package
    (1.3) fixes its tolerance at five minutes, and ``service.event_tolerance_seconds`` sets it.
    The signature is the package's ``Webhook.sign`` compared with ``hmac.compare_digest``.
    """
    settings = state.settings.service
    event_id = request.headers.get("webhook-id", "")
    stamp = request.headers.get("webhook-timestamp", "")
    signatures = request.headers.get("webhook-signature", "").split()
    if not event_id or not stamp or not signatures:
        _unauthorized("missing webhook-id, webhook-timestamp or webhook-signature header")
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        _unauthorized(f"webhook-id is longer than {MAX_EVENT_ID_LENGTH} characters")

    try:
        sent_at = int(stamp)
    except ValueError:
        _unauthorized(f"webhook-timestamp {stamp[:40]!r} is not a Unix time in seconds")
    skew = abs(time.time() - sent_at)
    if skew > settings.event_tolerance_seconds:
        _unauthorized(
            f"webhook-timestamp is {skew:.0f} s away from the server clock; at most "
            f"{settings.event_tolerance_seconds} s is accepted"
        )

    signed_at = datetime.fromtimestamp(sent_at, tz=UTC)
    for secret in settings.event_secrets:
        expected = Webhook(secret.get_secret_value()).sign(event_id, signed_at, body).encode()
        if any(hmac.compare_digest(expected, sent.encode()) for sent in signatures):
            return event_id
    _unauthorized("no webhook-signature matches a configured secret")


def _unavailable(source: str, exc: SQLAlchemyError) -> NoReturn:
    """Respond 503 with Retry-After, so that the sender delivers the event again later."""
    _count(source, "failed")
    logger.error("storing a %s webhook failed: %s", source, exc)
    raise HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the event could not be stored; deliver it again later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    ) from exc


def _unauthorized(reason: str) -> NoReturn:
    _count("events", "rejected")
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, reason)


async def _reject_payload(
    state: ServiceState, event_id: str, body: bytes, exc: WebhookPayloadError
) -> JSONResponse:
    """Store a verified but invalid event as failed and respond 422.

    A later delivery with the same id gets the same 422 response from the stored row, whatever
    its body, because the id is the idempotency key. A corrected event needs a new id.
    """
    rejection = _rejection(exc)
    payload = {"body": body.decode("utf-8", errors="replace"), "rejection": rejection}
    row = events.event_row(
        event_id,
        "events",
        _claimed_type(body),
        payload,
        status="failed",
        processed_at=datetime.now(UTC),
        error=str(exc),
    )
    try:
        new = await run_in_threadpool(_insert, state, row)
    except SQLAlchemyError as exc:
        _unavailable("events", exc)
    if not new:
        return await _replayed(state, event_id)
    _count("events", "invalid")
    logger.warning("signed event %s rejected: %s", event_id, exc)
    return _unprocessable(event_id, str(exc), rejection)


def _rejection(exc: WebhookPayloadError) -> dict[str, Any]:
    """Return the record, field and value of a payload error as JSON, without the absent ones."""
    rejection: dict[str, Any] = {}
    if exc.record is not None:
        rejection["record"] = exc.record
    if exc.field is not None:
        rejection["field"] = exc.field
        # Amounts arrive as Decimal; a string keeps every digit.
        rejection["value"] = json.loads(json.dumps(exc.value, default=str))
    return rejection


def _unprocessable(event_id: str, detail: str, rejection: dict[str, Any]) -> JSONResponse:
    body = {"status": "failed", "id": event_id, "detail": detail, **rejection}
    return JSONResponse(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _replayed(state: ServiceState, event_id: str) -> JSONResponse:
    """Respond to a delivery whose id is stored: 422 again when it was rejected, else duplicate."""
    try:
        stored = await run_in_threadpool(_stored_rejection, state, event_id)
    except SQLAlchemyError as exc:
        _unavailable("events", exc)
    if stored is None:
        _count("events", "duplicate")
        return _accepted({"status": "duplicate", "id": event_id})
    _count("events", "invalid")
    detail, rejection = stored
    return _unprocessable(event_id, detail, rejection)


def _stored_rejection(state: ServiceState, event_id: str) -> tuple[str, dict[str, Any]] | None:
    """Return the error and rejection of a signed event stored as invalid, or None."""
    with state.store.transaction() as session:
        row = session.get(WebhookEvent, event_id)
        if row is None or row.source != "events" or row.status != "failed":
            return None
        payload = row.payload if isinstance(row.payload, dict) else {}
        # Rows rejected at intake store the raw body; accepted events store type and data.
        if "body" not in payload:
            return None
        return row.error or "the event was rejected", dict(payload.get("rejection") or {})


def _claimed_type(body: bytes) -> str:
    """Return the type an invalid body names, for the stored row, or "invalid"."""
    try:
        claimed = json.loads(body).get("type")
    except (ValueError, AttributeError):
        return "invalid"
    return claimed[:100] if isinstance(claimed, str) and claimed else "invalid"


def _writer(request: Request, state: ServiceState) -> events.EventWriter:
    """Return the application's event writer, created in the serving event loop on first use."""
    writer = getattr(request.app.state, "webhook_writer", None)
    if writer is None:
        writer = events.EventWriter(state)
        request.app.state.webhook_writer = writer
    return writer


def _insert(state: ServiceState, row: dict[str, Any]) -> bool:
    with state.store.transaction() as session:
        return events.insert_event(session, row)


async def _read_body(request: Request, limit: int, source: str) -> bytes:
    """Read the body, responding 413 as soon as it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        _count(source, "rejected")
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body exceeds {limit} bytes")

    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            _count(source, "rejected")
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"the body exceeds {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _accepted(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED)


def _count(source: str, outcome: str) -> None:
    WEBHOOKS_RECEIVED.labels(source, outcome).inc()
