"""The jira channel against the fake Jira over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.jira import (
    PROJECT,
    REQUEST_TYPE_ID,
    SERVICE_DESK_ID,
    FakeJira,
)
from ticket_samples import budget_notice, delivery

from costwarden.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import CHANNELS, ActionLinks, ChannelContext
from costwarden.notify.jira import MAX_DOCUMENT_CHARS, JiraChannel
from costwarden.notify.notice import NoticeAction
from costwarden.notify.tickets import ticket_key

CHANNEL = "finops-jira"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


def make_channel(fake: FakeJira, **overrides: Any) -> JiraChannel:
    channel = CHANNELS.create(CHANNEL, fake.channel_options(**overrides), ChannelContext())
    assert isinstance(channel, JiraChannel)
    return channel


def texts(node: Any) -> list[str]:
    """Return every text of an ADF node, depth first."""
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "text" else []
        for child in node.get("content") or []:
            found.extend(texts(child))
        return found
    return []


def links(node: Any) -> list[str]:
    """Return every link target of an ADF node."""
    found = []
    if isinstance(node, dict):
        for mark in node.get("marks") or []:
            if mark.get("type") == "link":
                found.append(mark["attrs"]["href"])
        for child in node.get("content") or []:
            found.extend(links(child))
    return found


def test_trigger_opens_issue(jira: FakeJira, client: httpx.Client) -> None:
    notice = budget_notice()
    result = make_channel(jira).send(delivery(CHANNEL, "trigger", notice), client)

    assert result.external_ref == f"{PROJECT}-17"
    issue = jira.issues[result.external_ref]
    assert issue.fields["project"] == {"key": PROJECT}
    assert issue.fields["issuetype"] == {"name": "Task"}
    assert issue.fields["summary"] == notice.title
    assert issue.fields["labels"] == ["cost-optimization", ticket_key(notice)]
    assert issue.fields["priority"] == {"name": "Highest"}
    assert jira.paths("POST") == ["/rest/api/3/search/jql", "/rest/api/3/issue"]


@pytest.mark.parametrize(
    ("severity", "priority"), [("critical", "Highest"), ("warning", "High"), ("info", "Medium")]
)
def test_priority_from_severity(
    jira: FakeJira, client: httpx.Client, severity: str, priority: str
) -> None:
    notice = budget_notice(severity=severity)
    key = make_channel(jira).send(delivery(CHANNEL, "trigger", notice), client).external_ref

    assert key is not None
    assert jira.issues[key].fields["priority"] == {"name": priority}


def test_priority_map_is_configurable(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira, priorities={"critical": "Low"})
    key = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client).external_ref
    assert key is not None
    assert jira.issues[key].fields["priority"] == {"name": "Low"}

    other = channel.send(delivery(CHANNEL, "trigger", budget_notice(budget="b2", severity="info")),
                         client).external_ref
    assert other is not None
    assert "priority" not in jira.issues[other].fields


def test_description_is_adf(jira: FakeJira, client: httpx.Client) -> None:
    notice = budget_notice()
    key = make_channel(jira).send(delivery(CHANNEL, "trigger", notice), client).external_ref
    assert key is not None
    document = jira.issues[key].fields["description"]

    assert document["type"] == "doc"
    assert document["version"] == 1
    kinds = [block["type"] for block in document["content"]]
    assert kinds[:2] == ["paragraph", "bulletList"]
    assert "heading" in kinds
    words = texts(document)
    assert "Forecast: " in words
    assert "11,380.00 USD" in words
    assert "prod-eu-1 (cluster), 1,204.50 USD, 61% of the change" in words
    assert "Rightsize spark-jobs requests: saves 310.00 USD per month" in words
    assert f"Alert {notice.alert_id}, ticket key {ticket_key(notice)}" in words
    targets = links(document)
    assert "https://palette.example.com/clusters/prod-eu-1" in targets
    assert notice.alert_url in targets
    assert notice.palette_url in targets


def test_second_alert_of_period_comments(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira)
    first = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)
    warning = budget_notice(alert_id="ba-other-threshold", severity="warning")
    second = channel.send(delivery(CHANNEL, "trigger", warning), client)

    assert second.external_ref == first.external_ref
    assert len(jira.issues) == 1
    issue = jira.issues[str(first.external_ref)]
    assert len(issue.comments) == 1
    assert texts(issue.comments[0]["body"])[0].startswith("Alert fired again: ")


def test_other_period_opens_new_issue(jira: FakeJira, client: httpx.Client) -> None:
    from datetime import date

    channel = make_channel(jira)
    channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)
    december = budget_notice(alert_id="ba-december", period_start=date(2026, 12, 1))
    channel.send(delivery(CHANNEL, "trigger", december), client)

    assert len(jira.issues) == 2


def test_stored_key_dedupes_while_search_lags(client: httpx.Client) -> None:
    with FakeJira(search_delay_seconds=600) as jira:
        channel = make_channel(jira)
        first = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)
        assert channel.find_open(ticket_key(budget_notice()), client) is None

        again = delivery(CHANNEL, "trigger", budget_notice(), external_ref=first.external_ref)
        second = channel.send(again, client)

        assert second.external_ref == first.external_ref
        assert len(jira.issues) == 1
        assert len(jira.issues[str(first.external_ref)].comments) == 1


def test_stored_key_of_done_issue_opens_new(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira)
    first = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)
    jira.transition(str(first.external_ref), "Done", "557058:someone")

    again = delivery(CHANNEL, "trigger", budget_notice(), external_ref=first.external_ref)
    second = channel.send(again, client)

    assert second.external_ref != first.external_ref
    assert len(jira.issues) == 2


def test_retried_create_finds_first_issue(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira, timeout_seconds=0.3)
    row = delivery(CHANNEL, "trigger", budget_notice())
    jira.stall_next_create(1.5)
    with pytest.raises(RetryableDeliveryError, match="ReadTimeout"):
        channel.send(row, client)
    assert len(jira.issues) == 1

    # The retry gets the default timeout: only the first create must time out.
    result = make_channel(jira).send(row, client)

    assert len(jira.issues) == 1
    assert result.external_ref in jira.issues
    assert result.detail.startswith("commented on")


def test_update_and_resolve_comment(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira)
    key = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client).external_ref
    update = channel.send(delivery(CHANNEL, "update", budget_notice(), key), client)
    resolved = budget_notice(state="resolved")
    resolve = channel.send(delivery(CHANNEL, "resolve", resolved, key), client)

    assert update.external_ref == key
    assert resolve.external_ref == key
    comments = jira.issues[str(key)].comments
    assert [texts(c["body"])[0].split(":")[0] for c in comments] == [
        "Alert updated", "The risk went away"
    ]
    assert len(jira.issues) == 1


def test_update_without_key_searches(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira)
    key = channel.send(delivery(CHANNEL, "trigger", budget_notice()), client).external_ref

    result = channel.send(delivery(CHANNEL, "update", budget_notice()), client)

    assert result.external_ref == key
    assert len(jira.issues[str(key)].comments) == 1


def test_resolve_without_ticket_sends_nothing(jira: FakeJira, client: httpx.Client) -> None:
    result = make_channel(jira).send(delivery(CHANNEL, "resolve", budget_notice()), client)

    assert result.external_ref is None
    assert jira.issues == {}


def test_long_summary_is_trimmed(jira: FakeJira, client: httpx.Client) -> None:
    notice = budget_notice(title="Budget " + "very-long-name " * 40 + "\nsecond line")
    key = make_channel(jira).send(delivery(CHANNEL, "trigger", notice), client).external_ref

    summary = jira.issues[str(key)].fields["summary"]
    assert len(summary) <= 255
    assert "\n" not in summary
    assert summary.endswith("…")


def test_huge_description_is_trimmed(jira: FakeJira, client: httpx.Client) -> None:
    actions = tuple(
        NoticeAction(f"a{i}", f"Rightsize deployment worker-{i:04d} " + "x" * 80, "1.00 USD",
                     f"https://palette.example.com/a/{i}")
        for i in range(600)
    )
    notice = budget_notice(actions=actions)
    key = make_channel(jira).send(delivery(CHANNEL, "trigger", notice), client).external_ref

    document = jira.issues[str(key)].fields["description"]
    size = len(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    assert size <= MAX_DOCUMENT_CHARS
    assert size > MAX_DOCUMENT_CHARS - 400
    [closing] = [
        block for block in document["content"]
        if texts(block)[0] == "Cut to fit Jira's size limit. "
    ]
    assert links(closing) == [notice.alert_url]
    kept = [text for text in texts(document) if text.startswith("Rightsize deployment")]
    assert 10 < len(kept) < 600
    assert texts(document["content"][-1]) == [
        f"Alert {notice.alert_id}, ticket key {ticket_key(notice)}"
    ]


@pytest.mark.parametrize("actions", [0, 600])
def test_signed_links_are_kept(jira: FakeJira, client: httpx.Client, actions: int) -> None:
    signed = ActionLinks(
        approve="https://costwarden.example.com/links/approve?t=a1",
        reject="https://costwarden.example.com/links/reject?t=r1",
        snooze="https://costwarden.example.com/links/snooze?t=s1",
    )
    many = tuple(
        NoticeAction(f"a{i}", "Rightsize deployment " + "y" * 100, "1.00 USD")
        for i in range(actions)
    )
    notice = budget_notice(actions=many)
    row = delivery(CHANNEL, "trigger", notice, links=signed)
    key = make_channel(jira).send(row, client).external_ref

    document = jira.issues[str(key)].fields["description"]
    targets = links(document)
    assert signed.approve in targets
    assert signed.reject in targets
    assert signed.snooze in targets


def test_rate_limit_is_retryable(jira: FakeJira, client: httpx.Client) -> None:
    jira.fail_next(429, retry_after="7", reset_in_seconds=30)
    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(jira).send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.status == 429
    assert caught.value.retry_after == 7.0
    assert jira.issues == {}


def test_rate_limit_reset_header_sets_wait(jira: FakeJira, client: httpx.Client) -> None:
    jira.fail_next(429, reset_in_seconds=40)
    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(jira).send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.retry_after is not None
    assert 30 < caught.value.retry_after <= 40


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_is_retryable(jira: FakeJira, client: httpx.Client, status: int) -> None:
    jira.fail_next(status, retry_after="3" if status == 503 else None)
    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(jira).send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.status == status
    assert caught.value.retry_after == (3.0 if status == 503 else None)


def test_bad_token_is_permanent(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira, api_token="wrong-token")
    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.status == 401
    assert "scoped API token" in str(caught.value)
    assert "wrong-token" not in str(caught.value)


def test_unknown_project_is_permanent(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira, project="OPS")
    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)

    assert caught.value.status == 400
    assert "project" in str(caught.value)


def test_service_desk_request(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(
        jira, service_desk_id=SERVICE_DESK_ID, request_type_id=REQUEST_TYPE_ID
    )
    notice = budget_notice()
    first = channel.send(delivery(CHANNEL, "trigger", notice), client)
    second = channel.send(delivery(CHANNEL, "trigger", budget_notice(alert_id="ba-2")), client)

    assert "/rest/servicedeskapi/request" in jira.paths("POST")
    issue = jira.issues[str(first.external_ref)]
    assert issue.request_type_id == REQUEST_TYPE_ID
    assert issue.fields["labels"] == ["cost-optimization", ticket_key(notice)]
    assert issue.fields["description"]["type"] == "doc"
    assert second.external_ref == first.external_ref
    assert len(issue.comments) == 1


def test_unknown_request_type_is_permanent(jira: FakeJira, client: httpx.Client) -> None:
    channel = make_channel(jira, service_desk_id=SERVICE_DESK_ID, request_type_id="99")
    with pytest.raises(PermanentDeliveryError, match="answered 400"):
        channel.send(delivery(CHANNEL, "trigger", budget_notice()), client)


def test_digest_is_rejected(jira: FakeJira, client: httpx.Client) -> None:
    with pytest.raises(PermanentDeliveryError, match="no digests"):
        make_channel(jira).send(delivery(CHANNEL, "digest", budget_notice()), client)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": ["cost optimization"]}, "contains a space"),
        ({"digest": True}, "set digest: false"),
        ({"service_desk_id": "10"}, "go together"),
        ({"project": "fin"}, "not a Jira project key"),
        ({"url": "acme.atlassian.net"}, "not an http"),
    ],
)
def test_invalid_settings(overrides: dict[str, Any], message: str) -> None:
    options = {"type": "jira", "url": "https://acme.atlassian.net", "email": "a@example.com",
               "api_token": "t", "project": "FIN", **overrides}
    with pytest.raises(ConfigError, match=message) as caught:
        CHANNELS.validate(CHANNEL, options)
    assert f"notify.channels.{CHANNEL}" in str(caught.value)


def test_token_stays_out_of_repr(jira: FakeJira) -> None:
    channel = make_channel(jira)
    assert "fake-jira-token" not in repr(channel.settings)
