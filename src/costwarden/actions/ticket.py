"""The ticket action: open a Jira, JSM or ServiceNow ticket that describes a change, and stop.

It sends through a ticket channel configured under ``notify.channels``, so the credentials,
retries, field limits and document format are the channel's. The ticket's dedupe key is the
channels' ``costwarden-<hash>`` key of the request digest, a Jira label or a ServiceNow
``correlation_id``, and an apply looks for an open ticket with that key first. A repeated
apply, or the retry of a create whose response was lost, therefore finds the ticket instead of
opening a second one. Rollback closes the ticket: a Jira transition by name, or a resolved
ServiceNow incident. A ServiceNow change request gets a work note only, because cancelling a
change depends on the instance's change model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field

from costwarden.actions.registry import ACTIONS, Action, ActionOutcome, ActionParams
from costwarden.domain.governance import ActionRequest
from costwarden.errors import ActionError, ConfigError, DeliveryError
from costwarden.notify import CHANNELS, ChannelContext, Notice, NoticeAction
from costwarden.notify.jira import JiraChannel
from costwarden.notify.servicenow import RESOLVED_STATE, ServiceNowChannel
from costwarden.notify.tickets import ticket_key

logger = logging.getLogger(__name__)

TICKET_CHANNEL_TYPES = ("jira", "servicenow")


class TicketParams(ActionParams):
    """The ticket channel to use and the text of the ticket."""

    channel: str = Field(description="Name of a jira or servicenow channel in notify.channels.")
    title: str = Field(min_length=1, description="Ticket summary, one line.")
    recommendation: str | None = Field(
        None,
        description="Id of the recommendation the ticket tracks. It is part of the digest, so "
        "two recommendations on one scope get two tickets.",
    )
    description: str | None = Field(None, description="What to change and where.")
    estimated_savings: str | None = Field(
        None, description="Estimated savings, with unit, e.g. 412.50 USD per month."
    )
    evidence: dict[str, str] = Field(
        default_factory=dict, description="Facts behind the recommendation, by label."
    )
    link: str | None = Field(None, description="URL of the recommendation in costwarden.")
    close_transition: str = Field(
        "Done", description="Jira transition that rollback uses to close the ticket."
    )


@ACTIONS.register("ticket")
class TicketAction(Action):
    """Open a ticket that describes the change and change nothing else."""

    params_class = TicketParams
    scope_kinds = ("cluster", "machine_pool", "namespace", "repository")
    safe = True
    reversible = True

    def dry_run(self, request: ActionRequest, context: Any) -> ActionOutcome:
        params, channel = _channel(request, context)
        notice = ticket_notice(request, params, _now(context))
        with httpx.Client() as client:
            existing = _find_open(channel, ticket_key(notice), client)
        if existing is not None:
            return ActionOutcome(
                summary=f"ticket {existing} is already open for this change", changed=False
            )
        return ActionOutcome(
            summary=f"would open a ticket in channel {params.channel!r}: {params.title}",
            after={"title": params.title, "key": ticket_key(notice)},
        )

    def apply(self, request: ActionRequest, context: Any) -> ActionOutcome:
        params, channel = _channel(request, context)
        notice = ticket_notice(request, params, _now(context))
        key = ticket_key(notice)
        with httpx.Client() as client:
            existing = _find_open(channel, key, client)
            if existing is not None:
                return _outcome(channel, existing, f"ticket {existing} is already open", False)
            ref, label = _create(channel, notice, key, client)
        logger.info("ticket action opened %s in channel %s", label, params.channel)
        return _outcome(channel, ref, f"opened ticket {label}", True, display=label)

    def rollback(
        self, request: ActionRequest, undo: Mapping[str, Any], context: Any
    ) -> ActionOutcome:
        params, channel = _channel(request, context)
        ref = str(undo["ticket"])
        with httpx.Client() as client:
            try:
                summary = _close(channel, ref, params, client)
            except DeliveryError as exc:
                raise ActionError(f"closing ticket {ref} failed: {exc}") from None
        return ActionOutcome(summary=summary, before={"ticket": ref})


def ticket_notice(request: ActionRequest, params: TicketParams, now: datetime) -> Notice:
    """Return the notice the channel renders; its alert id is the request digest."""
    scope = request.scope
    facts = [("Action", request.action)]
    where = scope.cluster or scope.cluster_uid or scope.name
    if where:
        facts.append(("Scope", f"{scope.kind} {where}"))
    if params.description:
        facts.append(("Change", params.description))
    if params.estimated_savings:
        facts.append(("Estimated savings", params.estimated_savings))
    facts.extend(params.evidence.items())
    facts.append((request.subject_kind.title(), request.subject_id))
    action = NoticeAction(
        id=request.subject_id,
        title=params.title,
        savings_per_month=params.estimated_savings,
        link=params.link,
    )
    return Notice(
        alert_id=request.digest,
        kind="recommendation",
        severity="info",
        title=params.title,
        generated_at=now,
        labels={key: str(value) for key, value in scope.labels.items()},
        facts=tuple(facts),
        actions=(action,),
        alert_url=params.link,
    )


def _channel(request: ActionRequest, context: Any) -> tuple[TicketParams, Any]:
    params = TicketParams.model_validate(dict(request.params))
    settings = context.settings.notify
    options = settings.channels.get(params.channel)
    if options is None or options.get("type") not in TICKET_CHANNEL_TYPES:
        ticket_channels = sorted(
            name for name, value in settings.channels.items()
            if value.get("type") in TICKET_CHANNEL_TYPES
        )
        raise ConfigError(
            f"channel {params.channel!r} is not a jira or servicenow channel in notify.channels "
            f"(ticket channels: {', '.join(ticket_channels) or 'none'})"
        )
    channel = CHANNELS.create(params.channel, options, ChannelContext(settings.public_url))
    return params, channel


def _now(context: Any) -> datetime:
    clock = getattr(context, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def _find_open(channel: Any, key: str, client: httpx.Client) -> str | None:
    try:
        found: str | None = channel.find_open(key, client)
    except DeliveryError as exc:
        raise ActionError(f"looking up ticket {key} failed: {exc}") from None
    return found


def _create(channel: Any, notice: Notice, key: str, client: httpx.Client) -> tuple[str, str]:
    """Create the ticket and return its reference (Jira key or sys_id) and display name."""
    try:
        if isinstance(channel, JiraChannel):
            created = channel.create(notice, None, key, client)
            return created, created
        sys_id, number = channel.create(notice, key, client)
        return sys_id, number
    except DeliveryError as exc:
        raise ActionError(
            f"opening a ticket in channel {channel.name!r} failed: {exc}; the next apply looks "
            f"the ticket up by {key} before it tries again"
        ) from None


def _outcome(
    channel: Any, ref: str, summary: str, changed: bool, display: str | None = None
) -> ActionOutcome:
    links = {}
    if isinstance(channel, JiraChannel):
        links["ticket"] = f"{channel.settings.url}/browse/{ref}"
    else:
        table = channel.settings.table
        links["ticket"] = f"{channel.settings.instance_url}/nav_to.do?uri={table}.do?sys_id={ref}"
    return ActionOutcome(
        summary=summary,
        after={"ticket": display or ref},
        undo={"ticket": ref, "channel": channel.name},
        links=links,
        changed=changed,
    )


def _close(channel: Any, ref: str, params: TicketParams, client: httpx.Client) -> str:
    """Close a ticket and return a summary, or the reason it could not be closed."""
    if isinstance(channel, JiraChannel):
        path = f"/rest/api/3/issue/{ref}/transitions"
        # The channel exposes no transition method, so this reuses its authenticated call.
        available = channel._call(client, "GET", path).json().get("transitions", [])
        match = next((t for t in available if t.get("name") == params.close_transition), None)
        if match is None:
            names = ", ".join(str(t.get("name")) for t in available) or "none"
            return (
                f"ticket {ref} cannot be closed: transition {params.close_transition!r} is not "
                f"available (available: {names}); set close_transition"
            )
        channel._call(client, "POST", path, json={"transition": {"id": match["id"]}})
        return f"closed ticket {ref} with transition {params.close_transition!r}"

    assert isinstance(channel, ServiceNowChannel)
    note = "costwarden rolled back the change this record describes; nothing is left to do."
    if channel.settings.table == "incident":
        body = {
            "work_notes": note,
            "state": RESOLVED_STATE,
            "close_code": channel.settings.close_code,
            "close_notes": note,
        }
        channel._call(client, "PATCH", f"/{ref}", json=body)
        return f"resolved incident {ref}"
    channel.add_work_note(ref, note, client)
    return (
        f"change request {ref} cannot be cancelled automatically; costwarden added a work note, "
        "cancel it in ServiceNow"
    )
