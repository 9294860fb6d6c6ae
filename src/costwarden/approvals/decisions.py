"""Approve or reject an approval request, and run its action once the approvals are in.

Every channel ends here: Slack buttons and signed links carry an approval token, Jira
transitions, the CLI and the API name the request and an authenticated actor. ``decide``
first checks the token's digest and decision, and that the stored request still hashes to its
digest. Then it checks that the token is unused, that the request is pending and not expired,
and that the actor belongs to an approver group of the request. Each refusal is audited and
raised as ``ApprovalError``, and nothing runs.

A reject closes the request. When the distinct people who approved reach
``required_approvals`` (identities joined by ``approvals.people``; signed-link votes do not count
on production unless ``approvals.links_count_for_production``), ``execute`` checks the request
once more before the run: its decision fields must equal those of its audited ``requested`` or
``reopened`` entry, and its labels and decision must still be valid under the current labels and
policies (``recheck``); a request that no longer holds is superseded and nothing runs. Then the
votes go to ``runner.run(mode="apply")``, where the production guard checks them again.

A decision on a request that was already decided or executed changes nothing and returns a
message saying so. The exception is a request that got its approvals while ``actions.enabled``
was false: the next approve of it runs the action once actions are on.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from costwarden.actions import runner
from costwarden.actions.context import ActionContext, ContextFactory, default_context
from costwarden.actions.runner import RunMode
from costwarden.approvals.recheck import LIVE, STORED, live_labels, recheck, stored_labels
from costwarden.approvals.requests import (
    audit_entries_of,
    decisions_of,
    find_request,
    recorded_decision,
    stored_action_request,
    supersede_request,
)
from costwarden.approvals.tokens import ApprovalClaims
from costwarden.audit import trail
from costwarden.config import Settings
from costwarden.domain.governance import ApprovalVote, PolicyDecision, Vote
from costwarden.errors import (
    ActionNotAllowedError,
    ApprovalError,
    ApprovalTokenReusedError,
    CostwardenError,
)
from costwarden.policy import load_configured_policies
from costwarden.policy.guard import GuardRules, authorize, count_approvals, person_index
from costwarden.store import Store
from costwarden.store.tables import ActionRunRecord, ApprovalDecisionRecord, ApprovalRequestRecord

logger = logging.getLogger(__name__)

MAX_ACTOR_CHARS = 255
"""Maximum length of an actor name, so the decision row and its audit entry store it whole."""

OutcomeStatus = Literal[
    "recorded", "executed", "failed", "rejected", "approved", "unchanged", "superseded"
]

PAST: dict[str, str] = {"approve": "approved", "reject": "rejected"}


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """The result of one decision.

    ``status``: ``recorded`` (more approvals needed), ``approved`` (approvals complete but
    actions are off), ``executed`` or ``failed`` (the run's result), ``rejected``,
    ``superseded`` (the labels or the policy decision changed since the request was opened, so
    nothing ran), or ``unchanged`` (the request was already decided, or this actor already
    voted). ``error`` is the exception that stopped a ``failed`` or ``superseded`` run:
    ``ActionNotAllowedError`` when the guard refused it, ``StaleStateError`` when the resource
    changed since the request, ``SourceError`` when Palette could not be read, another error
    when the change itself failed.
    """

    status: OutcomeStatus
    request_id: str
    request_status: str
    message: str
    run_id: str | None = None
    error: CostwardenError | None = None




def decide(
    store: Store,
    settings: Settings,
    *,
    request_id: str,
    vote: Vote,
    actor: str,
    channel: str,
    now: datetime | None = None,
    claims: ApprovalClaims | None = None,
    detail: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    digest: str | None = None,
    per_actor_token: bool = False,
    context_factory: ContextFactory = default_context,
) -> DecisionOutcome:
    """Record one approve or reject and run the action when the approvals are complete.

    ``request_id`` may be a unique prefix unless ``claims`` are given. ``actor`` must already be
    authenticated by the caller (Slack signature, Jira signature, API key, OS user).
    ``claims`` are the verified token claims of a channel decision. ``digest`` is the change a
    channel without tokens showed (a Jira ticket); it must match the request.
    ``per_actor_token`` makes the token single-use per person instead of single-use: a Slack
    button is one token shown to every member of the channel, and Slack authenticates who
    clicked. Raises ``ApprovalError``
    for a refused decision and ``NotFoundError`` for an unknown request.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    tenant = tenant or settings.service.tenant
    actor = actor.strip()
    token_key = token_use_key(claims, actor, per_actor=per_actor_token)

    with Session(store.engine, expire_on_commit=False) as session:
        try:
            record = _load(session, tenant, request_id, claims)
        except ApprovalError as exc:
            session.rollback()
            audit_token_refusal(store, tenant, actor=actor, channel=channel, reason=str(exc),
                                now=now)
            raise
        try:
            _check_change(record, vote, claims)
            if digest is not None and digest != record.params_digest:
                raise ApprovalError(
                    f"the decision was made on another change than approval request {record.id} "
                    "holds; decide the latest request"
                )
            unchanged = _unchanged(session, record, actor)
            if unchanged is not None:
                if vote == "approve" and _waits_for_actions(session, settings, record):
                    # Only someone who may approve the request starts the run it waits for.
                    _actor_groups(settings, record, actor)
                    return execute(session, settings, record, now=now, actor=actor,
                                   context_factory=context_factory)
                return unchanged
            groups = _check_pending(session, settings, record, actor, now, claims, token_key)
            recorded = _record(
                session, record, vote, actor, channel, groups, now, claims, token_key, detail
            )
        except ApprovalError as exc:
            session.rollback()
            _audit_refusal(session, record, vote, actor, channel, str(exc), now, claims)
            session.commit()
            logger.warning("approval decision on %s by %s refused: %s", record.id, actor, exc)
            raise
        if not recorded:
            session.rollback()
            return _already_voted(record)

        if vote == "reject":
            record.status = "rejected"
            record.decided_at = now
            session.commit()
            logger.info("approval request %s rejected by %s", record.id, actor)
            return DecisionOutcome(
                "rejected", record.id, record.status,
                f"{actor} rejected {record.action}; the request is closed and nothing runs",
            )

        approvers, ignored = _approvers(session, settings, record, now)
        if len(approvers) < record.required_approvals:
            session.commit()
            not_counted = ", ".join(f"{n} {why}" for why, n in sorted(ignored.items()))
            return DecisionOutcome(
                "recorded", record.id, record.status,
                f"{actor} approved {record.action}: {len(approvers)} of "
                f"{record.required_approvals} approvals from different people"
                + (f" (not counted: {not_counted})" if not_counted else ""),
            )

        record.status = "approved"
        record.decided_at = now
        session.commit()
        return execute(session, settings, record, now=now, actor=actor,
                       context_factory=context_factory)


def _load(
    session: Session, tenant: str, request_id: str, claims: ApprovalClaims | None
) -> ApprovalRequestRecord:
    if claims is None:
        return find_request(session, tenant, request_id)
    if request_id != claims.request_id:
        raise ApprovalError(
            f"the approval token is for request {claims.request_id}, not {request_id}; use the "
            "buttons or links of the request's own message"
        )
    record = session.get(ApprovalRequestRecord, claims.request_id)
    if record is None or record.tenant != tenant:
        raise ApprovalError(
            f"the approval token names request {claims.request_id}, which does not exist for "
            f"tenant {tenant!r}"
        )
    return record


def token_use_key(claims: ApprovalClaims | None, actor: str, *, per_actor: bool) -> str | None:
    """Return the value stored in ``ApprovalDecisionRecord.token_id`` for a token use."""
    if claims is None:
        return None
    if not per_actor:
        return claims.token_id
    person = hashlib.sha256(actor.casefold().encode()).hexdigest()[:24]
    return f"{claims.token_id}:{person}"


def _check_change(record: ApprovalRequestRecord, vote: Vote, claims: ApprovalClaims | None) -> None:
    """Check that the token and the stored request still describe the same change."""
    if claims is not None and claims.digest != record.params_digest:
        raise ApprovalError(
            f"the approval token was issued for another change than request {record.id} holds; "
            "use the buttons or links of the latest message"
        )
    if claims is not None and claims.decision != vote:
        raise ApprovalError(
            f"the approval token is for {claims.decision}, not {vote}; use the matching button"
        )
    if stored_action_request(record).digest != record.params_digest:
        raise ApprovalError(
            f"approval request {record.id}: its stored action, target or parameters no longer "
            "match the digest it was requested under; the request cannot be decided"
        )
    if record.status in ("expired", "superseded"):
        raise ApprovalError(
            f"approval request {record.id} is {record.status}; decide the newest request of "
            f"{record.subject_kind} {record.subject_id} instead"
        )


def _check_pending(
    session: Session,
    settings: Settings,
    record: ApprovalRequestRecord,
    actor: str,
    now: datetime,
    claims: ApprovalClaims | None,
    token_key: str | None,
) -> list[str]:
    """Check a decision on a pending request; return the actor's approver groups."""
    if token_key is not None and _token_used(session, token_key, record):
        raise ApprovalTokenReusedError("the approval token was already used; each token works once")
    if _utc(record.expires_at) <= now:
        record.status = "expired"
        record.decided_at = now
        session.commit()
        raise ApprovalError(
            f"approval request {record.id} expired at {_utc(record.expires_at).isoformat()}; "
            f"requests stay open for approvals.ttl_hours ({settings.approvals.ttl_hours} h)"
        )
    if not actor:
        raise ApprovalError("the decision names no actor, so it cannot count")
    if len(actor) > MAX_ACTOR_CHARS:
        raise ApprovalError(
            f"the actor name has {len(actor)} characters, more than the {MAX_ACTOR_CHARS} that "
            "decisions and audit entries store; use a shorter identity, such as an email address"
        )
    return _actor_groups(settings, record, actor)


def _token_used(session: Session, token_key: str, record: ApprovalRequestRecord) -> bool:
    """Tell whether a decision used the token, counting decisions cleared by a reopen."""
    if token_key in ((record.evidence or {}).get("spent_tokens") or []):
        return True
    found = session.scalar(
        select(ApprovalDecisionRecord.id).where(ApprovalDecisionRecord.token_id == token_key)
    )
    return found is not None


def _actor_groups(settings: Settings, record: ApprovalRequestRecord, actor: str) -> list[str]:
    """Return the groups of ``record`` that list ``actor``; raise when the request names groups
    and none lists the actor.

    A group lists the actor when it names any identity of the actor's person
    (``approvals.people``), so ``U0ALICE`` is a member where ``alice@example.com`` is listed.
    """
    people = person_index(settings.approvals.people)
    person = people.get(actor.strip().casefold(), actor.strip().casefold())
    identities = {actor.strip().casefold()} | {
        identity for identity, owner in people.items() if owner == person
    }
    member_of = sorted(
        name
        for name, members in settings.approvals.groups.items()
        if identities & {member.strip().casefold() for member in members}
    )
    wanted = list(record.approver_groups or [])
    if not wanted:
        return member_of
    allowed = [name for name in member_of if name in wanted]
    if not allowed:
        raise ApprovalError(
            f"{actor} is not a member of the approver groups {', '.join(wanted)} of approval "
            f"request {record.id} (approvals.groups)"
        )
    return allowed


def _unchanged(
    session: Session, record: ApprovalRequestRecord, actor: str
) -> DecisionOutcome | None:
    """Return the no-op outcome for a request that is no longer pending, else None."""
    if record.status == "pending":
        return None
    run = runner.find_by_key(session, f"{record.params_digest}:{_mode(record)}")
    detail = f" (run {run.id}, {run.status})" if run is not None else ""
    message = (
        f"approval request {record.id} for {record.action} is already {record.status}"
        f"{detail}; nothing changed"
    )
    logger.info("decision by %s on %s: %s", actor, record.id, message)
    return DecisionOutcome("unchanged", record.id, record.status, message,
                           run.id if run is not None else None)


def decision_by(
    session: Session, record: ApprovalRequestRecord, actor: str
) -> ApprovalDecisionRecord | None:
    """Return the decision ``actor`` made on ``record`` (names compared case-insensitively)."""
    folded = actor.strip().casefold()
    for item in decisions_of(session, record.id):
        if item.actor.strip().casefold() == folded:
            return item
    return None


def _waits_for_actions(
    session: Session, settings: Settings, record: ApprovalRequestRecord
) -> bool:
    """Tell whether ``record`` got its approvals while actions were off and may run now."""
    if record.status != "approved" or not settings.actions.enabled:
        return False
    return runner.find_by_key(session, f"{record.params_digest}:{_mode(record)}") is None


def _already_voted(record: ApprovalRequestRecord) -> DecisionOutcome:
    return DecisionOutcome(
        "unchanged", record.id, record.status,
        f"this person already decided approval request {record.id}; a second vote by the same "
        "person does not count, and nothing changed",
    )


def _record(
    session: Session,
    record: ApprovalRequestRecord,
    vote: Vote,
    actor: str,
    channel: str,
    groups: list[str],
    now: datetime,
    claims: ApprovalClaims | None,
    token_key: str | None,
    detail: Mapping[str, Any] | None,
) -> bool:
    """Insert the decision row and its audit entry; return False when the actor already voted.

    A concurrent use of the same token fails on the unique token id and raises ApprovalError.
    Actor names are compared case-insensitively, as the guard counts them; the unique
    (request, actor) constraint also stops a concurrent second vote under the same spelling.
    """
    if decision_by(session, record, actor) is not None:
        return False
    decision = ApprovalDecisionRecord(
        id=str(uuid.uuid4()),
        request_id=record.id,
        decision=vote,
        actor=actor,
        groups=groups,
        channel=channel,
        token_id=token_key,
        decided_at=now,
        detail=dict(detail or {}),
    )
    try:
        with session.begin_nested():
            session.add(decision)
    except IntegrityError:
        if token_key is not None and _token_used(session, token_key, record):
            raise ApprovalTokenReusedError(
                "the approval token was already used; each token works once"
            ) from None
        return False

    trail.append(
        session,
        tenant=record.tenant,
        kind="approval",
        subject=f"{record.subject_kind}:{record.subject_id}",
        actor=actor,
        summary=f"{actor} {PAST[vote]} {record.action} via {channel} (request {record.id})",
        detail={
            "event": vote,
            "request_id": record.id,
            "digest": record.params_digest,
            "channel": channel,
            "groups": groups,
            "token_id": decision.token_id,
            **dict(detail or {}),
        },
        recorded_at=now,
    )
    return True


def guard_rules(settings: Settings) -> GuardRules:
    """Return the guard rules with the identity map and the signed-link rule of ``approvals``."""
    return GuardRules.from_settings(settings.policy, settings.approvals)


def _approvers(
    session: Session, settings: Settings, record: ApprovalRequestRecord, now: datetime
) -> tuple[set[str], Counter[str]]:
    """Return the people whose approvals count, as the guard counts them, and why the other
    votes do not count."""
    return count_approvals(
        stored_decision(record),
        stored_action_request(record),
        votes_of(session, record),
        now=now,
        ttl=timedelta(hours=settings.approvals.ttl_hours),
        rules=guard_rules(settings),
        production=record.production,
    )


def votes_of(session: Session, record: ApprovalRequestRecord) -> list[ApprovalVote]:
    """Return the recorded decisions of ``record`` as the guard's votes."""
    return [
        ApprovalVote(
            actor=item.actor,
            vote="approve" if item.decision == "approve" else "reject",
            digest=record.params_digest,
            decided_at=_utc(item.decided_at),
            groups=tuple(item.groups or ()),
            channel=item.channel,
        )
        for item in decisions_of(session, record.id)
    ]


def stored_decision(record: ApprovalRequestRecord) -> PolicyDecision:
    """Rebuild the policy decision a request was opened or last reopened under.

    ``execute`` runs it only after ``recheck`` found that the policies loaded now decide the
    same mode, production flag, approvals and approver groups.
    """
    return PolicyDecision(
        action=record.action,
        mode="approve",
        policy=record.policy or None,
        production=record.production,
        required_approvals=record.required_approvals,
        approver_groups=tuple(record.approver_groups or ()),
        digest=record.params_digest,
    )


def execute(
    session: Session,
    settings: Settings,
    record: ApprovalRequestRecord,
    *,
    now: datetime,
    actor: str,
    context_factory: ContextFactory = default_context,
) -> DecisionOutcome:
    """Run the approved change of ``record`` through the runner and store the result: the
    apply, or for a rollback request (``rollback_of``) the rollback of the run it names."""
    if not settings.actions.enabled:
        message = (
            f"{record.action} is approved, but actions.enabled is false, so nothing ran; it "
            "runs at the next approve of this request after actions.enabled is set to true"
        )
        return DecisionOutcome("approved", record.id, record.status, message)

    request = stored_action_request(record)
    votes: Sequence[ApprovalVote] = votes_of(session, record)
    context = context_factory(settings, record.tenant)
    try:
        changes = _still_holds(session, settings, record, context, now)
        if changes:
            supersede_request(session, record, changes, now=now)
            session.commit()
            again = (
                "ask for the rollback again" if record.rollback_of
                else "the next pass opens a request under the current labels and policies"
            )
            message = (
                f"{record.action} did not run: {'; '.join(changes)}. The request is "
                f"superseded; {again}"
            )
            return DecisionOutcome(
                "superseded", record.id, record.status, message,
                error=ActionNotAllowedError(message),
            )
        decision = stored_decision(record)
        authorize(
            decision, request, votes, now=now,
            approval_ttl=timedelta(hours=settings.approvals.ttl_hours),
            rules=guard_rules(settings),
        )
        run = runner.run(
            session, request, decision, votes,
            mode=_mode(record), context=context, now=now, request_id=record.id, actor=actor,
        )
    except CostwardenError as exc:
        # The runner recorded a refused or failed run; a refusal before it is audited here. A
        # Palette error is a SourceError rather than an ActionError and fails the request too.
        session.rollback()
        record.status = "failed"
        _audit_not_run(session, record, actor, exc, now)
        session.commit()
        logger.warning("approved %s of request %s did not run: %s", record.action, record.id, exc)
        return DecisionOutcome(
            "failed", record.id, record.status, f"{record.action} did not run: {exc}",
            _latest_run(session, record), error=exc,
        )
    finally:
        context.close()

    if runner.in_progress(run):
        # Another decision of the same request is applying the change right now; that caller
        # records the result, so this one neither waits nor marks the request failed.
        session.rollback()
        return DecisionOutcome(
            "unchanged", record.id, record.status,
            f"{record.action} is already running as run {run.id}; nothing else ran", run.id,
        )

    record.status = "executed" if run.status == "succeeded" else "failed"
    session.commit()
    summary = (run.result or {}).get("summary") or run.error or run.status
    status: OutcomeStatus = "executed" if run.status == "succeeded" else "failed"
    return DecisionOutcome(
        status, record.id, record.status, f"{record.action} {run.status}: {summary}", run.id
    )


def _mode(record: ApprovalRequestRecord) -> RunMode:
    return "rollback" if record.rollback_of else "apply"


def _latest_run(session: Session, record: ApprovalRequestRecord) -> str | None:
    """Return the id of the newest apply (or rollback) run recorded for a request, or None."""
    return session.scalar(
        select(ActionRunRecord.id)
        .where(ActionRunRecord.request_id == record.id, ActionRunRecord.mode == _mode(record))
        .order_by(ActionRunRecord.started_at.desc())
        .limit(1)
    )


def _still_holds(
    session: Session,
    settings: Settings,
    record: ApprovalRequestRecord,
    context: ActionContext,
    now: datetime,
) -> list[str]:
    """Check ``record`` against its audit entry, the current labels and the current policies.

    Raises ``ApprovalError`` when the request row's decision fields differ from the ones its
    ``requested`` or ``reopened`` audit entry recorded (an edited row). Returns the changes that
    supersede the request, empty when it may run. The live labels come from Palette; a failed
    read raises ``SourceError``.
    """
    _check_recorded_decision(session, record)
    _check_recorded_votes(session, record)
    scope = stored_action_request(record).scope
    current = {
        STORED: stored_labels(session, scope),
        LIVE: live_labels(session, context, scope),
    }
    policies = load_configured_policies(settings)
    return list(recheck(record, policies, current, now=now).changes)


def _check_recorded_decision(session: Session, record: ApprovalRequestRecord) -> None:
    recorded = recorded_decision(session, record)
    if recorded is None:
        raise ApprovalError(
            f"approval request {record.id} has no 'requested' audit entry, so its decision "
            "fields cannot be checked; nothing runs. Run 'costwarden audit verify'"
        )
    row = {
        "digest": record.params_digest,
        "production": record.production,
        "required_approvals": record.required_approvals,
        "approver_groups": sorted(record.approver_groups or []),
    }
    audited = {
        "digest": recorded.get("digest"),
        "production": recorded.get("production"),
        "required_approvals": recorded.get("required_approvals"),
        "approver_groups": sorted(recorded.get("approver_groups") or []),
    }
    edited = [name for name in row if row[name] != audited[name]]
    if edited:
        raise ApprovalError(
            f"approval request {record.id}: {', '.join(edited)} in the database differ from the "
            "values its audit entry recorded, so the row was edited; nothing runs and the "
            "request is failed. Run 'costwarden audit verify' to see what else changed"
        )


def _check_recorded_votes(session: Session, record: ApprovalRequestRecord) -> None:
    """Raise ``ApprovalError`` when a decision row of ``record`` has no audit entry.

    Every decision costwarden records writes an ``approval`` entry with the same actor, vote,
    channel and token id in the same transaction, so a row without one was inserted or edited
    in the database.
    """
    audited: Counter[tuple[Any, ...]] = Counter()
    for entry in audit_entries_of(session, record):
        detail = entry.detail or {}
        if entry.kind != "approval":
            continue
        if detail.get("event") == "reopened":
            # A reopen cleared the decisions before it, so their entries no longer vouch for
            # a row: a cleared decision written back into the table does not count.
            audited.clear()
            continue
        audited[(entry.actor, detail.get("event"), detail.get("channel"),
                 detail.get("token_id"))] += 1
    for item in decisions_of(session, record.id):
        key = (item.actor, item.decision, item.channel, item.token_id)
        if audited[key] < 1:
            raise ApprovalError(
                f"approval request {record.id}: the {item.decision} by {item.actor!r} via "
                f"{item.channel} has no audit entry, so it was written outside costwarden; "
                "nothing runs and the request is failed. Run 'costwarden audit verify' to see "
                "what else changed"
            )
        audited[key] -= 1


def _audit_not_run(
    session: Session,
    record: ApprovalRequestRecord,
    actor: str,
    exc: CostwardenError,
    now: datetime,
) -> None:
    trail.append(
        session,
        tenant=record.tenant,
        kind="approval",
        subject=f"{record.subject_kind}:{record.subject_id}",
        actor=actor or "unknown",
        summary=f"approved {record.action} of request {record.id} did not run: {exc}",
        detail={
            "event": "failed",
            "request_id": record.id,
            "digest": record.params_digest,
            "error": f"{type(exc).__name__}: {exc}",
        },
        recorded_at=now,
    )


def retry(
    store: Store,
    settings: Settings,
    *,
    request_id: str,
    actor: str,
    now: datetime | None = None,
    tenant: str | None = None,
    context_factory: ContextFactory = default_context,
) -> DecisionOutcome:
    """Run a ``failed`` request again with its recorded votes, for example after a Palette
    outage or a wrong API key.

    The run goes through every check of ``execute`` and the guard, so votes older than
    ``approvals.ttl_hours`` no longer count. Raises ``ApprovalError`` when the request is not
    ``failed`` or has expired, and ``NotFoundError`` for an unknown request.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    tenant = tenant or settings.service.tenant
    with Session(store.engine, expire_on_commit=False) as session:
        record = find_request(session, tenant, request_id)
        if record.status != "failed":
            raise ApprovalError(
                f"approval request {record.id} is {record.status}; only failed requests can be "
                "retried"
            )
        if _utc(record.expires_at) <= now:
            raise ApprovalError(
                f"approval request {record.id} expired at {_utc(record.expires_at).isoformat()}; "
                "the next pass that proposes the change reopens it for new approvals"
            )
        record.status = "approved"
        trail.append(
            session,
            tenant=record.tenant,
            kind="approval",
            subject=f"{record.subject_kind}:{record.subject_id}",
            actor=actor,
            summary=f"{actor} retried {record.action} of failed request {record.id}",
            detail={"event": "retried", "request_id": record.id, "digest": record.params_digest},
            recorded_at=now,
        )
        session.commit()
        logger.info("approval request %s retried by %s", record.id, actor)
        return execute(session, settings, record, now=now, actor=actor,
                       context_factory=context_factory)


def _audit_refusal(
    session: Session,
    record: ApprovalRequestRecord,
    vote: Vote,
    actor: str,
    channel: str,
    reason: str,
    now: datetime,
    claims: ApprovalClaims | None,
) -> None:
    trail.append(
        session,
        tenant=record.tenant,
        kind="approval",
        subject=f"{record.subject_kind}:{record.subject_id}",
        actor=actor or "unknown",
        summary=f"{vote} of {record.action} by {actor or 'unknown'} via {channel} refused: "
        f"{reason}",
        detail={
            "event": "refused",
            "request_id": record.id,
            "vote": vote,
            "channel": channel,
            "reason": reason,
            "token_id": claims.token_id if claims is not None else None,
            "token_digest": claims.digest if claims is not None else None,
        },
        recorded_at=now,
    )


def audit_token_refusal(
    store: Store, tenant: str, *, actor: str, channel: str, reason: str, now: datetime
) -> None:
    """Audit a token that failed before it named a known request (forged, malformed, expired)."""
    with store.transaction() as session:
        trail.append(
            session,
            tenant=tenant,
            kind="approval",
            subject="approval-token",
            actor=actor or "unknown",
            summary=f"approval token from {channel} refused: {reason}",
            detail={"event": "refused", "channel": channel, "reason": reason},
            recorded_at=now,
        )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
