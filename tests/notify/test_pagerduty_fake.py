"""The fake PagerDuty Events API itself: validation, alert rules and the v3 signature vector."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fakes.pagerduty import ROUTING_KEY, FakePagerDuty, sign_v3, verify_v3


@pytest.fixture
def fake() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as server:
        yield server


def trigger(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "ba-3f9c2e1d7a60b4c2",
        "payload": {"summary": "prod at 92%", "source": "test", "severity": "warning"},
    }
    event.update(changes)
    return event


def test_v3_signature_vector() -> None:
    body = b'{"event":{"event_type":"incident.acknowledged"}}'

    signature = sign_v3("pd-test-secret", body)

    assert signature == "v1=8c673c7d971c75aafdbd7f47e4877d80ea46bb7c5e330aeb22c33bb76eeaef00"


def test_v3_rotation_header_accepted() -> None:
    body = b'{"event":{"event_type":"incident.acknowledged"}}'
    header = f"v1={'0' * 64},{sign_v3('pd-test-secret', body)}"

    assert verify_v3("pd-test-secret", header, body)
    assert not verify_v3("pd-test-secret", header, body + b" ")


def test_accepts_documented_example(fake: FakePagerDuty) -> None:
    response = httpx.post(fake.events_url, json=trigger())

    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "ba-3f9c2e1d7a60b4c2",
    }


def test_generates_missing_dedup_key(fake: FakePagerDuty) -> None:
    event = trigger()
    del event["dedup_key"]

    first = httpx.post(fake.events_url, json=event).json()["dedup_key"]
    second = httpx.post(fake.events_url, json=event).json()["dedup_key"]

    assert first != second
    assert len(fake.alerts) == 2


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"routing_key": "0" * 32}, "'routing_key' is invalid"),
        ({"routing_key": "short"}, "'routing_key' is invalid"),
        ({"event_action": "escalate"}, "'event_action' must be one of"),
        ({"dedup_key": "k" * 256}, "'dedup_key' must be a string of at most 255 characters"),
        (
            {"payload": {"summary": "s" * 1025, "source": "t", "severity": "info"}},
            "'payload.summary' must be at most 1024 characters",
        ),
        (
            {"payload": {"summary": "s", "source": "t", "severity": "fatal"}},
            "'payload.severity' must be one of",
        ),
        ({"payload": {"summary": "s", "severity": "info"}}, "'payload.source' is required"),
        ({"payload": None}, "'payload' is required for trigger"),
    ],
)
def test_invalid_event_400(fake: FakePagerDuty, changes: dict[str, object], error: str) -> None:
    response = httpx.post(fake.events_url, json=trigger(**changes))

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "invalid event"
    assert body["message"] == "Event object is invalid"
    assert any(item.startswith(error) for item in body["errors"])


def test_json_parse_error_400(fake: FakePagerDuty) -> None:
    response = httpx.post(fake.events_url, content=b"{not json")

    assert response.status_code == 400
    assert response.json()["status"] == "Unrecognized object"
    assert response.json()["errors"] == ["JSON parse error"]


def test_resolve_needs_dedup_key(fake: FakePagerDuty) -> None:
    response = httpx.post(
        fake.events_url, json={"routing_key": ROUTING_KEY, "event_action": "resolve"}
    )

    assert response.status_code == 400


def test_event_over_512_kb_400(fake: FakePagerDuty) -> None:
    payload = {
        "summary": "s",
        "source": "t",
        "severity": "info",
        "custom_details": {"blob": "x" * 600_000},
    }

    response = httpx.post(fake.events_url, json=trigger(payload=payload))

    assert response.status_code == 400


def test_acknowledge_keeps_alert_open(fake: FakePagerDuty) -> None:
    httpx.post(fake.events_url, json=trigger())
    httpx.post(fake.events_url, json=trigger(event_action="acknowledge", payload=None))

    httpx.post(fake.events_url, json=trigger())

    assert len(fake.alerts) == 1
    assert fake.alerts[0].status == "acknowledged"
    assert fake.alerts[0].triggers == 2


def test_resolve_unknown_key_dropped(fake: FakePagerDuty) -> None:
    response = httpx.post(fake.events_url, json=trigger(event_action="resolve", payload=None))

    assert response.status_code == 202
    assert fake.alerts == []
    assert len(fake.state.dropped) == 1


def test_scripted_failures(fake: FakePagerDuty) -> None:
    fake.fail_next(429, retry_after="90")
    fake.fail_next(500)

    throttled = httpx.post(fake.events_url, json=trigger())
    failed = httpx.post(fake.events_url, json=trigger())
    accepted = httpx.post(fake.events_url, json=trigger())

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "90"
    assert failed.status_code == 500
    assert accepted.status_code == 202
    assert len(fake.received) == 1
