"""Approval requests: list and read them, and approve or reject them as the calling API user.

The actor of a decision is the caller's name: the API key's ``name`` or the OIDC token's user
name. Deciding needs the admin role, and the actor must belong to an approver group of the
request when its policy names groups (``approvals.groups``). ``costwarden.approvals.decide``
records the decision and runs the action once the required approvals are in.

Status codes of a decision: 200 when it was recorded (the body says whether the action ran),
403 when it was refused, 404 for an unknown request, and 409 when it changed nothing (this
caller already decided, or the request is no longer pending) or when the resource changed
since the request was made, or when the labels or policies changed since the request was
opened (``request_superseded``). A run that fails for another reason returns 502.
``POST /approvals/{id}/retry`` runs a ``failed`` request again with its recorded votes.
``POST /actions/runs/{run_id}/rollback`` asks for the rollback of an applied change: auto mode
outside production runs it at once, otherwise it opens an approval request.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from costwarden.actions.runner import run_json
from costwarden.approvals import decide, find_request, request_json
from costwarden.approvals.decisions import DecisionOutcome, decision_by, retry
from costwarden.approvals.requests import (
    audit_entries_of,
    decision_json,
    decisions_of,
    page_requests,
    runs_of,
)
from costwarden.approvals.rollback import request_rollback
from costwarden.domain.governance import Vote
from costwarden.errors import ActionNotAllowedError, ApprovalError, StaleStateError
from costwarden.service.api.deps import Admin, PageQuery, Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute, ErrorDetail, json_response
from costwarden.service.api.models import Page
from costwarden.service.auth import Caller
from costwarden.service.state import ServiceState

logger = logging.getLogger(__name__)

router = APIRouter(tags=["approvals"], route_class=ApiRoute, responses=ERROR_RESPONSES)

ApprovalStatus = Literal[
    "pending", "approved", "executed", "failed", "rejected", "expired", "superseded"
]
"""The values of ``costwarden.approvals.STATUSES``."""
CLOSED = ("expired", "superseded")
"""Statuses in which ``decide`` refuses with ApprovalError although nobody decided."""

MAX_REASON = 2000


class ApprovalDecision(BaseModel):
    decision: Literal["approve", "reject"]
    actor: str = Field(description="Who decided: API key name, OIDC user, Slack user id, ...")
    groups: list[str] = Field(description="Approver groups of the actor when it decided.")
    channel: str = Field(description="api, cli, link, slack:CHANNEL or jira:CHANNEL.")
    decided_at: str
    detail: dict[str, Any] = Field(description="Reason, client and channel facts.")


class ApprovalSummary(BaseModel):
    id: str
    tenant: str
    status: ApprovalStatus
    subject_kind: Literal["recommendation", "alert"]
    subject_id: str = Field(description="Recommendation or alert id.")
    policy: str | None
    action: str = Field(description="Registered action, e.g. palette.resize_pool.")
    target: dict[str, Any] = Field(description="The scope the action changes.")
    params: dict[str, Any]
    digest: str = Field(description="SHA-256 of the exact change; tokens and votes bind to it.")
    production: bool
    required_approvals: int = Field(description="Approvals from different people it needs.")
    approver_groups: list[str] = Field(description="Groups whose members may decide; empty: any.")
    created_at: str
    expires_at: str
    decided_at: str | None
    evidence: dict[str, Any] = Field(
        description="Savings estimate, currency, data window, dry run and expected state."
    )
    rollback_of: str | None = Field(
        None, description="The apply run this request rolls back; null for an apply request."
    )


class AuditReference(BaseModel):
    seq: int = Field(description="Read it with GET /api/v1/audit/entries/{seq}.")
    id: str
    kind: str
    time: str
    summary: str


class ApprovalDetail(ApprovalSummary):
    decisions: list[ApprovalDecision] = Field(description="Every decision, oldest first.")
    runs: list[dict[str, Any]] = Field(description="Action runs of the request, oldest first.")
    audit_entries: list[AuditReference] = Field(
        description="Audit entries about the request and its runs, oldest first."
    )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        None, max_length=MAX_REASON, description="Why; stored with the decision and audited."
    )


class DecisionResult(BaseModel):
    outcome: Literal["recorded", "approved", "executed", "failed", "rejected"] = Field(
        description="recorded: more approvals needed; approved: complete but actions.enabled "
        "is false; executed or failed: the run's result; rejected: the request is closed."
    )
    message: str
    run_id: str | None = None
    request: ApprovalDetail


class DecisionProblem(BaseModel):
    error: ErrorDetail
    request: ApprovalSummary | None = Field(None, description="The request as it is now.")
    decision: ApprovalDecision | None = Field(
        None, description="The caller's earlier decision, when that is why nothing changed."
    )


@router.get("/approvals", response_model=Page[ApprovalSummary], summary="List approval requests")
def get_approvals(
    page: PageQuery,
    state: State,
    _: Reader,
    status: Annotated[ApprovalStatus | None, Query(description="Only requests in this status.")]
    = None,
    subject: Annotated[
        str | None,
        Query(description="Recommendation or alert id, or KIND:ID (recommendation:ID)."),
    ] = None,
    action: Annotated[str | None, Query(description="Only requests of this action.")] = None,
) -> Response:
    with state.store.transaction() as session:
        found = page_requests(
            session, state.settings.service.tenant, status=status, subject=subject,
            action=action, limit=page.limit, offset=page.offset,
        )
        items = [ApprovalSummary(**request_json(record)) for record in found.items]
    return json_response(Page(items=items, total=found.total, limit=page.limit, offset=page.offset))


@router.get(
    "/approvals/{request_id}",
    response_model=ApprovalDetail,
    summary="Read an approval request",
    description="The request with its decisions, action runs and audit entries. `request_id` "
    "may be a unique prefix of the id.",
    responses={404: {"description": "No such request, or the prefix matches several."}},
)
def get_approval(request_id: str, state: State, _: Reader) -> Response:
    return json_response(_detail(state, request_id))


@router.post(
    "/approvals/{request_id}/approve",
    response_model=DecisionResult,
    summary="Approve a request",
    description="Record the caller's approval. The action runs once the required approvals "
    "from different people are in, and the production guard checks them again first.",
    responses={
        403: {"model": DecisionProblem, "description": "Refused: the caller is outside the "
              "approver groups, or the guard did not allow the run."},
        404: {"description": "No such request."},
        409: {"model": DecisionProblem, "description": "Nothing changed: the caller already "
              "decided, the request is no longer pending, or the resource changed."},
        502: {"model": DecisionProblem, "description": "The approved change failed."},
    },
)
def post_approve(
    request_id: str, state: State, caller: Admin, body: DecisionBody | None = None
) -> Response:
    return _decide(state, caller, request_id, "approve", body)


@router.post(
    "/approvals/{request_id}/reject",
    response_model=DecisionResult,
    summary="Reject a request",
    description="Record the caller's rejection; the request closes and nothing runs.",
    responses={
        403: {"model": DecisionProblem, "description": "Refused: outside the approver groups."},
        404: {"description": "No such request."},
        409: {"model": DecisionProblem, "description": "Nothing changed: the caller already "
              "decided, or the request is no longer pending."},
    },
)
def post_reject(
    request_id: str, state: State, caller: Admin, body: DecisionBody | None = None
) -> Response:
    return _decide(state, caller, request_id, "reject", body)


@router.post(
    "/approvals/{request_id}/retry",
    response_model=DecisionResult,
    summary="Run a failed request again",
    description="Run the action of a failed request again with its recorded approvals, for "
    "example after a Palette outage. Every check of a first run applies again, and approvals "
    "older than approvals.ttl_hours no longer count.",
    responses={
        403: {"model": DecisionProblem, "description": "Refused: the request is not failed, it "
              "expired, or the guard did not allow the run."},
        404: {"description": "No such request."},
        409: {"model": DecisionProblem, "description": "The resource, the labels or the "
              "policies changed since the request."},
        502: {"model": DecisionProblem, "description": "The change failed again."},
    },
)
def post_retry(request_id: str, state: State, caller: Admin) -> Response:
    tenant = state.settings.service.tenant
    with state.store.transaction() as session:
        record_id = find_request(session, tenant, request_id).id
    try:
        outcome = retry(state.store, state.settings, request_id=record_id, actor=caller.name,
                        tenant=tenant)
    except ApprovalError as exc:
        return _problem(403, "retry_refused", str(exc), _summary(state, record_id))

    logger.info("API caller %s retried request %s: %s", caller.name, record_id, outcome.message)
    if outcome.status in ("failed", "superseded"):
        return _failed(state, record_id, outcome)
    result = DecisionResult(
        outcome=outcome.status, message=outcome.message, run_id=outcome.run_id,
        request=_detail(state, record_id),
    )
    return json_response(result)


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        None, max_length=MAX_REASON, description="Why the change is rolled back; audited."
    )


class RollbackResult(BaseModel):
    outcome: Literal["requested", "executed", "failed", "running"] = Field(
        description="requested: an approval request waits for approvals; executed, failed or "
        "running: auto mode ran the rollback at once."
    )
    message: str
    run_id: str | None = Field(None, description="The rollback run, when auto mode ran it.")
    request: ApprovalDetail | None = Field(None, description="The rollback's approval request.")


@router.post(
    "/actions/runs/{run_id}/rollback",
    response_model=RollbackResult,
    status_code=202,
    summary="Roll back an applied change",
    description="Roll back a succeeded apply run under the policies loaded now. Outside "
    "production in auto mode the rollback runs at once (200); otherwise an approval request is "
    "opened or the open one is returned (202), and people decide it like any other request.",
    responses={
        200: {"model": RollbackResult, "description": "Auto mode ran the rollback."},
        403: {"description": "The run cannot be rolled back (not a succeeded apply, already "
              "rolled back) or the policies decide monitor."},
        404: {"description": "No such run."},
        502: {"description": "The rollback ran in auto mode and failed."},
    },
)
def post_rollback(
    run_id: str, state: State, caller: Admin, body: RollbackBody | None = None
) -> Response:
    outcome = request_rollback(
        state.store, state.settings, run_id=run_id, actor=caller.name,
        reason=body.reason if body is not None else None,
        tenant=state.settings.service.tenant,
    )
    logger.info("API caller %s: rollback of run %s: %s", caller.name, run_id, outcome.message)
    detail = _detail(state, outcome.request_id) if outcome.request_id else None
    result = RollbackResult(
        outcome=outcome.status, message=outcome.message, run_id=outcome.run_id, request=detail
    )
    return json_response(result, 202 if outcome.status == "requested" else 200)


def _decide(
    state: ServiceState, caller: Caller, request_id: str, vote: Vote, body: DecisionBody | None
) -> Response:
    tenant = state.settings.service.tenant
    with state.store.transaction() as session:
        record_id = find_request(session, tenant, request_id).id

    detail: dict[str, Any] = {"via": "api", "auth": caller.method}
    if body is not None and body.reason:
        detail["reason"] = body.reason
    try:
        outcome = decide(
            state.store, state.settings, request_id=record_id, vote=vote, actor=caller.name,
            channel="api", detail=detail, tenant=tenant,
        )
    except ApprovalError as exc:
        return _refused(state, record_id, exc)

    logger.info("API caller %s: %s of request %s: %s", caller.name, vote, record_id,
                outcome.message)
    if outcome.status == "unchanged":
        return _unchanged(state, record_id, caller, outcome)
    if outcome.status in ("failed", "superseded"):
        return _failed(state, record_id, outcome)
    result = DecisionResult(
        outcome=outcome.status, message=outcome.message, run_id=outcome.run_id,
        request=_detail(state, record_id),
    )
    return json_response(result)


def _refused(state: ServiceState, record_id: str, exc: ApprovalError) -> Response:
    """Return 409 for a request that expired or was superseded, else 403."""
    summary = _summary(state, record_id)
    if summary.status in CLOSED:
        return _problem(409, "request_closed", str(exc), summary)
    return _problem(403, "approval_refused", str(exc), summary)


def _unchanged(
    state: ServiceState, record_id: str, caller: Caller, outcome: DecisionOutcome
) -> Response:
    with state.store.transaction() as session:
        record = find_request(session, state.settings.service.tenant, record_id)
        summary = ApprovalSummary(**request_json(record))
        earlier = decision_by(session, record, caller.name) if record.status == "pending" else None
        decision = ApprovalDecision(**decision_json(earlier)) if earlier is not None else None

    if decision is not None:
        message = (
            f"{caller.name} already decided approval request {record_id} ({decision.decision} "
            f"at {decision.decided_at}); a second decision by the same person does not count"
        )
        return _problem(409, "already_decided", message, summary, decision)
    codes = {"executed": "already_executed", "approved": "in_progress", "pending": "in_progress"}
    code = codes.get(summary.status, "request_closed")
    return _problem(409, code, outcome.message, summary)


def _failed(state: ServiceState, record_id: str, outcome: DecisionOutcome) -> Response:
    """Map the run failure of an approval that was recorded to 403, 409 or 502."""
    summary = _summary(state, record_id)
    message = f"the decision is recorded, but the action did not run: {outcome.message}"
    if outcome.status == "superseded":
        return _problem(409, "request_superseded", message, summary)
    if isinstance(outcome.error, ActionNotAllowedError):
        return _problem(403, "action_not_allowed", message, summary)
    if isinstance(outcome.error, StaleStateError):
        return _problem(409, "stale_state", message, summary)
    return _problem(502, "action_failed", message, summary)


def _problem(
    status: int,
    code: str,
    message: str,
    request: ApprovalSummary | None,
    decision: ApprovalDecision | None = None,
) -> JSONResponse:
    body = DecisionProblem(
        error=ErrorDetail(code=code, message=message), request=request, decision=decision
    )
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)


def _summary(state: ServiceState, record_id: str) -> ApprovalSummary:
    with state.store.transaction() as session:
        record = find_request(session, state.settings.service.tenant, record_id)
        return ApprovalSummary(**request_json(record))


def _detail(state: ServiceState, request_id: str) -> ApprovalDetail:
    with state.store.transaction() as session:
        record = find_request(session, state.settings.service.tenant, request_id)
        runs = runs_of(session, record)
        entries = audit_entries_of(session, record, [run.id for run in runs])
        return ApprovalDetail(
            **request_json(record, decisions_of(session, record.id)),
            runs=[run_json(run) for run in runs],
            audit_entries=[
                AuditReference(
                    seq=entry.seq, id=entry.id, kind=entry.kind,
                    time=entry.recorded_at.isoformat(), summary=entry.summary,
                )
                for entry in entries
            ],
        )

