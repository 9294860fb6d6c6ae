"""The action runner: the only caller of ``Action.apply`` and ``Action.rollback``.

``run`` records every dry run, apply and rollback as an ``ActionRunRecord`` and an audit entry.
An apply or rollback first passes ``costwarden.policy.guard.authorize``; a refusal is recorded
with the status ``refused`` and raised, and nothing is sent anywhere.

Idempotency: an apply claims the run key ``<request digest>:apply`` (a rollback
``<rollback request digest>:rollback``) by inserting its row before it calls the action. The key is
unique, so a second approval click or a concurrent duplicate finds the row already there, runs
nothing, and gets the first run's record back. A failed run renames its key to
``<key>:failed:<run id>``, which frees the key for a later retry of the same change. The retry
reads the current state again, so a change that landed before the failure is caught as stale
state.

Crash safety: the external call happens between two commits. The first commits the claimed row
with the status ``running``; the second commits the outcome. A crash in between leaves a
``running`` row that keeps the key claimed, so nothing runs the change again by itself;
``costwarden actions runs --status running`` lists such rows with their start time, and an
operator checks the resource before marking the run (``costwarden actions resolve``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from costwarden.actions import load_builtin
from costwarden.actions.context import ActionContext
from costwarden.actions.registry import ACTIONS, ActionOutcome
from costwarden.audit import trail
from costwarden.domain.governance import ActionRequest, ActionScope, ApprovalVote, PolicyDecision
from costwarden.errors import (
    ActionError,
    ActionNotAllowedError,
    AuditIntegrityError,
    CostwardenError,
    GovernanceError,
    NotFoundError,
)
from costwarden.policy.guard import GuardRules, authorize
from costwarden.store.tables import ActionRunRecord, AuditEntryRecord

logger = logging.getLogger(__name__)

load_builtin()

RunMode = Literal["dry_run", "apply", "rollback"]
RUN_MODES: tuple[RunMode, ...] = ("dry_run", "apply", "rollback")
STATUSES = ("running", "succeeded", "failed", "refused")
"""``running`` until the outcome is committed; a row left ``running`` marks a crash."""

SYSTEM_ACTOR = "costwarden"


def run_key(request: ActionRequest, mode: RunMode) -> str:
    """Return the unique key of the apply or rollback of ``request``."""
    return f"{request.digest}:{mode}"


def run(
    session: Session,
    request: ActionRequest,
    decision: PolicyDecision,
    votes: Sequence[ApprovalVote],
    *,
    mode: RunMode,
    context: ActionContext,
    now: datetime,
    request_id: str | None = None,
    actor: str = SYSTEM_ACTOR,
) -> ActionRunRecord:
    """Dry-run, apply or roll back ``request`` and return its run record.

    The runner commits ``session`` itself (twice for an apply or rollback), so pass a session
    that is not inside ``session.begin()``. ``actor`` is who triggered the run, for the audit
    entry. Raises ``ActionNotAllowedError`` when the guard refuses, and re-raises the action's
    error after recording a failed run. A dry run needs no authorisation.

    When the apply or rollback of ``request`` is already recorded, nothing runs and the recorded
    run comes back: ``succeeded``, or ``running`` while another caller is applying the same
    change right now (or a crash left the row). A ``running`` result is not a failure, so callers
    report it as in progress (see ``in_progress``) and leave the approval request open.
    """
    if mode not in RUN_MODES:
        raise ValueError(f"run mode {mode!r} is invalid; use one of {', '.join(RUN_MODES)}")
    if (mode == "rollback") != (request.rollback_of is not None):
        raise ValueError(
            "a rollback needs a request with rollback_of set to the apply run it undoes, and "
            "only a rollback may have one"
        )
    spec = ACTIONS.spec(request.action)
    action = spec.factory()
    if mode == "dry_run":
        return _dry_run(session, action, request, context, now, request_id, actor)

    existing = find_by_key(session, run_key(request, mode))
    if existing is not None:
        logger.info(
            "%s of %s already recorded as run %s (%s, started %s); not running it again",
            mode,
            request.action,
            existing.id,
            existing.status,
            existing.started_at,
        )
        return existing

    undo: Mapping[str, Any] = {}
    try:
        _authorize(request, decision, votes, context, now)
        if mode == "rollback":
            undo = _undo_of(session, request)
    except GovernanceError as exc:
        _record_refusal(session, request, mode, exc, context, now, request_id, actor)
        raise

    record, claimed = _claim(session, request, mode, context, now, request_id)
    if not claimed:
        return record

    try:
        if mode == "apply":
            outcome = action.apply(request, context)
        else:
            outcome = action.rollback(request, undo, context)
    except CostwardenError as exc:
        _finish_failed(session, record, request, mode, exc, context, actor)
        raise
    _finish(session, record, request, mode, outcome, context, actor)
    return record


def in_progress(record: ActionRunRecord) -> bool:
    """Tell whether ``run`` returned another caller's apply or rollback that has not finished.

    A crash also leaves a row ``running``; ``costwarden actions resolve`` closes such rows.
    """
    return record.status == "running"


def _dry_run(
    session: Session,
    action: Any,
    request: ActionRequest,
    context: ActionContext,
    now: datetime,
    request_id: str | None,
    actor: str,
) -> ActionRunRecord:
    run_id = str(uuid.uuid4())
    record = _new_record(
        run_id,
        f"{run_key(request, 'dry_run')}:{run_id}",
        request,
        "dry_run",
        context,
        now,
        request_id,
    )
    try:
        outcome = action.dry_run(request, context)
    except CostwardenError as exc:
        status = "refused" if isinstance(exc, GovernanceError) else "failed"
        _fill_error(record, status, exc, context)
        session.add(record)
        _audit(
            session, record, request, actor, f"dry run of {request.action} {status}: {exc}", context
        )
        session.commit()
        raise
    _fill_outcome(record, outcome, context)
    session.add(record)
    _audit(
        session, record, request, actor, f"dry run of {request.action}: {outcome.summary}", context
    )
    session.commit()
    return record


def _authorize(
    request: ActionRequest,
    decision: PolicyDecision,
    votes: Sequence[ApprovalVote],
    context: ActionContext,
    now: datetime,
) -> None:
    settings = context.settings
    if not settings.actions.enabled:
        raise ActionNotAllowedError(
            f"{request.action}: actions.enabled is false, so approved changes are recorded but "
            "not run; set actions.enabled to true to run them"
        )
    authorize(
        decision,
        request,
        votes,
        now=now,
        approval_ttl=timedelta(hours=settings.approvals.ttl_hours),
        rules=GuardRules.from_settings(settings.policy, settings.approvals),
    )


def _undo_of(session: Session, request: ActionRequest) -> Mapping[str, Any]:
    """Return the undo data of the succeeded apply run that ``request.rollback_of`` names."""
    applied = session.get(ActionRunRecord, request.rollback_of)
    if applied is None or applied.mode != "apply" or applied.status != "succeeded":
        state = (
            "is not recorded" if applied is None
            else f"has mode {applied.mode} and status {applied.status}"
        )
        raise ActionNotAllowedError(
            f"{request.action}: run {request.rollback_of} {state}, so there is nothing to roll "
            "back; only a succeeded apply can be rolled back"
        )
    same_change = (
        applied.action == request.action
        and _place(applied.target or {}) == _place(request.scope.as_dict())
        and dict(applied.params or {}) == dict(request.params)
    )
    if not same_change:
        raise ActionNotAllowedError(
            f"{request.action}: run {applied.id} applied {applied.action} with other parameters "
            "or on another scope than this rollback names; nothing is rolled back"
        )
    earlier = rollback_of(session, applied.id)
    if earlier is not None:
        raise ActionNotAllowedError(
            f"{request.action}: run {applied.id} was already rolled back by run {earlier.id} "
            f"({earlier.status})"
        )
    return dict((applied.result or {}).get("undo") or {})


def rollback_of(session: Session, applied_run_id: str) -> ActionRunRecord | None:
    """Return the succeeded or running rollback of an apply run, or None.

    Rollback requests made under other labels have other digests and run keys, so this reads
    the runs' ``rollback_of`` link instead.
    """
    return session.scalars(
        select(ActionRunRecord)
        .where(
            ActionRunRecord.rollback_of == applied_run_id,
            ActionRunRecord.mode == "rollback",
            ActionRunRecord.status.in_(("succeeded", "running")),
        )
        .order_by(ActionRunRecord.started_at)
        .limit(1)
    ).first()


def _place(target: Mapping[str, Any]) -> dict[str, Any]:
    """Return what names a resource in a scope: everything but its labels, which may change."""
    return {key: value for key, value in target.items() if key != "labels"}


def applied_request(session: Session, record: ActionRunRecord) -> ActionRequest:
    """Rebuild the action request that the apply run ``record`` ran, from its audit entry.

    The entry records the subject and the expected state, which the run row lacks. The rebuilt
    request must have the digest in the run's key, so an edited entry or row is caught. Raises
    ``ActionNotAllowedError`` when ``record`` is not a succeeded apply, and
    ``AuditIntegrityError`` when the entry is missing or disagrees with the row.
    """
    if record.mode != "apply" or record.status != "succeeded":
        raise ActionNotAllowedError(
            f"run {record.id} has mode {record.mode} and status {record.status}; only a succeeded "
            "apply can be rolled back"
        )
    if not (record.result or {}).get("undo"):
        raise ActionNotAllowedError(
            f"run {record.id} recorded no undo data (it was resolved by hand or changed "
            "nothing); undo it in Palette by hand"
        )
    entry = session.scalars(
        select(AuditEntryRecord)
        .where(
            AuditEntryRecord.tenant == record.tenant,
            AuditEntryRecord.kind == "action",
            AuditEntryRecord.detail["run_id"].as_string() == record.id,
            AuditEntryRecord.detail["action"].as_string() == record.action,
        )
        .order_by(AuditEntryRecord.seq.desc())
        .limit(1)
    ).first()
    if entry is None:
        raise AuditIntegrityError(
            f"run {record.id} has no audit entry, so the change it made cannot be rebuilt; run "
            "'costwarden audit verify'"
        )
    detail = entry.detail or {}
    request = ActionRequest(
        action=str(detail.get("action")),
        scope=ActionScope.from_dict(detail.get("scope") or {}),
        params=dict(detail.get("params") or {}),
        subject_kind="alert" if detail.get("subject_kind") == "alert" else "recommendation",
        subject_id=str(detail.get("subject_id")),
        expected=dict(detail.get("expected") or {}),
    )
    if record.run_key != run_key(request, "apply"):
        raise AuditIntegrityError(
            f"run {record.id}: the change in its audit entry does not match the run's key, so "
            "the row or the entry was edited; nothing is rolled back. Run 'costwarden audit "
            "verify'"
        )
    return request


def _claim(
    session: Session,
    request: ActionRequest,
    mode: RunMode,
    context: ActionContext,
    now: datetime,
    request_id: str | None,
) -> tuple[ActionRunRecord, bool]:
    """Insert the ``running`` row under the run key, commit it, and return it with True.

    When another caller inserted the key first, the insert fails on the unique constraint and
    that caller's row is returned with False. On PostgreSQL the insert waits for the other
    transaction to finish first.
    """
    key = run_key(request, mode)
    record = _new_record(str(uuid.uuid4()), key, request, mode, context, now, request_id)
    session.add(record)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        winner = find_by_key(session, key)
        if winner is None:
            raise
        logger.info(
            "%s of %s was claimed concurrently by run %s (%s); not running it again",
            mode,
            request.action,
            winner.id,
            winner.status,
        )
        return winner, False
    logger.info("%s of %s started as run %s", mode, request.action, record.id)
    return record, True


def _finish(
    session: Session,
    record: ActionRunRecord,
    request: ActionRequest,
    mode: RunMode,
    outcome: ActionOutcome,
    context: ActionContext,
    actor: str,
) -> None:
    _fill_outcome(record, outcome, context)
    kind = "rollback" if mode == "rollback" else "action"
    _audit(
        session,
        record,
        request,
        actor,
        f"{request.action} {mode}: {outcome.summary}",
        context,
        kind,
    )
    session.commit()
    logger.info("run %s (%s of %s) succeeded: %s", record.id, mode, request.action, outcome.summary)


def _finish_failed(
    session: Session,
    record: ActionRunRecord,
    request: ActionRequest,
    mode: RunMode,
    exc: CostwardenError,
    context: ActionContext,
    actor: str,
) -> None:
    status = "refused" if isinstance(exc, GovernanceError) else "failed"
    _fill_error(record, status, exc, context)
    record.run_key = f"{record.run_key}:{status}:{record.id}"
    kind = "rollback" if mode == "rollback" else "action"
    _audit(
        session, record, request, actor, f"{request.action} {mode} {status}: {exc}", context, kind
    )
    session.commit()
    logger.error("run %s (%s of %s) %s: %s", record.id, mode, request.action, status, exc)


def _record_refusal(
    session: Session,
    request: ActionRequest,
    mode: RunMode,
    exc: CostwardenError,
    context: ActionContext,
    now: datetime,
    request_id: str | None,
    actor: str,
) -> None:
    run_id = str(uuid.uuid4())
    key = f"{run_key(request, mode)}:refused:{run_id}"
    record = _new_record(run_id, key, request, mode, context, now, request_id)
    _fill_error(record, "refused", exc, context)
    session.add(record)
    kind = "rollback" if mode == "rollback" else "action"
    _audit(
        session, record, request, actor, f"{request.action} {mode} refused: {exc}", context, kind
    )
    session.commit()
    logger.warning("run %s (%s of %s) refused: %s", run_id, mode, request.action, exc)


def _new_record(
    run_id: str,
    key: str,
    request: ActionRequest,
    mode: RunMode,
    context: ActionContext,
    now: datetime,
    request_id: str | None,
) -> ActionRunRecord:
    return ActionRunRecord(
        id=run_id,
        tenant=context.tenant,
        run_key=key,
        request_id=request_id,
        action=request.action,
        mode=mode,
        target=request.scope.as_dict(),
        params=dict(request.params),
        status="running",
        before=None,
        result=None,
        error=None,
        started_at=now,
        finished_at=None,
        rollback_of=request.rollback_of,
    )


def _fill_outcome(record: ActionRunRecord, outcome: ActionOutcome, context: ActionContext) -> None:
    record.status = "succeeded"
    record.before = dict(outcome.before)
    record.result = {
        "summary": outcome.summary,
        "after": dict(outcome.after),
        "undo": dict(outcome.undo),
        "links": dict(outcome.links),
        "changed": outcome.changed,
    }
    record.finished_at = context.clock()


def _fill_error(
    record: ActionRunRecord, status: str, exc: CostwardenError, context: ActionContext
) -> None:
    record.status = status
    record.error = f"{type(exc).__name__}: {exc}"
    record.finished_at = context.clock()


def _audit(
    session: Session,
    record: ActionRunRecord,
    request: ActionRequest,
    actor: str,
    summary: str,
    context: ActionContext,
    kind: str = "action",
) -> None:
    detail = {
        "run_id": record.id,
        "mode": record.mode,
        "status": record.status,
        "action": request.action,
        "digest": request.digest,
        "subject_kind": request.subject_kind,
        "subject_id": request.subject_id,
        "scope": request.scope.as_dict(),
        "params": dict(request.params),
        "expected": dict(request.expected),
        "before": record.before,
        "result": record.result,
        "error": record.error,
    }
    trail.append(
        session,
        tenant=context.tenant,
        kind=kind,
        subject=f"{request.subject_kind}:{request.subject_id}",
        actor=actor,
        summary=summary,
        detail=detail,
        recorded_at=context.clock(),
    )


def find_by_key(session: Session, key: str) -> ActionRunRecord | None:
    return session.scalars(select(ActionRunRecord).where(ActionRunRecord.run_key == key)).first()


def find_run(session: Session, tenant: str, run_id: str) -> ActionRunRecord:
    """Return the run with this id, or a unique id prefix; raise ``NotFoundError`` otherwise."""
    rows = session.scalars(
        select(ActionRunRecord)
        .where(ActionRunRecord.tenant == tenant, ActionRunRecord.id.startswith(run_id))
        .limit(2)
    ).all()
    if len(rows) != 1:
        problem = "matches several runs; give more characters" if rows else "not found"
        raise NotFoundError(f"action run {run_id!r} {problem}")
    return rows[0]


def list_runs(
    session: Session, tenant: str, *, status: str | None = None, limit: int = 50
) -> list[ActionRunRecord]:
    """Return a tenant's runs, newest first, optionally only those in ``status``."""
    query = select(ActionRunRecord).where(ActionRunRecord.tenant == tenant)
    if status is not None:
        query = query.where(ActionRunRecord.status == status)
    query = query.order_by(ActionRunRecord.started_at.desc(), ActionRunRecord.id).limit(limit)
    return list(session.scalars(query))


