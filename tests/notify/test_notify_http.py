"""How channel HTTP responses become delivery errors."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from costwarden.errors import PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify.http import check_response, host_of, parse_retry_after

SECRET_URL = "https://hooks.example.com/services/T0/B0/secret-token?x=1"


def answer(status: int, headers: dict[str, str] | None = None, text: str = "") -> httpx.Response:
    request = httpx.Request("POST", SECRET_URL)
    return httpx.Response(status, headers=headers, text=text, request=request)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 501, 502, 503, 504, 505, 599])
def test_retryable_statuses_raise_retryable_errors(status: int) -> None:
    with pytest.raises(RetryableDeliveryError) as caught:
        check_response(answer(status, {"Retry-After": "7"}), "ops")

    assert caught.value.retry_after == 7.0
    assert f"answered {status}" in str(caught.value)


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 410, 413, 422])
def test_other_error_statuses_are_permanent(status: int) -> None:
    with pytest.raises(PermanentDeliveryError):
        check_response(answer(status), "ops")


def test_error_messages_name_the_host_but_never_the_secret_path() -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        check_response(answer(404, text="no_service"), "ops")

    message = str(caught.value)
    assert "https://hooks.example.com" in message
    assert "secret-token" not in message
    assert "no_service" in message
    assert host_of(SECRET_URL) == "https://hooks.example.com"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC)

    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after("Sat, 05 Dec 2026 09:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sat, 05 Dec 2026 08:59:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
