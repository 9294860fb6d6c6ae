"""Build the channels configured under ``notify.channels``, sharing one channel context."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import BaseModel, SecretStr

from costwarden.config import NotifySettings
from costwarden.notify.registry import CHANNELS, ActionLinks, Channel, ChannelContext

logger = logging.getLogger(__name__)

REDACTED = "**********"
MIN_REDACTED_LENGTH = 4
"""Shorter secret values are not redacted: replacing them would garble ordinary words."""


def build_channels(notify: NotifySettings) -> dict[str, Channel]:
    """Return one channel instance per configured name, disabled channels included.

    Raises ``ConfigError`` naming the channel and field when an entry does not validate.
    """
    context = build_context(notify)
    return {
        name: CHANNELS.create(name, options, context)
        for name, options in sorted(notify.channels.items())
    }


def build_context(notify: NotifySettings) -> ChannelContext:
    """Return the context with the public URL and, when a link secret is set, the link signer."""
    return ChannelContext(public_url=notify.public_url, sign_links=_link_signer(notify))


def _link_signer(notify: NotifySettings) -> Callable[[str, str], ActionLinks] | None:
    if notify.link_secret is None or not notify.public_url:
        return None
    try:
        from costwarden.notify.links import LinkSigner
    except ImportError:
        logger.warning("approval links are not available in this build; messages carry none")
        return None

    signer = LinkSigner(
        notify.link_secret.get_secret_value(), notify.public_url, notify.link_ttl_hours
    )
    return signer.links_for


def secret_values(notify: NotifySettings, channels: dict[str, Channel]) -> frozenset[str]:
    """Return every secret value of the notify settings, for redaction of error texts."""
    found: set[str] = set()
    if notify.link_secret is not None:
        found.add(notify.link_secret.get_secret_value())
    for channel in channels.values():
        _collect_secrets(channel.settings, found)
    return frozenset(value for value in found if len(value) >= MIN_REDACTED_LENGTH)


def redact(text: str, secrets: frozenset[str]) -> str:
    """Replace each secret in ``text`` with ``**********``, longest first."""
    for value in sorted(secrets, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _collect_secrets(value: object, found: set[str]) -> None:
    if isinstance(value, SecretStr):
        found.add(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect_secrets(getattr(value, name), found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_secrets(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_secrets(item, found)
