"""Slack interactivity: the Approve, Reject and Snooze buttons of our messages.

Slack POSTs ``payload=<URL-encoded JSON>`` with ``X-Slack-Request-Timestamp`` and
``X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:{timestamp}:{raw body}")>``.
The route checks the signature against the ``signing_secret`` of every configured slack
channel, rejects timestamps more than 300 seconds from the server clock, records each
decision once (dedupe key: user id and ``action_ts``) and responds 200 at once, because Slack
shows the user an error after 3 seconds. The follow-up message to ``response_url`` is sent
after the response, and only to the Slack host of the channel's ``api_url``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.from_thread
import httpx
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response, status
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from costwarden.approvals.tokens import is_approval_token
from costwarden.domain.governance import Vote
from costwarden.errors import ApprovalError, CallbackError, ConfigError, NotFoundError
from costwarden.notify.registry import CHANNELS, InboundResponse, ResponseAction
from costwarden.notify.responses import store_response
from costwarden.notify.slack import ACTION_IDS, SlackSettings
from costwarden.service.callbacks.approvals import channel_decision
from costwarden.service.callbacks.links import PAST, Outcome
from costwarden.service.state import ServiceState, service_state

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/callbacks", tags=["callbacks"])

State = Annotated[ServiceState, Depends(service_state)]

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
MAX_SKEW_SECONDS = 300
"""Slack's replay window: requests signed further from the server clock are rejected."""
FOLLOW_UP_TIMEOUT_SECONDS = 5.0
MAX_ALERT_ID = 64
ACTIONS: dict[str, ResponseAction] = {action_id: action for action, action_id in ACTION_IDS.items()}

