"""Jira admin webhook: approve or reject an alert by moving its ticket to a status.

Jira signs each delivery of an admin webhook that has a secret with
``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` and keeps
``X-Atlassian-Webhook-Identifier`` across its retries. The route checks the signature against
the ``webhook_secret`` of every configured jira channel, ignores events that are not an
approval or a rejection, reads the issue again from Jira before it acts, and records the
decision once per identifier. The response is 204 when the event is handled, and 503 when
Jira cannot be read, so that Jira delivers the event again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from costwarden.approvals.decisions import audit_token_refusal, decide
from costwarden.domain.governance import Vote
from costwarden.errors import ApprovalError, DeliveryError, NotFoundError
from costwarden.notify.jira import JiraChannel, JiraSettings
from costwarden.notify.registry import CHANNELS, ChannelContext, InboundResponse, ResponseAction
from costwarden.notify.responses import store_response
from costwarden.notify.tickets import TICKET_KEY_PREFIX, ticket_key_of
from costwarden.service.state import ServiceState, service_state
from costwarden.store.tables import (
    AlertResponseRecord,
    ApprovalRequestRecord,
    NotificationRecord,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/callbacks", tags=["callbacks"])

State = Annotated[ServiceState, Depends(service_state)]

SIGNATURE_HEADER = "X-Hub-Signature"
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"
RETRY_AFTER_SECONDS = 60

DESCRIPTION = """\
Receive the `jira:issue_updated` events of a Jira admin webhook (Jira settings, System,
WebHooks) whose secret is the `webhook_secret` of a jira channel. Filter the webhook to the
tickets costwarden opens, for example `project = FIN AND labels = cost-optimization`.

