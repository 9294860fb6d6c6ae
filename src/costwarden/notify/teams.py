"""Channel type teams: Adaptive Cards posted to a Microsoft Teams Workflows webhook.

The Workflows trigger "When a Teams webhook request is received" takes
``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <card>}]}`` and responds 202 Accepted
with an empty body, so any 2xx is success. Its URL carries a shared-access signature and is the
credential. Cards use Adaptive Card version 1.4, the highest that cards posted by Workflows
render reliably, and stay under Teams' 28 KB message limit.

Cards posted through a webhook cannot submit (no bot receives ``Action.Submit``), so Approve,
Reject and Snooze are ``Action.OpenUrl`` buttons to signed links (``notify.link_secret``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from costwarden.notify import http
from costwarden.notify.notice import Notice, NoticeAction, NoticeContributor
from costwarden.notify.registry import (
    CHANNELS,
    ActionLinks,
    Channel,
    ChannelSettings,
    Delivery,
    SendResult,
)
from costwarden.notify.secrets import Secret
from costwarden.notify.trim import trim_bytes, trim_text

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

logger = logging.getLogger(__name__)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
MAX_MESSAGE_BYTES = 28 * 1024
"""Teams' limit on one webhook message, in bytes of the JSON body."""
MESSAGE_BUDGET_BYTES = MAX_MESSAGE_BYTES - 1024
"""Size that cards are fitted to, leaving room for what the Workflows flow wraps around them."""
LIST_ITEMS = (25, 10, 3, 0)
"""Contributors and actions shown; a card over the budget is rendered again with fewer."""
MAX_NAME = 150
MAX_FACT = 200
MAX_DIGEST_NOTICES = 40

SEVERITY_COLOR = {"info": "Default", "warning": "Warning", "critical": "Attention"}
SEVERITY_LABEL = {"info": "Info", "warning": "Warning", "critical": "Critical"}


class TeamsSettings(ChannelSettings):
    """Settings of a Teams channel reached through a Workflows webhook."""

    workflow_url: Secret = Field(
        description="URL of the Workflows trigger 'When a Teams webhook request is received', "
        "including its sig parameter; the URL is the credential. A literal, {env: NAME} or "
        "{file: PATH}."
    )
    rate_per_second: float = Field(
        2.0, gt=0, le=4, description="Messages per second; Teams throttles above 4."
    )

    @field_validator("workflow_url")
    @classmethod
    def _workflow_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("workflow_url must be an https:// URL (the value is not shown)")
        return value


@CHANNELS.register("teams")
class TeamsChannel(Channel):
    """Microsoft Teams: Adaptive Cards through a Workflows webhook, with signed approval links."""

    settings_class = TeamsSettings
    settings: TeamsSettings

    def send(self, delivery: Delivery, client: httpx.Client) -> SendResult:
        body = _encode(self.render(delivery))
        url = self.settings.workflow_url.get_secret_value()
        response = http.request(
            client, self.name, "POST", url, content=body,
            headers={"Content-Type": "application/json"},
            timeout=self.settings.timeout_seconds,
        )
        http.check_response(response, self.name)
        logger.info("teams channel %s posted %s of %s (%d bytes, status %d)", self.name,
                    delivery.event, _subject(delivery), len(body), response.status_code)
        return SendResult(detail=f"accepted with {response.status_code}")

    def render(self, delivery: Delivery) -> dict[str, Any]:
        """Return the message body of a delivery: one Adaptive Card under the size limit."""
        if delivery.event == "digest":
            return message(digest_card(delivery.notices))
        notice = delivery.notice
        if delivery.event == "resolve" or notice.state == "resolved":
            return message(resolved_card(notice))
        return fitted_alert_message(
            notice, self._links(delivery, notice), updated=delivery.event == "update"
        )

    def _links(self, delivery: Delivery, notice: Notice) -> ActionLinks | None:
        """Return the alert's signed links: from the delivery, else signed now, else none."""
        links = delivery.links.get(notice.alert_id)
        if links is None and self.context.sign_links is not None:
            links = self.context.sign_links(notice.alert_id, self.name)
        return links


