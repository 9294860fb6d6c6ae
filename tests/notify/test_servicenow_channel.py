"""The servicenow channel against the fake ServiceNow Table API over HTTP on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fakes.servicenow import GROUPS, TOKEN, FakeServiceNow, parse_query
from ticket_samples import budget_notice, delivery

from costwarden.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import CHANNELS, ActionLinks, ChannelContext
from costwarden.notify.servicenow import ServiceNowChannel
from costwarden.notify.tickets import ticket_key

CHANNEL = "finops-snow"


@pytest.fixture
def snow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow() as fake:
        yield fake


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


def make_channel(fake: FakeServiceNow, **overrides: Any) -> ServiceNowChannel:
    options = fake.channel_options(**overrides)
    options = {key: value for key, value in options.items() if value is not None}
    channel = CHANNELS.create(CHANNEL, options, ChannelContext())
    assert isinstance(channel, ServiceNowChannel)
    return channel


def test_trigger_creates_incident(snow: FakeServiceNow, client: httpx.Client) -> None:
    notice = budget_notice()
    result = make_channel(snow).send(delivery(CHANNEL, "trigger", notice), client)

    [record] = snow.all("incident")
    assert result.external_ref == record["sys_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", record["sys_id"])
    assert re.fullmatch(r"INC\d{7}", record["number"])
    assert result.detail == f"opened {record['number']}"
    assert record["correlation_id"] == ticket_key(notice)
    assert record["correlation_display"] == "costwarden"
    assert record["short_description"] == notice.title
    assert (record["urgency"], record["impact"]) == ("1", "1")
    assert record["assignment_group"] == GROUPS["FinOps"]
    assert "Forecast: 11,380.00 USD" in record["description"]
    assert "- prod-eu-1 (cluster), 1,204.50 USD, 61% of the change" in record["description"]
    assert f"Full alert: {notice.alert_url}" in record["description"]
    method, _, query = snow.requests[-1]
    assert method == "POST"
    assert parse_qs(query)["sysparm_input_display_value"] == ["true"]


def test_description_carries_signed_links(snow: FakeServiceNow, client: httpx.Client) -> None:
    signed = ActionLinks("https://cw.example.com/a", "https://cw.example.com/r",
                         "https://cw.example.com/s")
    row = delivery(CHANNEL, "trigger", budget_notice(), links=signed)
    make_channel(snow).send(row, client)

    [record] = snow.all("incident")
    assert "Approve: https://cw.example.com/a" in record["description"]
    assert "Reject: https://cw.example.com/r" in record["description"]
    assert "Snooze: https://cw.example.com/s" in record["description"]


def test_lookup_query_precedes_create(snow: FakeServiceNow, client: httpx.Client) -> None:
    notice = budget_notice()
    make_channel(snow).send(delivery(CHANNEL, "trigger", notice), client)

    method, path, query = snow.requests[0]
    assert (method, path) == ("GET", "/api/now/table/incident")
    assert parse_qs(query)["sysparm_query"] == [f"correlation_id={ticket_key(notice)}^active=true"]


@pytest.mark.parametrize(
    ("severity", "levels"),
    [("critical", ("1", "1")), ("warning", ("2", "2")), ("info", ("3", "3"))],
)
def test_urgency_and_impact_from_severity(
    snow: FakeServiceNow, client: httpx.Client, severity: str, levels: tuple[str, str]
) -> None:
    make_channel(snow).send(delivery(CHANNEL, "trigger", budget_notice(severity=severity)), client)

    [record] = snow.all("incident")
    assert (record["urgency"], record["impact"]) == levels


def test_second_alert_adds_work_note(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow)
    first = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)
    second = channel.send(delivery(CHANNEL, "trigger", budget_notice(alert_id="ba-2")), client)

    assert second.external_ref == first.external_ref
    assert len(snow.all("incident")) == 1
    [note] = snow.work_notes[str(first.external_ref)]
    assert note.startswith("Alert fired again: ")


def test_other_period_creates_new_record(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow)
    channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)
    december = budget_notice(alert_id="ba-dec", period_start=date(2026, 12, 1))
    channel.send(delivery(CHANNEL, "trigger", december), client)

    assert len(snow.all("incident")) == 2


def test_inactive_record_is_not_reused(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow)
    first = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)
    snow.set_active("incident", str(first.external_ref), False)

    again = delivery(CHANNEL, "trigger", budget_notice(), external_ref=first.external_ref)
    second = channel.send(again, client)

    assert second.external_ref != first.external_ref
    assert len(snow.all("incident")) == 2


def test_retried_create_finds_record(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow, timeout_seconds=0.3)
    row = delivery(CHANNEL, "trigger", budget_notice())
    snow.stall_next_create(1.5)
    with pytest.raises(RetryableDeliveryError, match="ReadTimeout"):
        channel.send(row, client)
    [record] = snow.all("incident")

    # The retry gets the default timeout: only the first create must time out.
    retried = make_channel(snow).send(row, client)

    assert retried.external_ref == record["sys_id"]
    assert retried.detail == "work note added"
    assert len(snow.all("incident")) == 1


def test_update_and_resolve_add_notes(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow)
    sys_id = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client).external_ref
    channel.send(delivery(CHANNEL, "update", budget_notice(), sys_id), client)
    channel.send(delivery(CHANNEL, "resolve", budget_notice(state="resolved"), sys_id), client)

    notes = snow.work_notes[str(sys_id)]
    assert [note.split(":")[0] for note in notes] == ["Alert updated", "The risk went away"]
    assert snow.records["incident"][str(sys_id)]["state"] == "1"


def test_resolve_can_close_incident(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow, resolve_incidents=True)
    sys_id = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client).external_ref
    result = channel.send(delivery(CHANNEL, "resolve", budget_notice(), sys_id), client)

    record = snow.records["incident"][str(sys_id)]
    assert result.detail == "resolved"
    assert record["state"] == "6"
    assert record["close_code"] == "Solution provided"
    assert record["close_notes"].startswith("costwarden: the risk went away.")
    assert record["active"] == "false"


def test_long_short_description_is_trimmed(snow: FakeServiceNow, client: httpx.Client) -> None:
    notice = budget_notice(title="Budget " + "x" * 300)
    make_channel(snow).send(delivery(CHANNEL, "trigger", notice), client)

    [record] = snow.all("incident")
    assert len(record["short_description"]) == 160
    assert record["short_description"].endswith("…")


def test_change_request_fields(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow, table="change_request")
    channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)

    [record] = snow.all("change_request")
    assert re.fullmatch(r"CHG\d{7}", record["number"])
    assert record["type"] == "normal"
    assert "Forecast: 11,380.00 USD" in record["justification"]
    assert "Rightsize spark-jobs requests" in record["implementation_plan"]
    assert snow.all("incident") == []


def test_poll_reads_change_approval(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow, table="change_request")
    notice = budget_notice()
    sys_id = str(channel.send(delivery(CHANNEL, "trigger", notice), client).external_ref)
    assert channel.polls

    assert channel.poll(sys_id, notice.alert_id, client) is None
    snow.set_approval(sys_id, "requested")
    assert channel.poll(sys_id, notice.alert_id, client) is None
    snow.set_approval(sys_id, "approved", by="dana.approver")
    response = channel.poll(sys_id, notice.alert_id, client)

    assert response is not None
    assert response.action == "approve"
    assert response.actor == "dana.approver"
    assert response.alert_id == notice.alert_id
    assert response.dedupe_key == f"servicenow:{sys_id}:approved"


def test_poll_reads_rejection(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow, table="change_request")
    sys_id = str(channel.send(delivery(CHANNEL, "trigger", budget_notice()), client).external_ref)
    snow.set_approval(sys_id, "rejected")

    response = channel.poll(sys_id, "ba-3f9c2e1d7a60b4c2", client)

    assert response is not None
    assert response.action == "reject"
    assert response.dedupe_key == f"servicenow:{sys_id}:rejected"


def test_incident_channel_does_not_poll(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow)
    assert not channel.polls
    assert channel.poll("0" * 32, "ba-1", client) is None
    assert snow.requests == []


def test_bearer_token_auth(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow, username=None, password=None, oauth_token=TOKEN)
    result = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert result.external_ref in snow.records["incident"]


def test_rate_limit_is_retryable(snow: FakeServiceNow, client: httpx.Client) -> None:
    snow.fail_next(429, retry_after="12")
    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(snow).send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.status == 429
    assert caught.value.retry_after == 12.0
    assert snow.all("incident") == []


def test_rate_limit_reset_sets_wait(snow: FakeServiceNow, client: httpx.Client) -> None:
    snow.fail_next(429)
    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(snow).send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30


def test_server_error_is_retryable(snow: FakeServiceNow, client: httpx.Client) -> None:
    snow.fail_next(503)
    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(snow).send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.status == 503


def test_bad_password_is_permanent(snow: FakeServiceNow, client: httpx.Client) -> None:
    channel = make_channel(snow, password="wrong-password")
    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.status == 401
    assert "User Not Authenticated" in str(caught.value)
    assert "check username and password" in str(caught.value)
    assert "wrong-password" not in str(caught.value)


def test_fake_rejects_long_short_description(snow: FakeServiceNow) -> None:
    response = httpx.post(
        f"{snow.url}/api/now/table/incident", json={"short_description": "x" * 161},
        auth=("costwarden.integration", "fake-snow-password-31c8"), timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["status"] == "failure"
    assert response.json()["error"]["message"] == "Invalid field value"


def test_fake_query_syntax() -> None:
    assert parse_query("correlation_id=ab^active=true") == [
        ("correlation_id", "ab"), ("active", "true")
    ]
    with pytest.raises(ValueError, match="field=value"):
        parse_query("active!=true")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password": None}, "exactly one"),
        ({"oauth_token": "t"}, "exactly one"),
        ({"table": "problem"}, "table"),
        ({"digest": True}, "set digest: false"),
        ({"urgency_impact": {"critical": {"urgency": "0", "impact": "1"}}}, "urgency"),
    ],
)
def test_invalid_settings(overrides: dict[str, Any], message: str) -> None:
    options = {"type": "servicenow", "instance_url": "https://acme.service-now.com",
               "username": "u", "password": "p", **overrides}
    options = {key: value for key, value in options.items() if value is not None}
    with pytest.raises(ConfigError, match=message):
        CHANNELS.validate(CHANNEL, options)
