"""Stored webhook events: their payload models, how they are stored, and the worker that runs them.

Routes in ``service.webhooks`` validate an event and store it as ``pending`` before they respond.
``process_events`` then handles the pending rows in the order they were received. Cost facts and
cluster events are written in the same transaction that marks the row done, so each event takes
effect once, even with several workers or replicas. Refresh requests call the pass runner
outside that transaction, because the runner writes its own ``runs`` row. The runner joins a
queued pass, so a burst of alerts gives one refresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from costwarden.domain.cost import CostRecord
from costwarden.domain.event import ClusterEvent
from costwarden.errors import CostwardenError, WebhookPayloadError
from costwarden.service.state import RefreshScope, ServiceState
from costwarden.service.telemetry import WEBHOOK_EVENTS_PROCESSED
from costwarden.store import upsert_facts
from costwarden.store.events import upsert_events
from costwarden.store.tables import Cluster, IngestBatch, WebhookEvent

logger = logging.getLogger(__name__)

SOURCE = "webhook"
"""The ``source`` of cost facts and ingest batches that arrive as ``cost.facts`` events."""

PALETTE_ALERT = "palette.alert"
COST_FACTS = "cost.facts"
CLUSTER_EVENT = "cluster.event"
REFRESH_REQUESTED = "refresh.requested"
EVENT_TYPES = (COST_FACTS, CLUSTER_EVENT, REFRESH_REQUESTED)
"""The event types that ``/webhooks/events`` accepts."""

BATCH_SIZE = 100
IDLE_SECONDS = 0.25
INTAKE_BUSY_SECONDS = 0.5
"""While the routes stored an event this recently, the worker pauses after each batch."""

_last_intake = 0.0
"""``monotonic()`` of the last write by an ``EventWriter`` of this process."""
ERROR_BACKOFF_SECONDS = 5.0


class CostFactIn(BaseModel):
    """One daily cost record of a ``cost.facts`` event."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    day: date = Field(description="UTC calendar day of the charge, ISO 8601.")
    amount: Decimal = Field(
        max_digits=24, decimal_places=10, description="Cost of the day; negative for credits."
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code.")
    cluster: str | None = Field(None, min_length=1, max_length=255)
    cluster_uid: str | None = Field(None, min_length=1, max_length=64)
    project: str | None = Field(None, min_length=1, max_length=255)
    namespace: str | None = Field(None, min_length=1, max_length=255)
    service: str | None = Field(None, min_length=1, max_length=255)
    provider: str | None = Field(None, min_length=1, max_length=32)
    account: str | None = Field(None, min_length=1, max_length=255)
    tags: dict[str, str] = Field(default_factory=dict)

    def identity(self) -> str:
        """Return the natural key: every field except the amount and the tags."""
        parts = [
            self.day.isoformat(),
            self.currency,
            self.cluster,
            self.cluster_uid,
            self.project,
            self.namespace,
            self.service,
            self.provider,
            self.account,
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class CostFactsData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[CostFactIn] = Field(min_length=1, max_length=50_000)


class ClusterEventData(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    cluster_uid: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=128)
    message: str = Field(max_length=10_000)
    time: AwareDatetime = Field(description="When it happened, ISO 8601 with a UTC offset.")
    severity: str = Field("Normal", min_length=1, max_length=32)
    cluster_name: str | None = Field(None, min_length=1, max_length=255)
    involved_kind: str = Field("SpectroCluster", min_length=1, max_length=64)
    involved_name: str | None = Field(None, min_length=1, max_length=255)


class RefreshData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clusters: list[str] = Field(
        default_factory=list, max_length=1000, description="Cluster uids or names; all if empty."
    )
    days: int | None = Field(None, ge=1, le=31, description="Days of cost data fetched again.")


DATA_MODELS: dict[str, type[BaseModel]] = {
    COST_FACTS: CostFactsData,
    CLUSTER_EVENT: ClusterEventData,
    REFRESH_REQUESTED: RefreshData,
}


class Envelope(BaseModel):
    """The JSON body of a signed event, in the Standard Webhooks payload layout."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(min_length=1, max_length=100)
    timestamp: datetime | None = None
    data: dict[str, Any]


_ENVELOPE = TypeAdapter(Envelope)


def validate_event(body: bytes) -> tuple[str, dict[str, Any]]:
    """Parse and validate a signed event body and return its type and normalised data.

    Amounts are parsed as exact decimals and come back as strings, so the stored payload keeps
    every digit. Raises ``WebhookPayloadError`` naming the record index, field and value.
    """
    try:
        parsed = json.loads(body, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookPayloadError(f"the body is not valid JSON: {exc}") from exc

    try:
        envelope = _ENVELOPE.validate_python(parsed)
    except ValidationError as exc:
        raise _payload_error(exc, prefix="") from exc

    model = DATA_MODELS.get(envelope.type)
    if model is None:
        raise WebhookPayloadError(
            f"event type {envelope.type!r} is not supported; send one of {', '.join(EVENT_TYPES)}",
            field="type",
            value=envelope.type,
        )

    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise _payload_error(exc, prefix="data.") from exc
    if isinstance(data, CostFactsData):
        _reject_repeated_records(data)
    return envelope.type, data.model_dump(mode="json", exclude_none=True)


def _payload_error(exc: ValidationError, prefix: str) -> WebhookPayloadError:
    """Describe the first invalid field of a validation error, and count the others."""
    errors = exc.errors()
    first = errors[0]
    location = list(first["loc"])
    record = None
    if len(location) >= 2 and location[0] == "records" and isinstance(location[1], int):
        record = location[1]
    field = prefix + ".".join(str(part) for part in location)
    value = first.get("input")
    received = "" if isinstance(value, dict | list) else f" (got {value!r})"
    if first["type"] == "missing":
        # pydantic reports the enclosing object as the input of a missing field.
        value = None
        received = ""
    more = f"; {len(errors) - 1} more invalid fields" if len(errors) > 1 else ""
    where = f"record {record}, field {field}" if record is not None else f"field {field}"
    message = first["msg"].removeprefix("Value error, ")
    return WebhookPayloadError(
        f"{where}: {message}{received}{more}", record=record, field=field, value=value
    )


def _reject_repeated_records(data: CostFactsData) -> None:
    seen: dict[str, int] = {}
    for index, record in enumerate(data.records):
        first = seen.setdefault(record.identity(), index)
        if first != index:
            raise WebhookPayloadError(
                f"record {index} has the same day, currency and scope as record {first}; send "
                "one record per day and scope",
                record=index,
                field=f"data.records.{index}",
            )


def palette_alert_message(body: bytes) -> str:
    """Return the alert text of a Palette alert channel body.

    Palette sends the body template the user configured, for example ``{"text": "{{message}}"}``.
    A JSON object yields its ``text`` or ``message`` value; any other body is the text itself.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(parsed, dict):
        for key in ("text", "message", "msg", "alert", "body"):
            value = parsed.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return text


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


def clusters_in_message(session: Session, message: str, days: int) -> RefreshScope:
    """Find the stored clusters whose uid or name appears as a whole word in an alert message."""
    tokens = {token.rstrip(".:-_") for token in _TOKEN.findall(message)}
    uids: list[str] = []
    names: list[str] = []
    for uid, name in session.execute(select(Cluster.uid, Cluster.name).order_by(Cluster.uid)):
        if uid in tokens:
            uids.append(uid)
        elif name in tokens:
            uids.append(uid)
            names.append(name)
    return RefreshScope(cluster_uids=tuple(uids), cluster_names=tuple(names), days=days)


def insert_event(session: Session, row: dict[str, Any]) -> bool:
    """Insert a webhook event unless its id is stored already; return whether it was new."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        module = postgresql if dialect == "postgresql" else sqlite
        statement = (
            module.insert(WebhookEvent)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(WebhookEvent.id)
        )
        return session.execute(statement).scalar() is not None

    try:
        with session.begin_nested():
            session.execute(WebhookEvent.__table__.insert().values(**row))
    except IntegrityError:
        return False
    return True


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert webhook events whose ids are not stored yet; return the ids that were new."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return {row["id"] for row in rows if insert_event(session, row)}

    module = postgresql if dialect == "postgresql" else sqlite
    statement = (
        module.insert(WebhookEvent)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(WebhookEvent.id)
    )
    return set(session.execute(statement).scalars())


class EventWriter:
    """Group commit for webhook intake: rows of concurrent requests share one transaction.

    Each request waits for the transaction that contains its row, so a 202 still means the row is
    committed. While one transaction runs, new rows queue up and go into the next, so the
    batch grows with the load and an idle service commits each row at once.
    """

    def __init__(self, state: ServiceState, max_batch: int = 500) -> None:
        self._state = state
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[bool]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def insert(self, row: dict[str, Any]) -> bool:
        """Store one row; return False when its id was already stored."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="webhook-event-writer")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((row, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            unique: dict[str, dict[str, Any]] = {}
            for row, _ in batch:
                unique.setdefault(row["id"], row)
            try:
                new_ids = await asyncio.to_thread(self._write, list(unique.values()))
            except Exception as exc:  # noqa: BLE001 - every waiting request receives it
                logger.error("storing %d webhook events failed: %s", len(batch), exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for row, future in batch:
                event_id = row["id"]
                if not future.done():
                    future.set_result(event_id in new_ids)
                # Only the first of several rows with one id counts as new.
                new_ids.discard(event_id)

    def _write(self, rows: list[dict[str, Any]]) -> set[str]:
        global _last_intake
        _last_intake = monotonic()
        with self._state.store.transaction() as session:
            return insert_events(session, rows)


def event_row(
    event_id: str, source: str, event_type: str, payload: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": event_id,
        "source": source,
        "type": event_type,
        "received_at": datetime.now(UTC),
        "payload": payload,
        "status": "pending",
    }
    row.update(extra)
    return row


async def process_events(state: ServiceState, stop: asyncio.Event) -> None:
    """Process pending webhook events until ``stop`` is set.

    Database work runs in worker threads. A database error leaves the events pending and the loop
    tries again after a pause, so an outage delays events but loses none.
    """
    logger.info("webhook event worker started")
    while not stop.is_set():
        started = monotonic()
        try:
            handled = await _process_batch(state, stop)
        except SQLAlchemyError as exc:
            logger.error(
                "webhook event worker: database error, retrying in %.0f s: %s",
                ERROR_BACKOFF_SECONDS,
                exc,
            )
            await _wait(stop, ERROR_BACKOFF_SECONDS)
            continue
        if handled == 0:
            await _wait(stop, IDLE_SECONDS)
        elif monotonic() - _last_intake < INTAKE_BUSY_SECONDS:
            # Intake comes first: under load the worker pauses twice as long as its batch took,
            # so the routes get the database lock and the interpreter two thirds of the time.
            await _wait(stop, 2 * (monotonic() - started))
    logger.info("webhook event worker stopped")


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def _process_batch(state: ServiceState, stop: asyncio.Event) -> int:
    """Handle one batch of pending events, oldest first; return how many were found.

    Data events are first applied together in one transaction. When one of them fails, that
    transaction is rolled back and each event is applied in its own transaction instead, so a
    bad event fails alone.
    """
    pending = await asyncio.to_thread(_pending, state)
    refreshes = [item for item in pending if item.type in (PALETTE_ALERT, REFRESH_REQUESTED)]
    data = [item for item in pending if item not in refreshes]
    if data and not await asyncio.to_thread(_process_together, state, data):
        for item in data:
            if stop.is_set():
                break
            await asyncio.to_thread(_process_one, state, item)
    if refreshes and not stop.is_set():
        await asyncio.to_thread(_request_refresh, state, refreshes)
    return len(pending)


@dataclass(frozen=True, slots=True)
class _Pending:
    id: str
    type: str
    payload: dict[str, Any]


def _pending(state: ServiceState) -> list[_Pending]:
    query = (
        select(WebhookEvent.id, WebhookEvent.type, WebhookEvent.payload)
        .where(WebhookEvent.status == "pending")
        .order_by(WebhookEvent.received_at, WebhookEvent.id)
        .limit(BATCH_SIZE)
    )
    with state.store.transaction() as session:
        return [_Pending(*row) for row in session.execute(query)]


def _finish(
    session: Session,
    event_id: str,
    status: str,
    *,
    run_id: str | None = None,
    error: str | None = None,
) -> bool:
    """Mark a pending event finished; False when another worker got to it first."""
    statement = (
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.status == "pending")
        .values(status=status, processed_at=datetime.now(UTC), run_id=run_id, error=error)
    )
    return session.execute(statement).rowcount == 1


_HANDLERS: dict[str, Callable[[Session, _Pending], None]] = {}


def _process_one(state: ServiceState, item: _Pending) -> None:
    """Apply one event and mark it done in the same transaction; mark it failed on bad data."""
    handler = _HANDLERS.get(item.type)
    try:
        with state.store.transaction() as session:
            # The claim comes first: on PostgreSQL a second replica blocks on the row lock and
            # then finds the row no longer pending. SQLite serialises writers anyway.
            if not _finish(session, item.id, "done" if handler else "ignored"):
                return
            if handler is not None:
                handler(session, item)
    except (CostwardenError, KeyError, ValueError) as exc:
        logger.warning("webhook event %s (%s) failed: %s", item.id, item.type, exc)
        _mark_failed(state, item, str(exc))
        return
    status = "done" if handler else "ignored"
    if handler is None:
        logger.warning("webhook event %s has the unknown type %r; ignored", item.id, item.type)
    WEBHOOK_EVENTS_PROCESSED.labels(item.type, status).inc()


def _process_together(state: ServiceState, items: list[_Pending]) -> bool:
    """Apply several events in one transaction; False, with nothing applied, when one fails."""
    if any(item.type not in _HANDLERS for item in items):
        return False

    now = datetime.now(UTC)
    try:
        with state.store.transaction() as session:
            statement = (
                update(WebhookEvent)
                .where(WebhookEvent.id.in_([item.id for item in items]))
                .where(WebhookEvent.status == "pending")
                .values(status="done", processed_at=now)
                .returning(WebhookEvent.id)
            )
            claimed = set(session.execute(statement).scalars())
            for item in items:
                if item.id in claimed:
                    _HANDLERS[item.type](session, item)
    except (CostwardenError, KeyError, ValueError) as exc:
        logger.info("applying %d webhook events together failed (%s); one by one", len(items), exc)
        return False
    for item in items:
        if item.id in claimed:
            WEBHOOK_EVENTS_PROCESSED.labels(item.type, "done").inc()
    return True


def _mark_failed(state: ServiceState, item: _Pending, error: str) -> None:
    with state.store.transaction() as session:
        if _finish(session, item.id, "failed", error=error):
            WEBHOOK_EVENTS_PROCESSED.labels(item.type, "failed").inc()


def _ingest_cost_facts(session: Session, item: _Pending) -> None:
    """Upsert the records as cost facts with one ingest batch, in the caller's transaction."""
    data = CostFactsData.model_validate(item.payload["data"])
    started = datetime.now(UTC)
    batch_id = str(uuid.uuid4())
    uids = _cluster_uids_by_name(session, {r.cluster for r in data.records if r.cluster})
    records = [_cost_record(record, uids) for record in data.records]
    counts = upsert_facts(session, records, batch_id)
    session.add(
        IngestBatch(
            id=batch_id,
            source=SOURCE,
            origin=f"webhook event {item.id}",
            started_at=started,
            finished_at=datetime.now(UTC),
            rows_read=len(records),
            facts_inserted=counts.inserted,
            facts_updated=counts.updated,
            facts_unchanged=counts.unchanged,
            warnings=[],
        )
    )
    logger.info(
        "webhook event %s: %d cost facts inserted, %d updated, %d unchanged",
        item.id,
        counts.inserted,
        counts.updated,
        counts.unchanged,
    )


def _cluster_uids_by_name(session: Session, names: set[str]) -> dict[str, str]:
    """Map cluster names to uids where exactly one stored cluster has the name."""
    if not names:
        return {}
    found: dict[str, list[str]] = {}
    query = select(Cluster.name, Cluster.uid).where(Cluster.name.in_(sorted(names)))
    for name, uid in session.execute(query):
        found.setdefault(name, []).append(uid)
    return {name: uids[0] for name, uids in found.items() if len(uids) == 1}


def _cost_record(record: CostFactIn, uids: dict[str, str]) -> CostRecord:
    start = datetime.combine(record.day, time(), tzinfo=UTC)
    cluster_uid = record.cluster_uid or uids.get(record.cluster or "")
    grain: Literal["cluster", "namespace", "resource"] = "resource"
    if record.namespace and (cluster_uid or record.cluster):
        grain = "namespace"
    elif cluster_uid or record.cluster:
        grain = "cluster"
    return CostRecord(
        source=SOURCE,
        grain=grain,
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=record.amount,
        currency=record.currency,
        cloud=record.provider,
        project_name=record.project,
        cluster_uid=cluster_uid,
        cluster_name=record.cluster,
        namespace=record.namespace,
        account_id=record.account,
        service=record.service,
        tags=dict(record.tags),
        fingerprint=record.identity(),
    )


def _store_cluster_event(session: Session, item: _Pending) -> None:
    stored = dict(item.payload["data"])
    stamp = stored.get("time")
    # Rows stored while intake still accepted a time without an offset keep their UTC reading.
    if isinstance(stamp, str) and datetime.fromisoformat(stamp).tzinfo is None:
        stored["time"] = stamp + "+00:00"
    data = ClusterEventData.model_validate(stored)
    event = ClusterEvent(
        uid="webhook-" + hashlib.sha256(item.id.encode()).hexdigest()[:48],
        cluster_uid=data.cluster_uid,
        cluster_name=data.cluster_name,
        created_at=data.time.astimezone(UTC),
        reason=data.reason,
        message=data.message,
        severity=data.severity,
        involved_kind=data.involved_kind,
        involved_name=data.involved_name or data.cluster_name or data.cluster_uid,
        related_kind="spectrocluster",
        related_name=data.cluster_name,
        source_component=SOURCE,
    )
    upsert_events(session, [event], batch_id=str(uuid.uuid4()), now=datetime.now(UTC))


_HANDLERS[COST_FACTS] = _ingest_cost_facts
_HANDLERS[CLUSTER_EVENT] = _store_cluster_event


def _request_refresh(state: ServiceState, items: Sequence[_Pending]) -> None:
    """Ask the runner for one pass that covers every refresh in the batch, then mark them done.

    The request comes before the rows are marked, so a crash in between repeats the request
    instead of losing it. A repeated request joins the queued pass.
    """
    scope = _merged_scope(state, items)
    try:
        run_id = state.runner.request("webhook", scope)
    except CostwardenError as exc:
        logger.error("refresh for %d webhook events failed: %s", len(items), exc)
        for item in items:
            _mark_failed(state, item, f"the pass could not be queued: {exc}")
        return

    with state.store.transaction() as session:
        for item in items:
            if _finish(session, item.id, "done", run_id=run_id):
                WEBHOOK_EVENTS_PROCESSED.labels(item.type, "done").inc()
    logger.info("webhook events %s requested run %s", ", ".join(i.id for i in items), run_id)


def _merged_scope(state: ServiceState, items: Sequence[_Pending]) -> RefreshScope | None:
    """Merge the scopes of several refreshes; None (the whole fleet) when any of them is."""
    default_days = state.settings.service.refresh_days
    uids: dict[str, None] = {}
    names: dict[str, None] = {}
    days = 0
    for item in items:
        scope = _scope_of(state, item, default_days)
        if not scope.cluster_uids and not scope.cluster_names:
            return RefreshScope(days=max(days, scope.days))
        uids.update(dict.fromkeys(scope.cluster_uids))
        names.update(dict.fromkeys(scope.cluster_names))
        days = max(days, scope.days)
    return RefreshScope(cluster_uids=tuple(uids), cluster_names=tuple(names), days=days)


def _scope_of(state: ServiceState, item: _Pending, default_days: int) -> RefreshScope:
    if item.type == PALETTE_ALERT:
        stored = item.payload.get("scope") or {}
        return RefreshScope(
            cluster_uids=tuple(stored.get("cluster_uids", ())),
            cluster_names=tuple(stored.get("cluster_names", ())),
            days=int(stored.get("days", default_days)),
        )

    data = RefreshData.model_validate(item.payload["data"])
    if not data.clusters:
        return RefreshScope(days=data.days or default_days)
    with state.store.transaction() as session:
        known = dict(
            session.execute(
                select(Cluster.uid, Cluster.name).where(
                    Cluster.uid.in_(data.clusters) | Cluster.name.in_(data.clusters)
                )
            ).all()
        )
    uids = [entry for entry in data.clusters if entry in known]
    names = [entry for entry in data.clusters if entry not in known]
    uids += [uid for uid, name in known.items() if name in names and uid not in uids]
    return RefreshScope(
        cluster_uids=tuple(uids), cluster_names=tuple(names), days=data.days or default_days
    )
