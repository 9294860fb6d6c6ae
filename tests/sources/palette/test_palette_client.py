import json
import logging
import threading
import time
from datetime import date, timedelta

import anyio
import httpx
import pytest
from palette_helpers import AS_OF, RecordingTransport, palette_settings

from costwarden.config import PaletteSettings
from costwarden.errors import ConfigError, PaletteApiError, PaletteAuthError, PaletteRateLimitError
from costwarden.sources.palette.client import AsyncPaletteClient, PaletteClient

USERS_INFO = "/v1/users/info"
DASHBOARD = "/v1/dashboard"


def test_users_info_returns_tenant(start_simulator, make_client):
    sim = start_simulator(org_name="Acme Platform")
    client, transport = make_client(palette_settings(sim))

    info = client.users_info()

    assert info.org_name == "Acme Platform"
    assert info.tenant_uid
    assert info.user_uid
    assert transport.statuses() == [200]


def test_wrong_key_fails_without_retry(start_simulator, make_client, fake_time, caplog):
    sim = start_simulator()
    wrong_key = "not-the-key-0123456789"
    client, transport = make_client(palette_settings(sim, api_key=wrong_key))

    with caplog.at_level(logging.DEBUG), pytest.raises(PaletteAuthError) as raised:
        client.users_info()

    assert raised.value.status == 401
    assert "COSTWARDEN_PALETTE_API_KEY" in str(raised.value)
    assert wrong_key not in str(raised.value)
    assert wrong_key not in caplog.text
    assert transport.statuses() == [401]
    assert fake_time.sleeps == []


def test_missing_key_is_a_config_error(start_simulator):
    sim = start_simulator()
    settings = palette_settings(sim, api_key=None)

    with pytest.raises(ConfigError, match="COSTWARDEN_PALETTE_API_KEY"):
        PaletteClient(settings)


def test_search_reads_every_page_once(start_simulator, make_client):
    sim = start_simulator(cluster_count=120)
    client, transport = make_client(palette_settings(sim))

    clusters = client.search_clusters()

    uids = [cluster.metadata.uid for cluster in clusters]
    assert len(uids) == 120
    assert len(set(uids)) == 120
    searches = [item for item in transport.exchanges if item.path.endswith("/search")]
    assert len(searches) == 3
    assert "continue" not in searches[0].params
    assert all(item.params.get("continue") for item in searches[1:])
    assert all(item.params["limit"] == "50" for item in searches)


def test_search_repeats_body_per_page(start_simulator, make_client):
    sim = start_simulator(cluster_count=60)
    bodies: list[bytes] = []

    def keep_body(request, response, content):
        bodies.append(request.content)
        return content

    client, _ = make_client(palette_settings(sim), rewrite=keep_body)

    clusters = client.search_clusters(active_only=True)

    assert len(clusters) == 60
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]
    assert (
        json.loads(bodies[0])["filter"]["filterGroups"][0]["filters"][1]["property"] == "isDeleted"
    )


def test_429_honours_retry_after(start_simulator, make_client, fake_time):
    sim = start_simulator(fault_rate=1.0, fault_statuses=(429,), retry_after_seconds=3)
    client, transport = make_client(palette_settings(sim, max_retries=3))

    with pytest.raises(PaletteRateLimitError) as raised:
        client.users_info()

    assert transport.statuses() == [429] * 4
    assert fake_time.sleeps == [3.0, 3.0, 3.0]
    assert raised.value.status == 429
    assert "after 4 attempts" in str(raised.value)


def test_long_retry_after_capped(start_simulator, make_client, fake_time):
    sim = start_simulator(fault_rate=1.0, fault_statuses=(429,), retry_after_seconds=600)
    client, transport = make_client(palette_settings(sim, max_retries=2, backoff_max_seconds=4))

    with pytest.raises(PaletteRateLimitError):
        client.users_info()

    assert fake_time.sleeps == [4.0, 4.0]
    assert transport.statuses() == [429] * 3


def test_client_close_twice(start_simulator):
    sim = start_simulator()
    client = PaletteClient(palette_settings(sim))

    client.close()
    client.close()

    with pytest.raises(RuntimeError):
        client.users_info()


