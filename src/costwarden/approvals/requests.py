"""Approval requests: turning recommendations into action requests, and storing the requests.

``action_request`` maps a recommendation to one registered action with its exact parameters
and the state the recommendation was computed from. ``open_request`` stores the request of a
decision in ``approve`` mode once per (tenant, subject, action, digest): a later pass that
proposes the same change finds the stored row, and one that proposes another change supersedes
the older pending row of the same subject and action.

Request statuses: ``pending`` until decided; ``approved`` once the required approvals are in
and the run has not finished; ``executed`` after the run succeeded; ``failed`` after it failed
or the guard refused it; ``rejected``; ``expired`` after ``approvals.ttl_hours``; and
``superseded`` when a later pass proposed another change for the same subject and action, or
when the scope's labels, the policy decision or the recommendation changed since the request
was opened. A pass that proposes the change of a ``failed`` or ``superseded`` request again
reopens it (``reopen_request``): the request becomes pending under the current decision and
its earlier decisions are cleared.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from costwarden.audit import trail
from costwarden.config import GitOpsSettings
from costwarden.domain.governance import (
    ActionRequest,
    ActionScope,
    PolicyDecision,
    SubjectKind,
)
from costwarden.errors import NotFoundError
from costwarden.store.tables import (
    ActionRunRecord,
    ApprovalDecisionRecord,
    ApprovalRequestRecord,
    AuditEntryRecord,
    Cluster,
    Namespace,
)

logger = logging.getLogger(__name__)

STATUSES = ("pending", "approved", "executed", "failed", "rejected", "expired", "superseded")
OPEN_STATUSES = ("pending",)
REOPENABLE_STATUSES = ("failed", "superseded")
"""Statuses a later pass that proposes the same change sets back to ``pending``."""
DECISION_EVENTS = ("requested", "reopened")
"""Audit events that record the decision fields a request is bound to."""

SYSTEM_ACTOR = "costwarden"


# -- recommendations to action requests -------------------------------------------------------


def action_request(
    session: Session, item: Mapping[str, Any], gitops: GitOpsSettings | None = None
) -> ActionRequest | None:
    """Return the action request of a recommendation dict (``Recommendation.to_dict()``).

    Machine pool changes (resize, capacity type, instance type) map to the Palette action. On a
    cluster that a GitOps repository defines (``actions.gitops.repositories.*.clusters``) they
    map to ``gitops.pull_request`` on that repository instead, so Git stays the source of truth.
    Returns None when no registered action applies the recommendation.
    """
    target = item.get("target") or {}
    if target.get("kind") != "MachinePool":
        # NOTE: workload, volume and load balancer recommendations have no action yet; they
        # stay reports, and the gitops.pull_request action is not proposed for them.
        return None

    mapped = _pool_action(item)
    if mapped is None:
        return None
    action, params, expected = mapped

    scope = pool_scope(session, target)
    if scope is None:
        logger.info(
            "recommendation %s: cluster %s is not stored, so no action request is made",
            item.get("id"), target.get("cluster"),
        )
        return None
    repository = gitops.repository_for(scope.cluster) if gitops is not None else None
    if repository is not None:
        action, params = "gitops.pull_request", _pull_request_params(item, repository, params)
    return ActionRequest(
        action=action,
        scope=scope,
        params=params,
        subject_kind="recommendation",
        subject_id=str(item["id"]),
        expected=expected,
    )


def _pull_request_params(
    item: Mapping[str, Any], repository: str, pool_params: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the ``gitops.pull_request`` parameters of a pool change in ``repository``.

    The file is the repository's only file with a pool_key. The pool's minimum size stays as
    the file has it, because the pull request changes only the fields the recommendation names.
    The title, reason, savings and link only word the pull request, so the digest leaves them
    out (``DESCRIPTIVE_PARAMS``).
    """
    target = item.get("target") or {}
    params = {
        "repository": repository,
        "pool": str(target.get("pool") or target.get("name")),
        **{key: value for key, value in pool_params.items() if key != "min_size"},
        **_wording(item),
    }
    return params