Moving a ticket to a status in `approve_status_ids` (or named in `approve_status_names`)
approves its alert, and `reject_status_ids` or `reject_status_names` reject it. A payload
with a transition name (workflow post functions send one) matches `approve_transition` or
`reject_transition`. The issue is read again from Jira before the decision is recorded. When
the channel lists `approvers`, other accounts are ignored. The first approval or rejection of
an alert wins across Slack, links and Jira: a later one, or a redelivery (with the same or a
new `X-Atlassian-Webhook-Identifier`), records nothing new.
"""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """An approval or rejection that a webhook event claims, before Jira confirms it."""

    action: ResponseAction
    issue_key: str
    status_id: str | None
    status_name: str | None


def sign(secret: str, body: bytes) -> str:
    """Return the ``X-Hub-Signature`` value that Jira sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@router.post(
    "/jira",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Jira approval webhook",
    description=DESCRIPTION,
    responses={
        401: {"description": "Missing signature, or none of the jira channels' secrets match."},
        404: {"description": "No jira channel has a webhook_secret."},
        413: {"description": "The body is larger than service.max_body_bytes."},
        503: {"description": "Jira could not be read to confirm; deliver the event again."},
    },
)
async def jira_webhook(request: Request, state: State) -> Response:
    """Record the approval or rejection of an alert whose Jira ticket moved to a status."""
    channels = _jira_channels(state)
    if not channels:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no jira channel has a webhook_secret")

    body = await _read_body(request, state.settings.service.max_body_bytes)
    matching = _verified_channels(request.headers.get(SIGNATURE_HEADER, ""), body, channels)
    try:
        event = json.loads(body)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(event, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not a JSON object")

    channel = _channel_for(matching, event)
    change = status_change(event, channel.settings)
    if change is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    identifier = request.headers.get(IDENTIFIER_HEADER) or hashlib.sha256(body).hexdigest()
    try:
        await run_in_threadpool(_apply, state, channel, event, change, identifier)
    except DeliveryError as exc:
        logger.warning("jira webhook %s: confirming %s failed: %s",
                       identifier, change.issue_key, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Jira could not be read to confirm the change; deliver the event again",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _jira_channels(state: ServiceState) -> list[JiraChannel]:
    """Return the configured jira channels that have a webhook secret."""
    found = []
    for name, options in sorted(state.settings.notify.channels.items()):
        if options.get("type") != "jira":
            continue
        channel = CHANNELS.create(name, options, ChannelContext())
        assert isinstance(channel, JiraChannel)
        if channel.settings.webhook_secret is not None:
            found.append(channel)
    return found


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body exceeds {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body exceeds {limit} bytes")
    return body


def _verified_channels(
    signature: str, body: bytes, channels: list[JiraChannel]
) -> list[JiraChannel]:
    """Return the channels whose secret produced ``signature``; raise 401 when none did."""
    if not signature.startswith("sha256="):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"missing or malformed {SIGNATURE_HEADER} header"
        )
    matching = []
    for channel in channels:
        secret = channel.settings.webhook_secret
        assert secret is not None
        expected = sign(secret.get_secret_value(), body)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            matching.append(channel)
    if not matching:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"{SIGNATURE_HEADER} matches no jira channel's webhook_secret",
        )
    return matching


def _channel_for(matching: list[JiraChannel], event: dict[str, Any]) -> JiraChannel:
    """Pick the channel of the issue's project when several channels share one secret."""
    key = str((event.get("issue") or {}).get("key") or "")
    for channel in matching:
        if key.startswith(f"{channel.settings.project}-"):
            return channel
    return matching[0]


def status_change(event: dict[str, Any], settings: JiraSettings) -> StatusChange | None:
    """Return the approval or rejection that a ``jira:issue_updated`` event claims, or None.

    A transition name in the payload (workflow post functions send one) counts first, then a
    changelog item that moves ``status`` to an approved or rejected status: by id when the
    channel lists ids, otherwise by name.
    """
    if event.get("webhookEvent") != "jira:issue_updated":
        return None
    key = (event.get("issue") or {}).get("key")
    if not isinstance(key, str) or not key:
        return None

    transition = event.get("transition") or {}
    name = transition.get("transitionName")
    transitions: tuple[tuple[ResponseAction, str | None], ...] = (
        ("approve", settings.approve_transition),
        ("reject", settings.reject_transition),
    )
    for action, wanted in transitions:
        if wanted and isinstance(name, str) and name.casefold() == wanted.casefold():
            return StatusChange(action, key, None, transition.get("to_status"))

    for item in (event.get("changelog") or {}).get("items") or []:
        if not isinstance(item, dict) or item.get("field") != "status":
            continue
        action = _status_action(item.get("to"), item.get("toString"), settings)
        if action is not None:
            return StatusChange(action, key, item.get("to"), item.get("toString"))
    return None


def _status_action(
    status_id: Any, name: Any, settings: JiraSettings
) -> ResponseAction | None:
    choices: tuple[tuple[ResponseAction, list[str], list[str]], ...] = (
        ("approve", settings.approve_status_ids, settings.approve_status_names),
        ("reject", settings.reject_status_ids, settings.reject_status_names),
    )
    for action, ids, names in choices:
        if ids and str(status_id) in ids:
            return action
        if not ids and isinstance(name, str) and name.casefold() in _folded(names):
            return action
    return None


def _folded(names: list[str]) -> set[str]:
    return {name.casefold() for name in names}


def _apply(
    state: ServiceState,
    channel: JiraChannel,
    event: dict[str, Any],
    change: StatusChange,
    identifier: str,
) -> None:
    """Check the approver, confirm the status with Jira and record the decision once."""
    dedupe_key = f"jira:{identifier}"
    user = event.get("user") or {}
    actor = str(user.get("accountId") or "")
    with state.store.transaction() as session:
        seen = session.scalar(
            select(AlertResponseRecord.id).where(AlertResponseRecord.dedupe_key == dedupe_key)
        )
    if seen is not None:
        logger.info("jira webhook %s was delivered before; nothing to do", identifier)
        return
    if channel.settings.approvers and actor not in channel.settings.approvers:
        logger.warning(
            "jira webhook %s: %s of %s by account %s ignored; it is not in the approvers of "
            "channel %s", identifier, change.action, change.issue_key, actor or "(none)",
            channel.name,
        )
        return

    with httpx.Client() as client:
        fields = channel.read_issue(change.issue_key, client)
    if not _confirmed(fields, change):
        logger.warning(
            "jira webhook %s: %s is not in the status the event claims; ignored",
            identifier, change.issue_key,
        )
        return
    assert fields is not None
    _record(state, channel, change, fields, actor, user, dedupe_key)


def _confirmed(fields: dict[str, Any] | None, change: StatusChange) -> bool:
    if fields is None:
        return False
    current = fields.get("status") or {}
    if change.status_id is not None:
        return str(current.get("id")) == str(change.status_id)
    name = current.get("name")
    return isinstance(name, str) and name.casefold() == str(change.status_name).casefold()


def _record(
    state: ServiceState,
    channel: JiraChannel,
    change: StatusChange,
    fields: dict[str, Any],
    actor: str,
    user: dict[str, Any],
    dedupe_key: str,
) -> None:
    labels = [str(label) for label in fields.get("labels") or []]
    with state.store.transaction() as session:
        alert_id = _alert_of(session, channel.name, change.issue_key, labels)
        if alert_id is None:
            logger.warning(
                "jira webhook: issue %s belongs to no alert of channel %s; ignored",
                change.issue_key, channel.name,
            )
            return
        approval = _approval_of(session, channel.name, alert_id)
        closed = None if approval is not None else _closed_request_of(session, channel.name,
                                                                     alert_id)
    if approval is not None:
        _decide_request(state, channel, change, approval, actor, user, dedupe_key)
        return
    if closed is not None:
        _reject_closed(state, channel, change, actor, closed)
        return

    # A redelivery, even under a new identifier, finds the alert's first decision and
    # changes nothing; so does a decision made earlier in another channel.
    response = InboundResponse(
        alert_id=alert_id,
        channel=channel.name,
        action=change.action,
        actor=actor or "jira",
        dedupe_key=dedupe_key,
        received_at=datetime.now(UTC),
        detail={
            "issue": change.issue_key,
            "status": (fields.get("status") or {}).get("name"),
            "display_name": user.get("displayName"),
        },
    )
    outcome = store_response(state.store, response)
    earlier = outcome.record
    if outcome.status == "decided" and earlier is not None:
        logger.warning(
            "jira webhook: %s of %s ignored; alert %s was already decided (%s) by %s from "
            "channel %s",
            change.action, change.issue_key, alert_id, earlier.action, earlier.actor,
            earlier.channel,
        )


def _approval_of(session: Session, channel: str, alert_id: str) -> dict[str, Any] | None:
    """Return the approval request the ticket's notice showed, when it showed one."""
    notice = session.scalar(
        select(NotificationRecord.notice).where(
            NotificationRecord.alert_id == alert_id, NotificationRecord.channel == channel
        )
    )
    approval = notice.get("approval") if isinstance(notice, dict) else None
    if isinstance(approval, dict) and approval.get("request_id") and approval.get("digest"):
        return approval
    return None


def _closed_request_of(
    session: Session, channel: str, alert_id: str
) -> ApprovalRequestRecord | None:
    """Return the newest approval request of a recommendation ticket that has no open request.

    A pass drops the approval from the ticket's notice once its request is closed (superseded,
    for example), so the transition would otherwise count as a response to the alert.
    """
    notice = session.scalar(
        select(NotificationRecord.notice).where(
            NotificationRecord.alert_id == alert_id, NotificationRecord.channel == channel
        )
    )
    if not isinstance(notice, dict) or notice.get("kind") != "recommendation":
        return None
    ids = [str(item.get("id")) for item in notice.get("actions") or [] if isinstance(item, dict)]
    if not ids:
        return None
    return session.scalars(
        select(ApprovalRequestRecord)
        .where(ApprovalRequestRecord.subject_id.in_(ids),
               ApprovalRequestRecord.status != "pending")
        .order_by(ApprovalRequestRecord.created_at.desc())
        .limit(1)
    ).first()


def _reject_closed(
    state: ServiceState,
    channel: JiraChannel,
    change: StatusChange,
    actor: str,
    record: ApprovalRequestRecord,
) -> None:
    """Log and audit a transition on the ticket of a request that can no longer be decided."""
    reason = (
        f"approval request {record.id} of issue {change.issue_key} is {record.status}, so the "
        "transition decides nothing; decide the newest request of the recommendation"
    )
    logger.warning("jira webhook: %s of %s by %s rejected: %s",
                   change.action, change.issue_key, actor or "(none)", reason)
    audit_token_refusal(state.store, record.tenant, actor=actor,
                        channel=f"jira:{channel.name}", reason=reason, now=datetime.now(UTC))


def _decide_request(
    state: ServiceState,
    channel: JiraChannel,
    change: StatusChange,
    approval: dict[str, Any],
    actor: str,
    user: dict[str, Any],
    dedupe_key: str,
) -> None:
    """Decide the approval request of the ticket, bound to the change the ticket showed."""
    vote: Vote = "approve" if change.action == "approve" else "reject"
    try:
        outcome = decide(
            state.store, state.settings, request_id=str(approval["request_id"]), vote=vote,
            actor=actor, channel=f"jira:{channel.name}", digest=str(approval["digest"]),
            detail={"issue": change.issue_key, "webhook": dedupe_key,
                    "display_name": user.get("displayName")},
        )
    except (ApprovalError, NotFoundError) as exc:
        logger.warning("jira webhook: %s of %s by %s refused: %s",
                       change.action, change.issue_key, actor or "(none)", exc)
        return
    if outcome.status == "unchanged":
        logger.warning("jira webhook: %s of %s changed nothing: %s",
                       change.action, change.issue_key, outcome.message)
        return
    logger.info("jira webhook: %s of %s: %s", change.action, change.issue_key, outcome.message)


def _alert_of(session: Session, channel: str, key: str, labels: list[str]) -> str | None:
    """Return the alert of the newest notification that opened ``key`` or carries its label."""
    newest = (NotificationRecord.last_notified_at.desc(),)
    by_ref = session.scalar(
        select(NotificationRecord.alert_id)
        .where(NotificationRecord.channel == channel, NotificationRecord.external_ref == key)
        .order_by(*newest)
        .limit(1)
    )
    if by_ref is not None:
        return str(by_ref)

    wanted = {label for label in labels if label.startswith(TICKET_KEY_PREFIX)}
    if not wanted:
        return None
    rows = session.execute(
        select(
            NotificationRecord.alert_id,
            NotificationRecord.kind,
            NotificationRecord.budget,
            NotificationRecord.period_key,
        )
        .where(NotificationRecord.channel == channel)
        .order_by(*newest)
    )
    for alert_id, kind, budget, period_key in rows:
        if ticket_key_of(kind, budget, period_key, alert_id) in wanted:
            return str(alert_id)
    return None
