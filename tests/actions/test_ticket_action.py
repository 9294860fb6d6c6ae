"""The ticket action against the fake Jira and ServiceNow."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.jira import FakeJira
from fakes.servicenow import FakeServiceNow

from costwarden.actions.context import ActionContext
from costwarden.actions.ticket import TicketAction
from costwarden.config import Settings
from costwarden.domain.governance import ActionRequest, ActionScope
from costwarden.errors import ActionError, ConfigError
from costwarden.notify.tickets import ticket_key_of


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


@pytest.fixture
def servicenow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow() as fake:
        yield fake


def context_with(channels: dict[str, dict[str, Any]]) -> ActionContext:
    settings = Settings.model_validate({"notify": {"channels": channels}})
    return ActionContext(settings=settings, tenant="acme")


def ticket_request(channel: str) -> ActionRequest:
    scope = ActionScope(kind="machine_pool", cluster_uid="c-7f3a", cluster="prod-eu", name="worker")
    return ActionRequest(
        action="ticket",
        scope=scope,
        params={
            "channel": channel,
            "title": "Resize worker pool of prod-eu to 4 nodes",
            "description": "Set the worker pool size from 6 to 4.",
            "estimated_savings": "812.40 USD per month",
            "evidence": {"p95 CPU": "27 %"},
        },
        subject_kind="recommendation",
        subject_id="rec-101",
    )


def test_jira_ticket_opened_once(jira: FakeJira) -> None:
    context = context_with({"finops-jira": jira.channel_options()})
    request = ticket_request("finops-jira")

    first = TicketAction().apply(request, context)
    second = TicketAction().apply(request, context)

    [issue] = jira.issues.values()
    label = ticket_key_of("recommendation", None, "", request.digest)
    assert label in issue.fields["labels"]
    assert issue.fields["summary"] == "Resize worker pool of prod-eu to 4 nodes"
    assert first.changed
    assert not second.changed
    assert first.undo["ticket"] == issue.key == second.undo["ticket"]
    assert first.links["ticket"].endswith(f"/browse/{issue.key}")


def test_jira_rollback_closes_ticket(jira: FakeJira) -> None:
    context = context_with({"finops-jira": jira.channel_options()})
    request = ticket_request("finops-jira")
    applied = TicketAction().apply(request, context)

    outcome = TicketAction().rollback(request, applied.undo, context)

    assert "closed ticket" in outcome.summary
    assert jira.open_issues() == []


def test_jira_rollback_without_transition(jira: FakeJira) -> None:
    context = context_with({"finops-jira": jira.channel_options()})
    params = {"channel": "finops-jira", "title": "x", "close_transition": "Cancel"}
    request = dataclasses.replace(ticket_request("finops-jira"), params=params)
    applied = TicketAction().apply(request, context)

    outcome = TicketAction().rollback(request, applied.undo, context)

    assert "cannot be closed" in outcome.summary
    assert len(jira.open_issues()) == 1


def test_servicenow_incident_once(servicenow: FakeServiceNow) -> None:
    context = context_with({"snow": servicenow.channel_options()})
    request = ticket_request("snow")

    first = TicketAction().apply(request, context)
    second = TicketAction().apply(request, context)

    [record] = servicenow.all("incident")
    assert record["correlation_id"] == ticket_key_of("recommendation", None, "", request.digest)
    assert not second.changed
    assert first.undo["ticket"] == record["sys_id"]


def test_servicenow_rollback_resolves(servicenow: FakeServiceNow) -> None:
    context = context_with({"snow": servicenow.channel_options()})
    request = ticket_request("snow")
    applied = TicketAction().apply(request, context)

    outcome = TicketAction().rollback(request, applied.undo, context)

    [record] = servicenow.all("incident")
    assert record["state"] == "6"
    assert "resolved" in outcome.summary


def test_unknown_channel_is_config_error(jira: FakeJira) -> None:
    context = context_with({"finops-jira": jira.channel_options()})

    with pytest.raises(ConfigError, match="ticket channels: finops-jira"):
        TicketAction().apply(ticket_request("slack-finops"), context)


def test_dry_run_creates_nothing(jira: FakeJira) -> None:
    context = context_with({"finops-jira": jira.channel_options()})

    outcome = TicketAction().dry_run(ticket_request("finops-jira"), context)

    assert outcome.after["title"] == "Resize worker pool of prod-eu to 4 nodes"
    assert jira.issues == {}


def test_timed_out_create_is_found(jira: FakeJira) -> None:
    context = context_with({"finops-jira": jira.channel_options(timeout_seconds=0.5)})
    request = ticket_request("finops-jira")
    jira.stall_next_create(1.5)

    with pytest.raises(ActionError, match="looks the ticket up"):
        TicketAction().apply(request, context)
    retried = TicketAction().apply(request, context_with({"finops-jira": jira.channel_options()}))

    assert len(jira.issues) == 1
    assert not retried.changed
