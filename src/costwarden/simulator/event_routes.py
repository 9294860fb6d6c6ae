"""Palette's component event paths on the simulated fleet.

``GET /v1/events/components`` lists the events of every cluster in scope, and
``GET /v1/events/components/spectrocluster/{uid}`` those of one cluster (``v1Events``). Both
take Palette's list parameters: ``limit`` (at most 50), ``offset``, ``continue``, ``orderBy``
such as ``metadata.creationTimestamp=-1``, and ``filters`` such as
``reason=MachinePoolScaledANDseverity=Normal``. Every route passes the same rate limit, API key
check and fault injection as the other simulated routes.

Palette documents ``filters`` only with ``=`` conditions joined by ``AND`` and ``OR``, so the
simulator offers no time range filter. A client reads the newest events first and stops at the
first event older than it needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from costwarden.domain.event import ClusterEvent
from costwarden.simulator.guards import ApiError
from costwarden.simulator.payloads import rfc3339
from costwarden.simulator.routes import _cluster_or_404, _clusters_in_scope, guard
from costwarden.simulator.search import PAGE_SIZE, SearchError, decode_continue, encode_continue

OBJECT_KINDS = ("spectrocluster", "edgehost")
DEFAULT_ORDER = "metadata.creationTimestamp=-1"
"""Newest first. Palette does not document its default order, so this is a guess."""

FILTER_FIELDS: dict[str, Callable[[ClusterEvent], str]] = {
    "metadata.uid": lambda event: event.uid,
    "metadata.name": lambda event: event_name(event),
    "reason": lambda event: event.reason,
    "severity": lambda event: event.severity,
    "involvedObject.kind": lambda event: event.involved_kind,
    "involvedObject.name": lambda event: event.involved_name,
    "relatedObject.kind": lambda event: event.related_kind or "",
    "relatedObject.name": lambda event: event.related_name or "",
    "relatedObject.uid": lambda event: event.cluster_uid,
    "source.component": lambda event: event.source_component or "",
}
SORT_FIELDS: dict[str, Callable[[ClusterEvent], str]] = {
    "metadata.creationTimestamp": lambda event: event.created_at.isoformat(),
    "metadata.name": lambda event: event_name(event),
    "metadata.uid": lambda event: event.uid,
    "reason": lambda event: event.reason,
    "severity": lambda event: event.severity,
}


class EventQueryError(ValueError):
    """A list request with an invalid filter, order or continue token."""


event_router = APIRouter(dependencies=[Depends(guard)])

ContinueToken = Annotated[str | None, Query(alias="continue")]
OrderBy = Annotated[str | None, Query(alias="orderBy")]


@event_router.get("/v1/events/components")
def list_events(
    request: Request,
    limit: int | None = None,
    offset: int | None = None,
    continue_token: ContinueToken = None,
    order_by: OrderBy = None,
    filters: str | None = None,
    fields: str | None = None,
) -> dict[str, Any]:
    uids = {cluster.uid for cluster in _clusters_in_scope(request)}
    events = [event for event in _fleet_events(request) if event.cluster_uid in uids]
    return _page(events, limit, offset, continue_token, order_by, filters)


@event_router.get("/v1/events/components/{object_kind}/{object_uid}")
def list_object_events(
    request: Request,
    object_kind: str,
    object_uid: str,
    limit: int | None = None,
    offset: int | None = None,
    continue_token: ContinueToken = None,
    order_by: OrderBy = None,
    filters: str | None = None,
    fields: str | None = None,
) -> dict[str, Any]:
    if object_kind not in OBJECT_KINDS:
        raise ApiError(
            400,
            "BadRequest",
            f"object kind {object_kind!r} is not valid; use one of {', '.join(OBJECT_KINDS)}",
        )
    if object_kind == "edgehost":
        raise ApiError(404, "ResourceNotFound", f"edge host {object_uid!r} not found")
    cluster = _cluster_or_404(request, object_uid)
    events = [event for event in _fleet_events(request) if event.cluster_uid == cluster.uid]
    return _page(events, limit, offset, continue_token, order_by, filters)


def _fleet_events(request: Request) -> tuple[ClusterEvent, ...]:
    events: tuple[ClusterEvent, ...] = request.app.state.simulator.fleet.events
    return events


def _page(
    events: list[ClusterEvent],
    limit: int | None,
    offset: int | None,
    continue_token: str | None,
    order_by: str | None,
    filters: str | None,
) -> dict[str, Any]:
    """Filter, sort and cut one page of events into a ``v1Events`` body."""
    # NOTE: the ``fields`` parameter, which picks the fields of each item, is accepted by the
    # routes and ignored: every item carries all of its fields.
    try:
        matched = [event for event in events if matches(event, filters)]
        ordered = sort_events(matched, order_by or DEFAULT_ORDER)
        start = decode_continue(continue_token) if continue_token else max(0, offset or 0)
    except (EventQueryError, SearchError) as exc:
        raise ApiError(400, "BadRequest", str(exc)) from exc

    page_size = PAGE_SIZE if not limit or limit <= 0 else min(limit, PAGE_SIZE)
    items = ordered[start : start + page_size]
    next_offset = start + len(items)
    token = encode_continue(next_offset, len(ordered)) if next_offset < len(ordered) else ""
    return {
        "items": [event_json(event) for event in items],
        "listmeta": {
            "continue": token,
            "count": len(ordered),
            "limit": page_size,
            "offset": next_offset,
        },
    }


def matches(event: ClusterEvent, filters: str | None) -> bool:
    """Evaluate ``field=value`` conditions joined by ``AND`` and ``OR``, where AND binds tighter.

    Palette does not document the precedence of the two, so this one is a guess.
    """
    if not filters:
        return True
    return any(
        all(_condition(event, condition) for condition in alternative.split("AND"))
        for alternative in filters.split("OR")
    )


def _condition(event: ClusterEvent, condition: str) -> bool:
    field, separator, value = condition.partition("=")
    field = field.strip()
    if not separator or not field:
        raise EventQueryError(
            f"filter condition {condition!r} is not valid; write field=value, for example "
            "reason=MachinePoolScaled"
        )
    read = FILTER_FIELDS.get(field)
    if read is None:
        raise EventQueryError(
            f"filter field {field!r} is not supported; use one of {', '.join(FILTER_FIELDS)}"
        )
    return read(event) == value.strip()


def sort_events(events: Sequence[ClusterEvent], order_by: str) -> list[ClusterEvent]:
    """Sort by ``field=1`` (ascending) or ``field=-1`` (descending) terms, the first one first."""
    ordered = sorted(events, key=lambda event: event.uid)
    for term in reversed([part for part in order_by.split(",") if part.strip()]):
        field, _, direction = term.strip().partition("=")
        key = SORT_FIELDS.get(field)
        if key is None:
            raise EventQueryError(
                f"orderBy field {field!r} is not supported; use one of {', '.join(SORT_FIELDS)}"
            )
        if direction not in ("1", "-1"):
            raise EventQueryError(
                f"orderBy direction {direction!r} of {field} is not valid; use 1 (ascending) "
                "or -1 (descending)"
            )
        ordered.sort(key=key, reverse=direction == "-1")
    return ordered


def event_name(event: ClusterEvent) -> str:
    """Return the event's name in the Kubernetes form ``<object>.<hex>``."""
    return f"{event.involved_name.replace('/', '.')}.{event.uid[:16]}"


def _object_uid(event: ClusterEvent) -> str:
    identity = f"{event.cluster_uid}|{event.involved_kind}|{event.involved_name}"
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def event_json(event: ClusterEvent) -> dict[str, Any]:
    """``v1Event``."""
    created = rfc3339(event.created_at)
    return {
        "metadata": {
            "uid": event.uid,
            "name": event_name(event),
            "creationTimestamp": created,
            "lastModifiedTimestamp": created,
            "labels": {},
            "annotations": {},
        },
        "involvedObject": {
            "kind": event.involved_kind,
            "name": event.involved_name,
            "uid": _object_uid(event),
        },
        "relatedObject": {
            "kind": event.related_kind,
            "name": event.related_name,
            "uid": event.cluster_uid,
        },
        "reason": event.reason,
        "message": event.message,
        "severity": event.severity,
        "source": {"component": event.source_component or "", "host": ""},
    }
