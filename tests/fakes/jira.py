"""A fake Jira Cloud and Jira Service Management REST API on 127.0.0.1.

It speaks the v3 wire format the jira channel uses: Basic auth with ``EMAIL`` and
``API_TOKEN``, issue create with an ADF description, ``search/jql`` on ``project``, ``labels``
and ``statusCategory`` clauses, comments, transitions, JSM customer requests and Jira's error
envelope ``{"errorMessages": [...], "errors": {...}}``. Search is eventually consistent like the
real one when ``search_delay_seconds`` is set: a new issue stays invisible for that long unless
its id is in ``reconcileIssues``. Tests script failures with ``fail_next`` (429 with
``Retry-After`` and ``X-RateLimit-Reset``, 503) and ``stall_next_create`` (the issue is stored,
but the response comes after the client's timeout). ``send_webhook`` posts a signed
``jira:issue_updated`` delivery like an admin webhook.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

EMAIL = "finops-bot@example.com"
API_TOKEN = "fake-jira-token-7d41"
PROJECT = "FIN"
SERVICE_DESK_ID = "10"
REQUEST_TYPE_ID = "25"
MAX_SUMMARY_CHARS = 255
MAX_TEXT_FIELD_CHARS = 32_767
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")

# Statuses of the fake's workflow: id -> (name, status category key).
STATUSES = {
    "10001": ("To Do", "new"),
    "10003": ("Pending approval", "indeterminate"),
    "10005": ("Approved", "indeterminate"),
    "10006": ("Declined", "done"),
    "10002": ("Done", "done"),
}
CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
# Transitions by id: (name, target status id). Every transition is available from every status.
TRANSITIONS = {
    "11": ("Request approval", "10003"),
    "31": ("Approve", "10005"),
    "41": ("Decline", "10006"),
    "51": ("Done", "10002"),
}
APPROVED_STATUS_ID = "10005"
DECLINED_STATUS_ID = "10006"


def sign(secret: str, body: bytes) -> str:
    """Return the ``X-Hub-Signature`` value of a Jira admin webhook delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class FakeIssue:
    id: str
    key: str
    fields: dict[str, Any]
    status_id: str = "10001"
    created: float = field(default_factory=time.monotonic)
    comments: list[dict[str, Any]] = field(default_factory=list)
    request_type_id: str | None = None

    def status(self) -> dict[str, Any]:
        name, category = STATUSES[self.status_id]
        return {
            "id": self.status_id,
            "name": name,
            "statusCategory": {"key": category, "name": CATEGORY_NAMES[category]},
        }


@dataclass
class ScriptedFailure:
    status: int
    retry_after: str | None = None
    reset: str | None = None


