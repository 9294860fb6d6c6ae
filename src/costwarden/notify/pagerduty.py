"""Channel type pagerduty: trigger and resolve PagerDuty alerts with the Events API v2.

Every alert maps to one PagerDuty alert through a stable ``dedup_key``
(``costwarden-<alert id>``): a trigger while the PagerDuty alert is open updates it, and a
retried request cannot open a second one. The ``routing_key`` in the body is the only
credential; the API has no Authorization header.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from costwarden.errors import PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import http
from costwarden.notify.notice import SEVERITY_RANK, Notice
from costwarden.notify.registry import (
    CHANNELS,
    Channel,
    ChannelSettings,
    Delivery,
    SendResult,
)
from costwarden.notify.secrets import Secret
from costwarden.notify.trim import trim_text

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

logger = logging.getLogger(__name__)

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_EVENT_BYTES = 512 * 1024
"""PagerDuty's limit on the whole event, in bytes of the JSON body."""
KEPT_LIST_ITEMS = 5
"""Contributors and actions kept in custom_details when the event is over the size limit."""
DEDUP_PREFIX = "costwarden-"
CLIENT = "costwarden"

# Notice severities map one to one onto PagerDuty's, so PagerDuty's "error" is never sent.
PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}


class PagerDutySettings(ChannelSettings):
    """Settings of a PagerDuty service integration (Events API v2)."""

    routing_key: Secret = Field(
        description="Integration key of the PagerDuty service, 32 characters. Give it as a "
        "literal, {env: NAME} or {file: PATH}."
    )
    events_url: str = Field(EVENTS_URL, description="URL of the Events API v2 enqueue endpoint.")
    min_severity: Literal["info", "warning", "critical"] = Field(
        "critical",
        description="Lowest alert severity that pages. Lower ones are skipped unless they "
        "update or resolve an alert that already paged.",
    )
    source: str = Field(
        "costwarden", min_length=1, description="payload.source: where the alert comes from."
    )
    group: str | None = Field(None, description="payload.group, for example finops.")
    rate_limited_wait_seconds: float = Field(
        60.0,
        ge=0,
        description="Seconds to wait before retrying after a 429 without Retry-After, because "
        "PagerDuty asks for a backoff of minutes.",
    )
    digest: bool = Field(False, description="PagerDuty takes no digests, so keep this off.")

    @field_validator("events_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        # The routing key travels in the body, so plain HTTP would expose it on the network.
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError(
                f"events are sent over HTTPS only, so use https://{parts.netloc}{parts.path}"
            )
        return value

    @field_validator("routing_key")
    @classmethod
    def _routing_key_length(cls, value: SecretStr) -> SecretStr:
        length = len(value.get_secret_value())
        if length != ROUTING_KEY_LENGTH:
            raise ValueError(
                f"the routing key has {length} characters, expected {ROUTING_KEY_LENGTH}. Copy "
                "the Integration Key of the service's Events API v2 integration"
            )
        return value


def dedup_key(alert_id: str) -> str:
    """Return the PagerDuty ``dedup_key`` of an alert: ``costwarden-<alert id>``.

    An alert id too long for the 255-character limit is replaced by its SHA-256.
    """
    key = DEDUP_PREFIX + alert_id
    if len(key) <= MAX_DEDUP_KEY:
        return key
    return DEDUP_PREFIX + hashlib.sha256(alert_id.encode()).hexdigest()


@CHANNELS.register("pagerduty")
class PagerDutyChannel(Channel):
    """PagerDuty Events API v2: page on high-severity alerts, resolve when the risk goes away."""

    settings_class = PagerDutySettings
    settings: PagerDutySettings

    def send(self, delivery: Delivery, client: httpx.Client) -> SendResult:
        skipped = self._skip_reason(delivery)
        if skipped:
            logger.info(
                "pagerduty channel %s skipped delivery %s: %s", self.name, delivery.id, skipped
            )
            return SendResult(external_ref=delivery.external_ref, detail=skipped)

        notice = delivery.notice
        key = delivery.external_ref or dedup_key(notice.alert_id)
        if delivery.event == "resolve":
            event = self._resolve_event(key)
        else:
            event = self._trigger_event(key, notice, delivery)

        response = self._post(client, _encode(event))
        returned_key = _returned_key(response) or key
        logger.info(
            "pagerduty channel %s sent %s of alert %s (dedup_key %s)",
            self.name,
            event["event_action"],
            notice.alert_id,
            returned_key,
        )
        return SendResult(external_ref=returned_key, detail=f"{event['event_action']} accepted")

    def _skip_reason(self, delivery: Delivery) -> str:
        """Return why a delivery sends nothing, or an empty string when it is sent.

        An update or resolve of an alert that paged before (``external_ref`` set) is always
        sent, so that a PagerDuty alert never stays open after its severity dropped.
        """
        if delivery.event == "digest":
            return "pagerduty takes no digests"
        if delivery.external_ref and delivery.event in ("update", "resolve"):
            return ""
        severity = delivery.notice.severity
        if SEVERITY_RANK[severity] < SEVERITY_RANK[self.settings.min_severity]:
            return "below min_severity"
        return ""

    def _resolve_event(self, key: str) -> dict[str, Any]:
        return {
            "routing_key": self.settings.routing_key.get_secret_value(),
            "event_action": "resolve",
            "dedup_key": key,
        }

    def _trigger_event(self, key: str, notice: Notice, delivery: Delivery) -> dict[str, Any]:
        alert_url = notice.alert_url or self.context.alert_url(notice.alert_id)
        payload: dict[str, Any] = {
            "summary": trim_text(notice.title, MAX_SUMMARY),
            "source": self.settings.source,
            "severity": PAGERDUTY_SEVERITY[notice.severity],
            "timestamp": notice.generated_at.isoformat(),
            "class": notice.kind,
            "custom_details": _custom_details(notice),
        }
        if notice.budget:
            payload["component"] = notice.budget
        if self.settings.group:
            payload["group"] = self.settings.group

        event: dict[str, Any] = {
            "routing_key": self.settings.routing_key.get_secret_value(),
            "event_action": "trigger",
            "dedup_key": key,
            "payload": payload,
            "client": CLIENT,
            "links": _links(notice, alert_url, delivery),
        }
        if alert_url:
            event["client_url"] = alert_url
        return _fit(event, alert_url)

    def _post(self, client: httpx.Client, body: bytes) -> httpx.Response:
        response = http.request(
            client,
            self.name,
            "POST",
            self.settings.events_url,
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=self.settings.timeout_seconds,
        )
        try:
            return http.check_response(response, self.name)
        except RetryableDeliveryError as exc:
            if exc.status == 429 and exc.retry_after is None:
                exc.retry_after = self.settings.rate_limited_wait_seconds
            raise
        except PermanentDeliveryError as exc:
            raise PermanentDeliveryError(
                _rejection_message(self.name, response) or str(exc),
                channel=self.name,
                status=exc.status,
            ) from None


def _custom_details(notice: Notice) -> dict[str, Any]:
    """Return the alert's facts and evidence as PagerDuty custom details."""
    details: dict[str, Any] = {label: value for label, value in notice.facts}
    details["alert_id"] = notice.alert_id
    details["state"] = notice.state
    if notice.period_start and notice.period_end:
        details["period"] = f"{notice.period_start.isoformat()}/{notice.period_end.isoformat()}"
    if notice.owners:
        details["owners"] = list(notice.owners)
    if notice.labels:
        details["labels"] = dict(notice.labels)
    if notice.contributors:
        details["contributors"] = [_contributor_line(item) for item in notice.contributors]
    if notice.actions:
        details["recommended_actions"] = [_action_line(item) for item in notice.actions]
    return details


def _contributor_line(contributor: Any) -> str:
    amount = f": {contributor.amount}" if contributor.amount else ""
    return f"{contributor.kind} {contributor.name}{amount}"


def _action_line(action: Any) -> str:
    savings = f" (saves {action.savings_per_month} per month)" if action.savings_per_month else ""
    return f"{action.title}{savings}"


def _links(notice: Notice, alert_url: str | None, delivery: Delivery) -> list[dict[str, str]]:
    links = []
    if notice.palette_url:
        links.append({"href": notice.palette_url, "text": "Open in Palette"})
    if alert_url:
        links.append({"href": alert_url, "text": "Full alert in costwarden"})
    actions = delivery.links.get(notice.alert_id)
    if actions:
        links.append({"href": actions.approve, "text": "Approve the recommended action"})
        links.append({"href": actions.reject, "text": "Reject the recommended action"})
        links.append({"href": actions.snooze, "text": "Snooze this alert"})
    return links


def _fit(event: dict[str, Any], alert_url: str | None) -> dict[str, Any]:
    """Shrink custom_details until the event fits PagerDuty's 512 KB limit.

    First the contributor and action lists keep their first few entries. If that is not
    enough, only the facts stay, and at last only a pointer to the full alert.
    """
    if len(_encode(event)) <= MAX_EVENT_BYTES:
        return event

    details = event["payload"]["custom_details"]
    marker = {"truncated": True, "full_alert": alert_url}
    shorter = dict(details, **marker)
    for key in ("contributors", "recommended_actions"):
        if key in shorter:
            shorter[key] = shorter[key][:KEPT_LIST_ITEMS]
    facts_only = {
        key: value
        for key, value in shorter.items()
        if isinstance(value, str) and len(value) <= MAX_SUMMARY
    }
    for candidate in (shorter, dict(facts_only, **marker), marker):
        event["payload"]["custom_details"] = candidate
        if len(_encode(event)) <= MAX_EVENT_BYTES:
            break
    logger.warning(
        "pagerduty event of alert %s was over %d bytes; custom details trimmed",
        event["dedup_key"],
        MAX_EVENT_BYTES,
    )
    return event


def _encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def _returned_key(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    key = body.get("dedup_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key else None


def _rejection_message(channel: str, response: httpx.Response) -> str | None:
    """Return a message with the ``message`` and ``errors`` of PagerDuty's 400 body, or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    errors = body.get("errors") or []
    reasons = "; ".join(str(error) for error in errors) if isinstance(errors, list) else ""
    host = http.host_of(str(response.request.url))
    message = body.get("message") or body.get("status") or "rejected"
    detail = f"{message}: {reasons}" if reasons else str(message)
    return f"channel {channel!r}: POST {host} returned {response.status_code}: {detail}"