def resolve_stuck(
    session: Session,
    tenant: str,
    run_id: str,
    *,
    status: Literal["succeeded", "failed"],
    note: str,
    actor: str,
    now: datetime,
) -> ActionRunRecord:
    """Mark a run left ``running`` by a crash as succeeded or failed, after a human checked.

    ``failed`` frees the run key, so the change may run again. The decision is audited.
    """
    record = find_run(session, tenant, run_id)
    if record.status != "running":
        raise ActionError(f"run {record.id} is {record.status}, not running; nothing to resolve")
    record.status = status
    record.error = None if status == "succeeded" else f"resolved by {actor}: {note}"
    record.result = {**(record.result or {}), "resolution": {"by": actor, "note": note}}
    record.finished_at = now
    if status == "failed":
        record.run_key = f"{record.run_key}:failed:{record.id}"
    trail.append(
        session,
        tenant=tenant,
        kind="rollback" if record.mode == "rollback" else "action",
        subject=f"run:{record.id}",
        actor=actor,
        summary=f"run {record.id} ({record.mode} of {record.action}) resolved as {status}: {note}",
        detail={"run_id": record.id, "status": status, "note": note},
        recorded_at=now,
    )
    session.commit()
    return record


def run_json(record: ActionRunRecord) -> dict[str, Any]:
    """Return a run as plain JSON values, for the CLI and the API."""
    return {
        "id": record.id,
        "tenant": record.tenant,
        "run_key": record.run_key,
        "request_id": record.request_id,
        "action": record.action,
        "mode": record.mode,
        "status": record.status,
        "target": record.target,
        "params": record.params,
        "before": record.before,
        "result": record.result,
        "error": record.error,
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "rollback_of": record.rollback_of,
    }


__all__ = [
    "RUN_MODES",
    "STATUSES",
    "RunMode",
    "find_by_key",
    "find_run",
    "in_progress",
    "list_runs",
    "resolve_stuck",
    "run",
    "run_json",
    "run_key",
]
