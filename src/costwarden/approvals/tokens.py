"""Signed, single-use approval tokens: one decision on one approval request, until it expires.

A token is ``apr1.`` followed by an itsdangerous URL-safe serialization of ``[request_id,
digest, decision, expires_at, token_id]`` signed with HMAC-SHA256 under ``notify.link_secret``
and a salt of its own, so an alert link can never pass as an approval token. The signature
binds the request, the digest of its exact change, approve or reject, and the expiry.
``token_id`` is random; the decision that uses the token stores it in
``ApprovalDecisionRecord.token_id``, whose unique constraint makes the token single-use.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from costwarden.domain.governance import Vote
from costwarden.errors import ApprovalError
from costwarden.notify.links import loads_canonical

PREFIX = "apr1."
"""Start of every approval token; the version lets the format change later."""

SALT = "costwarden.approval-token.v1"
"""Separates approval token signatures from alert links signed with the same secret."""

VOTES: tuple[Vote, ...] = ("approve", "reject")
TOKEN_ID_BYTES = 16


@dataclass(frozen=True, slots=True)
class ApprovalClaims:
    """The verified content of an approval token."""

    request_id: str
    digest: str
    decision: Vote
    expires_at: datetime
    token_id: str


def is_approval_token(value: str) -> bool:
    """Tell whether ``value`` has the form of an approval token (the signature is not checked)."""
    return value.startswith(PREFIX)


class ApprovalTokenSigner:
    """Issue and verify approval tokens with a secret shared by every replica of the service."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the approval token secret is empty; set notify.link_secret")
        self._serializer = URLSafeSerializer(
            secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def issue(self, request_id: str, digest: str, decision: Vote, expires_at: datetime) -> str:
        """Return a new token with a fresh token id for one decision on one request."""
        if decision not in VOTES:
            raise ValueError(f"decision {decision!r} is invalid; use approve or reject")
        token_id = secrets.token_urlsafe(TOKEN_ID_BYTES)
        claims = [request_id, digest, decision, int(expires_at.timestamp()), token_id]
        return PREFIX + str(self._serializer.dumps(claims))

    def verify(self, token: str, now: datetime) -> ApprovalClaims:
        """Return the claims of ``token``; raise ``ApprovalError`` when it is forged, malformed
        or expired."""
        if not is_approval_token(token):
            raise ApprovalError("the approval token is malformed: it does not start with apr1.")
        try:
            raw: Any = loads_canonical(self._serializer, token[len(PREFIX):])
        except BadData:
            raise ApprovalError(
                "the approval token is invalid: its signature does not match; use the buttons "
                "or links of the latest message"
            ) from None

        claims = _parse(raw)
        if claims.expires_at <= now.astimezone(UTC):
            raise ApprovalError(
                f"the approval token expired at {claims.expires_at.isoformat()}; ask for a new "
                "approval request"
            )
        return claims


def _parse(raw: Any) -> ApprovalClaims:
    """Check the shape of signed claims; a valid signature over another shape is still rejected."""
    malformed = ApprovalError("the approval token is malformed; use the latest message")
    if not isinstance(raw, list) or len(raw) != 5:
        raise malformed
    request_id, digest, decision, expires, token_id = raw
    texts = (request_id, digest, token_id)
    if not all(isinstance(value, str) and value for value in texts):
        raise malformed
    if decision not in VOTES or type(expires) is not int:
        raise malformed
    return ApprovalClaims(
        request_id=request_id,
        digest=digest,
        decision=decision,
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
        token_id=token_id,
    )


def signer_from_settings(link_secret: Any) -> ApprovalTokenSigner | None:
    """Return a signer for ``notify.link_secret`` (a SecretStr), or None when it is unset."""
    if link_secret is None:
        return None
    return ApprovalTokenSigner(link_secret.get_secret_value())


def expiry(created_at: datetime, ttl_hours: int) -> datetime:
    return created_at + timedelta(hours=ttl_hours)