def message(card: dict[str, Any]) -> dict[str, Any]:
    """Wrap a card in the message that the Workflows trigger loops over."""
    attachment = {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def message_size(body: dict[str, Any]) -> int:
    return len(_encode(body))


def fitted_alert_message(
    notice: Notice, links: ActionLinks | None, *, updated: bool = False
) -> dict[str, Any]:
    """Render an alert card with as many contributors and actions as fit in the size budget.

    A shortened list ends with a link to the full alert. If even the card without lists is too
    big (very long facts), the fact values are cut too.
    """
    for items in LIST_ITEMS:
        body = message(alert_card(notice, links, updated=updated, list_items=items))
        if message_size(body) <= MESSAGE_BUDGET_BYTES:
            return body
    return message(alert_card(notice, links, updated=updated, list_items=0, fact_limit=40))


def alert_card(
    notice: Notice,
    links: ActionLinks | None,
    *,
    updated: bool = False,
    list_items: int = LIST_ITEMS[0],
    fact_limit: int = MAX_FACT,
) -> dict[str, Any]:
    """Render a firing alert: title, summary, facts, contributors, actions and buttons."""
    prefix = "Updated: " if updated else ""
    body: list[dict[str, Any]] = [
        _text(f"{prefix}{_markdown_label(trim_text(notice.title, MAX_NAME * 2))}", weight="Bolder",
              size="Medium", color=SEVERITY_COLOR[notice.severity]),
        _text(_summary(notice), isSubtle=True, spacing="None"),
    ]
    facts = [(label, value) for label, value in notice.facts]
    facts.append(("Alert", notice.alert_id))
    body.append({"type": "FactSet", "facts": [
        {"title": trim_text(label, 60), "value": trim_bytes(value, fact_limit)}
        for label, value in facts
    ]})

    lists = (
        ("Top contributors", [_contributor_line(item) for item in notice.contributors]),
        ("Recommended actions", [_action_line(item) for item in notice.actions]),
    )
    for title, lines in lists:
        if lines:
            body.append(_text(title, weight="Bolder", spacing="Medium"))
            body.append(_text(_bullets(lines, list_items, notice.alert_url)))

    actions = _open_url_actions(notice, links)
    return _card(body, actions)


def resolved_card(notice: Notice) -> dict[str, Any]:
    """Render the short card that reports that an alert's risk went away, without decisions."""
    body = [
        _text(f"Resolved: {_markdown_label(trim_text(notice.title, MAX_NAME * 2))}", weight="Bolder",
              size="Medium", color="Good"),
        _text(f"Alert {notice.alert_id} is no longer at risk.", isSubtle=True, spacing="None"),
    ]
    actions = []
    if notice.alert_url:
        actions.append(_open_url("Full alert", notice.alert_url))
    return _card(body, actions)


def digest_card(notices: Sequence[Notice]) -> dict[str, Any]:
    """Render several notices in one card, one container each, under the size budget."""
    count = len(notices)
    body: list[dict[str, Any]] = [
        _text(f"Cost alert digest: {count} alert{'s' if count != 1 else ''}", weight="Bolder",
              size="Medium")
    ]
    shown = 0
    for notice in notices[:MAX_DIGEST_NOTICES]:
        candidate = [*body, _digest_item(notice)]
        if message_size(message(_card(candidate, []))) > MESSAGE_BUDGET_BYTES - 300:
            break
        body = candidate
        shown += 1

    if shown < count:
        body.append(_text(f"…and {count - shown} more; the costwarden API lists every alert.",
                          isSubtle=True))
    return _card(body, [])


def _digest_item(notice: Notice) -> dict[str, Any]:
    title = _markdown_label(trim_text(notice.title, MAX_NAME))
    heading = title
    if notice.alert_url:
        heading = f"[{title}]({_markdown_url(notice.alert_url)})"
    facts = [{"title": trim_text(label, 40), "value": trim_text(value, 80)}
             for label, value in notice.facts[:3]]
    return {
        "type": "Container",
        "separator": True,
        "items": [
            _text(f"{SEVERITY_LABEL[notice.severity]}: {heading}", weight="Bolder",
                  color=SEVERITY_COLOR[notice.severity]),
            {"type": "FactSet", "facts": facts},
        ],
    }


def _summary(notice: Notice) -> str:
    text = f"{SEVERITY_LABEL[notice.severity]} {notice.kind} alert"
    if notice.budget:
        text += f" · budget {_markdown_label(trim_text(notice.budget, MAX_NAME))}"
    if notice.period_start and notice.period_end:
        text += f" · period {notice.period_start.isoformat()} to {notice.period_end.isoformat()}"
    if notice.owners:
        owners = [_markdown_label(trim_text(owner, 60)) for owner in notice.owners[:10]]
        extra = len(notice.owners) - len(owners)
        text += " · owners: " + ", ".join(owners) + (f" and {extra} more" if extra > 0 else "")
    return text


def _bullets(lines: Sequence[str], limit: int, more_url: str | None) -> str:
    shown = list(lines[:limit])
    hidden = len(lines) - len(shown)
    if hidden:
        target = (f"[full alert]({_markdown_url(more_url)})" if more_url
                  else "full alert in the costwarden API")
        shown.append(f"- …and {hidden} more in the {target}")
    return "\n".join(shown)


def _contributor_line(item: NoticeContributor) -> str:
    text = f"- {_markdown_label(trim_text(item.name, MAX_NAME))} ({trim_text(item.kind, 40)})"
    if item.amount:
        text += f": {trim_text(item.amount, 60)}"
    if item.share is not None:
        text += f", {item.share:.0%} of the total"
    return text


def _action_line(item: NoticeAction) -> str:
    title = _markdown_label(trim_text(item.title, MAX_NAME))
    text = f"- [{title}]({_markdown_url(item.link)})" if item.link else f"- {title}"
    if item.savings_per_month:
        text += f": saves {trim_text(item.savings_per_month, 60)} per month"
    return text


def _markdown_label(text: str) -> str:
    """Escape the characters that would end or start a markdown link or emphasis."""
    for char in "\\[]()*_":
        text = text.replace(char, f"\\{char}")
    return text


def _markdown_url(url: str) -> str:
    """Percent-encode the characters that would end a markdown link target."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _open_url_actions(notice: Notice, links: ActionLinks | None) -> list[dict[str, Any]]:
    actions = []
    if notice.palette_url:
        actions.append(_open_url("View in Palette", notice.palette_url))
    if links is not None:
        actions += [
            _open_url("Approve", links.approve, style="positive"),
            _open_url("Reject", links.reject, style="destructive"),
            _open_url("Snooze", links.snooze),
        ]
    if notice.alert_url:
        actions.append(_open_url("Full alert", notice.alert_url))
    return actions


def _open_url(title: str, url: str, style: str | None = None) -> dict[str, Any]:
    action = {"type": "Action.OpenUrl", "title": title, "url": url}
    if style:
        action["style"] = style
    return action


def _text(text: str, **options: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **options}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _subject(delivery: Delivery) -> str:
    if delivery.event == "digest":
        return f"{len(delivery.notices)} alerts"
    return f"alert {delivery.notice.alert_id}"
