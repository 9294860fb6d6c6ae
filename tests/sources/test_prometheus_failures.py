"""Failure modes of the Prometheus client, against a fake server on 127.0.0.1.

A real Prometheus does not return 401, 429 or 503 on demand, so these cases use the fake in
``tests/fakes/prometheus.py``. Backoff waits go to a recording sleep, except in the timeout
test, which waits for real.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.prometheus import PASSWORD, RETRY_AFTER_SECONDS, TOKEN, USER, FakePrometheus
from prometheus_helpers import FakeSleep, prometheus_settings

from costwarden.errors import (
    ConfigError,
    PrometheusApiError,
    PrometheusAuthError,
    PrometheusRateLimitError,
    PrometheusTimeoutError,
)
from costwarden.sources.prometheus import PrometheusSource

AT = datetime(2026, 11, 16, tzinfo=UTC)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePrometheus]:
    with FakePrometheus() as server:
        yield server


@pytest.fixture
def key() -> str:
    return uuid.uuid4().hex


def open_source(url: str, sleep: FakeSleep | None = None, **overrides: Any) -> PrometheusSource:
    options: dict[str, Any] = {"max_retries": 2, "backoff_base_seconds": 1.0}
    options.update(overrides)
    return PrometheusSource(prometheus_settings(url, **options), sleep=sleep or FakeSleep())


def test_wrong_token_is_auth_error(fake: FakePrometheus, key: str) -> None:
    secret = "wrong-secret-token-0a1b"

    with open_source(fake.url("auth", key), bearer_token=secret) as source:
        with pytest.raises(PrometheusAuthError) as raised:
            source.query("up", AT)

    message = str(raised.value)
    assert raised.value.status == 401
    assert "COSTWARDEN_PROMETHEUS_BEARER_TOKEN" in message
    assert secret not in message, "the fake echoes the header; the error must not"
    assert "***" in message
    assert fake.requests(key) == 1, "a 401 is not retried"


def test_bearer_token_sent(fake: FakePrometheus, key: str) -> None:
    with open_source(fake.url("auth", key), bearer_token=TOKEN) as source:
        samples = source.query("up", AT)

    assert samples[0].labels == {"job": "fake"}


def test_basic_auth_sent(fake: FakePrometheus, key: str) -> None:
    with open_source(fake.url("auth", key), username=USER, password=PASSWORD) as source:
        samples = source.query("up", AT)

    assert samples[0].value == 1.0


def test_retry_after_honoured(fake: FakePrometheus, key: str) -> None:
    sleep = FakeSleep()

    with open_source(fake.url("ratelimit", key, 2), sleep) as source:
        samples = source.query("up", AT)

    assert samples[0].labels == {"job": "fake"}
    assert sleep.delays == [RETRY_AFTER_SECONDS, RETRY_AFTER_SECONDS]
    assert fake.requests(key) == 3


def test_retry_after_capped(fake: FakePrometheus, key: str) -> None:
    sleep = FakeSleep()

    with open_source(fake.url("ratelimit", key, 1), sleep, backoff_max_seconds=3) as source:
        source.query("up", AT)

    assert sleep.delays == [3.0]


def test_rate_limit_after_retries(fake: FakePrometheus, key: str) -> None:
    with open_source(fake.url("ratelimit", key, 100)) as source:
        with pytest.raises(PrometheusRateLimitError) as raised:
            source.query("up", AT)

    assert raised.value.status == 429
    assert "after 3 attempts" in str(raised.value)
    assert fake.requests(key) == 3


def test_unavailable_then_success(fake: FakePrometheus, key: str) -> None:
    sleep = FakeSleep()

    with open_source(fake.url("flaky", key, 1), sleep) as source:
        samples = source.query("up", AT)

    assert samples[0].value == 1.0
    assert len(sleep.delays) == 1
    assert 0 <= sleep.delays[0] <= 1.0, "full jitter below the first backoff"
    assert fake.requests(key) == 2


def test_unavailable_every_time(fake: FakePrometheus, key: str) -> None:
    with open_source(fake.url("flaky", key, 100)) as source:
        with pytest.raises(PrometheusApiError) as raised:
            source.query("up", AT)

    assert raised.value.status == 503
    assert raised.value.error_type == "unavailable"
    assert "the query engine is overloaded" in str(raised.value)
    assert "after 3 attempts" in str(raised.value)


def test_timeout_after_retries(fake: FakePrometheus, key: str) -> None:
    url = fake.url("slow", key, 1)

    with open_source(url, max_retries=1, timeout_seconds=0.2) as source:
        with pytest.raises(PrometheusTimeoutError) as raised:
            source.query("up", AT)

    assert "timed out after 2 attempts" in str(raised.value)
    assert "COSTWARDEN_PROMETHEUS_TIMEOUT_SECONDS" in str(raised.value)
    assert raised.value.query == "up"
    assert fake.requests(key) == 2


def test_html_body_is_invalid_response(fake: FakePrometheus, key: str) -> None:
    with open_source(fake.url("garbage", key)) as source:
        with pytest.raises(PrometheusApiError) as raised:
            source.query("up", AT)

    assert raised.value.error_type == "InvalidResponse"
    assert "not JSON" in str(raised.value)


def test_connection_refused(fake: FakePrometheus) -> None:
    port = fake.port
    with FakePrometheus() as other:
        closed = other.port
    assert closed != port

    with open_source(f"http://127.0.0.1:{closed}", max_retries=1) as source:
        with pytest.raises(PrometheusApiError) as raised:
            source.query("up", AT)

    assert "cannot reach Prometheus" in str(raised.value)
    assert raised.value.error_type == "ConnectError"


def test_missing_url_is_config_error() -> None:
    with pytest.raises(ConfigError, match="COSTWARDEN_PROMETHEUS_URL"):
        PrometheusSource(prometheus_settings(None))
