"""The audit trail of the service's tenant: list and read entries, read the head, verify."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from costwarden.audit import Anchor, entry_json, find_entry, head, list_entries, verify
from costwarden.audit.trail import AuditKind
from costwarden.errors import ApiError, ConfigError
from costwarden.service.api.deps import PageQuery, Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute, json_response
from costwarden.service.api.models import Page, UtcDateTime

router = APIRouter(tags=["audit"], route_class=ApiRoute, responses=ERROR_RESPONSES)


class AuditEntry(BaseModel):
    seq: int = Field(description="Position in the database; values may skip, links fix order.")
    id: str
    tenant: str
    time: str = Field(description="Recording time in UTC with microseconds, as hashed.")
    kind: AuditKind
    subject: str = Field(description="What the entry is about, e.g. alert:ID or batch:ID.")
    actor: str = Field(description="Who caused it: a person, an API key name or costwarden.")
    summary: str
    detail: dict[str, Any] = Field(description="Evidence: window, model, parameters and more.")
    prev_hash: str = Field(description="entry_hash of the previous entry (SHA-256, hex).")
    entry_hash: str = Field(description="SHA-256 over prev_hash and the canonical JSON body.")


class AuditHead(BaseModel):
    tenant: str
    seq: int | None = Field(description="Newest entry, or the retention checkpoint; null if none.")
    hash: str
    anchor: str = Field(description="SEQ:HASH to keep outside the database and verify later.")


class AuditProblem(BaseModel):
    seq: int
    kind: str = Field(description="edited, link, checkpoint or anchor.")
    message: str


class AuditVerification(BaseModel):
    tenant: str
    ok: bool
    entries: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    checkpoint_seq: int | None = Field(description="Last entry removed by retention.")
    anchors_checked: int
    anchors_skipped: list[str] = Field(description="Anchors older than the retention checkpoint.")
    problems: list[AuditProblem]


@router.get("/audit/entries", response_model=Page[AuditEntry], summary="List audit entries")
def get_entries(
    page: PageQuery,
    state: State,
    _: Reader,
    kind: Annotated[list[AuditKind] | None, Query(description="Only these kinds.")] = None,
    subject: Annotated[str | None, Query(description="Only entries about this subject.")] = None,
    actor: Annotated[str | None, Query(description="Only entries by this actor.")] = None,
    since: Annotated[UtcDateTime | None, Query(description="Recorded at or after.")] = None,
    until: Annotated[UtcDateTime | None, Query(description="Recorded before.")] = None,
) -> Response:
    with state.store.transaction() as session:
        found = list_entries(
            session, state.settings.service.tenant, kinds=kind or (), subject=subject,
            actor=actor, since=since, until=until, limit=page.limit, offset=page.offset,
        )
        items = [AuditEntry(**entry_json(record)) for record in found.items]
    return json_response(Page(items=items, total=found.total, limit=page.limit, offset=page.offset))


@router.get(
    "/audit/entries/{seq}",
    response_model=AuditEntry,
    summary="Read an audit entry",
    responses={404: {"description": "No such entry."}},
)
def get_entry(seq: int, state: State, _: Reader) -> AuditEntry:
    with state.store.transaction() as session:
        return AuditEntry(**entry_json(find_entry(session, state.settings.service.tenant, seq)))


@router.get("/audit/head", response_model=AuditHead, summary="Read the head of the audit trail")
def get_head(state: State, _: Reader) -> AuditHead:
    with state.store.transaction() as session:
        current = head(session, state.settings.service.tenant)
    return AuditHead(
        tenant=current.tenant, seq=current.seq, hash=current.entry_hash, anchor=current.anchor()
    )


@router.get(
    "/audit/verify",
    response_model=AuditVerification,
    summary="Verify the audit trail",
    description="Recompute every hash and link of the tenant's trail and check the anchors "
    "given as `expect_head=SEQ:HASH`. A trail that does not verify is still a 200 response "
    "with `ok: false` and the problems, first bad entry first.",
)
def get_verify(
    state: State,
    _: Reader,
    expect_head: Annotated[
        list[str] | None, Query(description="Anchors SEQ:HASH from GET /audit/head.")
    ] = None,
) -> AuditVerification:
    try:
        anchors = [Anchor.parse(text, "expect_head") for text in expect_head or ()]
    except ConfigError as exc:
        raise ApiError(str(exc)) from exc
    with state.store.transaction() as session:
        report = verify(session, state.settings.service.tenant, anchors=anchors)
    return AuditVerification(**report.as_dict())