def _wording(item: Mapping[str, Any]) -> dict[str, Any]:
    """Return the title, reason, savings estimate and link that word a pull request or ticket."""
    savings = item.get("savings") or {}
    wording = {
        "title": str(item.get("title")),
        "reason": item.get("risk_note"),
        "link": item.get("ui_link"),
    }
    if savings.get("per_month") is not None:
        amount = " ".join(str(part) for part in (savings["per_month"], savings.get("currency"))
                          if part)
        wording["estimated_savings"] = f"{amount} per month"
    return {key: value for key, value in wording.items() if value}


def _pool_action(item: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    before = item.get("before") or {}
    after = item.get("after") or {}

    if after.get("capacityType") == "spot":
        return "palette.set_capacity_type", {"capacity_type": "spot"}, {
            "capacity_type": "on-demand"
        }
    if "instanceType" in after and after.get("instanceType") != before.get("instanceType"):
        expected = {"instance_type": before["instanceType"]} if before.get("instanceType") else {}
        return "palette.set_instance_type", {"instance_type": after["instanceType"]}, expected
    if "size" in after and isinstance(after["size"], int):
        params: dict[str, Any] = {"size": after["size"]}
        if isinstance(after.get("minSize"), int):
            params["min_size"] = after["minSize"]
        expected = {"size": before["size"]} if isinstance(before.get("size"), int) else {}
        return "palette.resize_pool", params, expected
    return None


def ticket_request(
    session: Session, item: Mapping[str, Any], channel: str
) -> ActionRequest | None:
    """Return the ``ticket`` action request of a recommendation dict, in ticket ``channel``.

    Any recommendation gets one, whatever its target: the ticket describes the change for the
    people who make it. The digest, which is also the ticket's dedupe key, binds the channel
    and the recommendation id. The title, description, savings and link only word the ticket. Returns None
    when the target's cluster is not stored.
    """
    target = item.get("target") or {}
    scope = target_scope(session, target)
    if scope is None:
        return None
    call = item.get("api_call") or {}
    change = item.get("manual_change") or (
        f"{call['method']} {call['path']}" if call.get("method") and call.get("path") else None
    )
    wording = _wording(item)
    wording.pop("reason", None)
    params = {"channel": channel, "recommendation": str(item["id"]), **wording,
              "description": change}
    return ActionRequest(
        action="ticket",
        scope=scope,
        params={key: value for key, value in params.items() if value is not None},
        subject_kind="recommendation",
        subject_id=str(item["id"]),
    )


def target_scope(session: Session, target: Mapping[str, Any]) -> ActionScope | None:
    """Build the scope of a recommendation target: its machine pool, namespace or cluster.

    The labels are the ones ``recheck.stored_labels`` reads back for the same scope, so a
    request opened here stays valid until the cluster or namespace is relabelled.
    """
    if target.get("kind") == "MachinePool":
        return pool_scope(session, target)
    cluster = _stored_cluster(session, target)
    if cluster is None:
        return None
    labels = {str(k): str(v) for k, v in (cluster.labels or {}).items()}
    namespace = target.get("namespace")
    if namespace:
        stored = session.get(Namespace, (cluster.uid, namespace))
        if stored is not None:
            labels.update({str(k): str(v) for k, v in (stored.labels or {}).items()})
    return ActionScope(
        kind="namespace" if namespace else "cluster",
        cluster_uid=cluster.uid,
        cluster=cluster.name,
        name=namespace or cluster.name,
        project=cluster.project_name,
        cloud=cluster.cloud,
        namespace=namespace,
        labels=labels,
    )


def _stored_cluster(session: Session, target: Mapping[str, Any]) -> Cluster | None:
    return session.scalars(
        select(Cluster).where(Cluster.name == target.get("cluster")).order_by(Cluster.uid)
    ).first()


def pool_scope(session: Session, target: Mapping[str, Any]) -> ActionScope | None:
    """Build the machine pool scope of a recommendation target from the stored cluster."""
    cluster = _stored_cluster(session, target)
    if cluster is None:
        return None
    return ActionScope(
        kind="machine_pool",
        cluster_uid=cluster.uid,
        cluster=cluster.name,
        name=str(target.get("pool") or target.get("name")),
        project=cluster.project_name,
        cloud=cluster.cloud,
        labels={str(k): str(v) for k, v in (cluster.labels or {}).items()},
    )


def recommendation_facts(item: Mapping[str, Any], scope: ActionScope) -> dict[str, Any]:
    """Return the CEL facts of a recommendation: the cluster, the pool and the recommendation."""
    savings = item.get("savings") or {}
    before = item.get("before") or {}
    return {
        "cluster": cluster_facts(scope),
        "pool": {"name": scope.name, "size": before.get("size")},
        "recommendation": {
            "id": item.get("id"),
            "kind": item.get("kind"),
            "savings_per_month": savings.get("per_month"),
            "currency": savings.get("currency"),
            "confidence": item.get("confidence"),
            "risk": item.get("risk"),
        },
    }


def cluster_facts(scope: ActionScope) -> dict[str, Any]:
    """Return the ``cluster`` fact of CEL conditions for a scope."""
    return {
        "name": scope.cluster,
        "uid": scope.cluster_uid,
        "project": scope.project,
        "cloud": scope.cloud,
        "labels": dict(scope.labels),
    }


def recommendation_evidence(item: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Return what an approver sees and the review reads: savings, data window, source."""
    savings = item.get("savings") or {}
    evidence = item.get("evidence") or {}
    return {
        "recommendation_id": item.get("id"),
        "recommendation_kind": item.get("kind"),
        "title": item.get("title"),
        "estimated_savings_per_month": savings.get("per_month"),
        "currency": savings.get("currency"),
        "window": evidence.get("window") or evidence.get("data_window"),
        "before": item.get("before"),
        "after": item.get("after"),
        "risk": item.get("risk"),
        "risk_note": item.get("risk_note"),
        "ui_link": item.get("ui_link"),
        "run_id": run_id,
    }


# -- storing requests --------------------------------------------------------------------------


def open_request(
    session: Session,
    tenant: str,
    request: ActionRequest,
    decision: PolicyDecision,
    evidence: Mapping[str, Any],
    *,
    now: datetime,
    ttl_hours: int,
    actor: str = SYSTEM_ACTOR,
) -> tuple[ApprovalRequestRecord, bool]:
    """Store the approval request of ``request`` and return it with True, or the stored one.

    The unique (tenant, subject, action, digest) constraint makes a re-run create nothing. A
    new request supersedes the pending requests of the same subject and action, whose change
    differs. The new request and its audit entry are written in the caller's transaction.
    """
    digest = request.digest
    existing = find_change(session, tenant, request.subject_id, request.action, digest)
    if existing is not None:
        return existing, False

    record = ApprovalRequestRecord(
        id=str(uuid.uuid4()),
        tenant=tenant,
        subject_kind=request.subject_kind,
        subject_id=request.subject_id,
        policy=decision.policy or "",
        action=request.action,
        target=request.scope.as_dict(),
        params=dict(request.params),
        params_digest=digest,
        production=decision.production,
        required_approvals=max(1, decision.required_approvals),
        approver_groups=list(decision.approver_groups),
        status="pending",
        created_at=now,
        expires_at=now + timedelta(hours=ttl_hours),
        decided_at=None,
        evidence={**evidence, "expected": dict(request.expected)},
        rollback_of=request.rollback_of,
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        # Another replica stored the same change first.
        winner = find_change(session, tenant, request.subject_id, request.action, digest)
        if winner is None:
            raise
        return winner, False

    superseded = _supersede(session, tenant, request, record.id, now)
    prefix = f"rollback of run {request.rollback_of}: " if request.rollback_of else ""
    trail.append(
        session,
        tenant=tenant,
        kind="approval",
        subject=f"{request.subject_kind}:{request.subject_id}",
        actor=actor,
        summary=(
            f"{prefix}approval requested for {request.action} on {_scope_text(request.scope)} "
            f"(policy {decision.policy or 'none'}, {record.required_approvals} approval(s)"
            f"{', production' if decision.production else ''})"
        ),
        detail={
            "event": "requested",
            "request_id": record.id,
            "action": request.action,
            "digest": digest,
            "scope": request.scope.as_dict(),
            "params": dict(request.params),
            "expected": dict(request.expected),
            "rollback_of": request.rollback_of,
            "policy": decision.policy,
            "mode": decision.mode,
            "production": decision.production,
            "required_approvals": record.required_approvals,
            "approver_groups": list(decision.approver_groups),
            "reasons": list(decision.reasons),
            "expires_at": record.expires_at,
            "superseded": superseded,
            **{key: value for key, value in evidence.items() if key != "run_id"},
        },
        recorded_at=now,
    )
    logger.info(
        "approval request %s opened for %s of %s", record.id, request.action, request.subject_id
    )
    return record, True


def _supersede(
    session: Session, tenant: str, request: ActionRequest, keep_id: str, now: datetime
) -> list[str]:
    """Supersede the other pending requests of the same subject and action.

    Apply requests supersede apply requests, and rollback requests supersede rollback requests.
    """
    same_kind = (
        ApprovalRequestRecord.rollback_of.is_(None)
        if request.rollback_of is None
        else ApprovalRequestRecord.rollback_of.is_not(None)
    )
    older = session.scalars(
        select(ApprovalRequestRecord.id).where(
            ApprovalRequestRecord.tenant == tenant,
            ApprovalRequestRecord.subject_id == request.subject_id,
            ApprovalRequestRecord.action == request.action,
            ApprovalRequestRecord.status == "pending",
            ApprovalRequestRecord.id != keep_id,
            same_kind,
        )
    ).all()
    if older:
        session.execute(
            update(ApprovalRequestRecord)
            .where(ApprovalRequestRecord.id.in_(list(older)))
            .values(status="superseded", decided_at=now)
        )
    return list(older)


def reopen_request(
    session: Session,
    record: ApprovalRequestRecord,
    decision: PolicyDecision,
    *,
    now: datetime,
    ttl_hours: int,
    reason: str,
) -> None:
    """Set ``record`` back to ``pending`` under ``decision``, clearing its earlier decisions.

    The used token ids of the cleared decisions stay spent (``evidence.spent_tokens``), so no
    token works twice. The new decision fields and the cleared votes are audited in the
    caller's transaction, and other pending requests of the subject and action are superseded.
    """
    previous = record.status
    cleared = decisions_of(session, record.id)
    spent = [item.token_id for item in cleared if item.token_id]
    for item in cleared:
        session.delete(item)

    record.status = "pending"
    record.decided_at = None
    record.policy = decision.policy or ""
    record.production = decision.production
    record.required_approvals = max(1, decision.required_approvals)
    record.approver_groups = list(decision.approver_groups)
    record.expires_at = now + timedelta(hours=ttl_hours)
    evidence = dict(record.evidence or {})
    evidence["spent_tokens"] = [*(evidence.get("spent_tokens") or []), *spent]
    record.evidence = evidence
    session.flush()

    request = stored_action_request(record)
    superseded = _supersede(session, record.tenant, request, record.id, now)
    trail.append(
        session,
        tenant=record.tenant,
        kind="approval",
        subject=f"{record.subject_kind}:{record.subject_id}",
        actor=SYSTEM_ACTOR,
        summary=(
            f"approval request {record.id} for {record.action} reopened from {previous}: "
            f"{reason} ({record.required_approvals} approval(s)"
            f"{', production' if record.production else ''})"
        ),
        detail={
            "event": "reopened",
            "request_id": record.id,
            "digest": record.params_digest,
            "previous_status": previous,
            "reason": reason,
            "policy": decision.policy,
            "mode": decision.mode,
            "production": record.production,
            "required_approvals": record.required_approvals,
            "approver_groups": list(record.approver_groups),
            "reasons": list(decision.reasons),
            "expires_at": record.expires_at,
            "cleared_decisions": [
                {"actor": item.actor, "decision": item.decision, "channel": item.channel}
                for item in cleared
            ],
            "superseded": superseded,
        },
        recorded_at=now,
    )
    logger.info("approval request %s reopened from %s: %s", record.id, previous, reason)


def supersede_request(
    session: Session, record: ApprovalRequestRecord, reasons: Sequence[str], *, now: datetime
) -> None:
    """Mark ``record`` superseded because its scope, decision or recommendation changed."""
    record.status = "superseded"
    record.decided_at = now
    trail.append(
        session,
        tenant=record.tenant,
        kind="approval",
        subject=f"{record.subject_kind}:{record.subject_id}",
        actor=SYSTEM_ACTOR,
        summary=(
            f"approval request {record.id} for {record.action} superseded: {'; '.join(reasons)}"
        ),
        detail={
            "event": "superseded",
            "request_id": record.id,
            "digest": record.params_digest,
            "reasons": list(reasons),
        },
        recorded_at=now,
    )
    logger.info("approval request %s superseded: %s", record.id, "; ".join(reasons))


def recorded_decision(
    session: Session, record: ApprovalRequestRecord
) -> dict[str, Any] | None:
    """Return the detail of the newest ``requested`` or ``reopened`` audit entry of ``record``."""
    found = None
    for entry in audit_entries_of(session, record):
        detail = entry.detail or {}
        if entry.kind == "approval" and detail.get("event") in DECISION_EVENTS:
            found = dict(detail)
    return found


def expire_requests(session: Session, tenant: str, now: datetime) -> int:
    """Mark the pending requests of ``tenant`` whose time ran out as expired; return the count."""
    due = session.scalars(
        select(ApprovalRequestRecord).where(
            ApprovalRequestRecord.tenant == tenant,
            ApprovalRequestRecord.status == "pending",
            ApprovalRequestRecord.expires_at <= now,
        )
    ).all()
    for record in due:
        record.status = "expired"
        record.decided_at = now
        trail.append(
            session,
            tenant=tenant,
            kind="approval",
            subject=f"{record.subject_kind}:{record.subject_id}",
            actor=SYSTEM_ACTOR,
            summary=f"approval request {record.id} for {record.action} expired undecided",
            detail={"event": "expired", "request_id": record.id, "digest": record.params_digest},
            recorded_at=now,
        )
    return len(due)


def find_change(
    session: Session, tenant: str, subject_id: str, action: str, digest: str
) -> ApprovalRequestRecord | None:
    return session.scalars(
        select(ApprovalRequestRecord).where(
            ApprovalRequestRecord.tenant == tenant,
            ApprovalRequestRecord.subject_id == subject_id,
            ApprovalRequestRecord.action == action,
            ApprovalRequestRecord.params_digest == digest,
        )
    ).first()


def find_request(session: Session, tenant: str, request_id: str) -> ApprovalRequestRecord:
    """Return the request with this id or unique id prefix; raise ``NotFoundError`` otherwise."""
    rows = session.scalars(
        select(ApprovalRequestRecord)
        .where(
            ApprovalRequestRecord.tenant == tenant,
            ApprovalRequestRecord.id.startswith(request_id),
        )
        .limit(2)
    ).all()
    if len(rows) != 1:
        problem = "matches several requests; give more characters" if rows else "not found"
        raise NotFoundError(
            f"approval request {request_id!r} {problem}; 'costwarden approvals list' shows them"
        )
    return rows[0]


def list_requests(
    session: Session, tenant: str, *, status: str | None = None, limit: int = 50
) -> list[ApprovalRequestRecord]:
    """Return a tenant's requests, newest first, optionally only those in ``status``."""
    return page_requests(session, tenant, status=status, limit=limit).items


@dataclass(frozen=True, slots=True)
class RequestPage:
    """One page of approval requests and the number of requests that match the filters."""

    items: list[ApprovalRequestRecord]
    total: int


def page_requests(
    session: Session,
    tenant: str,
    *,
    status: str | None = None,
    subject: str | None = None,
    action: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RequestPage:
    """Return a page of a tenant's requests, newest first, with the total that match.

    ``subject`` is a recommendation or alert id, or ``KIND:ID`` such as ``recommendation:ID``.
    """
    conditions = [ApprovalRequestRecord.tenant == tenant]
    if status is not None:
        conditions.append(ApprovalRequestRecord.status == status)
    if action is not None:
        conditions.append(ApprovalRequestRecord.action == action)
    if subject is not None:
        kind, separator, subject_id = subject.partition(":")
        if separator and kind in ("recommendation", "alert"):
            conditions.append(ApprovalRequestRecord.subject_kind == kind)
            conditions.append(ApprovalRequestRecord.subject_id == subject_id)
        else:
            conditions.append(ApprovalRequestRecord.subject_id == subject)

    total = session.scalar(
        select(func.count()).select_from(ApprovalRequestRecord).where(*conditions)
    )
    items = session.scalars(
        select(ApprovalRequestRecord)
        .where(*conditions)
        .order_by(ApprovalRequestRecord.created_at.desc(), ApprovalRequestRecord.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return RequestPage(list(items), int(total or 0))


def runs_of(session: Session, record: ApprovalRequestRecord) -> list[ActionRunRecord]:
    """Return the action runs started for ``record``, oldest first."""
    return list(
        session.scalars(
            select(ActionRunRecord)
            .where(ActionRunRecord.tenant == record.tenant, ActionRunRecord.request_id == record.id)
            .order_by(ActionRunRecord.started_at, ActionRunRecord.id)
        )
    )


def audit_entries_of(
    session: Session, record: ApprovalRequestRecord, run_ids: Sequence[str] = ()
) -> list[AuditEntryRecord]:
    """Return the audit entries about ``record`` and its runs, oldest first.

    Approval entries name the request in ``detail.request_id``, and action entries name their
    run in ``detail.run_id``. Both use the subject ``KIND:ID`` of the recommendation or alert,
    except a run resolved by hand, whose subject is ``run:ID``.
    """
    subjects = [f"{record.subject_kind}:{record.subject_id}", *(f"run:{run}" for run in run_ids)]
    rows = session.scalars(
        select(AuditEntryRecord)
        .where(AuditEntryRecord.tenant == record.tenant, AuditEntryRecord.subject.in_(subjects))
        .order_by(AuditEntryRecord.seq)
    ).all()
    runs = set(run_ids)
    return [
        entry
        for entry in rows
        if (entry.detail or {}).get("request_id") == record.id
        or (entry.detail or {}).get("run_id") in runs
    ]


def decisions_of(session: Session, request_id: str) -> list[ApprovalDecisionRecord]:
    return list(
        session.scalars(
            select(ApprovalDecisionRecord)
            .where(ApprovalDecisionRecord.request_id == request_id)
            .order_by(ApprovalDecisionRecord.decided_at, ApprovalDecisionRecord.id)
        )
    )


def stored_action_request(record: ApprovalRequestRecord) -> ActionRequest:
    """Rebuild the action request a stored approval request was made for."""
    scope = ActionScope.from_dict(record.target or {})
    subject_kind: SubjectKind = "alert" if record.subject_kind == "alert" else "recommendation"
    return ActionRequest(
        action=record.action,
        scope=scope,
        params=dict(record.params or {}),
        subject_kind=subject_kind,
        subject_id=record.subject_id,
        expected=dict((record.evidence or {}).get("expected") or {}),
        rollback_of=record.rollback_of,
    )


def request_json(
    record: ApprovalRequestRecord, decisions: list[ApprovalDecisionRecord] | None = None
) -> dict[str, Any]:
    """Return a request as plain JSON values, for the CLI and the API."""
    data: dict[str, Any] = {
        "id": record.id,
        "tenant": record.tenant,
        "status": record.status,
        "subject_kind": record.subject_kind,
        "subject_id": record.subject_id,
        "policy": record.policy or None,
        "action": record.action,
        "target": record.target,
        "params": record.params,
        "digest": record.params_digest,
        "production": record.production,
        "required_approvals": record.required_approvals,
        "approver_groups": record.approver_groups,
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat(),
        "decided_at": record.decided_at.isoformat() if record.decided_at else None,
        "evidence": record.evidence,
        "rollback_of": record.rollback_of,
    }
    if decisions is not None:
        data["decisions"] = [decision_json(item) for item in decisions]
    return data


def decision_json(item: ApprovalDecisionRecord) -> dict[str, Any]:
    """Return one decision on a request as plain JSON values."""
    return {
        "decision": item.decision,
        "actor": item.actor,
        "groups": item.groups,
        "channel": item.channel,
        "decided_at": item.decided_at.isoformat(),
        "detail": item.detail,
    }


def _scope_text(scope: ActionScope) -> str:
    parts = [part for part in (scope.cluster or scope.cluster_uid, scope.namespace, scope.name)
             if part]
    return f"{scope.kind} {'/'.join(parts)}"
