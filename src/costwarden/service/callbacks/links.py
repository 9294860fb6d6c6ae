"""Signed approval links: ``GET /actions/{token}`` asks, ``POST /actions/{token}`` decides.

Teams cards and emails carry ``Action.OpenUrl`` links signed by ``notify.links.LinkSigner``.
A GET changes nothing, because mail and chat link scanners fetch every URL; it shows a small
page with a button that sends the POST. The POST records the decision once: a second use of
the same link gets 409 "already used" (also when the two uses arrive at once), and an approve
or reject of an alert that someone already decided, on any channel, gets 409 "already decided".
A forged, malformed or expired link gets 401, and a link whose alert was never sent to its
channel gets 404 and records nothing.

Tokens that start with ``apr1.`` are approval tokens of an approval request; ``approvals.py``
serves them, and the page asks for the approver's name.

NOTE: anyone who holds a link can use it. The landing page does not sign people in, so the name
typed on an approval page is recorded without proof.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from costwarden.approvals.tokens import is_approval_token
from costwarden.errors import ApprovalError, CallbackError, NotFoundError
from costwarden.notify.links import LinkClaims, LinkSigner
from costwarden.notify.registry import InboundResponse
from costwarden.notify.responses import (
    DECISIONS,
    ResponseOutcome,
    decision_of,
    snooze_hours_error,
    store_response,
)
from costwarden.service.callbacks import approvals
from costwarden.service.state import ServiceState, service_state
from costwarden.store.tables import AlertResponseRecord, NotificationRecord

logger = logging.getLogger(__name__)

router = APIRouter(tags=["callbacks"])

State = Annotated[ServiceState, Depends(service_state)]

SNOOZE_CHOICES = (4, 24, 72, 168)
"""Hours the snooze page offers, besides ``notify.noise.snooze_hours``."""
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
"""The token in the URL is a credential: no caching, no Referer, no indexing, no scripts."""
VERBS = {"approve": "Approve", "reject": "Reject", "snooze": "Snooze"}
PAST = {"approve": "approved", "reject": "rejected", "snooze": "snoozed"}


Outcome = ResponseOutcome
"""The result of recording a decision from a link or a Slack button."""


def _signer(state: ServiceState) -> LinkSigner | None:
    notify = state.settings.notify
    if notify.link_secret is None or not notify.public_url:
        return None
    return LinkSigner(notify.link_secret.get_secret_value(), notify.public_url,
                      notify.link_ttl_hours)


@router.get("/actions/{token}", response_class=HTMLResponse, summary="Approval link page")
async def link_page(token: str, state: State) -> HTMLResponse:
    """Show what the link decides and a button that confirms it; nothing is recorded."""
    if is_approval_token(token):
        return await _approval_page(state, token)
    claims, failure = _verify(state, token)
    if failure is not None:
        return failure
    assert claims is not None

    try:
        title, used = await run_in_threadpool(_page_facts, state, claims)
    except SQLAlchemyError as exc:
        return _unavailable(exc)
    if used is not None:
        return _unknown_page(claims) if used.record is None else _already_page(used)
    default_hours = state.settings.notify.noise.snooze_hours
    return _page(200, f"{VERBS[claims.action]} alert?",
                 _confirm_body(claims, title, default_hours))


@router.post("/actions/{token}", response_class=HTMLResponse, summary="Approval link decision")
async def link_decision(
    token: str,
    request: Request,
    state: State,
    hours: Annotated[int | None, Form()] = None,
    actor: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """Record the decision of a link once; a second use gets 409."""
    if is_approval_token(token):
        detail = _client_detail(request)
        code, title, body = await run_in_threadpool(
            approvals.decide_link, state, token, actor or "", detail
        )
        return _page(code, title, body)
    claims, failure = _verify(state, token)
    if failure is not None:
        return failure
    assert claims is not None

    snooze_hours = None
    if claims.action == "snooze":
        snooze_hours = state.settings.notify.noise.snooze_hours if hours is None else hours
        problem = snooze_hours_error(snooze_hours)
        if problem is not None:
            return _page(400, "Snooze not accepted",
                         f"<p>{html.escape(problem)}. Nothing changed; open the link again and "
                         "pick a shorter snooze.</p>")
    response = InboundResponse(
        alert_id=claims.alert_id,
        channel=claims.channel,
        action=claims.action,
        actor="signed link",
        dedupe_key=claims.dedupe_key,
        received_at=datetime.now(UTC),
        snooze_hours=snooze_hours,
        detail=_request_detail(request, claims),
    )
    try:
        outcome = await run_in_threadpool(_record, state, response)
    except SQLAlchemyError as exc:
        return _unavailable(exc)
    if outcome.record is None:
        return _unknown_page(claims)
    if not outcome.created:
        return _already_page(outcome)
    return _page(200, f"Alert {PAST[claims.action]}", _done_body(claims, outcome.record))


async def _approval_page(state: ServiceState, token: str) -> HTMLResponse:
    """Show the approval request of an approval token and a form that names the actor."""
    try:
        claims = await run_in_threadpool(approvals.verify_token, state, token, "", "link")
        facts = await run_in_threadpool(approvals.page_facts, state, claims)
    except ApprovalError as exc:
        return _page(401, "Invalid approval link", f"<p>{html.escape(str(exc))}</p>")
    except NotFoundError as exc:
        return _page(404, "Approval request not found", f"<p>{html.escape(str(exc))}</p>")
    except SQLAlchemyError as exc:
        return _unavailable(exc)
    verb = "Approve" if claims.decision == "approve" else "Reject"
    return _page(200, f"{verb} change?", approvals.confirm_body(claims, facts))


def _client_detail(request: Request) -> dict[str, Any]:
    return {
        "via": "link",
        "client": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent", "")[:200],
    }


def _verify(state: ServiceState, token: str) -> tuple[LinkClaims | None, HTMLResponse | None]:
    signer = _signer(state)
    if signer is None:
        return None, _page(404, "Approval links are off",
                           "<p>This service has no notify.link_secret or notify.public_url, so "
                           "it accepts no approval links.</p>")
    try:
        return signer.verify(token), None
    except CallbackError as exc:
        logger.warning("approval link rejected: %s", exc)
        return None, _page(401, "Invalid approval link", f"<p>{html.escape(str(exc))}</p>")


def _page_facts(
    state: ServiceState, claims: LinkClaims
) -> tuple[str | None, Outcome | None]:
    """Return the alert's title, and the earlier use of this link, the alert's decision, or
    an unknown outcome when the link's alert was never sent to its channel."""
    with state.store.transaction() as session:
        used = session.scalar(
            select(AlertResponseRecord)
            .where(AlertResponseRecord.dedupe_key == claims.dedupe_key)
        )
        decided = None
        if used is None and claims.action in DECISIONS:
            decided = decision_of(session, claims.alert_id)
        notice = session.scalar(
            select(NotificationRecord.notice).where(
                NotificationRecord.alert_id == claims.alert_id,
                NotificationRecord.channel == claims.channel,
            )
        )
        title = notice.get("title") if isinstance(notice, dict) else None
    if used is None and notice is None:
        return None, Outcome("unknown", None)
    if used is not None:
        return title, Outcome("duplicate", used)
    if decided is not None:
        return title, Outcome("decided", decided)
    return title, None


