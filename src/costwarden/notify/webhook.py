"""Channel type webhook: a JSON event signed with the Standard Webhooks scheme.

Each delivery is one POST with the headers ``webhook-id`` (the outbox row id, the same on every
retry, so receivers deduplicate on it), ``webhook-timestamp`` (Unix seconds when sent) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over ``id.timestamp.body``). While a secret is
rotated, the header carries one signature per secret, separated by a space. The body follows
``docs/schemas/webhook-event.schema.json``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from costwarden.errors import PermanentDeliveryError
from costwarden.notify import http
from costwarden.notify.registry import CHANNELS, Channel, ChannelSettings, Delivery, SendResult
from costwarden.notify.secrets import Secret

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 20 * 1024
"""Bodies above this size are trimmed, because receivers should only need to accept small ones."""
KEPT_LIST_ITEMS = 5
"""Contributors and actions a trimmed notice keeps."""
MAX_TRIMMED_TEXT = 500
"""Characters a trimmed notice keeps of its title and of each fact value."""
KEPT_FACTS = 20
"""Facts a notice keeps in the last trimming step."""

EVENT_TYPES = {
    "trigger": "alert.triggered",
    "update": "alert.updated",
    "resolve": "alert.resolved",
    "digest": "alert.digest",
}

RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-hub-signature-256",
    }
)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
"""Length of the random key behind 'whsec_', as the Standard Webhooks specification asks."""


class WebhookSettings(ChannelSettings):
    """Settings of an outgoing webhook signed with the Standard Webhooks scheme."""

    url: str = Field(
        description="HTTPS URL that events are posted to. Plain HTTP is accepted only for a "
        "loopback host."
    )
    secret: Secret = Field(
        description="Signing secret: 'whsec_' followed by base64 of 24 to 64 random bytes. Give "
        "it as a literal, {env: NAME} or {file: PATH}."
    )
    previous_secret: Secret | None = Field(
        None,
        description="The secret being replaced. While it is set, every event carries a "
        "signature with each secret, so receivers can switch without missing events.",
    )
    headers: dict[str, Secret] = Field(
        default_factory=dict,
        description="Extra static headers, for example an Authorization header of a gateway.",
    )
    github_signature: bool = Field(
        False,
        description="Also send X-Hub-Signature-256 (sha256=<hex HMAC of the body>, keyed with "
        "the secret string as configured), for receivers with GitHub-style verifiers.",
    )

    @field_validator("url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(
                f"webhooks are sent over HTTPS only, so use https://{parts.netloc}{parts.path}"
            )
        return value

    @field_validator("secret", "previous_secret")
    @classmethod
    def _standard_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        generate = (
            'Generate one with: python -c "import base64, os; '
            "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
        )
        try:
            if not text.startswith("whsec_"):
                raise ValueError("no whsec_ prefix")
            Webhook(text)
            size = len(base64.b64decode(text.removeprefix("whsec_") + "=="))
        except (binascii.Error, EmptyWebhookSecretError, ValueError) as exc:
            raise ValueError(
                f"the secret is not 'whsec_' followed by base64 of random bytes. {generate}"
            ) from exc
        if not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
            raise ValueError(
                f"the secret holds {size} bytes; use {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} "
                f"random bytes. {generate}"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        reserved = sorted(name for name in value if name.lower() in RESERVED_HEADERS)
        if reserved:
            raise ValueError(
                f"headers {', '.join(reserved)} are set by costwarden, so remove them from headers"
            )
        return value


@CHANNELS.register("webhook")
class WebhookChannel(Channel):
    """Outgoing webhook: alert events as JSON, signed with the Standard Webhooks scheme."""

    settings_class = WebhookSettings
    settings: WebhookSettings

    def send(self, delivery: Delivery, client: httpx.Client) -> SendResult:
        event = build_event(delivery, self.context.alert_url)
        body = encode_event(event)
        headers = self.sign(delivery.id, datetime.now(UTC), body)

        response = http.request(
            client,
            self.name,
            "POST",
            self.settings.url,
            content=body,
            headers=headers,
            timeout=self.settings.timeout_seconds,
            follow_redirects=False,
        )
        self._check(response)
        logger.info(
            "webhook channel %s delivered %s %s (%d bytes): %d",
            self.name,
            event["type"],
            delivery.id,
            len(body),
            response.status_code,
        )
        # Later events need nothing from this one, because each is a new delivery with its own id.
        return SendResult(detail=f"webhook-id {delivery.id} got {response.status_code}")

    def sign(self, message_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
        """Return every header of a delivery of ``body``, signatures included."""
        secrets = [self.settings.secret]
        if self.settings.previous_secret is not None:
            secrets.append(self.settings.previous_secret)
        signatures = [
            Webhook(secret.get_secret_value()).sign(message_id, timestamp, body)
            for secret in secrets
        ]
        headers = {name: value.get_secret_value() for name, value in self.settings.headers.items()}
        headers.update(
            {
                "Content-Type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(int(timestamp.timestamp())),
                "webhook-signature": " ".join(signatures),
            }
        )
        if self.settings.github_signature:
            key = self.settings.secret.get_secret_value().encode()
            digest = hmac.new(key, body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        return headers

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        where = f"POST {http.host_of(self.settings.url)}"
        if 300 <= status < 400:
            raise PermanentDeliveryError(
                f"channel {self.name!r}: {where} returned {status}, a redirect. Webhooks do not "
                "follow redirects, so set url to the final address",
                channel=self.name,
                status=status,
            )
        if status == 410:
            raise PermanentDeliveryError(
                f"channel {self.name!r}: {where} returned 410 Gone, so the receiver disabled this "
                "endpoint. Remove the channel or ask the receiver for a new URL",
                channel=self.name,
                status=status,
            )
        http.check_response(response, self.name)


def build_event(
    delivery: Delivery, alert_url: Callable[[str], str | None] | None = None
) -> dict[str, Any]:
    """Return the event of a delivery, trimmed to ``MAX_BODY_BYTES`` when it is larger.

    ``alert_url`` maps an alert id to its URL in the costwarden API, for notices without one.
    """
    notices = []
    for notice in delivery.notices:
        # A JSON round trip turns the tuples of to_json() into the lists that are sent.
        item = json.loads(json.dumps(notice.to_json()))
        # The approval request carries signed approve and reject tokens, which are bearer
        # credentials; the event schema has no field for them.
        item.pop("approval", None)
        if not item.get("alert_url") and alert_url is not None:
            item["alert_url"] = alert_url(notice.alert_id)
        notices.append(item)

    data = {"notices": notices} if delivery.event == "digest" else notices[0]
    event = {
        "type": EVENT_TYPES[delivery.event],
        "timestamp": delivery.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return _fit(event)


def encode_event(event: dict[str, Any]) -> bytes:
    """Return the exact bytes sent and signed: compact UTF-8 JSON."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def _fit(event: dict[str, Any]) -> dict[str, Any]:
    """Trim an event over ``MAX_BODY_BYTES`` step by step until it fits; never reject it.

    Each notice first keeps its first few contributors and actions, then none, then loses its
    labels and owners and has its title and fact values cut. A digest then drops notices from
    the end and counts them in ``data.omitted``. Trimmed notices carry ``truncated: true``.
    """
    if len(encode_event(event)) <= MAX_BODY_BYTES:
        return event

    data = event["data"]
    notices = data["notices"] if event["type"] == "alert.digest" else [data]
    for step in (_keep_few, _keep_none, _cut_text):
        for notice in notices:
            step(notice)
            notice["truncated"] = True
        if len(encode_event(event)) <= MAX_BODY_BYTES:
            return event

    if event["type"] == "alert.digest":
        while len(notices) > 1 and len(encode_event(event)) > MAX_BODY_BYTES:
            notices.pop()
            data["omitted"] = data.get("omitted", 0) + 1
    return event


def _keep_few(notice: dict[str, Any]) -> None:
    notice["contributors"] = notice["contributors"][:KEPT_LIST_ITEMS]
    notice["actions"] = notice["actions"][:KEPT_LIST_ITEMS]


def _keep_none(notice: dict[str, Any]) -> None:
    notice["contributors"] = []
    notice["actions"] = []


def _cut_text(notice: dict[str, Any]) -> None:
    notice["labels"] = {}
    notice["owners"] = []
    notice["title"] = notice["title"][:MAX_TRIMMED_TEXT]
    notice["facts"] = [
        [label[:100], value[:MAX_TRIMMED_TEXT]] for label, value in notice["facts"][:KEPT_FACTS]
    ]
