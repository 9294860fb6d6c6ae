"""Rollbacks: undoing a succeeded apply run under the same policies and approvals as the apply.

``request_rollback`` rebuilds the change an apply run made from its audit entry and turns it
into a rollback request (``ActionRequest.rollback_of`` names the run). A rollback has a digest
of its own, so approvals of the apply never count for it. The policies loaded now decide it
with the scope's current labels:

- ``monitor``: nothing is rolled back, because costwarden does not change that scope;
- ``auto`` outside production: the runner rolls the change back at once;
- ``approve``, and every production scope: an approval request is opened, and people decide
  it like any other request (CLI, API, Slack, Teams, email links, Jira, ServiceNow).
  ``decisions.execute`` then runs the rollback through the runner and the production guard.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from costwarden.actions import runner
from costwarden.actions.context import ActionContext, ContextFactory, default_context
from costwarden.approvals.recheck import live_labels, stored_labels
from costwarden.approvals.requests import cluster_facts, open_request, reopen_request
from costwarden.approvals.stage import notice_approval
from costwarden.config import Settings
from costwarden.domain.governance import ActionRequest, PolicyDecision
from costwarden.errors import ActionNotAllowedError
from costwarden.notify.notice import Notice
from costwarden.notify.outbox import enqueue_notices
from costwarden.policy import load_configured_policies
from costwarden.store import Store
from costwarden.store.tables import ActionRunRecord, ApprovalRequestRecord

logger = logging.getLogger(__name__)

RollbackStatus = Literal["requested", "executed", "failed", "running"]

ROLLBACK_SEVERITY = "warning"
"""Severity of a rollback's notice: at the default ``notify.noise.digest_below`` it is sent at
once rather than held for the daily digest."""

CLOSED_STATUSES = ("failed", "superseded", "expired")
"""Statuses of an earlier request for the same rollback that asking again reopens. A rejected
rollback stays rejected, so asking again cannot clear the reject."""


@dataclass(frozen=True, slots=True)
class RollbackOutcome:
    """The result of ``request_rollback``.

    ``requested`` means the approval request ``request_id`` waits for approvals. It is a new
    request or the one an earlier call opened. ``executed``, ``failed`` and ``running`` mean
    that auto mode ran the rollback as run ``run_id``.
    """

    status: RollbackStatus
    message: str
    request_id: str | None = None
    run_id: str | None = None


def request_rollback(
    store: Store,
    settings: Settings,
    *,
    run_id: str,
    actor: str,
    reason: str | None = None,
    now: datetime | None = None,
    tenant: str | None = None,
    context_factory: ContextFactory = default_context,
) -> RollbackOutcome:
    """Roll back the apply run ``run_id`` (an id or unique prefix) at once or after approvals.

    Raises ``NotFoundError`` for an unknown run, ``ActionNotAllowedError`` when the run cannot
    be rolled back (not a succeeded apply, already rolled back, no undo data) or the policies
    decide ``monitor``, and ``AuditIntegrityError`` when the run's audit entry disagrees with
    the run. A rollback that auto mode runs re-raises the action's error after recording it.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    tenant = tenant or settings.service.tenant
    with Session(store.engine, expire_on_commit=False) as session, \
            context_factory(settings, tenant) as context:
        applied_run = runner.find_run(session, tenant, run_id)
        rollback = _rollback_request(session, context, applied_run)
        decision = _decide(settings, rollback, applied_run, now)

        if decision.mode == "auto":
            record = runner.run(
                session, rollback, decision, [], mode="rollback", context=context, now=now,
                actor=actor,
            )
            return _auto_outcome(applied_run, record)

        request, created = _open(session, settings, tenant, rollback, decision, applied_run,
                                 actor, reason, now)
        session.commit()
        return _request_outcome(request, applied_run, created)


def _rollback_request(
    session: Session, context: ActionContext, applied_run: ActionRunRecord
) -> ActionRequest:
    """Return the rollback request of ``applied_run``, with the scope's current labels.

    The labels stored by the last pass must equal the cluster's labels in Palette now, as for
    an approved request right before it runs. Otherwise the policies could decide on labels
    that no longer hold, for example before a pass has seen a cluster relabelled production.
    """
    applied = runner.applied_request(session, applied_run)
    done = runner.rollback_of(session, applied_run.id)
    if done is not None:
        raise ActionNotAllowedError(
            f"run {applied_run.id} was already rolled back by run {done.id} ({done.status})"
        )

    cluster = applied.scope.cluster_uid
    stored = stored_labels(session, applied.scope)
    if stored is None:
        raise ActionNotAllowedError(
            f"cluster {cluster} is no longer stored, so the policies cannot decide the rollback "
            f"of run {applied_run.id}; run a pass, or undo the change in Palette"
        )
    live = live_labels(session, context, applied.scope)
    if live != stored:
        raise ActionNotAllowedError(
            f"the labels of cluster {cluster} in Palette ({_text(live)}) differ from the labels "
            f"the last pass stored ({_text(stored)}); run a pass so the policies see the "
            "current labels, then ask for the rollback again"
        )
    return replace(applied, scope=replace(applied.scope, labels=stored),
                   rollback_of=applied_run.id)


def _text(labels: Mapping[str, str] | None) -> str:
    if labels is None:
        return "cluster not found"
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items())) or "no labels"


