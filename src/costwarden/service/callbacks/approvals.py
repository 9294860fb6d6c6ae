"""Approval decisions that arrive through channels: Slack buttons and signed links.

Both carry an approval token (``costwarden.approvals.tokens``). ``channel_decision`` verifies
it and hands the decision to ``costwarden.approvals.decide``; a token that fails verification
is audited before the error is raised. The link pages ``GET`` and ``POST /actions/{token}``
serve tokens that start with ``apr1.``; other tokens are alert links (``links.py``).

A signed link is a bearer token: whoever holds the link can use it once, and the name typed
on the page is recorded as the actor without further proof. Approver groups that list people
by name therefore do not authenticate link decisions; use Slack, Jira, the API or the CLI where
the actor must be proven.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from costwarden.approvals.decisions import DecisionOutcome, audit_token_refusal, decide
from costwarden.approvals.requests import find_request
from costwarden.approvals.tokens import ApprovalClaims, signer_from_settings
from costwarden.domain.governance import Vote
from costwarden.errors import ApprovalError, NotFoundError
from costwarden.service.state import ServiceState

logger = logging.getLogger(__name__)

MAX_ACTOR = 200


def verify_token(state: ServiceState, token: str, actor: str, channel: str) -> ApprovalClaims:
    """Return the token's claims; audit and raise ``ApprovalError`` when it does not verify."""
    now = datetime.now(UTC)
    signer = signer_from_settings(state.settings.notify.link_secret)
    try:
        if signer is None:
            raise ApprovalError(
                "this service has no notify.link_secret, so it accepts no approval tokens"
            )
        return signer.verify(token, now)
    except ApprovalError as exc:
        audit_token_refusal(
            state.store, state.settings.service.tenant, actor=actor, channel=channel,
            reason=str(exc), now=now,
        )
        logger.warning("approval token from %s refused: %s", channel, exc)
        raise


def channel_decision(
    state: ServiceState,
    token: str,
    vote: Vote,
    actor: str,
    channel: str,
    detail: Mapping[str, Any],
    *,
    per_actor_token: bool,
) -> DecisionOutcome:
    """Verify ``token`` and decide its approval request as ``actor``."""
    claims = verify_token(state, token, actor, channel)
    return decide(
        state.store,
        state.settings,
        request_id=claims.request_id,
        vote=vote,
        actor=actor,
        channel=channel,
        claims=claims,
        detail=detail,
        per_actor_token=per_actor_token,
    )


def page_facts(state: ServiceState, claims: ApprovalClaims) -> dict[str, Any]:
    """Return what the confirmation page shows about the request of a verified token."""
    with state.store.transaction() as session:
        record = find_request(session, state.settings.service.tenant, claims.request_id)
        evidence = record.evidence or {}
        return {
            "id": record.id,
            "status": record.status,
            "action": record.action,
            "title": evidence.get("title"),
            "savings": evidence.get("estimated_savings_per_month"),
            "currency": evidence.get("currency"),
            "required": record.required_approvals,
            "production": record.production,
            "digest": record.params_digest,
        }


def confirm_body(claims: ApprovalClaims, facts: Mapping[str, Any]) -> str:
    """Return the HTML of the confirmation form; the POST names the actor."""
    verb = "Approve" if claims.decision == "approve" else "Reject"
    title = html.escape(str(facts.get("title") or facts["action"]))
    savings = ""
    if facts.get("savings") is not None:
        savings = (f"<p>Estimated savings: {html.escape(str(facts['savings']))} "
                   f"{html.escape(str(facts.get('currency') or ''))} per month.</p>")
    production = " This is a production scope." if facts.get("production") else ""
    return (
        f"<p><strong>{title}</strong></p>{savings}"
        f"<p>Action <code>{html.escape(str(facts['action']))}</code>, request "
        f"<code>{html.escape(str(facts['id']))}</code>, status {html.escape(str(facts['status']))}"
        f". It needs {int(facts['required'])} approval(s).{production} This link is valid until "
        f"{claims.expires_at:%Y-%m-%d %H:%M} UTC and works once.</p>"
        '<form method="post"><p><label>Your name or email '
        f'<input name="actor" required maxlength="{MAX_ACTOR}"></label></p>'
        f'<button type="submit">{verb}</button></form>'
    )


def decide_link(state: ServiceState, token: str, actor: str, detail: Mapping[str, Any]
                ) -> tuple[int, str, str]:
    """Decide the request of a link token; return the HTTP status, page title and body."""
    actor = actor.strip()[:MAX_ACTOR]
    try:
        claims = verify_token(state, token, actor, "link")
    except ApprovalError as exc:
        return 401, "Invalid approval link", f"<p>{html.escape(str(exc))}</p>"
    try:
        outcome = decide(
            state.store, state.settings, request_id=claims.request_id, vote=claims.decision,
            actor=actor, channel="link", claims=claims, detail=detail,
        )
    except ApprovalError as exc:
        # A reused token answers 409 like a repeated decision; other refusals are 403.
        return exc.http_status, "Decision not accepted", f"<p>{html.escape(str(exc))}</p>"
    except NotFoundError as exc:
        return 404, "Approval request not found", f"<p>{html.escape(str(exc))}</p>"
    except SQLAlchemyError as exc:
        logger.error("approval link: the database failed: %s", exc)
        return 503, "Try again later", "<p>The decision could not be stored.</p>"
    status = 409 if outcome.status == "unchanged" else 200
    return status, _title(outcome), f"<p>{html.escape(outcome.message)}</p>"


def _title(outcome: DecisionOutcome) -> str:
    titles = {
        "recorded": "Approval recorded",
        "approved": "Approved",
        "executed": "Approved and applied",
        "failed": "Approved, but the change failed",
        "rejected": "Rejected",
        "superseded": "Approved, but not run: the request is out of date",
        "unchanged": "Already decided",
    }
    return titles[outcome.status]
