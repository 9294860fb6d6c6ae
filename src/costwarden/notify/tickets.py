"""Helpers that the ticket channels (Jira, ServiceNow) share: the dedupe key and plain text.

A ticket channel opens one ticket per budget and period, so every alert of one budget in one
period (an 80 % warning, then a 100 % critical) lands on the same ticket as comments. Other
alert kinds get one ticket per alert id.
"""

from __future__ import annotations

import hashlib

from costwarden.notify.notice import Notice
from costwarden.notify.registry import ActionLinks

TICKET_KEY_PREFIX = "costwarden-"


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
