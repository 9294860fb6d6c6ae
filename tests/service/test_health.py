"""Probe and metrics endpoints of the service, over real HTTP."""

from __future__ import annotations

import httpx
from sqlalchemy import create_engine

from costwarden.store import Store


def test_healthz_ok(service_app: str) -> None:
    response = httpx.get(f"{service_app}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ready_after_start(service_app: str) -> None:
    response = httpx.get(f"{service_app}/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_readyz_503_while_not_ready(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service()
    service.state.ready = False
    response = httpx.get(f"{service.url}/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "starting"


def test_readyz_503_when_database_down(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service()
    working = service.state.store
    # A store whose connections are refused simulates a database that stopped responding.
    service.state.store = Store(create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    try:
        response = httpx.get(f"{service.url}/readyz", timeout=20)
    finally:
        service.state.store.close()
        service.state.store = working
    assert response.status_code == 503
    assert "database unavailable" in response.json()["reason"]


def test_metrics_exposition(service_app: str) -> None:
    httpx.get(f"{service_app}/healthz")
    response = httpx.get(f"{service_app}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'costwarden_http_request_duration_seconds_count{method="GET",route="/healthz"' in (
        response.text
    )