DESCRIPTION = """\
Receive a click on an Approve, Reject or Snooze button of a costwarden Slack message. Set the
Slack app's Interactivity Request URL to `{public_url}/callbacks/slack` and the channel's
`signing_secret` to the app's Signing Secret.

Responds 200 with an empty body once the decision is handled. A click that was recorded before
(also one sent twice at once), an approve or reject of an alert that is already decided on any
channel, and a click on an alert costwarden does not know record nothing and get a message
visible only to the clicking user.
"""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the ``X-Slack-Signature`` value that Slack sends for ``body`` at ``timestamp``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(
    channels: list[tuple[str, SlackSettings]],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> list[tuple[str, SlackSettings]]:
    """Return the channels whose signing secret signed the request; raise ``CallbackError``.

    Several channels match when they belong to one Slack app and share its signing secret.
    """
    stamp = headers.get(TIMESTAMP_HEADER, "")
    sent = headers.get(SIGNATURE_HEADER, "")
    if not stamp or not sent:
        raise CallbackError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        skew = abs(now - int(stamp))
    except ValueError:
        raise CallbackError(f"{TIMESTAMP_HEADER} {stamp[:40]!r} is not a Unix time") from None
    if skew > MAX_SKEW_SECONDS:
        raise CallbackError(
            f"{TIMESTAMP_HEADER} is {skew:.0f} s away from the server clock; at most "
            f"{MAX_SKEW_SECONDS} s is accepted"
        )

    matching = []
    for name, settings in channels:
        assert settings.signing_secret is not None
        expected = signature(settings.signing_secret.get_secret_value(), stamp, body)
        if hmac.compare_digest(expected.encode(), sent.encode()):
            matching.append((name, settings))
    if not matching:
        raise CallbackError("the signature matches no slack channel's signing_secret")
    return matching


def pick_channel(
    matching: list[tuple[str, SlackSettings]], payload: dict[str, Any]
) -> tuple[str, SlackSettings]:
    """Return the matching channel that posts to the Slack channel of the click, else the first.

    A webhook channel has no channel ID, so among channels of one app it is told apart only when
    it is the one match.
    """
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    clicked_in = container.get("channel_id")
    for name, settings in matching:
        if clicked_in and settings.channel == clicked_in:
            return name, settings
    return matching[0]


def signing_channels(state: ServiceState) -> list[tuple[str, SlackSettings]]:
    """Return the configured slack channels that have a signing secret."""
    found = []
    for name, options in sorted(state.settings.notify.channels.items()):
        if options.get("type") != "slack":
            continue
        try:
            settings = CHANNELS.validate(name, options)
        except ConfigError as exc:
            logger.error("slack channel %s is skipped for callbacks: %s", name, exc)
            continue
        if isinstance(settings, SlackSettings) and settings.signing_secret is not None:
            found.append((name, settings))
    return found


@router.post(
    "/slack",
    summary="Slack button clicks",
    description=DESCRIPTION,
    responses={
        400: {"description": "The body has no JSON payload form field."},
        401: {"description": "Missing or wrong signature, or a timestamp outside 300 s."},
        404: {"description": "No slack channel has a signing_secret."},
        413: {"description": "The body is larger than service.max_body_bytes."},
        503: {"description": "The decision could not be stored."},
    },
)
async def slack_action(request: Request, background: BackgroundTasks, state: State) -> Response:
    channels = signing_channels(state)
    if not channels:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no slack channel has a signing_secret")

    body = await _read_body(request, state.settings.service.max_body_bytes)
    try:
        matching = verify(channels, request.headers, body, time.time())
    except CallbackError as exc:
        logger.warning("slack callback rejected: %s", exc)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None

    payload = _payload(body)
    name, settings = pick_channel(matching, payload)
    url = str(payload.get("response_url") or "")
    follow = url if url and follow_up_allowed(url, settings.api_url) else None
    clicks = approval_clicks(payload, name)
    if clicks:
        background.add_task(decide_clicks, state, clicks, follow)
    decisions = _decisions(payload, name, settings, datetime.now(UTC))
    if not decisions:
        return Response(status_code=status.HTTP_200_OK)
    try:
        outcomes = await run_in_threadpool(_record_all, state, decisions)
    except SQLAlchemyError as exc:
        logger.error("slack callback: storing a decision failed: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the decision could not be stored; click again"
        ) from exc

    if follow is not None:
        for decision, outcome in zip(decisions, outcomes, strict=True):
            background.add_task(post_follow_up, follow, follow_up(decision, outcome))
    elif url:
        logger.warning("slack callback: response_url host %s is not the Slack host of channel "
                       "%s; no follow-up sent", urlsplit(url).hostname, name)
    return Response(status_code=status.HTTP_200_OK)


def _payload(body: bytes) -> dict[str, Any]:
    form = parse_qs(body.decode("utf-8", errors="replace"))
    try:
        payload = json.loads(form["payload"][0])
    except (KeyError, IndexError, ValueError):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "the body has no payload form field holding JSON"
        ) from None
    if not isinstance(payload, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the payload is not a JSON object")
    return payload


def _decisions(
    payload: dict[str, Any], channel: str, settings: SlackSettings, now: datetime
) -> list[InboundResponse]:
    """Return the decisions of a ``block_actions`` payload; other payloads and buttons have none."""
    if payload.get("type") != "block_actions":
        return []
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    user_id = str(user.get("id") or "")
    if not user_id:
        logger.warning("slack callback from channel %s has no user id; ignored", channel)
        return []
    decisions = []
    for item in payload.get("actions") or []:
        action = ACTIONS.get(item.get("action_id")) if isinstance(item, dict) else None
        alert_id = item.get("value") if action else None
        if isinstance(alert_id, str) and is_approval_token(alert_id):
            continue
        if not action or not isinstance(alert_id, str) or not 0 < len(alert_id) <= MAX_ALERT_ID:
            continue
        decisions.append(InboundResponse(
            alert_id=alert_id,
            channel=channel,
            action=action,
            actor=user_id,
            dedupe_key=f"slack:{user_id}:{item.get('action_ts') or payload.get('trigger_id')}",
            received_at=now,
            snooze_hours=settings.snooze_hours if action == "snooze" else None,
            detail=_detail(payload, user),
        ))
    return decisions


def _detail(payload: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    team = payload.get("team") if isinstance(payload.get("team"), dict) else {}
    return {
        "via": "slack",
        "user_name": user.get("username") or user.get("name"),
        "team_id": team.get("id"),
        "channel_id": container.get("channel_id"),
        "message_ts": container.get("message_ts"),
    }


@dataclass(frozen=True, slots=True)
class ApprovalClick:
    """A click on an Approve or Reject button that carries an approval token."""

    token: str
    vote: Vote
    actor: str
    channel: str
    detail: dict[str, Any]


def approval_clicks(payload: dict[str, Any], channel: str) -> list[ApprovalClick]:
    """Return the clicks of a ``block_actions`` payload whose button value is an approval token."""
    if payload.get("type") != "block_actions":
        return []
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    user_id = str(user.get("id") or "")
    clicks = []
    for item in payload.get("actions") or []:
        if not isinstance(item, dict):
            continue
        action = ACTIONS.get(item.get("action_id"))
        value = item.get("value")
        if action not in ("approve", "reject") or not isinstance(value, str):
            continue
        if not is_approval_token(value) or not user_id:
            continue
        vote: Vote = "approve" if action == "approve" else "reject"
        clicks.append(ApprovalClick(value, vote, user_id, channel, _detail(payload, user)))
    return clicks


def decide_clicks(state: ServiceState, clicks: list[ApprovalClick], url: str | None) -> None:
    """Decide approval requests from button clicks and post the result to the clicking user.

    Runs after the response, because an approved change may take longer than Slack's 3 s.
    """
    for click in clicks:
        try:
            outcome = channel_decision(
                state, click.token, click.vote, click.actor, f"slack:{click.channel}",
                click.detail, per_actor_token=True,
            )
            text = outcome.message
            visible = outcome.status in ("executed", "rejected", "recorded", "failed")
        except (ApprovalError, NotFoundError) as exc:
            text = f"Your {click.vote} was not accepted: {exc}"
            visible = False
        except SQLAlchemyError as exc:
            logger.error("slack callback: storing an approval decision failed: %s", exc)
            text = "The decision could not be stored; click again in a minute."
            visible = False
        if url:
            message = {
                "response_type": "in_channel" if visible else "ephemeral",
                "replace_original": False,
                "text": f"<@{click.actor}>: {text}" if visible else text,
            }
            anyio.from_thread.run(post_follow_up, url, message)


def _record_all(state: ServiceState, decisions: list[InboundResponse]) -> list[Outcome]:
    return [store_response(state.store, decision) for decision in decisions]


def follow_up_allowed(url: str, api_url: str) -> bool:
    """Return whether ``url`` is on the Slack host of ``api_url``, so a forged ``response_url``
    cannot make the service send requests to other hosts.

    Allowed: the same scheme, host and port as ``api_url``, or with https a subdomain of its
    host (``hooks.slack.com`` for ``https://slack.com/api``).
    """
    target, api = urlsplit(url), urlsplit(api_url)
    if target.scheme != api.scheme or target.username or target.password:
        return False
    host, api_host = target.hostname or "", api.hostname or ""
    if not host or not api_host:
        return False
    if (host, target.port) == (api_host, api.port):
        return True
    return target.scheme == "https" and target.port is None and host.endswith(f".{api_host}")


def follow_up(decision: InboundResponse, outcome: Outcome) -> dict[str, Any]:
    """Return the follow-up message: shown to the channel when recorded, else to the user."""
    who = f"<@{decision.actor}>"
    alert = f"`{decision.alert_id}`"
    if outcome.record is None:
        text = (f"Alert {alert} is not an alert costwarden sent, or it was deleted; your "
                f"{decision.action} was not recorded.")
        return {"response_type": "ephemeral", "replace_original": False, "text": text}
    if outcome.status == "recorded":
        text = f"{who} {PAST[decision.action]} alert {alert}."
        until = outcome.record.snoozed_until
        if until is not None:
            text += f" Messages about it pause until {until:%Y-%m-%d %H:%M} UTC."
        return {"response_type": "in_channel", "replace_original": False, "text": text}
    if outcome.status == "decided":
        earlier = outcome.record
        from_slack = (earlier.detail or {}).get("via") == "slack"
        by = f"<@{earlier.actor}>" if from_slack else earlier.actor
        text = (f"Alert {alert} was already {PAST.get(earlier.action, earlier.action)} by {by} "
                f"on {earlier.received_at:%Y-%m-%d %H:%M} UTC; nothing changed.")
    else:
        text = f"This click on alert {alert} was already recorded; nothing changed."
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


async def post_follow_up(url: str, message: dict[str, Any]) -> None:
    """Post a follow-up to Slack's ``response_url``; a failure is logged, never raised."""
    try:
        async with httpx.AsyncClient(timeout=FOLLOW_UP_TIMEOUT_SECONDS) as client:
            response = await client.post(url, json=message)
    except httpx.HTTPError as exc:
        logger.warning("slack follow-up to %s failed: %s", urlsplit(url).hostname,
                       exc.__class__.__name__)
        return
    if response.status_code != 200:
        logger.warning("slack follow-up to %s returned %d: %s", urlsplit(url).hostname,
                       response.status_code, response.text[:100])


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body exceeds {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body exceeds {limit} bytes")
    return body
