"""Error responses and request checks of the REST API on a real server.

Every failure under /api/v1 has the JSON body ``{"error": {"code", "message", ...}}``: unknown
paths and methods, malformed JSON, unknown body fields, bad filter values, oversized bodies and a
database that cannot be reached.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from costwarden.store import Store

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
    return start_service(service={"api_keys": KEYS, "max_body_bytes": 4096})


@pytest.fixture
def admin(service: RunningService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{service.url}/api/v1", headers={"X-API-Key": ADMIN_KEY}) as client:
        yield client


def _budget(name: str, amount: object = 1000, **extra: object) -> dict[str, object]:
    return {"name": name, "scope": {"cluster": "prod-eu"}, "amount": amount, **extra}


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_since_without_offset_is_utc(admin: httpx.Client) -> None:
    for path in ("/alerts", "/anomalies"):
        aware = admin.get(path, params={"since": "2026-12-05T00:00:00+00:00"})
        for since in ("2026-12-05", "2026-12-05T00:00:00"):
            naive = admin.get(path, params={"since": since})

            assert naive.status_code == 200, (path, since, naive.text)
            assert naive.json()["total"] == aware.json()["total"]


def test_unknown_route_and_method(admin: httpx.Client) -> None:
    missing = admin.get("/no-such-thing")
    wrong_method = admin.patch("/runs")

    assert missing.status_code == 404
    assert _error(missing)["code"] == "not_found"
    assert "/api/v1/no-such-thing" in _error(missing)["message"]
    assert wrong_method.status_code == 405
    assert _error(wrong_method)["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "GET, POST"


def test_malformed_json_names_line_column(admin: httpx.Client) -> None:
    body = b'{\n  "name": "team-a",\n  "amount": 10,,\n}'

    response = admin.post("/budgets", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    message = _error(response)["message"]
    assert "line 3, column" in message
    assert "field" not in message


def test_feedback_check_names_no_field(admin: httpx.Client) -> None:
    response = admin.post(f"/anomalies/{'a' * 32}/feedback", json={"verdict": "expected"})

    assert response.status_code == 422
    assert "None" not in _error(response)["message"]
    assert "reason" in _error(response)["message"]


def test_unknown_body_fields_rejected(admin: httpx.Client) -> None:
    run = admin.post("/runs", json={"cluster": ["prod-eu"]})
    feedback = admin.post(
        f"/anomalies/{'a' * 32}/feedback", json={"verdict": "problem", "note": "typo"}
    )

    assert run.status_code == 422
    assert _error(run)["field"] == "cluster"
    assert feedback.status_code == 422
    assert _error(feedback)["field"] == "note"


def test_status_filters_are_checked(admin: httpx.Client) -> None:
    anomalies = admin.get("/anomalies", params={"status": "bogus"})
    runs = admin.get("/runs", params={"status": "bogus"})

    assert anomalies.status_code == 422
    assert _error(anomalies)["value"] == "bogus"
    assert runs.status_code == 422
    assert "succeeded" in _error(runs)["message"]
    assert admin.get("/anomalies", params={"status": "new_normal"}).status_code == 200


def test_etag_quoted_and_if_match_forms(admin: httpx.Client) -> None:
    created = admin.post("/budgets", json=_budget("team-a"))
    quoted = admin.put("/budgets/team-a", json=_budget("team-a", 2), headers={"If-Match": '"1"'})
    bare = admin.put("/budgets/team-a", json=_budget("team-a", 3), headers={"If-Match": "2"})
    star = admin.put("/budgets/team-a", json=_budget("team-a", 4), headers={"If-Match": "*"})
    star_missing = admin.put("/budgets/team-b", json=_budget("team-b"), headers={"If-Match": "*"})

    assert created.headers["etag"] == '"1"'
    assert quoted.status_code == 200
    assert quoted.headers["etag"] == '"2"'
    assert bare.status_code == 200
    assert star.status_code == 200
    assert admin.get("/budgets/team-a").headers["etag"] == '"4"'
    assert star_missing.status_code == 412
    assert admin.get("/budgets/team-b").status_code == 404
    assert admin.delete("/budgets/team-a", headers={"If-Match": "*"}).status_code == 204


def test_budget_body_over_limit(admin: httpx.Client) -> None:
    large = _budget("team-a", description="x" * 5000)

    posted = admin.post("/budgets", json=large)
    put = admin.put("/budgets/team-a", json=large)

    assert posted.status_code == 413
    assert "max_body_bytes" in _error(posted)["message"]
    assert put.status_code == 413
    assert admin.get("/budgets").json()["total"] == 0


def test_yaml_import_error_fields(admin: httpx.Client) -> None:
    text = (
        "budgets:\n"
        "  - {name: team-a, scope: {cluster: prod-eu}, amount: -5}\n"
        "  - {name: team-b, scope: {cluster: prod-eu}, amount: x}\n"
    )

    response = admin.post(
        "/budgets:import", content=text, headers={"Content-Type": "application/yaml"}
    )

    error = _error(response)
    assert response.status_code == 422
    assert error["code"] == "invalid_budget"
    assert error["budget"] == "team-a"
    assert error["field"] == "amount"
    assert error["value"] == -5
    assert [problem["budget"] for problem in error["problems"]] == ["team-a", "team-b"]


def test_csv_custom_period_value_is_cell(admin: httpx.Client) -> None:
    text = "name,amount,period\nteam-a,10,2026-03-31..2026-01-01\n"

    response = admin.post("/budgets:import", content=text, headers={"Content-Type": "text/csv"})

    assert response.status_code == 422
    assert _error(response)["field"] == "period"
    assert _error(response)["value"] == "2026-03-31..2026-01-01"


def test_scope_forecast_periods(admin: httpx.Client) -> None:
    custom = admin.get("/forecasts", params={"period": "2026-12-01..2026-12-31"})
    reversed_range = admin.get("/forecasts", params={"period": "2026-12-31..2026-12-01"})
    zone = admin.get("/forecasts", params={"timezone": "Mars/Base"})

    assert custom.status_code == 200, custom.text
    assert custom.json()["period_start"] == "2026-12-01"
    assert custom.json()["period_end"] == "2027-01-01"
    assert reversed_range.status_code == 422
    assert _error(reversed_range)["field"] == "query.period"
    assert zone.status_code == 422
    assert _error(zone)["field"] == "query.timezone"
    assert "scope-forecast" not in _error(zone)["message"]


def test_metrics_route_has_prefix(service: RunningService, admin: httpx.Client) -> None:
    admin.get("/runs")
    admin.get("/budgets/team-a")

    text = httpx.get(f"{service.url}/metrics").text

    assert 'route="/api/v1/runs"' in text
    assert 'route="/api/v1/budgets/{name}"' in text
    assert 'route="/runs"' not in text


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_database_down_is_503(service: RunningService) -> None:
    url = f"postgresql+psycopg://costwarden@127.0.0.1:{_closed_port()}/costwarden"
    unreachable = Store.open(url, migrate=False)
    working = service.state.store
    service.state.store = unreachable
    try:
        with httpx.Client(base_url=f"{service.url}/api/v1") as client:
            response = client.get("/budgets", headers={"X-API-Key": ADMIN_KEY})
    finally:
        service.state.store = working
        unreachable.close()

    assert response.status_code == 503
    assert _error(response)["code"] == "unavailable"
    assert int(response.headers["retry-after"]) > 0
