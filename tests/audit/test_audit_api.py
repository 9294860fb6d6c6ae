"""The read-only audit routes of the REST API on a real server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from audit_helpers import execute, fill
from fakes.loopback import LoopbackServer

from costwarden.config import Settings
from costwarden.service.app import create_app
from costwarden.service.state import ServiceState
from costwarden.store import Store

READ_KEY = "audit-reader-key"
TENANT = "acme"


class IdleRunner:
    """A pass runner that starts nothing; the audit routes need no pass."""

    def request(self, trigger: str, scope: Any = None, *, key: str | None = None) -> str:
        raise AssertionError("no pass expected in the audit API tests")


@pytest.fixture
def api(sqlite_url: str, sqlite_store: Store) -> Iterator[httpx.Client]:
    settings = Settings(
        database_url=sqlite_url,
        service={
            "schedule": None,
            "tenant": TENANT,
            "api_keys": [{"name": "viewer", "key": READ_KEY, "role": "read"}],
        },
    )
    state = ServiceState(settings=settings, store=sqlite_store, runner=IdleRunner())
    with LoopbackServer(create_app(state), "costwarden-api") as server, httpx.Client(
        base_url=server.url, headers={"X-API-Key": READ_KEY}
    ) as client:
        yield client


def test_list_filters_and_read(api: httpx.Client, sqlite_store: Store) -> None:
    moment = datetime(2026, 2, 1, tzinfo=UTC)
    seqs = fill(sqlite_store, 3, tenant=TENANT, recorded_at=moment)
    fill(sqlite_store, 2, tenant=TENANT, kind="forecast", recorded_at=moment + timedelta(days=1))
    fill(sqlite_store, 1, tenant="other")

    everything = api.get("/api/v1/audit/entries")
    alerts = api.get("/api/v1/audit/entries", params={"kind": "alert", "limit": 2})
    later = api.get("/api/v1/audit/entries", params={"since": "2026-02-02"})
    one = api.get(f"/api/v1/audit/entries/{seqs[0]}")
    missing = api.get("/api/v1/audit/entries/9999")
    invalid = api.get("/api/v1/audit/entries", params={"kind": "deploy"})

    assert everything.status_code == 200
    assert everything.json()["total"] == 5
    assert alerts.json()["total"] == 3
    assert [item["seq"] for item in alerts.json()["items"]] == [seqs[2], seqs[1]]
    assert {item["kind"] for item in later.json()["items"]} == {"forecast"}
    assert one.status_code == 200
    assert one.json()["detail"] == {"index": 0, "probability": 0.25}
    assert one.json()["time"] == "2026-02-01T00:00:00.000000Z"
    assert missing.status_code == 404
    assert invalid.status_code == 422


def test_head_and_verify(api: httpx.Client, sqlite_store: Store) -> None:
    seqs = fill(sqlite_store, 3, tenant=TENANT)

    anchor = api.get("/api/v1/audit/head").json()["anchor"]
    intact = api.get("/api/v1/audit/verify", params={"expect_head": anchor})
    execute(sqlite_store, "DELETE FROM audit_entries WHERE seq = :seq", seq=seqs[-1])
    truncated = api.get("/api/v1/audit/verify", params={"expect_head": anchor})
    malformed = api.get("/api/v1/audit/verify", params={"expect_head": "12"})

    assert anchor.startswith(f"{seqs[-1]}:")
    assert intact.status_code == 200
    assert intact.json()["ok"] is True
    assert intact.json()["anchors_checked"] == 1
    assert truncated.status_code == 200
    assert truncated.json()["ok"] is False
    assert truncated.json()["problems"][0]["kind"] == "anchor"
    assert malformed.status_code == 400
    assert "anchor '12' is invalid" in malformed.json()["error"]["message"]


def test_needs_credentials(api: httpx.Client) -> None:
    response = httpx.get(f"{api.base_url}/api/v1/audit/verify")
    assert response.status_code == 401
