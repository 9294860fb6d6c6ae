"""Channel type slack: Block Kit messages through an incoming webhook or a bot token.

With ``webhook_url`` each event posts a new message, and Slack responds ``ok`` as plain text.
With ``bot_token`` and ``channel`` the channel calls ``chat.postMessage``, keeps
``channel:ts`` as the external reference and edits that message with ``chat.update`` on
update and resolve events. The Web API returns application errors with HTTP 200 and
``{"ok": false, "error": ...}``; only ``rate_limited`` and ``internal_error`` (and their
variants) are worth a retry.

The Approve, Reject and Snooze buttons appear when ``signing_secret`` is set, because their
clicks come back to ``POST /callbacks/slack`` and are verified with it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from costwarden.errors import PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import http
from costwarden.notify.notice import Notice, NoticeAction, NoticeContributor
from costwarden.notify.registry import CHANNELS, Channel, ChannelSettings, Delivery, SendResult
from costwarden.notify.secrets import Secret
from costwarden.notify.trim import trim_text

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

logger = logging.getLogger(__name__)

API_URL = "https://slack.com/api"

ACTION_IDS = {
    "approve": "costwarden_approve",
    "reject": "costwarden_reject",
    "snooze": "costwarden_snooze",
}
"""Button ``action_id`` per decision; ``POST /callbacks/slack`` maps them back."""
VIEW_ACTION_ID = "costwarden_view"
ACTIONS_BLOCK_ID = "costwarden_actions"

RETRYABLE_ERRORS = frozenset(
    {"rate_limited", "ratelimited", "internal_error", "fatal_error", "service_unavailable",
     "request_timeout"}
)
"""``ok:false`` errors of the Web API that a later attempt can fix."""
GONE_MESSAGE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
"""``chat.update`` errors after which a new message is posted instead."""

# Block Kit limits (Slack's Block Kit reference): blocks per message, section text, fields per
# section and their text, header text, button text, button value and button URL.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_URL = 3000

MAX_MESSAGE_TEXT = 12_000
"""Characters of text in all blocks of one message. Slack documents no total, but
``msg_blocks_too_long`` has been reported at about 13,000, so messages stay below 12,000."""
MAX_FALLBACK_TEXT = 300
"""Characters of the ``text`` field before escaping: the notification, and the fallback for
clients that show no blocks."""
LIST_BUDGETS = (3000, 1500, 500)
"""Characters allowed for the contributors and the actions sections; a message over
MAX_MESSAGE_TEXT is rendered again with the next, smaller budget."""
MAX_NAME = 150
MAX_FACT_LABEL = 100
MAX_FACT_VALUE = 190
MAX_OWNERS = 10
MAX_DIGEST_ITEM = 400
MAX_DIGEST_NOTICES = 40

SEVERITY_LABEL = {"info": "Info", "warning": "Warning", "critical": "Critical"}
SEVERITY_EMOJI = {"info": ":information_source:", "warning": ":warning:",
                  "critical": ":rotating_light:"}

CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


class SlackSettings(ChannelSettings):
    """Settings of a Slack channel: an incoming webhook, or a bot token and a channel ID."""

    webhook_url: Secret | None = Field(
        None,
        description="Incoming webhook URL; the URL is the credential. A literal, {env: NAME} or "
        "{file: PATH}. Give this or bot_token.",
    )
    bot_token: Secret | None = Field(
        None,
        description="Bot token (xoxb-...) with the chat:write scope, for chat.postMessage and "
        "chat.update. Give this or webhook_url.",
    )
    channel: str | None = Field(
        None, description="ID of the channel the bot posts to, e.g. C0123ABCD (not its name)."
    )
    signing_secret: Secret | None = Field(
        None,
        description="Signing secret of the Slack app. When set, messages carry Approve, Reject "
        "and Snooze buttons whose clicks POST /callbacks/slack verifies with it.",
    )
    api_url: str = Field(
        API_URL, description="Base URL of the Slack Web API; a test points it at a fake."
    )
    mention_owners: dict[str, str] = Field(
        default_factory=dict,
        description="Owner name to the Slack user ID (U.../W...) or user group ID (S...) that "
        "messages mention.",
    )
    snooze_hours: int = Field(
        24, ge=1, le=720, description="Hours the Snooze button silences an alert."
    )

    @field_validator("webhook_url")
    @classmethod
    def _webhook_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("webhook_url must be an https:// URL (the value is not shown)")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_scheme(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"api_url {value!r} is not an http(s) URL; use {API_URL}")
        return value.rstrip("/")

    @field_validator("mention_owners")
    @classmethod
    def _mention_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for owner, target in value.items():
            if not (USER_ID.match(target) or GROUP_ID.match(target)):
                raise ValueError(
                    f"mention_owners[{owner!r}] = {target!r} is not a Slack user ID (U...) or "
                    "user group ID (S...); copy it from the profile or the group settings"
                )
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> SlackSettings:
        if (self.webhook_url is None) == (self.bot_token is None):
            raise ValueError("give either webhook_url or bot_token (with channel), not both")
        if self.bot_token is not None and not self.channel:
            raise ValueError("bot_token needs channel: the ID of the channel to post to")
        if self.channel and not CHANNEL_ID.match(self.channel):
            raise ValueError(
                f"channel {self.channel!r} is not a channel ID; copy the ID (C..., G...) from "
                "the channel details in Slack"
            )
        return self


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Location of a bot message: the channel ID and the message ``ts``."""

    channel: str
    ts: str

    @classmethod
    def parse(cls, value: str | None) -> MessageRef | None:
        if not value or ":" not in value:
            return None
        channel, ts = value.split(":", 1)
        return cls(channel, ts) if channel and ts else None

    def __str__(self) -> str:
        return f"{self.channel}:{self.ts}"


