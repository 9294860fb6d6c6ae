"""Signed approval links: what a token binds, and every way a bad token is rejected."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer

from costwarden.errors import CallbackError
from costwarden.notify.links import SALT, LinkSigner

SECRET = "link-test-secret-0b7c"
PUBLIC_URL = "https://costwarden.example.com/"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ALERT_ID = "ba-3f9c2e1d7a60b4c2"


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(SECRET, PUBLIC_URL, 24)


def _token(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_links_round_trip(signer: LinkSigner) -> None:
    links = signer.links_for(ALERT_ID, "teams-finops", now=NOW)

    for action, url in (("approve", links.approve), ("reject", links.reject),
                        ("snooze", links.snooze)):
        assert url.startswith("https://costwarden.example.com/actions/")
        claims = signer.verify(_token(url), now=NOW)
        assert claims.alert_id == ALERT_ID
        assert claims.channel == "teams-finops"
        assert claims.action == action
        assert claims.expires_at == NOW + timedelta(hours=24)


def test_token_compact_url_safe(signer: LinkSigner) -> None:
    token = signer.token(ALERT_ID, "teams-finops", "approve", now=NOW)

    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", token)
    assert len(token) < 200


def test_token_ids_unique(signer: LinkSigner) -> None:
    links = signer.links_for(ALERT_ID, "t", now=NOW)
    again = signer.links_for(ALERT_ID, "t", now=NOW)

    ids = {signer.verify(_token(url), now=NOW).token_id
           for url in (links.approve, links.reject, links.snooze, again.approve)}
    assert len(ids) == 4


def test_expired_rejected(signer: LinkSigner) -> None:
    token = signer.token(ALERT_ID, "t", "approve", now=NOW)

    assert signer.verify(token, now=NOW + timedelta(hours=23, minutes=59))
    with pytest.raises(CallbackError, match="expired"):
        signer.verify(token, now=NOW + timedelta(hours=24))


def test_forged_signature_rejected(signer: LinkSigner) -> None:
    token = signer.token(ALERT_ID, "t", "approve", now=NOW)
    payload, signature = token.rsplit(".", 1)
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")

    with pytest.raises(CallbackError, match="signature"):
        signer.verify(f"{payload}.{flipped}", now=NOW)


def test_link_spare_bits_rejected(signer: LinkSigner) -> None:
    """Base64 ignores the spare bits of a segment's last character; a link with another last character is rejected."""
    token = signer.token(ALERT_ID, "t", "approve", now=NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spellings = [token[:-1] + char for char in alphabet if char != token[-1]]

    accepted = []
    for spelling in spellings:
        try:
            signer.verify(spelling, now=NOW)
        except CallbackError:
            continue
        accepted.append(spelling)

    assert accepted == []


def test_changed_action_rejected(signer: LinkSigner) -> None:
    """A token whose payload is swapped for another action keeps its old signature: rejected."""
    token = signer.token(ALERT_ID, "t", "reject", now=NOW)
    _, signature = token.rsplit(".", 1)
    other = signer.token(ALERT_ID, "t", "approve", now=NOW)
    payload, _ = other.rsplit(".", 1)

    with pytest.raises(CallbackError):
        signer.verify(f"{payload}.{signature}", now=NOW)


def test_other_secret_rejected(signer: LinkSigner) -> None:
    token = LinkSigner("another-secret", PUBLIC_URL, 24).token(ALERT_ID, "t", "approve", now=NOW)

    with pytest.raises(CallbackError):
        signer.verify(token, now=NOW)


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "....", base64.urlsafe_b64encode(b"x").decode()]
)
def test_malformed_rejected(signer: LinkSigner, token: str) -> None:
    with pytest.raises(CallbackError):
        signer.verify(token, now=NOW)


@pytest.mark.parametrize(
    "claims",
    [
        {"alert": ALERT_ID},
        [ALERT_ID, "t", "approve", 1800000000],
        [ALERT_ID, "t", "delete", 1800000000, "id"],
        [ALERT_ID, "t", "approve", "1800000000", "id"],
        [ALERT_ID, "t", "approve", True, "id"],
        ["", "t", "approve", 1800000000, "id"],
    ],
)
def test_signed_wrong_shape_rejected(signer: LinkSigner, claims: object) -> None:
    """Claims signed with the right key but in another shape are still rejected."""
    serializer = URLSafeSerializer(SECRET, salt=SALT,
                                   signer_kwargs={"digest_method": hashlib.sha256})
    token = str(serializer.dumps(claims))

    with pytest.raises(CallbackError, match="malformed"):
        signer.verify(token, now=NOW)


def test_empty_secret_refused() -> None:
    with pytest.raises(ValueError, match="link_secret"):
        LinkSigner("", PUBLIC_URL, 24)


def test_signed_garbage_payload_rejected(signer: LinkSigner) -> None:
    serializer = URLSafeSerializer(SECRET, salt=SALT,
                                   signer_kwargs={"digest_method": hashlib.sha256})
    token = serializer.make_signer(SALT).sign(b"not-base64-json!").decode()

    with pytest.raises(CallbackError, match="invalid"):
        signer.verify(token, now=NOW)
