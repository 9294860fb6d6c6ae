"""The governance stage of a pass: policy decisions for the pass's recommendations.

Each recommendation with a concrete action becomes an ``ActionRequest`` and gets a decision from
the policies in ``policy.paths``:

- ``monitor``: the decision is only recorded, in one audit entry per pass;
- ``approve``: an approval request is opened once per change, and the recommendation's notice
  carries approve and reject tokens bound to it;
- ``auto``: the runner applies the change at once, after the production guard allowed it.

Before that, the stage re-evaluates every pending request of the tenant against the labels the
pass stored and the policies loaded now (``recheck``). A request whose labels changed or whose
recommendation is gone is superseded. A request whose decision changed (production, required
approvals, approver groups) is reopened under the current decision with its votes cleared. A
request that the policies no longer put in approve mode is superseded. A ``failed`` or
``superseded`` request whose change a recommendation proposes again is reopened the same way.

Without policy files every decision is ``monitor`` and the stage records nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.actions import runner
from costwarden.actions.context import ActionContext, ContextFactory, default_context
from costwarden.actions.palette import expected_state as palette_expected_state
from costwarden.actions.registry import ACTIONS
from costwarden.approvals.recheck import STORED, recheck, stored_labels
from costwarden.approvals.requests import (
    REOPENABLE_STATUSES,
    action_request,
    expire_requests,
    open_request,
    recommendation_evidence,
    recommendation_facts,
    reopen_request,
    stored_action_request,
    supersede_request,
    ticket_request,
)
from costwarden.approvals.tokens import signer_from_settings
from costwarden.audit import trail
from costwarden.audit.hooks import record_policy_change
from costwarden.config import Settings
from costwarden.domain.governance import ActionRequest, PolicyDecision, bound_params
from costwarden.errors import CostwardenError, StaleStateError
from costwarden.notify.build import recommendation_alert_id
from costwarden.policy import PolicySet, load_configured_policies
from costwarden.store import Store
from costwarden.store.tables import ApprovalRequestRecord

logger = logging.getLogger(__name__)

AUTO_ACTOR = "costwarden (auto mode)"

AutoOutcome = Literal["applied", "already", "stale", "failed"]



@dataclass(slots=True)
class GovernanceReport:
    """What the governance stage of one pass decided.

    ``approvals`` maps a recommendation notice's alert id to its ``Notice.approval`` value.
    """

    monitored: int = 0
    opened: int = 0
    """Approval requests this pass created."""
    pending: int = 0
    """Approval requests waiting for decisions, the ones this pass created included."""
    auto_runs: int = 0
    """Auto-mode changes this pass applied."""
    auto_failed: int = 0
    """Auto-mode changes whose run failed or was refused; ``costwarden actions runs`` lists them."""
    stale: int = 0
    expired: int = 0
    superseded: int = 0
    """Pending requests superseded because their labels, decision or recommendation changed."""
    reopened: int = 0
    """Requests set back to pending under the current decision."""
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the policies decided nothing in this pass."""
        return not (
            self.monitored or self.opened or self.pending or self.auto_runs or self.auto_failed
            or self.stale
            or self.superseded or self.reopened
        )




