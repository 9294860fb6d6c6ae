"""Signed, expiring approval links for channels whose messages cannot call back (Teams, email).

A link is ``{public_url}/actions/{token}``. The token is an itsdangerous URL-safe serialization
of ``[alert_id, channel, action, expires_at, token_id]`` signed with HMAC-SHA256, so it binds the
alert, the channel, the decision and the expiry. ``token_id`` is random and serves as the
dedupe key of the recorded decision, which makes each link usable once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from itsdangerous import BadData, URLSafeSerializer

from costwarden.errors import CallbackError
from costwarden.notify.registry import ActionLinks, ResponseAction

SALT = "costwarden.action-link.v1"
"""Separates link signatures from anything else signed with the same secret."""

ACTIONS: tuple[ResponseAction, ...] = get_args(ResponseAction)

TOKEN_ID_BYTES = 12


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """Claims of a verified token: one decision on one alert from one channel, until expiry."""

    alert_id: str
    channel: str
    action: ResponseAction
    token_id: str
    expires_at: datetime

    @property
    def dedupe_key(self) -> str:
        """Key of the recorded decision; a second use of the link finds it and records nothing."""
        return f"link:{self.token_id}"


class LinkSigner:
    """Sign and verify approval links with a secret shared by every replica of the service."""

    def __init__(self, secret: str, public_url: str, ttl_hours: int) -> None:
        if not secret:
            raise ValueError("the link secret is empty; set notify.link_secret")
        if ttl_hours < 1:
            raise ValueError(f"link TTL {ttl_hours} h is invalid; use at least 1 hour")
        self.public_url = public_url.rstrip("/")
        self.ttl = timedelta(hours=ttl_hours)
        self._serializer = URLSafeSerializer(
            secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def links_for(self, alert_id: str, channel: str, now: datetime | None = None) -> ActionLinks:
        """Return approve, reject and snooze links of an alert, each with its own token id."""
        urls = {
            action: f"{self.public_url}/actions/{self.token(alert_id, channel, action, now)}"
            for action in ACTIONS
        }
        return ActionLinks(approve=urls["approve"], reject=urls["reject"], snooze=urls["snooze"])

    def token(
        self, alert_id: str, channel: str, action: ResponseAction, now: datetime | None = None
    ) -> str:
        """Return a signed token for one decision, valid for the signer's TTL from ``now``."""
        if action not in ACTIONS:
            raise ValueError(f"action {action!r} is invalid; use one of {', '.join(ACTIONS)}")
        expires_at = (now or datetime.now(UTC)) + self.ttl
        token_id = secrets.token_urlsafe(TOKEN_ID_BYTES)
        claims = [alert_id, channel, action, int(expires_at.timestamp()), token_id]
        return str(self._serializer.dumps(claims))

    def verify(self, token: str, now: datetime | None = None) -> LinkClaims:
        """Return the claims of a token; raise ``CallbackError`` when it is forged, malformed
        or expired."""
        try:
            claims: Any = loads_canonical(self._serializer, token)
        except BadData:
            raise CallbackError(
                "the approval link is invalid: its signature or content does not match; use "
                "the link from the latest message"
            ) from None

        parsed = _parse_claims(claims)
        if parsed.expires_at <= (now or datetime.now(UTC)):
            hours = int(self.ttl.total_seconds() // 3600)
            raise CallbackError(
                f"the approval link expired at {parsed.expires_at.isoformat()}; links are valid "
                f"for {hours} hours (notify.link_ttl_hours)"
            )
        return parsed


def loads_canonical(serializer: URLSafeSerializer, token: str) -> Any:
    """Return the payload of ``token``, or raise ``BadData`` when signing that payload again
    gives other text.

    Base64 ignores the spare low bits of a segment's last character, so another last character
    can decode to the same bytes. The comparison accepts only the spelling that was issued.
    """
    payload = serializer.loads(token)
    if serializer.dumps(payload) != token:
        raise BadData("the token is invalid: it is not in canonical form")
    return payload


def _parse_claims(claims: Any) -> LinkClaims:
    """Check the shape of signed claims; a valid signature over another shape is still rejected."""
    if not isinstance(claims, list) or len(claims) != 5:
        raise CallbackError("the approval link is malformed; use the link from the latest message")

    alert_id, channel, action, expires, token_id = claims
    texts_ok = all(isinstance(value, str) and value for value in (alert_id, channel, token_id))
    if not texts_ok or action not in ACTIONS or type(expires) is not int:
        raise CallbackError("the approval link is malformed; use the link from the latest message")
    return LinkClaims(
        alert_id=alert_id,
        channel=channel,
        action=action,
        token_id=token_id,
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
    )
