"""Helpers that the ticket channels (Jira, ServiceNow) share: the dedupe key and plain text.

A ticket channel opens one ticket per budget and period, so every alert of one budget in one
period (an 80 % warning, then a 100 % critical) lands on the same ticket as comments. Other
alert kinds get one ticket per alert id.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, ClassVar

from costwarden.errors import PermanentDeliveryError
from costwarden.notify.notice import Notice
from costwarden.notify.registry import ActionLinks, Channel, Delivery, SendResult

if TYPE_CHECKING:
    import httpx

TICKET_KEY_PREFIX = "costwarden-"


class TicketChannel(Channel):
    """Base class of channels that keep one ticket per alert (see ``ticket_key``).

    A trigger opens the ticket. An update or resolve follows up on the ticket stored for the
    alert, or on an open ticket found by its key; with neither, an update opens a ticket and a
    resolve does nothing. Subclasses set ``service`` and ``no_ticket_detail`` and implement
    ``_trigger``, ``find_open`` and ``_follow_up``.
    """

    service: ClassVar[str] = ""
    no_ticket_detail: ClassVar[str] = "no open ticket"

    def send(self, delivery: Delivery, client: httpx.Client) -> SendResult:
        if delivery.event == "digest":
            raise PermanentDeliveryError(
                f"channel {self.name!r}: {self.service} channels take no digests",
                channel=self.name,
            )
        notice = delivery.notice
        links = delivery.links.get(notice.alert_id)

        if delivery.event == "trigger":
            return self._trigger(delivery, notice, links, client)

        ref = delivery.external_ref or self.find_open(ticket_key(notice), client)
        if ref is None:
            if delivery.event == "resolve":
                return SendResult(detail=self.no_ticket_detail)
            return self._trigger(delivery, notice, links, client)

        return self._follow_up(delivery, ref, notice, links, client)

    def _trigger(
        self, delivery: Delivery, notice: Notice, links: ActionLinks | None, client: httpx.Client
    ) -> SendResult:
        raise NotImplementedError

    def find_open(self, key: str, client: httpx.Client) -> str | None:
        raise NotImplementedError

    def _follow_up(
        self,
        delivery: Delivery,
        ref: str,
        notice: Notice,
        links: ActionLinks | None,
        client: httpx.Client,
    ) -> SendResult:
        raise NotImplementedError


def ticket_key(notice: Notice) -> str:
    """Return the dedupe key of a notice's ticket: ``costwarden-`` and 16 hex digits.

    The key contains no spaces, so it works as a Jira label and a ServiceNow ``correlation_id``.
    """
    return ticket_key_of(notice.kind, notice.budget, notice.period_key, notice.alert_id)


def ticket_key_of(kind: str, budget: str | None, period_key: str, alert_id: str) -> str:
    """Return ``ticket_key`` for the columns of a stored notification."""
    if kind == "budget" and budget:
        basis = f"budget|{budget}|{period_key}"
    else:
        basis = f"alert|{alert_id}"
    return f"{TICKET_KEY_PREFIX}{hashlib.sha256(basis.encode()).hexdigest()[:16]}"


def contributor_line(notice: Notice, index: int) -> str:
    """Return one top contributor as text: name, kind, amount and share."""
    item = notice.contributors[index]
    parts = [f"{item.name} ({item.kind})"]
    if item.amount:
        parts.append(item.amount)
    if item.share is not None:
        parts.append(f"{item.share:.0%} of the change")
    return ", ".join(parts)


def action_line(notice: Notice, index: int) -> str:
    """Return one recommended action as text: title and monthly savings (without the link)."""
    item = notice.actions[index]
    if item.savings_per_month:
        return f"{item.title}: saves {item.savings_per_month} per month"
    return item.title


def plain_text(
    notice: Notice, heading: str | None = None, links: ActionLinks | None = None
) -> str:
    """Render a notice as plain text: facts, contributors, actions and links, one per line."""
    lines = [heading or notice.title, ""]
    lines.extend(f"{label}: {value}" for label, value in notice.facts)

    if notice.contributors:
        lines.extend(["", "Top contributors:"])
        lines.extend(f"- {contributor_line(notice, i)}" for i in range(len(notice.contributors)))

    if notice.actions:
        lines.extend(["", "Recommended actions:"])
        for i, action in enumerate(notice.actions):
            link = f" ({action.link})" if action.link else ""
            lines.append(f"- {action_line(notice, i)}{link}")

    lines.append("")
    if notice.palette_url:
        lines.append(f"Palette: {notice.palette_url}")
    if notice.alert_url:
        lines.append(f"Full alert: {notice.alert_url}")
    if links is not None:
        lines.extend([
            f"Approve: {links.approve}", f"Reject: {links.reject}", f"Snooze: {links.snooze}"
        ])
    lines.append(f"Alert id: {notice.alert_id}")
    return "\n".join(lines).strip()
