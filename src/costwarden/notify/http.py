"""HTTP helpers shared by the channels: classify responses and hide secret URLs.

Every channel sends through ``post`` or ``request``, so a 429 or a 5xx becomes a
``RetryableDeliveryError`` carrying ``Retry-After``, any other error status a
``PermanentDeliveryError``, and a transport failure a retryable error. Error messages name the
host only, because for Slack and Teams the URL itself is the credential.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from costwarden.errors import PermanentDeliveryError, RetryableDeliveryError

RETRYABLE_STATUSES = frozenset({408, 425, 429, *range(500, 600)})

MAX_ERROR_TEXT = 200


def host_of(url: str) -> str:
    """Return ``scheme://host`` of a URL, safe to log: no path, query or user info."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the wait that a ``Retry-After`` header asks for, in seconds, or ``None``.

    The header is either a number of seconds or an HTTP date.
    """
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def check_response(
    response: httpx.Response,
    channel: str,
    *,
    ok: Iterable[int] = range(200, 300),
    retry: Iterable[int] = RETRYABLE_STATUSES,
) -> httpx.Response:
    """Return the response when its status is in ``ok``; raise the matching delivery error."""
    status = response.status_code
    if status in ok:
        return response
    where = f"{response.request.method} {host_of(str(response.request.url))}"
    text = response.text[:MAX_ERROR_TEXT].strip()
    message = f"channel {channel!r}: {where} answered {status}" + (f": {text}" if text else "")
    if status in set(retry):
        raise RetryableDeliveryError(
            message,
            channel=channel,
            status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    raise PermanentDeliveryError(message, channel=channel, status=status)


def request(
    client: httpx.Client,
    channel: str,
    method: str,
    url: str,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; a transport failure becomes a ``RetryableDeliveryError``.

    The caller checks the status with ``check_response``, because some services answer errors
    with 200 (Slack's Web API) and some answer success with 202 (Teams, PagerDuty).
    """
    try:
        return client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise RetryableDeliveryError(
            f"channel {channel!r}: {method} {host_of(url)} failed: {exc.__class__.__name__}",
            channel=channel,
        ) from None


def post(client: httpx.Client, channel: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send a POST and check its status: the common case of ``request`` plus ``check_response``."""
    return check_response(request(client, channel, "POST", url, **kwargs), channel)