def test_429_without_retry_after_backs_off(start_simulator, make_client, fake_time):
    sim = start_simulator(fault_rate=1.0, fault_statuses=(429,), retry_after_seconds=None)
    settings = palette_settings(
        sim, max_retries=5, backoff_base_seconds=0.5, backoff_max_seconds=3.0
    )
    client, transport = make_client(settings)

    with pytest.raises(PaletteRateLimitError):
        client.users_info()

    assert len(transport.exchanges) == 6
    assert len(fake_time.sleeps) == 5
    for attempt, delay in enumerate(fake_time.sleeps):
        assert 0.0 <= delay <= min(3.0, 0.5 * 2**attempt)


def test_5xx_retried_until_success(start_simulator, make_client, fake_time):
    sim = start_simulator(
        fault_rate=0.5, fault_statuses=(500, 502, 503), seed=11, rate_limit_enabled=False
    )
    client, transport = make_client(palette_settings(sim, max_retries=20))

    infos = [client.users_info() for _ in range(12)]

    assert all(info.tenant_uid == infos[0].tenant_uid for info in infos)
    statuses = transport.statuses()
    failures = [status for status in statuses if status != 200]
    assert failures, "the seeded fault injection produced no 5xx; pick another seed"
    assert set(failures) <= {500, 502, 503}
    assert statuses.count(200) == 12
    assert len(fake_time.sleeps) == len(failures)


def test_5xx_exhausted_raises_api_error(start_simulator, make_client, fake_time):
    sim = start_simulator(fault_rate=1.0, fault_statuses=(503,))
    client, transport = make_client(palette_settings(sim, max_retries=2))

    with pytest.raises(PaletteApiError) as raised:
        client.users_info()

    assert not isinstance(raised.value, PaletteRateLimitError)
    assert raised.value.status == 503
    assert transport.statuses() == [503, 503, 503]
    assert len(fake_time.sleeps) == 2
    assert "after 3 attempts" in str(raised.value)


def test_unreachable_server_retries_then_fails(start_simulator, make_client, fake_time):
    sim = start_simulator()
    settings = palette_settings(sim, max_retries=2)
    server_url = sim.url
    sim.stop()
    client, transport = make_client(settings)

    with pytest.raises(PaletteApiError) as raised:
        client.users_info()

    assert len(transport.exchanges) == 3
    assert len(fake_time.sleeps) == 2
    assert server_url in str(raised.value)
    assert raised.value.code == "ConnectError"


def test_unknown_cluster_not_found(start_simulator, make_client, fake_time):
    sim = start_simulator()
    client, transport = make_client(palette_settings(sim))

    with pytest.raises(PaletteApiError) as raised:
        client.get_cluster("0123456789abcdef01234567")

    assert raised.value.status == 404
    assert raised.value.code == "ResourceNotFound"
    assert transport.statuses() == [404]
    assert fake_time.sleeps == []


def test_limiter_keeps_dashboard_rate(start_simulator, make_client, fake_time):
    sim = start_simulator(rate_limit_enabled=False)
    settings = palette_settings(sim, dashboard_rate_per_second=8, dashboard_burst=5)
    client, transport = make_client(settings)

    for _ in range(40):
        client.projects()
    for _ in range(10):
        client.users_info()

    dashboard = [item.sent_at for item in transport.exchanges if item.path.startswith(DASHBOARD)]
    assert len(dashboard) == 40
    for start in dashboard:
        in_window = [moment for moment in dashboard if start <= moment < start + 1.0]
        assert len(in_window) <= 5 + 8
    assert (len(dashboard) - 5) / (dashboard[-1] - dashboard[0]) <= 8 + 1e-9
    others = [item.sent_at for item in transport.exchanges if item.path == USERS_INFO]
    assert others == [dashboard[-1]] * 10


def test_limiter_avoids_palette_429(start_simulator):
    sim = start_simulator()
    transport = RecordingTransport(clock=time.monotonic)

    with PaletteClient(palette_settings(sim, max_retries=0), transport=transport) as client:
        for _ in range(12):
            client.projects()

    assert transport.statuses() == [200] * 12


def test_timestamp_units_give_same_points(start_simulator, make_client):
    in_seconds = start_simulator(timestamp_unit="seconds")
    in_milliseconds = start_simulator(timestamp_unit="milliseconds")
    start, end = date(2026, 3, 5), AS_OF.date()
    seconds_client, _ = make_client(palette_settings(in_seconds))
    milliseconds_client, _ = make_client(palette_settings(in_milliseconds))

    seconds_costs = seconds_client.cluster_costs(start, end)
    milliseconds_costs = milliseconds_client.cluster_costs(start, end)

    assert seconds_costs == milliseconds_costs
    first = seconds_costs.resources[0].data[0].timestamp
    assert first.tzinfo is not None
    assert first.utcoffset() == timedelta(0)
    assert first.date() >= start


