"""Budgets over the REST API on a real server: CRUD, versions, origins and imports."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from costwarden.store.budgets import put_budget

if TYPE_CHECKING:
    from conftest import RunningService

ADMIN_KEY = "admin-secret-key"
READ_KEY = "read-secret-key"
KEYS = [
    {"name": "ops", "key": ADMIN_KEY, "role": "admin"},
    {"name": "viewer", "sha256": hashlib.sha256(READ_KEY.encode()).hexdigest(), "role": "read"},
]


@pytest.fixture
def service(start_service: Callable[..., RunningService]) -> RunningService:
    return start_service(service={"api_keys": KEYS})


@pytest.fixture
def admin(service: RunningService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{service.url}/api/v1", headers={"X-API-Key": ADMIN_KEY}) as client:
        yield client


@pytest.fixture
def reader(service: RunningService) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {READ_KEY}"}
    with httpx.Client(base_url=f"{service.url}/api/v1", headers=headers) as client:
        yield client


def _budget(name: str, amount: object = 1000, **extra: object) -> dict[str, object]:
    return {"name": name, "scope": {"cluster": "prod-eu"}, "amount": amount, **extra}


def test_create_read_list(admin: httpx.Client, reader: httpx.Client) -> None:
    created = admin.post("/budgets", json=_budget("team-a", 1500.5, currency="EUR"))

    assert created.status_code == 201
    assert created.headers["Location"] == "/api/v1/budgets/team-a"
    assert created.json()["version"] == 1
    assert created.json()["spec"]["amount"] == "1500.5"

    one = reader.get("/budgets/team-a")
    assert one.status_code == 200
    assert one.headers["ETag"] == '"1"'
    assert one.json()["spec"]["currency"] == "EUR"
    assert one.json()["origin"] == "api"
    assert one.json()["status"] is None

    spaced = admin.post("/budgets", json=_budget("team b/eu"))
    assert spaced.headers["Location"] == "/api/v1/budgets/team%20b%2Feu"

    listing = reader.get("/budgets").json()
    assert listing["total"] == 2
    assert listing["limit"] == 100
    assert listing["items"][1]["name"] == "team-a"
    assert listing["items"][1]["amount"] == "1500.5"


def test_create_twice_conflicts(admin: httpx.Client) -> None:
    assert admin.post("/budgets", json=_budget("team-a")).status_code == 201

    again = admin.post("/budgets", json=_budget("team-a"))

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert "PUT" in again.json()["error"]["message"]


def test_invalid_body_names_field(admin: httpx.Client) -> None:
    negative = admin.post("/budgets", json=_budget("bad", -3))
    zone = admin.post("/budgets", json=_budget("bad", timezone="Mars/Base"))

    assert negative.status_code == 422
    assert negative.json()["error"]["field"] == "amount"
    assert negative.json()["error"]["value"] == -3
    assert zone.status_code == 422
    assert zone.json()["error"]["code"] == "invalid_budget"
    assert zone.json()["error"]["field"] == "timezone"
    assert zone.json()["error"]["value"] == "Mars/Base"
    assert admin.get("/budgets").json()["total"] == 0


def test_put_with_if_match(admin: httpx.Client) -> None:
    first = admin.put("/budgets/team-a", json=_budget("team-a"))
    assert first.status_code == 201

    second = admin.put("/budgets/team-a", json=_budget("team-a", 2000), headers={"If-Match": "1"})
    assert second.status_code == 200
    assert second.json()["version"] == 2

    stale = admin.put("/budgets/team-a", json=_budget("team-a", 3000), headers={"If-Match": "1"})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    assert admin.get("/budgets/team-a").json()["spec"]["amount"] == "2000"


def test_put_rejects_other_name(admin: httpx.Client) -> None:
    response = admin.put("/budgets/team-a", json=_budget("team-b"))

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "name"
    assert response.json()["error"]["value"] == "team-b"
    assert admin.get("/budgets/team-b").status_code == 404


def test_delete(admin: httpx.Client) -> None:
    admin.post("/budgets", json=_budget("team-a"))

    assert admin.delete("/budgets/team-a", headers={"If-Match": "7"}).status_code == 412
    assert admin.delete("/budgets/team-a").status_code == 204
    assert admin.delete("/budgets/team-a").status_code == 404
    assert admin.get("/budgets/team-a").status_code == 404


def test_file_budgets_are_read_only(service: RunningService, admin: httpx.Client) -> None:
    with service.state.store.transaction() as session:
        put_budget(session, _budget("from-file"), "file")

    assert admin.get("/budgets/from-file").json()["origin"] == "file"
    changed = admin.put("/budgets/from-file", json=_budget("from-file", 5))
    deleted = admin.delete("/budgets/from-file")

    assert changed.status_code == 409
    assert "budget file" in changed.json()["error"]["message"]
    assert deleted.status_code == 409
    assert admin.get("/budgets/from-file").json()["spec"]["amount"] == "1000"


def test_reader_cannot_write(reader: httpx.Client) -> None:
    response = reader.post("/budgets", json=_budget("team-a"))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_pagination(admin: httpx.Client) -> None:
    for index in range(7):
        admin.post("/budgets", json=_budget(f"b{index}"))

    page = admin.get("/budgets", params={"limit": 3, "offset": 5}).json()
    too_big = admin.get("/budgets", params={"limit": 501})

    assert page["total"] == 7
    assert [item["name"] for item in page["items"]] == ["b5", "b6"]
    assert too_big.status_code == 422
    assert too_big.json()["error"]["field"] == "query.limit"


CSV_TEXT = """name,amount,currency,period,cluster,project,namespace,labels,thresholds
team-a,1000,USD,monthly,prod-eu,,,,actual:80;forecast:100@0.7:critical
team-b,250.75,EUR,2026-01-01..2026-03-31,,platform,payments,team=core,
"""


def test_import_csv(admin: httpx.Client) -> None:
    response = admin.post("/budgets:import", content=CSV_TEXT, headers={"Content-Type": "text/csv"})

    assert response.status_code == 200
    assert response.json()["created"] == ["team-a", "team-b"]
    team_a = admin.get("/budgets/team-a").json()["spec"]
    team_b = admin.get("/budgets/team-b").json()["spec"]
    assert team_a["thresholds"][1] == {
        "type": "forecast",
        "percent": "100",
        "probability": 0.7,
        "severity": "critical",
    }
    assert team_b["period"] == {"start": "2026-01-01", "end": "2026-03-31"}
    assert team_b["scope"] == {
        "project": "platform",
        "namespace": "payments",
        "labels": "team=core",
    }


def test_import_csv_bad_row_writes_nothing(admin: httpx.Client) -> None:
    text = CSV_TEXT + "team-c,lots,USD,monthly,,,,,\nteam-d,5,USD,monthly,,,,,actual:eighty\n"

    response = admin.post("/budgets:import", content=text, headers={"Content-Type": "text/csv"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["row"] == 4
    assert error["field"] == "amount"
    assert error["value"] == "lots"
    assert error["problems"][1]["row"] == 5
    assert error["problems"][1]["field"] == "thresholds"
    assert "nothing was imported" in error["message"]
    assert admin.get("/budgets").json()["total"] == 0


def test_import_csv_unknown_column(admin: httpx.Client) -> None:
    text = "name,amount,colour\nteam-a,5,red\n"

    response = admin.post("/budgets:import", content=text, headers={"Content-Type": "text/csv"})

    assert response.status_code == 422
    assert response.json()["error"]["row"] == 1
    assert response.json()["error"]["field"] == "colour"


YAML_TEXT = """
defaults: {currency: EUR}
budgets:
  - name: team-a
    scope: {cluster: prod-eu}
    amount: 900
  - name: team-c
    scope: {project: platform}
    amount: 50
