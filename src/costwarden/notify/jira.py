"""Channel type jira: one Jira Cloud issue or Jira Service Management request per budget period.

A trigger looks for an open ticket of the same budget and period first. A second alert of the
period then adds a comment instead of a duplicate, and so does the retry of a create that timed
out after Jira stored the issue. The lookup tries the key that an earlier delivery stored, then
a JQL search on the ``costwarden-<hash>`` key label. Jira's search is eventually consistent,
which makes the stored key the main dedupe and the search the fallback. Descriptions and
comments are in the Atlassian Document Format (ADF), which version 3 of the REST API requires.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field, field_validator, model_validator

from costwarden.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify.http import check_response, request
from costwarden.notify.notice import Notice, Severity
from costwarden.notify.registry import (
    CHANNELS,
    ActionLinks,
    ChannelSettings,
    Delivery,
    SendResult,
)
from costwarden.notify.secrets import Secret
from costwarden.notify.tickets import TicketChannel, action_line, contributor_line, ticket_key
from costwarden.notify.trim import trim_text

logger = logging.getLogger(__name__)

MAX_SUMMARY_CHARS = 255
MAX_LABEL_CHARS = 255
MAX_DOCUMENT_CHARS = 32_767
"""Jira's limit on a text field. The channel counts the serialised ADF document, which is
longer than its text, so the document fits whichever of the two Jira counts.
NOTE: the limit is the commonly quoted one; Atlassian does not document it for ADF fields."""
MAX_TEXT_NODE_CHARS = 4_000
"""Maximum length of one text node. A longer fact or title is cut and links the full alert."""

DEFAULT_PRIORITIES: dict[str, str] = {"critical": "Highest", "warning": "High", "info": "Medium"}

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")


class JiraSettings(ChannelSettings):
    """Settings of a Jira Cloud or Jira Service Management channel."""

    url: str = Field(
        description="Base URL: https://<site>.atlassian.net for a classic API token, or "
        "https://api.atlassian.com/ex/jira/<cloudId> for a scoped token."
    )
    email: str = Field(description="Atlassian account email that the API token belongs to.")
    api_token: Secret = Field(description="Atlassian API token of that account.")
    project: str = Field(description="Project key of new issues, for example FIN.")
    issue_type: str = Field("Task", description="Issue type name of new issues.")
    labels: list[str] = Field(
        default_factory=lambda: ["cost-optimization"],
        description="Labels of new tickets, besides the costwarden-<hash> key label. Jira "
        "labels contain no spaces.",
    )
    service_desk_id: str | None = Field(
        None,
        description="Jira Service Management service desk id. With request_type_id set, "
        "triggers open customer requests instead of issues.",
    )
    request_type_id: str | None = Field(
        None,
        description="Id of the request type (the one named Cost Optimization). Its form must "
        "include the Summary, Description, Labels and Priority fields.",
    )
    priorities: dict[Severity, str] = Field(
        default_factory=lambda: dict(DEFAULT_PRIORITIES),
        description="Priority name per severity; a severity not listed leaves the priority "
        "to Jira's default.",
    )
    webhook_secret: Secret | None = Field(
        None,
        description="Secret of the Jira admin webhook that posts to /callbacks/jira; its "
        "X-Hub-Signature header is checked against it. Approvals are off when unset.",
    )
    approve_status_ids: list[str] = Field(
        default_factory=list, description="Status ids that mean approved, for example 10005."
    )
    approve_transition: str | None = Field(
        "Approve", description="Transition name that approves, when the payload carries one."
    )
    approve_status_names: list[str] = Field(
        default_factory=lambda: ["Approved"],
        description="Status names that mean approved, used when approve_status_ids is empty.",
    )
    reject_status_ids: list[str] = Field(
        default_factory=list, description="Status ids that mean rejected."
    )
    reject_transition: str | None = Field(
        "Reject", description="Transition name that rejects, when the payload carries one."
    )
    reject_status_names: list[str] = Field(
        default_factory=lambda: ["Rejected", "Declined"],
        description="Status names that mean rejected, used when reject_status_ids is empty.",
    )
    approvers: list[str] = Field(
        default_factory=list,
        description="Atlassian accountIds allowed to approve or reject; empty allows anyone "
        "who can transition the issue.",
    )
    digest: bool = Field(
        False,
        description="Always false: a Jira channel keeps one ticket per budget period and "
        "takes no digests.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL such as https://acme.atlassian.net")
        return value.rstrip("/")

    @field_validator("project")
    @classmethod
    def _project_key(cls, value: str) -> str:
        if not PROJECT_KEY.match(value):
            raise ValueError(
                f"{value!r} is not a Jira project key: upper-case letters, digits and "
                "underscores, starting with a letter, such as FIN"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _labels_without_spaces(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label or any(char.isspace() for char in label):
                raise ValueError(
                    f"label {label!r} is empty or contains a space, and Jira labels cannot; "
                    "use a hyphen, for example cost-optimization"
                )
            if len(label) > MAX_LABEL_CHARS:
                raise ValueError(
                    f"label {label[:40]!r}… is longer than {MAX_LABEL_CHARS} characters"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JiraSettings:
        if self.digest:
            raise ValueError(
                "digest: a Jira channel keeps one ticket per budget period and takes no "
                "digests; set digest: false"
            )
        if (self.service_desk_id is None) != (self.request_type_id is None):
            raise ValueError(
                "service_desk_id and request_type_id go together: set both for Jira Service "
                "Management requests, or neither for plain issues"
            )
        return self

    @property
    def service_desk(self) -> bool:
        return self.service_desk_id is not None


@CHANNELS.register("jira")
class JiraChannel(TicketChannel):
    """Jira Cloud issues or Jira Service Management requests, with approval by transition."""

    settings_class = JiraSettings
    settings: JiraSettings
    service = "Jira"
    no_ticket_detail = "no open ticket to comment on"

    def _follow_up(
        self,
        delivery: Delivery,
        key: str,
        notice: Notice,
        links: ActionLinks | None,
        client: httpx.Client,
    ) -> SendResult:
        heading = "The risk went away" if delivery.event == "resolve" else "Alert updated"
        self.add_comment(key, alert_document(notice, links, heading), client)
        return SendResult(external_ref=key, detail=f"commented on {key}")

    def _trigger(
        self, delivery: Delivery, notice: Notice, links: ActionLinks | None, client: httpx.Client
    ) -> SendResult:
        """Comment on the open ticket of the budget period, or open one when there is none."""
        label = ticket_key(notice)
        key = self._open_ledger_key(delivery.external_ref, client) or self.find_open(label, client)
        if key is not None:
            self.add_comment(key, alert_document(notice, links, "Alert fired again"), client)
            return SendResult(external_ref=key, detail=f"commented on {key}")

        key = self.create(notice, links, label, client)
        logger.info("channel %s opened %s for alert %s", self.name, key, notice.alert_id)
        return SendResult(external_ref=key, detail=f"opened {key}")

    # Jira REST calls

    def find_open(self, label: str, client: httpx.Client) -> str | None:
        """Return the key of the oldest open issue with ``label`` that search shows, or None."""
        jql = (
            f'project = "{self.settings.project}" AND labels = "{label}" '
            "AND statusCategory != Done ORDER BY created ASC"
        )
        body = {"jql": jql, "fields": ["status", "labels"], "maxResults": 1}
        found = self._call(client, "POST", "/rest/api/3/search/jql", json=body).json()
        issues = found.get("issues") or []
        return str(issues[0]["key"]) if issues else None

    def read_issue(self, key: str, client: httpx.Client) -> dict[str, Any] | None:
        """Return the ``status`` and ``labels`` fields of an issue, or None when it is missing."""
        path = f"/rest/api/3/issue/{key}"
        response = self._call(
            client, "GET", path, params={"fields": "status,labels"}, ok=(200, 404)
        )
        if response.status_code == 404:
            return None
        fields: dict[str, Any] = response.json().get("fields") or {}
        return fields

    def add_comment(self, key: str, document: dict[str, Any], client: httpx.Client) -> None:
        self._call(client, "POST", f"/rest/api/3/issue/{key}/comment", json={"body": document})

    def create(
        self, notice: Notice, links: ActionLinks | None, label: str, client: httpx.Client
    ) -> str:
        """Open an issue, or a customer request in service desk mode, and return its key."""
        summary = trim_text(" ".join(notice.title.split()), MAX_SUMMARY_CHARS)
        labels = [*self.settings.labels, label]
        description = alert_document(notice, links, None)
        priority = self.settings.priorities.get(notice.severity)

        if self.settings.service_desk:
            fields: dict[str, Any] = {
                "summary": summary, "description": description, "labels": labels
            }
            if priority:
                fields["priority"] = {"name": priority}
            body = {
                "serviceDeskId": self.settings.service_desk_id,
                "requestTypeId": self.settings.request_type_id,
                "isAdfRequest": True,
                "requestFieldValues": fields,
            }
            created = self._call(client, "POST", "/rest/servicedeskapi/request", json=body)
            return str(created.json()["issueKey"])

        fields = {
            "project": {"key": self.settings.project},
            "issuetype": {"name": self.settings.issue_type},
            "summary": summary,
            "labels": labels,
            "description": description,
        }
        if priority:
            fields["priority"] = {"name": priority}
        created = self._call(client, "POST", "/rest/api/3/issue", json={"fields": fields})
        return str(created.json()["key"])

    def _open_ledger_key(self, key: str | None, client: httpx.Client) -> str | None:
        """Return the stored key when that issue exists and is not done; reads by key are exact."""
        if key is None:
            return None
        fields = self.read_issue(key, client)
        if fields is None:
            logger.warning("channel %s: stored issue %s no longer exists", self.name, key)
            return None
        category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
        return None if category == "done" else key

    def _call(
        self,
        client: httpx.Client,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201, 204),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one authenticated request to Jira and classify a failed response."""
        settings = self.settings
        auth = httpx.BasicAuth(settings.email, settings.api_token.get_secret_value())
        response = request(
            client,
            self.name,
            method,
            settings.url + path,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=settings.timeout_seconds,
            **kwargs,
        )
        try:
            return check_response(response, self.name, ok=ok)
        except RetryableDeliveryError as exc:
            raise _with_reset(exc, response) from None
        except PermanentDeliveryError as exc:
            raise _with_hint(exc, response) from None