@CHANNELS.register("slack")
class SlackChannel(Channel):
    """Slack: Block Kit messages by incoming webhook or bot token, with approval buttons."""

    settings_class = SlackSettings
    settings: SlackSettings

    def send(self, delivery: Delivery, client: httpx.Client) -> SendResult:
        message = self.render(delivery)
        if self.settings.webhook_url is not None:
            self._post_webhook(client, self.settings.webhook_url.get_secret_value(), message)
            logger.info("slack channel %s posted %s of %s by webhook", self.name, delivery.event,
                        _subject(delivery))
            return SendResult(detail="posted by webhook")
        return self._send_bot(delivery, message, client)

    def render(self, delivery: Delivery) -> dict[str, Any]:
        """Return the ``text`` and ``blocks`` of a delivery, within Slack's limits."""
        if delivery.event == "digest":
            return digest_message(delivery.notices)
        notice = delivery.notice
        if delivery.event == "resolve" or notice.state == "resolved":
            return resolved_message(notice)
        return alert_message(
            notice,
            mentions=self.settings.mention_owners,
            buttons=self.settings.signing_secret is not None,
            snooze_hours=self.settings.snooze_hours,
            updated=delivery.event == "update",
        )

    def _send_bot(
        self, delivery: Delivery, message: dict[str, Any], client: httpx.Client
    ) -> SendResult:
        ref = MessageRef.parse(delivery.external_ref)
        if delivery.event in ("update", "resolve") and ref is not None:
            body = {"channel": ref.channel, "ts": ref.ts, **message}
            data = self._call(client, "chat.update", body, tolerate=GONE_MESSAGE_ERRORS)
            if data.get("ok"):
                logger.info("slack channel %s updated message %s for %s of %s", self.name, ref,
                            delivery.event, _subject(delivery))
                return SendResult(external_ref=str(ref), detail="updated in place")
            logger.warning("slack channel %s cannot update message %s (%s); posting a new one",
                           self.name, ref, data.get("error"))

        # NOTE: Slack has no idempotency key. When a post times out after Slack accepted it, the
        # retry posts the message a second time.
        data = self._call(client, "chat.postMessage", {"channel": self.settings.channel, **message})
        posted = MessageRef(str(data.get("channel") or self.settings.channel), str(data.get("ts")))
        logger.info("slack channel %s posted %s of %s as %s", self.name, delivery.event,
                    _subject(delivery), posted)
        if delivery.event == "digest":
            # A digest covers several alerts, so it is no message that a later update edits.
            return SendResult(external_ref=None, detail=f"posted {posted}")
        return SendResult(external_ref=str(posted), detail=f"posted {posted}")

    def _post_webhook(self, client: httpx.Client, url: str, message: dict[str, Any]) -> None:
        response = http.request(
            client, self.name, "POST", url, content=_encode(message),
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=self.settings.timeout_seconds,
        )
        http.check_response(response, self.name, ok=(200,))

    def _call(
        self,
        client: httpx.Client,
        method: str,
        body: dict[str, Any],
        *,
        tolerate: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Call a Web API method; return its JSON, or raise for an error not in ``tolerate``."""
        assert self.settings.bot_token is not None
        token = self.settings.bot_token.get_secret_value()
        response = http.request(
            client, self.name, "POST", f"{self.settings.api_url}/{method}",
            content=_encode(body),
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/json; charset=utf-8"},
            timeout=self.settings.timeout_seconds,
        )
        http.check_response(response, self.name)

        data = _json_body(response, self.name, method)
        error = str(data.get("error") or "")
        if data.get("ok") or error in set(tolerate):
            return data
        where = f"{method} at {http.host_of(self.settings.api_url)}"
        message = f"channel {self.name!r}: {where} returned ok:false, error {error or '?'}"
        if error in RETRYABLE_ERRORS:
            raise RetryableDeliveryError(
                message, channel=self.name, status=response.status_code,
                retry_after=http.parse_retry_after(response.headers.get("Retry-After")),
            )
        raise PermanentDeliveryError(message, channel=self.name, status=response.status_code)


def _json_body(response: httpx.Response, channel: str, method: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise PermanentDeliveryError(
            f"channel {channel!r}: {method} at {http.host_of(str(response.request.url))} "
            "returned no JSON object; check api_url",
            channel=channel, status=response.status_code,
        )
    return data


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def _subject(delivery: Delivery) -> str:
    if delivery.event == "digest":
        return f"{len(delivery.notices)} alerts"
    return f"alert {delivery.notice.alert_id}"


# Message rendering. Names are escaped and cut to limits that hold after escaping
# (escape_within), and lists are measured after escaping, so the Block Kit limits hold even for
# names made of & < > characters.


def escape(text: str) -> str:
    """Escape the three characters that mrkdwn and plain text treat as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


BACKTICK_LOOKALIKE = "\u02cb"
"""Modifier letter grave accent, shown in place of a backtick inside a code span."""


def code_span(text: str, limit: int) -> str:
    """Return ``text`` as an inline code span.

    mrkdwn cannot escape a backtick inside a code span, so backticks become a look-alike.
    """
    inner = escape_within(text.replace("`", BACKTICK_LOOKALIKE), limit)
    return f"`{inner}`"


def escape_within(text: str, limit: int) -> str:
    """Escape ``text`` and cut it so that the escaped text has at most ``limit`` characters."""
    escaped = escape(trim_text(text, limit))
    if len(escaped) <= limit:
        return escaped
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if len(escape(trim_text(text, middle))) <= limit:
            low = middle
        else:
            high = middle - 1
    return escape(trim_text(text, low))


def link(url: str | None, label: str) -> str:
    """Return a mrkdwn link, or the escaped label alone when the URL is missing or unusable."""
    if not url or len(url) > MAX_BUTTON_URL or any(c in url for c in "|<> "):
        return escape(label)
    return f"<{url}|{escape(label)}>"


def mention(owner: str, mentions: dict[str, str]) -> str:
    """Return ``<@U...>`` or ``<!subteam^S...>`` for a mapped owner, else the escaped name."""
    target = mentions.get(owner)
    if target is None:
        return escape_within(owner, MAX_NAME)
    if GROUP_ID.match(target):
        return f"<!subteam^{target}>"
    return f"<@{target}>"


def alert_message(
    notice: Notice,
    *,
    mentions: dict[str, str] | None = None,
    buttons: bool = True,
    snooze_hours: int = 24,
    updated: bool = False,
) -> dict[str, Any]:
    """Render a firing alert: header, summary, facts, contributors, actions, context, buttons.

    The contributors and actions lists shrink until the message is under MAX_MESSAGE_TEXT,
    and each cut list ends with a link to the full alert.
    """
    mentions = mentions or {}
    for budget in LIST_BUDGETS:
        blocks = _alert_blocks(notice, mentions, buttons, snooze_hours, updated, budget)
        if text_length(blocks) <= MAX_MESSAGE_TEXT:
            break
    else:
        blocks = _alert_blocks(notice, mentions, buttons, snooze_hours, updated, 0)
    return {"text": _fallback_text(notice, updated), "blocks": blocks}


def _alert_blocks(
    notice: Notice,
    mentions: dict[str, str],
    buttons: bool,
    snooze_hours: int,
    updated: bool,
    list_budget: int,
) -> list[dict[str, Any]]:
    prefix = "Updated: " if updated else ""
    blocks = [
        _header(f"{prefix}{notice.title}"),
        _section(_summary(notice, mentions), "summary"),
    ]
    if notice.facts:
        blocks.append(_facts(notice))

    lists = [
        ("Top contributors", [_contributor_line(item) for item in notice.contributors]),
        ("Recommended actions", [_action_line(item) for item in notice.actions]),
    ]
    for title, lines in lists:
        if not lines:
            continue
        text = bullet_list(title, lines, list_budget, notice.alert_url)
        blocks.append(_section(text, title.lower().replace(" ", "_")))

    blocks.append(_context(notice))
    elements = _buttons(notice, buttons, snooze_hours)
    if elements:
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": elements})
    return blocks


def resolved_message(notice: Notice) -> dict[str, Any]:
    """Render the short message that reports that an alert's risk went away, without buttons."""
    title = escape_within(notice.title, MAX_NAME * 2)
    text = f":white_check_mark: *Resolved:* {title}"
    if notice.budget:
        text += f"\nBudget {code_span(notice.budget, MAX_NAME)} is no longer at risk."
    return {
        "text": escape_within(f"Resolved: {notice.title}", MAX_FALLBACK_TEXT),
        "blocks": [_section(text, "resolved"), _context(notice)],
    }


def digest_message(notices: Sequence[Notice]) -> dict[str, Any]:
    """Render several notices in one message, one short section each, within the limits."""
    count = len(notices)
    header = _header(f"Cost alert digest: {count} alert{'s' if count != 1 else ''}")
    blocks: list[dict[str, Any]] = [header]
    used = text_length(blocks)
    shown = 0
    for notice in notices:
        section = _section(_digest_item(notice), f"notice_{shown}")
        size = text_length([section])
        if shown >= MAX_DIGEST_NOTICES or used + size > MAX_MESSAGE_TEXT - 500:
            break
        blocks.append(section)
        used += size
        shown += 1

    if shown < count:
        more = f"_…and {count - shown} more; the costwarden API lists every alert._"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    text = f"Cost alert digest: {count} alerts, highest severity {_highest(notices)}"
    return {"text": text, "blocks": blocks}


def _digest_item(notice: Notice) -> str:
    emoji = SEVERITY_EMOJI[notice.severity]
    title = link(notice.alert_url, trim_text(notice.title, MAX_NAME))
    facts = " · ".join(
        f"{escape_within(label, 40)}: {escape_within(value, 60)}"
        for label, value in notice.facts[:3]
    )
    text = f"{emoji} *{title}*" + (f"\n{facts}" if facts else "")
    if len(text) > MAX_DIGEST_ITEM:
        text = f"{emoji} *{escape_within(notice.title, MAX_NAME)}*"
    return text


def _highest(notices: Sequence[Notice]) -> str:
    order = ["info", "warning", "critical"]
    return max((notice.severity for notice in notices), key=order.index, default="info")


def bullet_list(title: str, lines: Sequence[str], limit: int, more_url: str | None) -> str:
    """Return ``*title*`` and one bullet per line, as many as fit in ``limit`` characters.

    Lines that do not fit are counted in a last line that links the full alert.
    """
    text = f"*{escape(title)}*"
    tail_room = len(_more_line(len(lines), more_url)) + 1
    for index, line in enumerate(lines):
        remaining_after = len(lines) - index - 1
        room = limit - (tail_room if remaining_after else 0)
        if len(text) + 1 + len(line) > room:
            return f"{text}\n{_more_line(len(lines) - index, more_url)}"
        text = f"{text}\n{line}"
    return text


def _more_line(count: int, url: str | None) -> str:
    target = link(url, "full alert") if url else "the full alert in the costwarden API"
    return f"_…and {count} more in the {target}_"


def _contributor_line(item: NoticeContributor) -> str:
    text = f"• {escape_within(item.name, MAX_NAME)} ({escape_within(item.kind, 40)})"
    if item.amount:
        text += f": {escape_within(item.amount, 60)}"
    if item.share is not None:
        text += f", {item.share:.0%} of the total"
    return text


def _action_line(item: NoticeAction) -> str:
    text = f"• {link(item.link, trim_text(item.title, MAX_NAME))}"
    if item.savings_per_month:
        text += f": saves {escape_within(item.savings_per_month, 60)} per month"
    return text


def _summary(notice: Notice, mentions: dict[str, str]) -> str:
    severity = f"{SEVERITY_EMOJI[notice.severity]} *{SEVERITY_LABEL[notice.severity]}*"
    text = f"{severity} {notice.kind} alert"
    if notice.budget:
        text += f" · budget {code_span(notice.budget, MAX_NAME)}"
    if notice.period_start and notice.period_end:
        text += f" · period {notice.period_start.isoformat()} to {notice.period_end.isoformat()}"
    if notice.owners:
        shown = [mention(owner, mentions) for owner in notice.owners[:MAX_OWNERS]]
        extra = len(notice.owners) - len(shown)
        text += "\nOwners: " + ", ".join(shown) + (f" and {extra} more" if extra > 0 else "")
    return text


def _facts(notice: Notice) -> dict[str, Any]:
    facts = list(notice.facts)
    hidden = len(facts) - MAX_FIELDS + 1 if len(facts) > MAX_FIELDS else 0
    if hidden:
        facts = facts[: MAX_FIELDS - 1]
    fields = [
        {"type": "mrkdwn", "text": _fact_text(label, value)} for label, value in facts
    ]
    if hidden:
        more = link(notice.alert_url, f"{hidden} more facts in the full alert")
        fields.append({"type": "mrkdwn", "text": f"*More*\n{more}"})
    return {"type": "section", "block_id": "facts", "fields": fields}


def _fact_text(label: str, value: str) -> str:
    label_text = escape_within(label, MAX_FACT_LABEL)
    value_text = escape_within(value, MAX_FACT_VALUE)
    return trim_text(f"*{label_text}*\n{value_text}", MAX_FIELD_TEXT)


def _context(notice: Notice) -> dict[str, Any]:
    generated = notice.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    text = f"alert `{escape(notice.alert_id)}` · generated {generated}"
    if notice.alert_url:
        text += f" · {link(notice.alert_url, 'full alert')}"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _buttons(notice: Notice, decisions: bool, snooze_hours: int) -> list[dict[str, Any]]:
    elements = []
    if notice.palette_url and len(notice.palette_url) <= MAX_BUTTON_URL:
        elements.append({"type": "button", "action_id": VIEW_ACTION_ID,
                         "text": _plain("View in Palette"), "url": notice.palette_url})
    if not decisions or len(notice.alert_id) > MAX_BUTTON_VALUE:
        return elements

    value = notice.alert_id
    approval = notice.approval or {}
    approve_value = approval.get("approve_token") or value
    reject_value = approval.get("reject_token") or value
    elements += [
        {"type": "button", "action_id": ACTION_IDS["approve"], "style": "primary",
         "text": _plain("Approve"), "value": approve_value},
        {"type": "button", "action_id": ACTION_IDS["reject"], "style": "danger",
         "text": _plain("Reject"), "value": reject_value, "confirm": _reject_confirm()},
        {"type": "button", "action_id": ACTION_IDS["snooze"],
         "text": _plain(f"Snooze {snooze_hours} h"), "value": value},
    ]
    return elements


def _reject_confirm() -> dict[str, Any]:
    return {
        "title": _plain("Reject this alert?"),
        "text": _plain("The rejection is recorded. The alert stays open and nothing changes."),
        "confirm": _plain("Reject"),
        "deny": _plain("Cancel"),
    }


def _plain(text: str, limit: int = MAX_BUTTON_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": trim_text(text, limit), "emoji": True}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain(text, MAX_HEADER_TEXT)}


def _section(text: str, block_id: str) -> dict[str, Any]:
    # Texts reaching this point are bounded by their parts; the cut only guards the limit.
    return {"type": "section", "block_id": block_id,
            "text": {"type": "mrkdwn", "text": trim_text(text, MAX_SECTION_TEXT)}}


def _fallback_text(notice: Notice, updated: bool) -> str:
    label = SEVERITY_LABEL[notice.severity]
    prefix = "Updated: " if updated else ""
    return escape(trim_text(f"{prefix}{label} {notice.kind} alert: {notice.title}",
                            MAX_FALLBACK_TEXT))


def text_length(blocks: Iterable[Any]) -> int:
    """Count the characters of every string in ``blocks``: texts, URLs, values and ids."""
    return sum(_strings_length(block) for block in blocks)


def _strings_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_strings_length(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_strings_length(item) for item in value)
    return 0