def govern_recommendations(
    store: Store,
    settings: Settings,
    items: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    tenant: str,
    now: datetime,
    context_factory: ContextFactory = default_context,
) -> GovernanceReport:
    """Decide every recommendation of a pass, open approval requests and run auto actions."""
    report = GovernanceReport()
    with store.transaction() as session:
        report.expired = expire_requests(session, tenant, now)
    if not settings.policy.paths:
        return report

    policies = load_configured_policies(settings)
    auto: list[tuple[ActionRequest, PolicyDecision]] = []
    with context_factory(settings, tenant) as context, store.transaction() as session:
        record_policy_change(
            session, tenant, policies.digest, list(policies.file_digests),
            policies=[policy.name for policy in policies.policies],
        )
        decided = list(_decisions(session, settings, policies, items, now))
        proposed: dict[str, set[str]] = {}
        for _, request, _ in decided:
            proposed.setdefault(request.subject_id, set()).add(request.action)
        _review_pending(session, settings, policies, tenant, items, proposed, now, report)
        monitored = []
        for item, request, decision in decided:
            if decision.mode == "monitor":
                monitored.append(_monitor_line(request, decision))
            elif decision.mode == "auto":
                auto.append((request, decision))
            else:
                _approve(session, settings, context, tenant, item, request, decision, run_id,
                         now, report)
        report.monitored = len(monitored)
        if monitored:
            _audit_monitored(session, tenant, run_id, monitored, now)

    for request, decision in auto:
        outcome = _run_auto(store, settings, tenant, request, decision, now, context_factory)
        report.auto_runs += outcome == "applied"
        report.auto_failed += outcome == "failed"
        report.stale += outcome == "stale"
    logger.info(
        "governance: %d monitored, %d approval requests opened, %d reopened, %d pending, "
        "%d superseded, %d auto runs, %d stale, %d expired",
        report.monitored, report.opened, report.reopened, report.pending, report.superseded,
        report.auto_runs, report.stale, report.expired,
    )
    return report


def _review_pending(
    session: Session,
    settings: Settings,
    policies: PolicySet,
    tenant: str,
    items: Sequence[Mapping[str, Any]],
    proposed_actions: Mapping[str, set[str]],
    now: datetime,
    report: GovernanceReport,
) -> None:
    """Supersede or reopen the pending requests that the current labels or policies changed.

    ``proposed_actions`` maps each recommendation id to the actions the pass proposes for it.
    A pending request for another action is superseded, for example a Palette change of a
    cluster that a GitOps repository has defined since.
    """
    proposed = {str(item.get("id")) for item in items}
    pending = session.scalars(
        select(ApprovalRequestRecord).where(
            ApprovalRequestRecord.tenant == tenant,
            ApprovalRequestRecord.status == "pending",
        )
    ).all()
    for record in pending:
        # NOTE: a pass without any recommendation (a failed recommend step) cannot tell which
        # recommendations are gone, so it supersedes nothing for that reason.
        gone = record.subject_kind == "recommendation" and record.subject_id not in proposed
        # A rollback request stays: the apply it undoes usually ends its recommendation.
        if items and gone and record.rollback_of is None:
            supersede_request(
                session, record, ["the pass no longer makes its recommendation"], now=now
            )
            report.superseded += 1
            continue
        actions = proposed_actions.get(record.subject_id) or set()
        if actions and record.action not in actions and record.rollback_of is None:
            reason = (
                f"the pass now proposes {', '.join(sorted(actions))} for the recommendation, "
                f"not {record.action}"
            )
            supersede_request(session, record, [reason], now=now)
            report.superseded += 1
            continue

        scope = stored_action_request(record).scope
        check = recheck(record, policies, {STORED: stored_labels(session, scope)}, now=now)
        if check.still_valid:
            continue
        if check.decision is None or check.decision.mode != "approve":
            supersede_request(session, record, check.changes, now=now)
            report.superseded += 1
            continue
        reopen_request(
            session, record, check.decision, now=now, ttl_hours=settings.approvals.ttl_hours,
            reason="; ".join(check.changes),
        )
        report.reopened += 1


def _decisions(
    session: Session,
    settings: Settings,
    policies: PolicySet,
    items: Sequence[Mapping[str, Any]],
    now: datetime,
) -> Iterator[tuple[Mapping[str, Any], ActionRequest, PolicyDecision]]:
    """Yield each recommendation's action requests with their decisions: the change itself,
    then the ticket when ``actions.ticket_channel`` is set."""
    channel = settings.actions.ticket_channel
    for item in items:
        requests = [action_request(session, item, settings.actions.gitops)]
        if channel is not None:
            requests.append(ticket_request(session, item, channel))
        for request in requests:
            if request is None:
                continue
            facts = recommendation_facts(item, request.scope)
            yield item, request, policies.decide(request, facts, now=now)