def test_unknown_fields_are_ignored(start_simulator, make_client):
    sim = start_simulator()

    def add_unknown_fields(request, response, content):
        body = json.loads(content)
        body["addedInPalette99"] = {"anything": [1, 2, 3]}
        for item in body.get("items", []):
            item["metadata"]["futureField"] = "x"
            item["brandNewSection"] = {"nested": True}
        return json.dumps(body).encode()

    plain_client, _ = make_client(palette_settings(sim))
    extended_client, _ = make_client(palette_settings(sim), rewrite=add_unknown_fields)

    assert extended_client.search_clusters() == plain_client.search_clusters()
    assert extended_client.users_info() == plain_client.users_info()


def test_client_shared_by_threads(start_simulator):
    sim = start_simulator(rate_limit_enabled=False)
    results: list[str] = []
    errors: list[BaseException] = []

    with PaletteClient(palette_settings(sim)) as client:

        def worker() -> None:
            try:
                for _ in range(3):
                    results.append(client.users_info().tenant_uid)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert len(results) == 12
    assert len(set(results)) == 1


def _mock_client(handler, fake_time, **overrides) -> PaletteClient:
    settings_options = {"url": "http://127.0.0.1:9", "api_key": "secret-key-xyz", "max_retries": 1}
    settings_options.update(overrides)
    return PaletteClient(
        PaletteSettings(**settings_options),
        transport=httpx.MockTransport(handler),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


def test_error_body_in_message(fake_time):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"code": "InvalidFilter", "message": "bad groupBy", "ref": "r-17"}
        )

    with _mock_client(handler, fake_time) as client, pytest.raises(PaletteApiError) as raised:
        client.projects()

    assert raised.value.code == "InvalidFilter"
    assert "bad groupBy" in str(raised.value)
    assert "r-17" in str(raised.value)
    assert fake_time.sleeps == []


def test_non_json_error_body_kept(fake_time):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>upstream gateway timeout</html>")

    with _mock_client(handler, fake_time) as client, pytest.raises(PaletteApiError) as raised:
        client.users_info()

    assert raised.value.status == 502
    assert raised.value.code == "Bad Gateway"
    assert "upstream gateway timeout" in str(raised.value)


def test_key_echoed_by_server_is_redacted(fake_time):
    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers["ApiKey"]
        return httpx.Response(403, json={"code": "Forbidden", "message": f"key {key} lacks scope"})

    with _mock_client(handler, fake_time) as client, pytest.raises(PaletteAuthError) as raised:
        client.users_info()

    assert "secret-key-xyz" not in str(raised.value)
    assert "***" in str(raised.value)


def test_project_uid_sent_as_header(fake_time):
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"orgName": "o", "tenantUid": "t", "userUid": "u"})

    with _mock_client(handler, fake_time, project_uid="p-42") as client:
        client.users_info()
    with _mock_client(handler, fake_time) as client:
        client.users_info()

    assert seen[0]["ProjectUid"] == "p-42"
    assert seen[0]["ApiKey"] == "secret-key-xyz"
    assert "ProjectUid" not in seen[1]


def test_schema_mismatch_is_invalid_response(fake_time):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": "not-a-list"})

    with _mock_client(handler, fake_time) as client, pytest.raises(PaletteApiError) as raised:
        client.search_clusters()

    assert raised.value.code == "InvalidResponse"
    assert "items" in str(raised.value)


def test_repeated_continue_token_stops(fake_time):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "listmeta": {"continue": "same"}})

    with _mock_client(handler, fake_time) as client, pytest.raises(PaletteApiError) as raised:
        client.search_clusters()

    assert raised.value.code == "PaginationLoop"


def test_async_client_reads_simulator(start_simulator):
    sim = start_simulator(cluster_count=55)

    async def read() -> tuple[str, int]:
        async with AsyncPaletteClient(palette_settings(sim)) as client:
            info = await client.users_info()
            clusters = await client.search_clusters()
        return info.tenant_uid, len({cluster.metadata.uid for cluster in clusters})

    tenant_uid, cluster_count = anyio.run(read)

    assert tenant_uid
    assert cluster_count == 55
