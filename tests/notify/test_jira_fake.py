"""The fake Jira checks what the real one checks: auth, ADF, limits and lagging search."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.jira import API_TOKEN, EMAIL, PROJECT, FakeJira, parse_jql, sign

from costwarden.service.callbacks.jira import sign as service_sign

DOCUMENT = {"type": "doc", "version": 1, "content": [
    {"type": "paragraph", "content": [{"type": "text", "text": "Spent 9,214.07 USD"}]}
]}


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(search_delay_seconds=600) as fake:
        yield fake


@pytest.fixture
def api(jira: FakeJira) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jira.url, auth=(EMAIL, API_TOKEN), timeout=10) as client:
        yield client


def fields(**changes: Any) -> dict[str, Any]:
    values = {
        "project": {"key": PROJECT}, "issuetype": {"name": "Task"}, "summary": "Budget alert",
        "labels": ["cost-optimization", "costwarden-0123456789abcdef"],
        "description": DOCUMENT,
    }
    return {"fields": {**values, **changes}}


def search(api: httpx.Client, **extra: Any) -> list[str]:
    jql = 'project = FIN AND labels = "costwarden-0123456789abcdef" AND statusCategory != Done'
    body = {"jql": jql, "fields": ["status"], "maxResults": 5, **extra}
    response = api.post("/rest/api/3/search/jql", json=body)
    assert response.status_code == 200
    return [issue["key"] for issue in response.json()["issues"]]


def test_signature_test_vector() -> None:
    body = b'{"webhookEvent":"jira:issue_updated"}'
    expected = "sha256=20192d641294a4aaa3ddce49e253323967e5463de05139a4c257e6812e4a3c1f"

    assert sign("jira-test-secret", body) == expected
    assert service_sign("jira-test-secret", body) == expected


def test_create_returns_key(api: httpx.Client) -> None:
    response = api.post("/rest/api/3/issue", json=fields())

    assert response.status_code == 201
    assert set(response.json()) == {"id", "key", "self"}
    assert response.json()["key"] == "FIN-17"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": "Spent 9,214.07 USD"}, "description"),
        ({"summary": "x" * 256}, "summary"),
        ({"labels": ["cost optimization"]}, "labels"),
        ({"priority": {"name": "Urgent"}}, "priority"),
        ({"project": {"key": "OPS"}}, "project"),
    ],
)
def test_create_rejects_invalid_fields(
    api: httpx.Client, changes: dict[str, Any], field: str
) -> None:
    response = api.post("/rest/api/3/issue", json=fields(**changes))

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert response.json()["errorMessages"] == []


def test_wrong_credentials_get_401(jira: FakeJira) -> None:
    response = httpx.post(f"{jira.url}/rest/api/3/issue", json=fields(),
                          auth=(EMAIL, "nope"), timeout=10)

    assert response.status_code == 401
    assert response.json()["errorMessages"]
    assert jira.issues == {}


def test_search_lags_unless_reconciled(jira: FakeJira, api: httpx.Client) -> None:
    created = api.post("/rest/api/3/issue", json=fields()).json()

    assert search(api) == []
    assert search(api, reconcileIssues=[int(created["id"])]) == [created["key"]]
    jira.search_delay_seconds = 0
    assert search(api) == [created["key"]]


def test_search_skips_done_issues(jira: FakeJira, api: httpx.Client) -> None:
    jira.search_delay_seconds = 0
    key = api.post("/rest/api/3/issue", json=fields()).json()["key"]
    done = api.post(f"/rest/api/3/issue/{key}/transitions", json={"transition": {"id": "51"}})

    assert done.status_code == 204
    assert search(api) == []


def test_search_rejects_other_jql(api: httpx.Client) -> None:
    response = api.post("/rest/api/3/search/jql", json={"jql": "assignee = currentUser()"})

    assert response.status_code == 400
    with pytest.raises(ValueError, match="does not understand"):
        parse_jql("text ~ budget")


def test_comment_needs_adf(api: httpx.Client) -> None:
    key = api.post("/rest/api/3/issue", json=fields()).json()["key"]

    plain = api.post(f"/rest/api/3/issue/{key}/comment", json={"body": "plain"})
    adf = api.post(f"/rest/api/3/issue/{key}/comment", json={"body": DOCUMENT})

    assert plain.status_code == 400
    assert adf.status_code == 201
    assert {"id", "self", "author", "body", "created"} <= set(adf.json())


def test_transitions_listed_and_applied(jira: FakeJira, api: httpx.Client) -> None:
    key = api.post("/rest/api/3/issue", json=fields()).json()["key"]
    listed = api.get(f"/rest/api/3/issue/{key}/transitions").json()["transitions"]
    approve = next(item for item in listed if item["name"] == "Approve")

    applied = api.post(f"/rest/api/3/issue/{key}/transitions",
                       json={"transition": {"id": approve["id"]}})
    issue = api.get(f"/rest/api/3/issue/{key}", params={"fields": "status,labels"}).json()

    assert applied.status_code == 204
    assert issue["fields"]["status"]["name"] == "Approved"
    assert issue["fields"]["labels"][0] == "cost-optimization"


def test_scripted_rate_limit_headers(jira: FakeJira, api: httpx.Client) -> None:
    jira.fail_next(429, retry_after="5", reset_in_seconds=60)
    response = api.post("/rest/api/3/issue", json=fields())

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert response.headers["X-RateLimit-Reset"].endswith("Z")
    assert response.headers["RateLimit-Reason"] == "jira-burst-based"
    assert api.post("/rest/api/3/issue", json=fields()).status_code == 201


def test_webhook_redelivery_keeps_identifier(jira: FakeJira, api: httpx.Client) -> None:
    key = api.post("/rest/api/3/issue", json=fields()).json()["key"]
    event = jira.transition(key, "Approve", "557058:dana")
    received: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    with httpx.Client(transport=httpx.MockTransport(record)) as client:
        _, identifier = jira.send_webhook("http://127.0.0.1:9/hook", event, "s3cret",
                                          client=client)
        jira.send_webhook("http://127.0.0.1:9/hook", event, "s3cret", identifier=identifier,
                          retry=1, client=client)

    first, second = received
    assert first.headers["X-Atlassian-Webhook-Identifier"] == identifier
    assert second.headers["X-Atlassian-Webhook-Identifier"] == identifier
    assert "X-Atlassian-Webhook-Retry" not in first.headers
    assert second.headers["X-Atlassian-Webhook-Retry"] == "1"
    assert first.headers["X-Hub-Signature"] == sign("s3cret", first.content)
    assert event["changelog"]["items"][0]["to"] == "10005"