def _approve(
    session: Session,
    settings: Settings,
    context: ActionContext,
    tenant: str,
    item: Mapping[str, Any],
    request: ActionRequest,
    decision: PolicyDecision,
    run_id: str,
    now: datetime,
    report: GovernanceReport,
) -> None:
    """Open the approval request of one recommendation, or find the one already open.

    A ``failed`` or ``superseded`` request of the same change is reopened after a new dry run
    confirms that the resource is still in the state the request pins.
    """
    record = _similar_request(session, tenant, request)
    if record is None or record.status in REOPENABLE_STATUSES:
        evidence = recommendation_evidence(item, run_id)
        evidence["facts"] = recommendation_facts(item, request.scope)
        try:
            request, dry_run = with_current_state(request, context)
        except StaleStateError as exc:
            logger.warning("recommendation %s is stale, no approval request: %s",
                           request.subject_id, exc)
            report.stale += 1
            return
        evidence["dry_run"] = dry_run
        decision = replace(decision, digest=request.digest)
        record, created = open_request(
            session, tenant, request, decision, evidence,
            now=now, ttl_hours=settings.approvals.ttl_hours,
        )
        report.opened += int(created)
        if not created and record.status in REOPENABLE_STATUSES:
            if stored_action_request(record).digest != record.params_digest:
                _keep_edited_closed(session, record, now)
                return
            reopen_request(
                session, record, decision, now=now, ttl_hours=settings.approvals.ttl_hours,
                reason="a pass proposed the same change again",
            )
            report.reopened += 1
    if record.status != "pending":
        return

    report.pending += 1
    # A notice carries one request's buttons: the change's, which comes before the ticket's.
    report.approvals.setdefault(
        recommendation_alert_id(request.subject_id), notice_approval(settings, record)
    )


def _keep_edited_closed(session: Session, record: ApprovalRequestRecord, now: datetime) -> None:
    """Leave a request whose stored change no longer hashes to its digest closed, and audit it.

    Such a row was edited in the database; reopening it would give a request that no decision
    can pass.
    """
    logger.warning(
        "approval request %s not reopened: its stored action, target or parameters no longer "
        "match its digest, so the row was edited", record.id,
    )
    trail.append(
        session,
        tenant=record.tenant,
        kind="approval",
        subject=f"{record.subject_kind}:{record.subject_id}",
        actor=runner.SYSTEM_ACTOR,
        summary=f"approval request {record.id} not reopened: the row was edited in the database",
        detail={"event": "not_reopened", "request_id": record.id,
                "digest": record.params_digest, "status": record.status},
        recorded_at=now,
    )


def _similar_request(
    session: Session, tenant: str, request: ActionRequest
) -> ApprovalRequestRecord | None:
    """Return the newest request of the same subject, action and parameters whose expected
    state agrees with the recommendation's, so a re-run reads Palette no more."""
    rows = session.scalars(
        select(ApprovalRequestRecord)
        .where(
            ApprovalRequestRecord.tenant == tenant,
            ApprovalRequestRecord.subject_id == request.subject_id,
            ApprovalRequestRecord.action == request.action,
            ApprovalRequestRecord.rollback_of.is_(None),
        )
        .order_by(ApprovalRequestRecord.created_at.desc())
    ).all()
    for row in rows:
        stored = (row.evidence or {}).get("expected") or {}
        same_params = bound_params(row.params or {}) == bound_params(request.params)
        agrees = all(stored.get(key) == value for key, value in request.expected.items())
        same_scope = row.target == request.scope.as_dict()
        if same_params and agrees and same_scope:
            return row
    return None