class FakeJira(LoopbackFake):
    """The fake on a free port of 127.0.0.1, as a context manager; ``url`` is its site URL."""

    server_name = "the fake Jira"

    def __init__(self, *, search_delay_seconds: float = 0.0) -> None:
        self.search_delay_seconds = search_delay_seconds
        self.issues: dict[str, FakeIssue] = {}
        self.requests: list[tuple[str, str]] = []
        """Every authenticated request as (method, path)."""
        self.failures: list[ScriptedFailure] = []
        self.create_stalls: list[float] = []
        self._ids = itertools.count(10042)
        self._numbers = itertools.count(17)
        self._lock = threading.Lock()
        self.app = self._build_app()

    @property
    def url(self) -> str:
        return self.base_url

    def channel_options(self, **overrides: Any) -> dict[str, Any]:
        """Return ``notify.channels`` options of a jira channel aimed at this fake."""
        options = {
            "type": "jira",
            "url": self.url,
            "email": EMAIL,
            "api_token": API_TOKEN,
            "project": PROJECT,
        }
        return {**options, **overrides}

    # Scripting

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        retry_after: str | None = None,
        reset_in_seconds: float | None = None,
    ) -> None:
        """Fail the next ``count`` requests with ``status`` and Jira's rate-limit headers."""
        reset = None
        if reset_in_seconds is not None:
            when = datetime.now(UTC) + timedelta(seconds=reset_in_seconds)
            reset = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.failures.extend(ScriptedFailure(status, retry_after, reset) for _ in range(count))

    def stall_next_create(self, seconds: float) -> None:
        """Store the next created issue, then wait ``seconds`` before the response."""
        self.create_stalls.append(seconds)

    def transition(self, key: str, name: str, account_id: str) -> dict[str, Any]:
        """Move an issue by transition name and return the ``jira:issue_updated`` event."""
        transition_id, (_, target) = next(
            (tid, value) for tid, value in TRANSITIONS.items() if value[0] == name
        )
        with self._lock:
            issue = self.issues[key]
            before = issue.status_id
            issue.status_id = target
        return issue_updated_event(issue, before, account_id)

    def send_webhook(
        self,
        url: str,
        event: dict[str, Any],
        secret: str | None,
        *,
        identifier: str | None = None,
        retry: int | None = None,
        signature: str | None = None, client: httpx.Client | None = None,
    ) -> tuple[httpx.Response, str]:
        """Post ``event`` like an admin webhook and return the response and the identifier.

        ``retry`` sets ``X-Atlassian-Webhook-Retry``, as Jira does on a redelivery, which keeps
        the identifier. ``signature`` overrides the computed one; ``client`` replaces a
        one-off connection.
        """
        body = json.dumps(event).encode()
        identifier = identifier or str(uuid.uuid4())
        headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": identifier}
        if retry is not None:
            headers["X-Atlassian-Webhook-Retry"] = str(retry)
        if signature is not None:
            headers["X-Hub-Signature"] = signature
        elif secret is not None:
            headers["X-Hub-Signature"] = sign(secret, body)
        if client is not None:
            return client.post(url, content=body, headers=headers), identifier
        response = httpx.post(url, content=body, headers=headers, timeout=10)
        return response, identifier

    # Reading

    def open_issues(self) -> list[FakeIssue]:
        return [
            issue
            for issue in self.issues.values()
            if issue.status()["statusCategory"]["key"] != "done"
        ]

    def paths(self, method: str | None = None) -> list[str]:
        return [path for verb, path in self.requests if method is None or verb == method]

    # The application

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        app.middleware("http")(self._gate)

        @app.post("/rest/api/3/issue")
        async def create_issue(request: Request) -> Response:
            body = await _json(request)
            problem = _issue_fields_problem(body.get("fields"))
            if problem:
                return _error(400, errors=problem)
            issue = self._store_issue(body["fields"])
            await self._stall()
            return JSONResponse(
                {"id": issue.id, "key": issue.key, "self": self._self(issue)}, status_code=201
            )

        @app.post("/rest/servicedeskapi/request")
        async def create_request(request: Request) -> Response:
            body = await _json(request)
            problem = _request_problem(body)
            if problem:
                return _error(400, messages=[problem])
            values = dict(body["requestFieldValues"])
            values["project"] = {"key": PROJECT}
            issue = self._store_issue(values, request_type_id=str(body["requestTypeId"]))
            await self._stall()
            return JSONResponse(self._customer_request(issue), status_code=201)

        @app.get("/rest/api/3/issue/{key}")
        async def get_issue(key: str, fields: str = "") -> Response:
            issue = self.issues.get(key)
            if issue is None:
                return _error(
                    404, messages=["Issue does not exist or you do not have permission to see it."]
                )
            return JSONResponse(self._issue_json(issue, fields.split(",") if fields else None))

        @app.post("/rest/api/3/search/jql")
        async def search(request: Request) -> Response:
            body = await _json(request)
            return self._search(body)

        @app.post("/rest/api/3/issue/{key}/comment")
        async def comment(key: str, request: Request) -> Response:
            body = await _json(request)
            issue = self.issues.get(key)
            if issue is None:
                return _error(
                    404, messages=["Issue does not exist or you do not have permission to see it."]
                )
            problem = _document_problem(body.get("body"), "body")
            if problem:
                return _error(400, errors=problem)
            item = {
                "id": str(next(self._ids)),
                "body": body["body"],
                "created": datetime.now(UTC).isoformat(),
            }
            issue.comments.append(item)
            return JSONResponse(
                {
                    **item,
                    "self": f"{self._self(issue)}/comment/{item['id']}",
                    "author": {"emailAddress": EMAIL},
                },
                status_code=201,
            )

        @app.get("/rest/api/3/issue/{key}/transitions")
        async def transitions(key: str) -> Response:
            if key not in self.issues:
                return _error(404, messages=["Issue does not exist."])
            return JSONResponse(
                {
                    "transitions": [
                        {"id": tid, "name": name, "to": {"id": target, "name": STATUSES[target][0]}}
                        for tid, (name, target) in TRANSITIONS.items()
                    ]
                }
            )

        @app.post("/rest/api/3/issue/{key}/transitions")
        async def do_transition(key: str, request: Request) -> Response:
            body = await _json(request)
            issue = self.issues.get(key)
            if issue is None:
                return _error(404, messages=["Issue does not exist."])
            tid = str((body.get("transition") or {}).get("id"))
            if tid not in TRANSITIONS:
                return _error(400, errors={"transition": f"Transition id '{tid}' is not valid."})
            issue.status_id = TRANSITIONS[tid][1]
            return Response(status_code=204)

        return app

    async def _gate(self, request: Request, call_next: Any) -> Response:
        """Check Basic auth, record the request and play the scripted failures."""
        expected = base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _error(401, messages=["Client must be authenticated to access this resource."])
        self.requests.append((request.method, request.url.path))
        if self.failures:
            failure = self.failures.pop(0)
            headers = {"RateLimit-Reason": "jira-burst-based"} if failure.status == 429 else {}
            if failure.retry_after is not None:
                headers["Retry-After"] = failure.retry_after
            if failure.reset is not None:
                headers["X-RateLimit-Reset"] = failure.reset
            messages = ["Rate limit exceeded."] if failure.status == 429 else ["Service down."]
            return _error(failure.status, messages=messages, headers=headers)
        response: Response = await call_next(request)
        return response

    def _store_issue(self, fields: dict[str, Any], request_type_id: str | None = None) -> FakeIssue:
        with self._lock:
            issue_id = str(next(self._ids))
            key = f"{PROJECT}-{next(self._numbers)}"
            issue = FakeIssue(issue_id, key, dict(fields), request_type_id=request_type_id)
            self.issues[key] = issue
        return issue

    async def _stall(self) -> None:
        if self.create_stalls:
            await asyncio.sleep(self.create_stalls.pop(0))

    def _search(self, body: dict[str, Any]) -> Response:
        try:
            clauses = parse_jql(str(body.get("jql", "")))
        except ValueError as exc:
            return _error(400, messages=[str(exc)])
        reconcile = {str(value) for value in body.get("reconcileIssues") or []}
        now = time.monotonic()
        found = [
            issue
            for issue in self.issues.values()
            if _matches(issue, clauses)
            and (issue.id in reconcile or now - issue.created >= self.search_delay_seconds)
        ]
        found.sort(key=lambda issue: issue.created)
        limit = int(body.get("maxResults", 50))
        fields = body.get("fields")
        issues = [self._issue_json(issue, fields) for issue in found[:limit]]
        return JSONResponse(
            {"issues": issues, "isLast": len(found) <= limit, "nextPageToken": None}
        )

    def _issue_json(self, issue: FakeIssue, fields: list[str] | None) -> dict[str, Any]:
        data: dict[str, Any] = {"id": issue.id, "key": issue.key, "self": self._self(issue)}
        if fields:
            everything = {**issue.fields, "status": issue.status()}
            data["fields"] = {name: everything.get(name) for name in fields}
        return data

    def _customer_request(self, issue: FakeIssue) -> dict[str, Any]:
        status = issue.status()
        now = datetime.now(UTC)
        return {
            "issueId": issue.id,
            "issueKey": issue.key,
            "requestTypeId": issue.request_type_id,
            "serviceDeskId": SERVICE_DESK_ID,
            "createdDate": {"iso8601": now.isoformat(), "epochMillis": int(now.timestamp() * 1000)},
            "reporter": {"accountId": "557058:fake-bot", "emailAddress": EMAIL},
            "requestFieldValues": [
                {"fieldId": name, "label": name.title(), "value": value}
                for name, value in issue.fields.items()
                if name != "project"
            ],
            "currentStatus": {
                "status": status["name"],
                "statusCategory": status["statusCategory"]["key"].upper(),
            },
            "_links": {"jiraRest": self._self(issue), "web": f"{self.url}/browse/{issue.key}"},
        }

    def _self(self, issue: FakeIssue) -> str:
        return f"{self.url}/rest/api/3/issue/{issue.id}"