def _record(state: ServiceState, response: InboundResponse) -> Outcome:
    return store_response(state.store, response, same_channel=True)


def _request_detail(request: Request, claims: LinkClaims) -> dict[str, Any]:
    client = request.client.host if request.client else None
    return {
        "via": "link",
        "token_id": claims.token_id,
        "client": client,
        "user_agent": request.headers.get("user-agent", "")[:200],
    }


def _confirm_body(claims: LinkClaims, title: str | None, default_hours: int) -> str:
    verb = VERBS[claims.action]
    about = f"<p><strong>{html.escape(title)}</strong></p>" if title else ""
    choice = ""
    if claims.action == "snooze":
        options = "".join(
            f'<option value="{h}"{" selected" if h == default_hours else ""}>{h} hours'
            "</option>"
            for h in sorted({*SNOOZE_CHOICES, default_hours})
        )
        choice = f'<p><label>Snooze for <select name="hours">{options}</select></label></p>'
    return (
        f"{about}<p>Alert <code>{html.escape(claims.alert_id)}</code>, sent to channel "
        f"{html.escape(claims.channel)}. This link is valid until "
        f"{claims.expires_at:%Y-%m-%d %H:%M} UTC and works once.</p>"
        f'<form method="post">{choice}<button type="submit">{verb}</button></form>'
    )


def _done_body(claims: LinkClaims, record: AlertResponseRecord) -> str:
    text = f"<p>Alert <code>{html.escape(claims.alert_id)}</code> is {PAST[claims.action]}."
    if record.snoozed_until is not None:
        text += f" Messages about it pause until {record.snoozed_until:%Y-%m-%d %H:%M} UTC."
    return text + "</p>"


def _unknown_page(claims: LinkClaims) -> HTMLResponse:
    body = (f"<p>Alert <code>{html.escape(claims.alert_id)}</code> was never sent to channel "
            f"{html.escape(claims.channel)}, so this link decides nothing. Nothing was "
            "recorded.</p>")
    return _page(404, "Alert not found", body)


def _already_page(outcome: Outcome) -> HTMLResponse:
    record = outcome.record
    assert record is not None
    when = f"{record.received_at:%Y-%m-%d %H:%M} UTC"
    if outcome.status == "decided":
        body = (f"<p>Alert <code>{html.escape(record.alert_id)}</code> was already "
                f"{PAST.get(record.action, record.action)} by {html.escape(record.actor)} on "
                f"{when}. Nothing changed.</p>")
        return _page(409, "Already decided", body)
    body = f"<p>This link was already used on {when}. Nothing changed.</p>"
    return _page(409, "Link already used", body)


def _unavailable(exc: SQLAlchemyError) -> HTMLResponse:
    logger.error("approval link: the database failed: %s", exc)
    response = _page(503, "Try again later",
                     "<p>The decision could not be read or stored. Open the link again in a "
                     "minute.</p>")
    response.headers["Retry-After"] = "30"
    return response


def _page(status: int, title: str, body: str) -> HTMLResponse:
    document = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width\">"
        f"<title>{html.escape(title)} · costwarden</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;"
        "padding:0 1rem}button{font-size:1rem;padding:.5rem 1.5rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=PAGE_HEADERS)