def with_current_state(
    request: ActionRequest, context: ActionContext
) -> tuple[ActionRequest, dict[str, Any]]:
    """Complete ``expected`` with the state the dry run read.

    A dry run reads the resource. For Palette actions every field it read is added to
    ``expected``: a pool's size, limits, instance type and capacity type, or a cluster's
    labels. The approved request then stops when any of them moved, not only the one it
    changes. Other actions add the fields they would change. Raises ``StaleStateError`` when
    the resource already differs from the recommendation. A dry run that fails otherwise
    leaves ``expected`` as it is and is reported.
    """
    action = ACTIONS.spec(request.action).factory()
    try:
        outcome = action.dry_run(request, context)
    except StaleStateError:
        raise
    except CostwardenError as exc:
        logger.warning("dry run of %s for %s failed: %s", request.action, request.subject_id, exc)
        return request, {"error": f"{type(exc).__name__}: {exc}"}

    changed = {
        key: outcome.before[key]
        for key, value in outcome.after.items()
        if key in outcome.before and outcome.before[key] != value
    }
    pinned = palette_expected_state(request.action, outcome.before)
    expected = {**(changed if pinned is None else pinned), **request.expected}
    summary = {"summary": outcome.summary, "before": dict(outcome.before),
               "after": dict(outcome.after)}
    return replace(request, expected=expected), summary


def notice_approval(settings: Settings, record: ApprovalRequestRecord) -> dict[str, Any]:
    """Return the ``Notice.approval`` value of a pending request, with fresh tokens."""
    approval: dict[str, Any] = {
        "request_id": record.id,
        "action": record.action,
        "digest": record.params_digest,
        "expires_at": record.expires_at.isoformat(),
        "required_approvals": record.required_approvals,
        "production": record.production,
    }
    signer = signer_from_settings(settings.notify.link_secret)
    if signer is not None:
        approval["approve_token"] = signer.issue(
            record.id, record.params_digest, "approve", record.expires_at
        )
        approval["reject_token"] = signer.issue(
            record.id, record.params_digest, "reject", record.expires_at
        )
    return approval


def _monitor_line(request: ActionRequest, decision: PolicyDecision) -> dict[str, Any]:
    return {
        "subject": f"{request.subject_kind}:{request.subject_id}",
        "action": request.action,
        "digest": request.digest,
        "policy": decision.policy,
        "production": decision.production,
        "reasons": list(decision.reasons[-3:]),
    }


def _audit_monitored(
    session: Session, tenant: str, run_id: str, lines: list[dict[str, Any]], now: datetime
) -> None:
    trail.append(
        session,
        tenant=tenant,
        kind="policy",
        subject=f"run:{run_id}",
        actor=runner.SYSTEM_ACTOR,
        summary=f"{len(lines)} proposed actions in monitor mode: reported, not run",
        detail={"run_id": run_id, "mode": "monitor", "decisions": lines},
        recorded_at=now,
    )


def _run_auto(
    store: Store,
    settings: Settings,
    tenant: str,
    request: ActionRequest,
    decision: PolicyDecision,
    now: datetime,
    context_factory: ContextFactory,
) -> AutoOutcome:
    """Apply an auto-mode request through the runner and return what happened.

    A dry run first pins the state it reads, as for an approval request, so a Palette pool
    action checks the whole pool. A change that an earlier pass applied is ``already``. A
    failed or refused run is recorded by the runner and logged here, and the pass goes on.
    """
    with Session(store.engine, expire_on_commit=False) as session, \
            context_factory(settings, tenant) as context:
        if runner.find_by_key(session, runner.run_key(request, "apply")) is not None:
            return "already"
        try:
            request, _ = with_current_state(request, context)
        except StaleStateError as exc:
            logger.warning("auto run of %s for %s skipped: %s",
                           request.action, request.subject_id, exc)
            return "stale"
        if runner.find_by_key(session, runner.run_key(request, "apply")) is not None:
            return "already"
        try:
            record = runner.run(
                session, request, replace(decision, digest=request.digest), [], mode="apply",
                context=context, now=now, actor=AUTO_ACTOR,
            )
        except CostwardenError as exc:
            logger.warning("auto run of %s for %s did not run: %s",
                           request.action, request.subject_id, exc)
            return "failed"
    if record.status == "succeeded":
        return "applied"
    return "already" if runner.in_progress(record) else "failed"