def _decide(
    settings: Settings, rollback: ActionRequest, applied_run: ActionRunRecord, now: datetime
) -> PolicyDecision:
    policies = load_configured_policies(settings)
    decision = policies.decide(rollback, rollback_facts(rollback, applied_run), now=now)
    if decision.mode == "monitor":
        reasons = "; ".join(decision.reasons[-2:]) or "no policy matches"
        raise ActionNotAllowedError(
            f"the policies put {rollback.action} on this scope in monitor mode ({reasons}), so "
            f"costwarden does not roll back run {applied_run.id}. Undo the change in Palette, "
            "or set the action to approve in a policy file"
        )
    return replace(decision, digest=rollback.digest)


def rollback_facts(rollback: ActionRequest, applied_run: ActionRunRecord) -> dict[str, Any]:
    """Return the CEL facts of a rollback: the cluster, the pool as the apply left it, and
    the recommendation the apply came from."""
    scope = rollback.scope
    after = dict((applied_run.result or {}).get("after") or {})
    return {
        "cluster": cluster_facts(scope),
        "pool": {"name": scope.name, "size": after.get("size")},
        "recommendation": {"id": rollback.subject_id},
    }


def _open(
    session: Session,
    settings: Settings,
    tenant: str,
    rollback: ActionRequest,
    decision: PolicyDecision,
    applied_run: ActionRunRecord,
    actor: str,
    reason: str | None,
    now: datetime,
) -> tuple[ApprovalRequestRecord, bool]:
    """Open the approval request of a rollback, or find or reopen the earlier one.

    Returns the request and whether it is new or reopened, in which case its notice is queued.
    """
    result = dict(applied_run.result or {})
    evidence = {
        "title": f"Roll back {rollback.action}: {result.get('summary') or applied_run.id}",
        "requested_by": actor,
        "reason": reason,
        "applied_run": applied_run.id,
        "applied_at": applied_run.started_at.isoformat(),
        "before": applied_run.before,
        "after": result.get("after"),
        "facts": rollback_facts(rollback, applied_run),
    }
    ttl = settings.approvals.ttl_hours
    record, created = open_request(
        session, tenant, rollback, decision, evidence, now=now, ttl_hours=ttl, actor=actor
    )
    if not created and record.status in CLOSED_STATUSES:
        reopen_request(
            session, record, decision, now=now, ttl_hours=ttl,
            reason=f"{actor} requested the rollback again",
        )
        created = True
    if created:
        _queue_notice(session, settings, record, now)
    logger.info(
        "rollback of run %s requested by %s: approval request %s is %s",
        applied_run.id, actor, record.id, record.status,
    )
    return record, created


def _queue_notice(
    session: Session, settings: Settings, record: ApprovalRequestRecord, now: datetime
) -> None:
    """Queue the rollback's notice, with approve and reject tokens, on the routed channels."""
    if not settings.notify.channels:
        return
    evidence: Mapping[str, Any] = record.evidence or {}
    target = dict(record.target or {})
    where = "/".join(
        str(part) for part in (target.get("cluster") or target.get("cluster_uid"),
                               target.get("namespace"), target.get("name")) if part
    )
    facts = (
        ("Target", f"{where} ({target.get('kind')})"),
        ("Undoes run", str(evidence.get("applied_run"))),
        ("Requested by", str(evidence.get("requested_by"))),
        ("Reason", str(evidence.get("reason") or "-")),
        ("Approvals needed", str(record.required_approvals)),
    )
    notice = Notice(
        alert_id=hashlib.sha256(f"rollback\x1f{record.id}".encode()).hexdigest()[:32],
        kind="rollback",
        severity=ROLLBACK_SEVERITY,
        title=str(evidence.get("title")),
        generated_at=now,
        labels={str(k): str(v) for k, v in (target.get("labels") or {}).items()},
        facts=facts,
        approval=notice_approval(settings, record),
    )
    enqueue_notices(session, settings.notify, [notice], evaluated_kinds=(), now=now)


def _auto_outcome(applied_run: ActionRunRecord, record: ActionRunRecord) -> RollbackOutcome:
    if runner.in_progress(record):
        return RollbackOutcome(
            "running", f"the rollback of run {applied_run.id} is already running as run "
            f"{record.id}", run_id=record.id,
        )
    summary = (record.result or {}).get("summary") or record.error or record.status
    status: RollbackStatus = "executed" if record.status == "succeeded" else "failed"
    return RollbackOutcome(
        status, f"rollback of run {applied_run.id} {record.status} (auto mode): {summary}",
        run_id=record.id,
    )


def _request_outcome(
    record: ApprovalRequestRecord, applied_run: ActionRunRecord, created: bool
) -> RollbackOutcome:
    needs = f"{record.required_approvals} approval(s){' (production)' if record.production else ''}"
    if created:
        message = (
            f"rollback of run {applied_run.id} needs {needs}: approval request {record.id} is "
            f"open; decide it with 'costwarden approvals approve {record.id}' or a channel's "
            "buttons"
        )
    else:
        message = (
            f"the rollback of run {applied_run.id} was already requested: approval request "
            f"{record.id} is {record.status}"
        )
    return RollbackOutcome("requested", message, request_id=record.id)