"""


def test_import_yaml_replace(admin: httpx.Client) -> None:
    admin.post("/budgets:import", content=CSV_TEXT, headers={"Content-Type": "text/csv"})

    response = admin.post(
        "/budgets:import",
        params={"replace": "true"},
        content=YAML_TEXT,
        headers={"Content-Type": "application/yaml"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "created": ["team-c"],
        "updated": ["team-a"],
        "unchanged": [],
        "deleted": ["team-b"],
    }
    assert admin.get("/budgets/team-a").json()["spec"]["currency"] == "EUR"


def test_import_multipart_yaml_error(admin: httpx.Client) -> None:
    broken = YAML_TEXT.replace("amount: 50", "amount: -50")

    response = admin.post(
        "/budgets:import", files={"file": ("budgets.yaml", broken, "application/octet-stream")}
    )

    assert response.status_code == 422
    assert "line 7" in response.json()["error"]["message"]
    assert "team-c" in response.json()["error"]["message"]
    assert admin.get("/budgets").json()["total"] == 0


def test_import_multipart_csv(admin: httpx.Client) -> None:
    response = admin.post("/budgets:import", files={"file": ("b.csv", CSV_TEXT, "text/csv")})

    assert response.status_code == 200
    assert response.json()["created"] == ["team-a", "team-b"]


def test_import_over_file_budget_conflicts(service: RunningService, admin: httpx.Client) -> None:
    with service.state.store.transaction() as session:
        put_budget(session, _budget("team-a"), "file")

    response = admin.post("/budgets:import", content=CSV_TEXT, headers={"Content-Type": "text/csv"})

    assert response.status_code == 409
    assert admin.get("/budgets").json()["total"] == 1


def test_import_rejects_other_types(admin: httpx.Client) -> None:
    response = admin.post(
        "/budgets:import", content=b"<xml/>", headers={"Content-Type": "application/xml"}
    )

    assert response.status_code == 415


def test_import_rejects_large_body(start_service: Callable[..., RunningService]) -> None:
    service = start_service(service={"api_keys": KEYS, "max_body_bytes": 1024})
    text = CSV_TEXT + "".join(f"budget-{index},10,,,,,,,\n" for index in range(100))

    with httpx.Client(base_url=service.url, headers={"X-API-Key": ADMIN_KEY}) as client:
        response = client.post(
            "/api/v1/budgets:import", content=text, headers={"Content-Type": "text/csv"}
        )

    assert response.status_code == 413
    assert "max_body_bytes" in response.json()["error"]["message"]