def issue_updated_event(issue: FakeIssue, before: str, account_id: str) -> dict[str, Any]:
    """Return the ``jira:issue_updated`` event of a status change, as Jira posts it."""
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": account_id, "displayName": f"User {account_id[-4:]}"},
        "issue": {
            "id": issue.id,
            "key": issue.key,
            "fields": {"status": issue.status(), "labels": issue.fields.get("labels", [])},
        },
        "changelog": {
            "id": str(uuid.uuid4().int % 100000),
            "items": [
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "from": before,
                    "fromString": STATUSES[before][0],
                    "to": issue.status_id,
                    "toString": STATUSES[issue.status_id][0],
                }
            ],
        },
    }


JQL_CLAUSE = re.compile(
    r'^\s*(project|labels|statusCategory)\s*(=|!=)\s*"?([^"]+?)"?\s*$', re.IGNORECASE
)


def parse_jql(jql: str) -> list[tuple[str, str, str]]:
    """Parse ``clause AND clause`` with ``project``, ``labels`` and ``statusCategory`` only."""
    query = re.split(r"\s+ORDER\s+BY\s+", jql, flags=re.IGNORECASE)[0]
    clauses = []
    for part in re.split(r"\s+AND\s+", query, flags=re.IGNORECASE):
        match = JQL_CLAUSE.match(part)
        if match is None:
            raise ValueError(f"Error in the JQL Query: the fake does not understand {part!r}.")
        clauses.append((match.group(1).lower(), match.group(2), match.group(3)))
    return clauses