def _with_reset(exc: RetryableDeliveryError, response: httpx.Response) -> RetryableDeliveryError:
    """Take the wait from ``X-RateLimit-Reset`` (an ISO 8601 time) when Retry-After is absent."""
    if exc.retry_after is not None:
        return exc
    reset = response.headers.get("X-RateLimit-Reset")
    if not reset:
        return exc
    try:
        when = datetime.fromisoformat(reset.replace("Z", "+00:00"))
    except ValueError:
        return exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return RetryableDeliveryError(
        str(exc), channel=exc.channel, status=exc.status, retry_after=wait
    )


def _with_hint(exc: DeliveryError, response: httpx.Response) -> PermanentDeliveryError:
    """Add what to check to a 401 or 403, the failures a configuration change fixes."""
    hints = {
        401: "check email and api_token; a scoped API token needs the "
        "https://api.atlassian.com/ex/jira/<cloudId> URL",
        403: "the account lacks a permission in the project, such as Create Issues or "
        "Add Comments",
    }
    hint = hints.get(response.status_code)
    message = f"{exc}; {hint}" if hint else str(exc)
    return PermanentDeliveryError(message, channel=exc.channel, status=exc.status)


# Atlassian Document Format


def _text(value: str, link: str | None = None, *, strong: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": value}
    marks: list[dict[str, Any]] = []
    if strong:
        marks.append({"type": "strong"})
    if link:
        marks.append({"type": "link", "attrs": {"href": link}})
    if marks:
        node["marks"] = marks
    return node


def _paragraph(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(nodes)}


def _heading(value: str) -> dict[str, Any]:
    return {"type": "heading", "attrs": {"level": 3}, "content": [_text(value)]}


def _bullets(items: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "type": "bulletList",
        "content": [{"type": "listItem", "content": [_paragraph(*nodes)]} for nodes in items],
    }


def alert_blocks(notice: Notice, heading: str | None) -> list[dict[str, Any]]:
    """Return the ADF blocks of a notice's title, facts, contributors and actions."""
    cut = notice.alert_url

    def clip(value: str) -> str:
        return trim_text(value, MAX_TEXT_NODE_CHARS, cut)

    title = f"{heading}: {notice.title}" if heading else notice.title
    blocks = [_paragraph(_text(clip(title), strong=True))]
    if notice.facts:
        facts = [
            [_text(f"{label}: ", strong=True), _text(clip(value))]
            for label, value in notice.facts
        ]
        blocks.append(_bullets(facts))

    if notice.contributors:
        blocks.append(_heading("Top contributors"))
        lines = [contributor_line(notice, i) for i in range(len(notice.contributors))]
        blocks.append(_bullets([[_text(clip(line))] for line in lines]))

    if notice.actions:
        blocks.append(_heading("Recommended actions"))
        items = []
        for i, action in enumerate(notice.actions):
            nodes = [_text(clip(action_line(notice, i)))]
            if action.link:
                nodes.extend([_text(" "), _text("Apply in Palette", action.link)])
            items.append(nodes)
        blocks.append(_bullets(items))
    return blocks


def _link_blocks(notice: Notice, links: ActionLinks | None) -> list[dict[str, Any]]:
    """Return the paragraphs with the alert and Palette links, the signed links and the ids."""
    blocks = []
    nodes: list[dict[str, Any]] = []
    for label, href in (("Full alert", notice.alert_url), ("Palette", notice.palette_url)):
        if not href:
            continue
        if nodes:
            nodes.append(_text(" · "))
        nodes.append(_text(label, href))
    if nodes:
        blocks.append(_paragraph(*nodes))

    if links is not None:
        blocks.append(_paragraph(
            _text("Decide without Jira: "),
            _text("Approve", links.approve), _text(" · "),
            _text("Reject", links.reject), _text(" · "),
            _text("Snooze", links.snooze),
        ))
    blocks.append(_paragraph(_text(f"Alert {notice.alert_id}, ticket key {ticket_key(notice)}")))
    return blocks


def alert_document(
    notice: Notice, links: ActionLinks | None, heading: str | None
) -> dict[str, Any]:
    """Return an ADF document of a notice that fits ``MAX_DOCUMENT_CHARS`` when serialised.

    The links and ids at the end are always kept. Body blocks that do not fit are left out
    from the end, list items one by one, and a closing paragraph links the full alert.
    """
    blocks = alert_blocks(notice, heading)
    tail = _link_blocks(notice, links)
    document = {"type": "doc", "version": 1, "content": [*blocks, *tail]}
    if _size(document) <= MAX_DOCUMENT_CHARS:
        return document

    if notice.alert_url:
        target = _text("Full alert", notice.alert_url)
    else:
        target = _text(f"Alert {notice.alert_id}.")
    closing = _paragraph(_text("Cut to fit Jira's size limit. "), target)
    # Each kept block also costs the comma that separates it from the next one.
    room = MAX_DOCUMENT_CHARS - _size({"type": "doc", "version": 1, "content": [closing, *tail]})
    kept: list[dict[str, Any]] = []
    for block in blocks:
        size = _size(block) + 1
        if size <= room:
            kept.append(block)
            room -= size
            continue
        partial = _partial_list(block, room - 1)
        if partial is not None:
            kept.append(partial)
        break
    return {"type": "doc", "version": 1, "content": [*kept, closing, *tail]}


def _partial_list(block: dict[str, Any], room: int) -> dict[str, Any] | None:
    """Return the leading items of a bullet list that fit in ``room`` characters, or None."""
    if block["type"] != "bulletList":
        return None
    size = _size({**block, "content": []})
    items: list[dict[str, Any]] = []
    for item in block["content"]:
        size += _size(item) + (1 if items else 0)
        if size > room:
            break
        items.append(item)
    return {**block, "content": items} if items else None


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
