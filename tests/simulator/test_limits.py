"""Rate limits, fault injection and the server's lifecycle, over real HTTP."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import httpx
import pytest

from costwarden.simulator.guards import RateLimiter
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import RateLimitRule, SimulatorSettings

PROJECTS = "/v1/dashboard/projects/metadata"


def _burst(server: SimulatorServer, path: str, count: int, **headers: str) -> list[httpx.Response]:
    with httpx.Client(base_url=server.url, headers={"ApiKey": server.api_key, **headers}) as client:
        return [client.get(path) for _ in range(count)]


def test_dashboard_rate_limit_without_retry_after(as_of: datetime) -> None:
    with SimulatorServer(SimulatorSettings(seed=1, as_of=as_of)) as server:
        responses = _burst(server, PROJECTS, 30)
        stats = server.state.stats

    statuses = [response.status_code for response in responses]
    assert statuses[:5] == [200] * 5
    limited = [response for response in responses if response.status_code == 429]
    assert limited
    assert limited[0].json()["code"] == "TooManyRequests"
    assert "/v1/dashboard" in limited[0].json()["message"]
    assert "retry-after" not in limited[0].headers
    assert stats.rate_limited == len(limited)


def test_rate_limit_sends_configured_retry_after(as_of: datetime) -> None:
    settings = SimulatorSettings(seed=1, as_of=as_of, retry_after_seconds=3)
    with SimulatorServer(settings) as server:
        responses = _burst(server, PROJECTS, 30)

    limited = [response for response in responses if response.status_code == 429]
    assert limited
    assert all(response.headers["Retry-After"] == "3" for response in limited)


def test_rate_limit_is_per_prefix_and_client(as_of: datetime) -> None:
    rules = (RateLimitRule(prefix="/v1/dashboard", rate_per_second=0.01, burst=2),)
    settings = SimulatorSettings(seed=1, as_of=as_of, rate_limits=rules)
    with SimulatorServer(settings) as server:
        first = _burst(server, PROJECTS, 3, **{"X-Forwarded-For": "10.0.0.1"})
        other_client = _burst(server, PROJECTS, 1, **{"X-Forwarded-For": "10.0.0.2"})
        other_prefix = _burst(server, "/v1/users/info", 1, **{"X-Forwarded-For": "10.0.0.1"})

    assert [response.status_code for response in first] == [200, 200, 429]
    assert other_client[0].status_code == 200
    assert other_prefix[0].status_code == 200


def test_limiter_refills_at_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(
        (RateLimitRule(prefix="/v1/dashboard", rate_per_second=10, burst=5),),
        10,
        5,
        clock=lambda: now[0],
    )

    granted = [limiter.allow("a", "/v1/dashboard/x")[0] for _ in range(6)]
    assert granted == [True] * 5 + [False]
    now[0] += 0.1
    assert limiter.allow("a", "/v1/dashboard/x")[0]
    assert not limiter.allow("a", "/v1/dashboard/x")[0]
    assert limiter.rule_for("/v1/spectroclusters/abc").prefix == "/v1/spectroclusters"
    assert limiter.rule_for("/v1/dashboardx").prefix == "/v1/dashboardx"
    assert limiter.rule_for("/v1/users/info").rate_per_second == 10


def _fault_statuses(as_of: datetime, seed: int) -> list[httpx.Response]:
    settings = SimulatorSettings(
        seed=seed, as_of=as_of, fault_rate=0.5, rate_limit_enabled=False, retry_after_seconds=1
    )
    with SimulatorServer(settings) as server:
        return _burst(server, "/v1/users/info", 80)


def test_fault_injection_is_seeded(as_of: datetime) -> None:
    responses = _fault_statuses(as_of, seed=4)
    again = _fault_statuses(as_of, seed=4)
    statuses = [response.status_code for response in responses]

    assert statuses == [response.status_code for response in again]
    counts = Counter(statuses)
    assert set(counts) == {200, 429, 500, 502, 503}
    assert 20 < counts[200] < 60
    assert statuses != [response.status_code for response in _fault_statuses(as_of, seed=5)]


def test_fault_bodies(as_of: datetime) -> None:
    by_status = {response.status_code: response for response in _fault_statuses(as_of, seed=4)}

    assert by_status[429].json()["code"] == "TooManyRequests"
    assert by_status[429].headers["Retry-After"] == "1"
    assert by_status[500].json()["code"] == "InternalError"
    for status in (502, 503):
        assert by_status[status].headers["content-type"].startswith("text/html")
        with pytest.raises(ValueError):
            by_status[status].json()


def test_faults_off_by_default(as_of: datetime) -> None:
    settings = SimulatorSettings(seed=4, as_of=as_of, rate_limit_enabled=False)
    with SimulatorServer(settings) as server:
        statuses = {response.status_code for response in _burst(server, "/v1/users/info", 40)}

    assert statuses == {200}


def test_server_stops_cleanly(as_of: datetime) -> None:
    server = SimulatorServer(SimulatorSettings(seed=1, as_of=as_of))
    with server:
        url = server.url
        assert httpx.get(url + "/v1/users/info", headers={"ApiKey": server.api_key}).is_success

    assert not [
        thread for thread in threading.enumerate() if thread.name.startswith("palette-simulator")
    ]
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/v1/users/info")


def test_server_on_given_port(as_of: datetime) -> None:
    with SimulatorServer(SimulatorSettings(seed=1, as_of=as_of)) as first:
        port = int(first.url.rsplit(":", 1)[1])
    with SimulatorServer(SimulatorSettings(seed=1, as_of=as_of), port=port) as second:
        assert second.url == f"http://127.0.0.1:{port}"


def test_settings_reject_unknown_fault_status() -> None:
    with pytest.raises(ValueError, match="418"):
        SimulatorSettings(fault_statuses=(418,))