def _matches(issue: FakeIssue, clauses: list[tuple[str, str, str]]) -> bool:
    for name, operator, value in clauses:
        if name == "project":
            actual = {issue.key.split("-")[0]}
        elif name == "labels":
            actual = set(issue.fields.get("labels") or [])
        else:
            actual = {CATEGORY_NAMES[issue.status()["statusCategory"]["key"]].casefold()}
            value = value.casefold()
        if (value in actual) != (operator == "="):
            return False
    return True


def _issue_fields_problem(fields: Any) -> dict[str, str] | None:
    if not isinstance(fields, dict):
        return {"fields": "Field 'fields' is required."}
    if (fields.get("project") or {}).get("key") != PROJECT:
        return {"project": "Specify a valid project ID or key"}
    if not (fields.get("issuetype") or {}).get("name"):
        return {"issuetype": "Specify an issue type"}
    return _common_fields_problem(fields)


def _common_fields_problem(fields: dict[str, Any]) -> dict[str, str] | None:
    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        return {"summary": "You must specify a summary of the issue."}
    if len(summary) > MAX_SUMMARY_CHARS or "\n" in summary:
        return {"summary": "Summary must be less than 255 characters and one line."}
    for label in fields.get("labels") or []:
        if not isinstance(label, str) or " " in label or len(label) > 255:
            return {"labels": "The label must not contain spaces."}
    priority = (fields.get("priority") or {}).get("name")
    if "priority" in fields and priority not in PRIORITIES:
        return {"priority": f"Specify the Priority (name) in the string format: {priority!r}"}
    return _document_problem(fields.get("description"), "description")


def _document_problem(document: Any, name: str) -> dict[str, str] | None:
    if document is None and name == "description":
        return None
    if (
        not isinstance(document, dict)
        or document.get("type") != "doc"
        or document.get("version") != 1
        or not isinstance(document.get("content"), list)
    ):
        return {
            name: "Operation value must be an Atlassian Document (see the Atlassian "
            "Document Format)"
        }
    if not _valid_nodes(document["content"]):
        return {name: "INVALID_INPUT: the document has a node without a type or an empty text"}
    if len(json.dumps(document, ensure_ascii=False, separators=(",", ":"))) > MAX_TEXT_FIELD_CHARS:
        return {name: "You can only enter 32767 characters for this field."}
    return None


def _valid_nodes(nodes: list[Any]) -> bool:
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            return False
        if node["type"] == "text" and not node.get("text"):
            return False
        if not _valid_nodes(node.get("content") or []):
            return False
    return True


def _request_problem(body: dict[str, Any]) -> str | None:
    if str(body.get("serviceDeskId")) != SERVICE_DESK_ID:
        return f"The service desk {body.get('serviceDeskId')!r} does not exist."
    if str(body.get("requestTypeId")) != REQUEST_TYPE_ID:
        return f"The request type {body.get('requestTypeId')!r} does not exist."
    values = body.get("requestFieldValues")
    if not isinstance(values, dict):
        return "requestFieldValues is required."
    if body.get("isAdfRequest") is not True and isinstance(values.get("description"), dict):
        return "description must be text unless isAdfRequest is true."
    if body.get("isAdfRequest") is True:
        problem = _common_fields_problem(values)
        return next(iter(problem.values())) if problem else None
    return None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(
    status: int,
    *,
    messages: list[str] | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"errorMessages": messages or [], "errors": errors or {}}
    return JSONResponse(body, status_code=status, headers=headers)
