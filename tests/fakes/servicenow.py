"""A fake ServiceNow Table API (incident and change_request) on 127.0.0.1.

It checks Basic auth (``USER``/``PASSWORD``) or a bearer ``TOKEN``, stores records with string
values, a 32-hex ``sys_id`` and ``INC%07d`` or ``CHG%07d`` numbers, filters by
``sysparm_query`` clauses of the form ``field=value`` joined by ``^``, and reports errors in
ServiceNow's envelope ``{"error": {"message", "detail"}, "status": "failure"}``. Reference
fields (``assignment_group``, ``caller_id``) take a sys_id, or a display name when
``sysparm_input_display_value=true``. Tests script 429 with ``Retry-After`` and
``X-RateLimit-*`` headers or 5xx with ``fail_next``, and approve or reject a change with
``set_approval``. ``stall_next_create`` stores a record but responds after the client's
timeout.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fakes.loopback import LoopbackFake
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

USER, PASSWORD = "costwarden.integration", "fake-snow-password-31c8"
TOKEN = "fake-snow-oauth-token-b02e"
MAX_SHORT_DESCRIPTION_CHARS = 160
PREFIXES = {"incident": "INC", "change_request": "CHG"}
GROUPS = {"FinOps": "a1b2c3d4e5f60718293a4b5c6d7e8f90"}
USERS = {"finops.bot": "0f9e8d7c6b5a49382716051f2e3d4c5b"}
REFERENCES = {"assignment_group": ("sys_user_group", GROUPS), "caller_id": ("sys_user", USERS)}
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class ScriptedFailure:
    status: int
    retry_after: str | None = None


class FakeServiceNow(LoopbackFake):
    """The fake on a free port of 127.0.0.1, as a context manager; ``url`` is the instance."""

    server_name = "the fake ServiceNow"

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in PREFIXES}
        self.work_notes: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str, str]] = []
        """Every authenticated request as (method, path, query string)."""
        self.failures: list[ScriptedFailure] = []
        self.create_stalls: list[float] = []
        self._numbers = {table: itertools.count(10001) for table in PREFIXES}
        self._lock = threading.Lock()
        self.app = self._build_app()

    @property
    def url(self) -> str:
        return self.base_url

    def channel_options(self, **overrides: Any) -> dict[str, Any]:
        """Return ``notify.channels`` options of a servicenow channel aimed at this fake."""
        options = {
            "type": "servicenow",
            "instance_url": self.url,
            "username": USER,
            "password": PASSWORD,
            "assignment_group": "FinOps",
        }
        return {**options, **overrides}

    def fail_next(self, status: int, count: int = 1, *, retry_after: str | None = None) -> None:
        """Fail the next ``count`` requests with ``status``; a 429 carries rate-limit headers."""
        self.failures.extend(ScriptedFailure(status, retry_after) for _ in range(count))

    def stall_next_create(self, seconds: float) -> None:
        """Store the next created record, then wait ``seconds`` before the response."""
        self.create_stalls.append(seconds)

    def set_approval(self, sys_id: str, approval: str, by: str = "dana.approver") -> None:
        """Set a change's ``approval`` (requested, approved, rejected) as an approver would."""
        with self._lock:
            record = self.records["change_request"][sys_id]
            record["approval"] = approval
            record["sys_updated_by"] = by

    def set_active(self, table: str, sys_id: str, active: bool) -> None:
        with self._lock:
            self.records[table][sys_id]["active"] = "true" if active else "false"

    def all(self, table: str = "incident") -> list[dict[str, Any]]:
        return list(self.records[table].values())

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.requests]

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        app.middleware("http")(self._gate)

        @app.post("/api/now/table/{table}")
        async def create(table: str, request: Request) -> Response:
            if table not in PREFIXES:
                return _error(400, "Invalid table", f"Table {table} does not exist")
            body = await _json(request)
            if body is None:
                return _error(
                    400, "Exception while reading request", "The payload is not valid JSON"
                )
            if len(str(body.get("short_description", ""))) > MAX_SHORT_DESCRIPTION_CHARS:
                return _error(
                    400,
                    "Invalid field value",
                    "short_description exceeds the 160 characters of this instance",
                )
            display = request.query_params.get("sysparm_input_display_value") == "true"
            record = self._insert(table, body, display)
            if self.create_stalls:
                await asyncio.sleep(self.create_stalls.pop(0))
            location = f"{self.url}/api/now/table/{table}/{record['sys_id']}"
            return JSONResponse(
                {"result": self._rendered(record)}, status_code=201, headers={"Location": location}
            )

        @app.get("/api/now/table/{table}")
        async def query(table: str, request: Request) -> Response:
            if table not in PREFIXES:
                return _error(400, "Invalid table", f"Table {table} does not exist")
            try:
                clauses = parse_query(request.query_params.get("sysparm_query", ""))
            except ValueError as exc:
                return _error(400, "Invalid query", str(exc))
            limit = int(request.query_params.get("sysparm_limit", "10000"))
            fields = request.query_params.get("sysparm_fields")
            found = [
                record
                for record in self.records[table].values()
                if all(str(record.get(name, "")) == value for name, value in clauses)
            ]
            return JSONResponse(
                {"result": [self._rendered(record, fields) for record in found[:limit]]}
            )

        @app.get("/api/now/table/{table}/{sys_id}")
        async def read(table: str, sys_id: str, request: Request) -> Response:
            record = self.records.get(table, {}).get(sys_id)
            if record is None:
                return _no_record()
            fields = request.query_params.get("sysparm_fields")
            return JSONResponse({"result": self._rendered(record, fields)})

        @app.patch("/api/now/table/{table}/{sys_id}")
        async def patch(table: str, sys_id: str, request: Request) -> Response:
            record = self.records.get(table, {}).get(sys_id)
            if record is None:
                return _no_record()
            body = await _json(request)
            if body is None:
                return _error(
                    400, "Exception while reading request", "The payload is not valid JSON"
                )
            self._update(table, record, body)
            return JSONResponse({"result": self._rendered(record)})

        return app

    async def _gate(self, request: Request, call_next: Any) -> Response:
        """Check Basic or bearer auth, record the request and play the scripted failures."""
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") not in (f"Basic {basic}", f"Bearer {TOKEN}"):
            return _error(401, "User Not Authenticated", "Required to provide Auth information")
        self.requests.append((request.method, request.url.path, request.url.query))
        if self.failures:
            failure = self.failures.pop(0)
            headers = {}
            if failure.status == 429:
                headers = {
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Rule": "integration-user",
                    "X-RateLimit-Reset": str(int(time.time()) + 30),
                }
            if failure.retry_after is not None:
                headers["Retry-After"] = failure.retry_after
            message = "Too many requests" if failure.status == 429 else "Service Unavailable"
            return _error(failure.status, message, "scripted failure", headers)
        response: Response = await call_next(request)
        return response

    def _insert(self, table: str, body: dict[str, Any], display: bool) -> dict[str, Any]:
        with self._lock:
            number = f"{PREFIXES[table]}{next(self._numbers[table]):07d}"
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
            record: dict[str, Any] = {
                "sys_id": uuid.uuid4().hex,
                "number": number,
                "state": "1",
                "active": "true",
                "sys_created_on": now,
                "sys_updated_on": now,
                "sys_updated_by": USER,
            }
            if table == "change_request":
                record["approval"] = "not requested"
            for name, value in body.items():
                if name == "work_notes":
                    self.work_notes.setdefault(record["sys_id"], []).append(str(value))
                    continue
                record[name] = _reference(name, value, display)
            self.records[table][record["sys_id"]] = record
        return record

    def _update(self, table: str, record: dict[str, Any], body: dict[str, Any]) -> None:
        with self._lock:
            for name, value in body.items():
                if name == "work_notes":
                    self.work_notes.setdefault(record["sys_id"], []).append(str(value))
                else:
                    record[name] = str(value)
            if table == "incident" and record.get("state") in ("6", "7"):
                record["active"] = "false"
            record["sys_updated_on"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")

    def _rendered(self, record: dict[str, Any], fields: str | None = None) -> dict[str, Any]:
        """Return a record as the API shows it: strings, and references as link and value."""
        names = fields.split(",") if fields else list(record)
        shown: dict[str, Any] = {}
        for name in names:
            value = str(record.get(name, ""))
            if name in REFERENCES and value:
                table = REFERENCES[name][0]
                shown[name] = {"link": f"{self.url}/api/now/table/{table}/{value}", "value": value}
            else:
                shown[name] = value
        return shown


def parse_query(query: str) -> list[tuple[str, str]]:
    """Parse an encoded query of ``field=value`` clauses joined by ``^``."""
    if not query:
        return []
    clauses = []
    for part in query.split("^"):
        name, sep, value = part.partition("=")
        if not sep or not re.match(r"^[a-z_][a-z0-9_.]*$", name):
            raise ValueError(f"the fake understands only field=value clauses, not {part!r}")
        clauses.append((name, value))
    return clauses


def _reference(name: str, value: Any, display: bool) -> str:
    """Store a reference field as a sys_id: a display name resolves only in display mode."""
    text = str(value)
    if name not in REFERENCES or HEX32.match(text):
        return text
    return REFERENCES[name][1].get(text, "") if display else ""


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _no_record() -> JSONResponse:
    return _error(
        404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
    )


def _error(
    status: int, message: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "detail": detail}, "status": "failure"}
    return JSONResponse(body, status_code=status, headers=headers)
