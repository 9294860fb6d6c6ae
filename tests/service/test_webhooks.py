"""Inbound webhooks over real HTTP on 127.0.0.1: secrets, signatures, dedupe and the worker."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from standardwebhooks import Webhook

from costwarden.config import Settings
from costwarden.domain.cost import ClusterInfo, ProjectInfo
from costwarden.service.app import create_app
from costwarden.service.events import event_row, insert_event, process_events
from costwarden.service.state import RefreshScope, ServiceState
from costwarden.simulator.server import LOOPBACK, bind_socket, uvicorn_config
from costwarden.store import Store, upsert_fleet
from costwarden.store.events import events_between
from costwarden.store.tables import CostFact, IngestBatch, WebhookEvent

PALETTE_SECRET = "palette-channel-secret-7d1c"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM="


class RecordingRunner:
    """A pass runner that records requests and joins them into one queued run, like the real one."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, RefreshScope | None]] = []
        self._lock = threading.Lock()

    def request(
        self, trigger: str, scope: RefreshScope | None = None, *, key: str | None = None
    ) -> str:
        with self._lock:
            self.requests.append((trigger, scope))
        return "run-queued-1"


class Service:
    """The webhook routes on a real uvicorn server on a free loopback port."""

    def __init__(self, store: Store, service: dict[str, Any]) -> None:
        settings = Settings(service=service)
        self.runner = RecordingRunner()
        self.state = ServiceState(settings=settings, store=store, runner=self.runner, ready=True)
        self._socket = bind_socket(LOOPBACK, 0)
        self.url = f"http://{LOOPBACK}:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn_config(create_app(self.state)))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.01)
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def close(self) -> None:
        self.client.close()
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def palette(self, body: str, token: str | None = PALETTE_SECRET) -> httpx.Response:
        headers = {"X-Costwarden-Token": token} if token is not None else {}
        return self.client.post("/webhooks/palette", content=body, headers=headers)

    def event(
        self,
        event_id: str,
        payload: dict[str, Any] | bytes,
        *,
        secret: str = SECRET,
        sent_at: datetime | None = None,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        stamp = sent_at or datetime.now(UTC)
        headers = {
            "webhook-id": event_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": Webhook(secret).sign(event_id, stamp, body),
            "content-type": "application/json",
        }
        return self.client.post("/webhooks/events", content=body, headers=headers)

    def drain(self) -> None:
        """Run the event worker until no event is pending."""
        asyncio.run(_drain(self.state))

    def rows(self) -> list[WebhookEvent]:
        with self.state.store.transaction() as session:
            return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.received_at)))


async def _drain(state: ServiceState, workers: int = 1) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(process_events(state, stop)) for _ in range(workers)]
    deadline = time.monotonic() + 30
    while await asyncio.to_thread(_pending_count, state.store):
        assert time.monotonic() < deadline, "events still pending after 30 s"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)


def _pending_count(store: Store) -> int:
    with store.transaction() as session:
        query = (
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "pending")
        )
        return int(session.scalar(query) or 0)


ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service(store: Store) -> Iterator[ServiceFactory]:
    started: list[Service] = []

    def start(**service: Any) -> Service:
        defaults: dict[str, Any] = {
            "palette_webhook_secret": PALETTE_SECRET,
            "event_secrets": [SECRET],
            "schedule": None,
        }
        running = Service(store, {**defaults, **service})
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


def _records(*amounts: str, cluster: str = "prod-eu-1") -> list[dict[str, Any]]:
    return [
        {"day": f"2026-11-{index + 1:02d}", "amount": amount, "currency": "USD", "cluster": cluster}
        for index, amount in enumerate(amounts)
    ]


def _seed_fleet(store: Store) -> None:
    clusters = [
        ClusterInfo(
            uid="c-1a2b3c", name="prod-eu-1", project_uid="p-1", project_name="prod", cloud="aws"
        ),
        ClusterInfo(
            uid="c-4d5e6f", name="prod-us-1", project_uid="p-1", project_name="prod", cloud="aws"
        ),
        ClusterInfo(
            uid="c-7a8b9c", name="dev", project_uid="p-1", project_name="prod", cloud="aws"
        ),
    ]
    with store.transaction() as session:
        upsert_fleet(session, [ProjectInfo("p-1", "prod")], clusters)


def test_palette_unconfigured_returns_404(make_service: ServiceFactory) -> None:
    service = make_service(palette_webhook_secret=None)

    response = service.palette('{"text": "cluster down"}')

    assert response.status_code == 404
    assert service.rows() == []


@pytest.mark.parametrize("token", [None, "", "wrong-secret", PALETTE_SECRET + "x"])
def test_palette_rejects_bad_token(make_service: ServiceFactory, token: str | None) -> None:
    service = make_service()

    response = service.palette('{"text": "cluster down"}', token=token)

    assert response.status_code == 401
    assert "X-Costwarden-Token" in response.json()["detail"]
    assert service.rows() == []


def test_palette_custom_header(make_service: ServiceFactory) -> None:
    service = make_service(palette_webhook_header="X-Palette-Secret")

    wrong_header = service.palette('{"text": "a"}')
    right_header = service.client.post(
        "/webhooks/palette", content="a", headers={"X-Palette-Secret": PALETTE_SECRET}
    )

    assert wrong_header.status_code == 401
    assert right_header.status_code == 202


def test_palette_dedupes_within_window(make_service: ServiceFactory) -> None:
    service = make_service()
    body = '{"text": "Cluster prod-eu-1 is unhealthy"}'

    first = service.palette(body)
    second = service.palette(body)
    other = service.palette('{"text": "Cluster prod-us-1 is unhealthy"}')

    assert first.status_code == 202
    assert first.json()["status"] == "accepted"
    assert second.status_code == 202
    assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert other.json()["status"] == "accepted"
    assert len(service.rows()) == 2


def test_palette_accepts_again_after_window(make_service: ServiceFactory) -> None:
    window = 3
    service = make_service(webhook_dedupe_seconds=window)
    body = "plain text alert: cluster dev heartbeat missing"
    # A first request opens the database connections, so the timed ones below stay fast.
    service.palette("warm-up alert: another body")
    # Start right after a window boundary so that both first deliveries share one window, with
    # seconds to spare on a slow machine.
    time.sleep(window - time.time() % window + 0.02)

    first = service.palette(body)
    repeated = service.palette(body)
    time.sleep(window - time.time() % window + 0.05)
    later = service.palette(body)

    assert first.json()["status"] == "accepted"
    assert repeated.json()["status"] == "duplicate"
    assert later.json()["status"] == "accepted"
    assert later.json()["id"] != first.json()["id"]


def test_palette_rejects_large_body(make_service: ServiceFactory) -> None:
    service = make_service(max_body_bytes=1024)

    response = service.palette("x" * 1025)

    assert response.status_code == 413
    assert service.rows() == []


def test_palette_alert_targets_named_clusters(make_service: ServiceFactory, store: Store) -> None:
    _seed_fleet(store)
    service = make_service(refresh_days=5)

    service.palette('{"text": "Cluster prod-eu-1 (uid c-4d5e6f) is unhealthy. Ignore devices."}')
    service.drain()

    assert len(service.runner.requests) == 1
    trigger, scope = service.runner.requests[0]
    assert trigger == "webhook"
    assert scope is not None
    assert set(scope.cluster_uids) == {"c-1a2b3c", "c-4d5e6f"}
    assert scope.days == 5
    row = service.rows()[0]
    assert row.status == "done"
    assert row.run_id == "run-queued-1"
    assert row.payload["message"].startswith("Cluster prod-eu-1")


def test_palette_alert_unknown_cluster_refreshes_fleet(
    make_service: ServiceFactory, store: Store
) -> None:
    _seed_fleet(store)
    service = make_service()

    service.palette('{"message": "Cluster staging-9 heartbeat missing for 10 minutes"}')
    service.drain()

    _, scope = service.runner.requests[0]
    assert scope is not None
    assert scope.cluster_uids == ()
    assert scope.days == 3


def test_burst_gives_one_refresh(make_service: ServiceFactory, store: Store) -> None:
    _seed_fleet(store)
    service = make_service()

    for index in range(15):
        service.palette(f'{{"text": "Cluster prod-eu-1 unhealthy, check {index}"}}')
    for index in range(5):
        payload = {"type": "refresh.requested", "data": {"clusters": ["dev"], "days": 7}}
        assert service.event(f"msg_refresh_{index}", payload).status_code == 202
    service.drain()

    assert len(service.runner.requests) == 1
    _, scope = service.runner.requests[0]
    assert scope is not None
    assert set(scope.cluster_uids) == {"c-1a2b3c", "c-7a8b9c"}
    assert scope.days == 7
    statuses = {row.status for row in service.rows()}
    assert statuses == {"done"}


def test_signature_known_vector() -> None:
    signed_at = datetime.fromtimestamp(1614265330, tz=UTC)

    signature = Webhook(SECRET).sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek", signed_at, b'{"test": 2432232314}'
    )

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_known_vector_passes_over_http(make_service: ServiceFactory) -> None:
    # A tolerance of 10 years admits the vector's 2021 timestamp. The body has no event type, so
    # a verified delivery is stored as failed with a 422 response, where a bad one gets 401.
    service = make_service(event_tolerance_seconds=10 * 365 * 86400)
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }

    response = service.client.post(
        "/webhooks/events", content=b'{"test": 2432232314}', headers=headers
    )
    tampered = service.client.post(
        "/webhooks/events",
        content=b'{"test": 2432232315}',
        headers={**headers, "webhook-id": "msg_other"},
    )

    assert response.status_code == 422
    assert response.json()["field"] == "type"
    assert tampered.status_code == 401
    rows = service.rows()
    assert [row.id for row in rows] == ["msg_p5jXN8AQM9LWM0D4loKWxJek"]
    assert rows[0].status == "failed"


def test_events_unconfigured_returns_404(make_service: ServiceFactory) -> None:
    service = make_service(event_secrets=[])

    response = service.event("msg_1", {"type": "refresh.requested", "data": {}})

    assert response.status_code == 404


def test_events_reject_bad_signatures(make_service: ServiceFactory) -> None:
    service = make_service()
    payload = {"type": "refresh.requested", "data": {}}
    body = json.dumps(payload).encode()
    now = str(int(time.time()))

    unknown_secret = service.event("msg_1", payload, secret=OTHER_SECRET)
    no_headers = service.client.post("/webhooks/events", content=body)
    garbage = service.client.post(
        "/webhooks/events",
        content=body,
        headers={"webhook-id": "msg_2", "webhook-timestamp": now, "webhook-signature": "v1,AAAA"},
    )
    bad_stamp = service.client.post(
        "/webhooks/events",
        content=body,
        headers={"webhook-id": "msg_3", "webhook-timestamp": "soon", "webhook-signature": "v1,A"},
    )

    for response in (unknown_secret, no_headers, garbage, bad_stamp):
        assert response.status_code == 401
    assert service.rows() == []


def test_events_timestamp_tolerance(make_service: ServiceFactory) -> None:
    service = make_service(event_tolerance_seconds=60)
    payload = {"type": "refresh.requested", "data": {}}
    now = datetime.now(UTC)

    old = service.event("msg_old", payload, sent_at=now - timedelta(seconds=120))
    future = service.event("msg_future", payload, sent_at=now + timedelta(seconds=120))
    recent = service.event("msg_recent", payload, sent_at=now - timedelta(seconds=30))

    assert old.status_code == 401
    assert "60 s" in old.json()["detail"]
    assert future.status_code == 401
    assert recent.status_code == 202


def test_events_secret_rotation(make_service: ServiceFactory) -> None:
    service = make_service(event_secrets=[OTHER_SECRET, SECRET])
    payload = {"type": "refresh.requested", "data": {}}

    with_new = service.event("msg_new", payload, secret=OTHER_SECRET)
    with_old = service.event("msg_old", payload, secret=SECRET)

    assert with_new.status_code == 202
    assert with_old.status_code == 202


def test_events_replay_is_duplicate(make_service: ServiceFactory) -> None:
    service = make_service()
    payload = {"type": "cost.facts", "data": {"records": _records("10.00")}}

    first = service.event("msg_replayed", payload)
    again = service.event("msg_replayed", payload)

    assert first.json() == {"status": "accepted", "id": "msg_replayed"}
    assert again.status_code == 202
    assert again.json() == {"status": "duplicate", "id": "msg_replayed"}
    assert len(service.rows()) == 1


def test_cost_facts_ingested_idempotently(make_service: ServiceFactory, store: Store) -> None:
    _seed_fleet(store)
    service = make_service()
    payload = {
        "type": "cost.facts",
        "data": {"records": _records("10.25", "11.50", "0.1234567891")},
    }

    assert service.event("msg_facts_1", payload).status_code == 202
    service.drain()
    assert service.event("msg_facts_2", payload).status_code == 202
    service.drain()

    with store.transaction() as session:
        facts = list(session.scalars(select(CostFact).order_by(CostFact.day)))
        batches = list(session.scalars(select(IngestBatch).order_by(IngestBatch.started_at)))
    assert [fact.amount for fact in facts] == [
        Decimal("10.25"),
        Decimal("11.50"),
        Decimal("0.1234567891"),
    ]
    assert {fact.source for fact in facts} == {"webhook"}
    assert {fact.cluster_uid for fact in facts} == {"c-1a2b3c"}
    assert facts[0].day == date(2026, 11, 1)
    assert [batch.facts_inserted for batch in batches] == [3, 0]
    assert [batch.facts_unchanged for batch in batches] == [0, 3]
    assert [row.status for row in service.rows()] == ["done", "done"]


def test_cost_facts_correction_updates_amount(make_service: ServiceFactory, store: Store) -> None:
    service = make_service()
    service.event("msg_a", {"type": "cost.facts", "data": {"records": _records("10")}})
    service.event("msg_b", {"type": "cost.facts", "data": {"records": _records("12")}})
    service.drain()

    with store.transaction() as session:
        amounts = list(session.scalars(select(CostFact.amount)))
    assert amounts == [Decimal("12")]


@pytest.mark.parametrize(
    ("record", "field", "value"),
    [
        ({"amount": "ten"}, "data.records.2.amount", "ten"),
        ({"currency": "usd"}, "data.records.2.currency", "usd"),
        ({"day": "2026-13-01"}, "data.records.2.day", "2026-13-01"),
        ({"colour": "red"}, "data.records.2.colour", "red"),
        ({"amount": "NaN"}, "data.records.2.amount", "NaN"),
    ],
)
def test_cost_facts_invalid_record_rejects_event(
    make_service: ServiceFactory, store: Store, record: dict[str, Any], field: str, value: Any
) -> None:
    service = make_service()
    records = _records("1", "2", "3")
    records[2].update(record)

    response = service.event("msg_bad", {"type": "cost.facts", "data": {"records": records}})
    service.drain()

    assert response.status_code == 422
    body = response.json()
    assert body["record"] == 2
    assert body["field"] == field
    assert body["value"] == value
    assert "record 2" in body["detail"]
    assert repr(value) in body["detail"]
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CostFact)) == 0
    rows = service.rows()
    assert rows[0].status == "failed"
    assert rows[0].type == "cost.facts"
    assert "record 2" in (rows[0].error or "")


def test_cost_facts_repeated_record_rejected(make_service: ServiceFactory) -> None:
    service = make_service()
    records = _records("1", "2") + _records("5")

    response = service.event("msg_twice", {"type": "cost.facts", "data": {"records": records}})

    assert response.status_code == 422
    assert response.json()["record"] == 2
    assert "record 0" in response.json()["detail"]


def test_unknown_type_rejected(make_service: ServiceFactory) -> None:
    service = make_service()

    response = service.event("msg_x", {"type": "invoice.paid", "data": {}})
    replay = service.event("msg_x", {"type": "invoice.paid", "data": {}})

    assert response.status_code == 422
    assert "cost.facts" in response.json()["detail"]
    assert response.json()["value"] == "invoice.paid"
    assert replay.status_code == 422
    assert replay.json() == response.json()
    assert service.rows()[0].type == "invoice.paid"


def test_rejected_id_stays_rejected(make_service: ServiceFactory, store: Store) -> None:
    service = make_service()
    bad = {"type": "cost.facts", "data": {"records": _records("1", "ten")}}
    fixed = {"type": "cost.facts", "data": {"records": _records("1", "10")}}

    first = service.event("msg_fix", bad)
    same = service.event("msg_fix", bad)
    corrected_same_id = service.event("msg_fix", fixed)
    corrected_new_id = service.event("msg_fix_2", fixed)
    service.drain()

    assert first.status_code == 422
    expected = {
        "status": "failed",
        "id": "msg_fix",
        "detail": first.json()["detail"],
        "record": 1,
        "field": "data.records.1.amount",
        "value": "ten",
    }
    assert first.json() == expected
    assert same.status_code == 422
    assert same.json() == expected
    assert corrected_same_id.status_code == 422
    assert corrected_same_id.json() == expected
    assert corrected_new_id.json() == {"status": "accepted", "id": "msg_fix_2"}
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CostFact)) == 2


def test_missing_field_value_is_null(make_service: ServiceFactory) -> None:
    service = make_service()
    records = [{"day": "2026-11-01", "currency": "USD"}]

    response = service.event("msg_missing", {"type": "cost.facts", "data": {"records": records}})

    assert response.status_code == 422
    assert response.json()["field"] == "data.records.0.amount"
    assert response.json()["value"] is None
    assert "got" not in response.json()["detail"]


def test_exact_decimal_value_echoed(make_service: ServiceFactory) -> None:
    service = make_service()
    body = (
        b'{"type": "cost.facts", "data": {"records": [{"day": "2026-11-01", '
        b'"amount": 1.00000000000000000001, "currency": "USD"}]}}'
    )

    response = service.event("msg_digits", body)

    assert response.status_code == 422
    assert response.json()["value"] == "1.00000000000000000001"


def test_accepted_id_replay_stays_duplicate(make_service: ServiceFactory) -> None:
    # An event accepted at intake and failed later by the worker was answered 202 once, so a
    # replay of its id gets 202 duplicate too.
    service = make_service()

    def failing(trigger: str, scope: RefreshScope | None = None) -> str:
        from costwarden.errors import StoreError

        raise StoreError("database is read-only")

    service.runner.request = failing  # type: ignore[method-assign]
    first = service.event("msg_late_fail", {"type": "refresh.requested", "data": {}})
    service.drain()
    replay = service.event("msg_late_fail", {"type": "refresh.requested", "data": {}})

    assert first.status_code == 202
    assert service.rows()[0].status == "failed"
    assert replay.status_code == 202
    assert replay.json() == {"status": "duplicate", "id": "msg_late_fail"}


def test_invalid_json_rejected(make_service: ServiceFactory) -> None:
    service = make_service()

    response = service.event("msg_json", b"{not json")

    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]


def test_cluster_event_stored(make_service: ServiceFactory, store: Store) -> None:
    service = make_service()
    payload = {
        "type": "cluster.event",
        "data": {
            "cluster_uid": "c-1a2b3c",
            "cluster_name": "prod-eu-1",
            "reason": "MachinePoolScaled",
            "message": "worker pool scaled from 3 to 9 nodes",
            "time": "2026-11-30T14:02:00+01:00",
            "severity": "Warning",
        },
    }

    assert service.event("msg_scale", payload).status_code == 202
    assert service.event("msg_scale", payload).json()["status"] == "duplicate"
    service.drain()

    with store.transaction() as session:
        stored = events_between(
            session,
            start=datetime(2026, 11, 30, tzinfo=UTC),
            end=datetime(2026, 12, 1, tzinfo=UTC),
            cluster_uids=["c-1a2b3c"],
        )
    assert len(stored) == 1
    assert stored[0].reason == "MachinePoolScaled"
    assert stored[0].created_at == datetime(2026, 11, 30, 13, 2, tzinfo=UTC)
    assert stored[0].severity == "Warning"
    assert stored[0].source_component == "webhook"


@pytest.mark.parametrize("sent", ["2026-11-30T14:02:00", "2026-11-30 14:02"])
def test_cluster_event_needs_utc_offset(
    make_service: ServiceFactory, store: Store, sent: str
) -> None:
    service = make_service()
    payload = {
        "type": "cluster.event",
        "data": {"cluster_uid": "c-1a2b3c", "reason": "Scaled", "message": "", "time": sent},
    }

    response = service.event("msg_naive", payload)
    service.drain()

    assert response.status_code == 422
    assert response.json()["field"] == "data.time"
    assert response.json()["value"] == sent
    assert "timezone" in response.json()["detail"]
    with store.transaction() as session:
        stored = events_between(
            session,
            start=datetime(2026, 11, 29, tzinfo=UTC),
            end=datetime(2026, 12, 2, tzinfo=UTC),
            cluster_uids=["c-1a2b3c"],
        )
    assert stored == []


def test_stored_naive_cluster_event_read_as_utc(make_service: ServiceFactory, store: Store) -> None:
    # A pending row from before intake required a UTC offset is still applied, as UTC.
    service = make_service()
    data = {
        "cluster_uid": "c-1a2b3c",
        "reason": "Scaled",
        "message": "",
        "time": "2026-11-30T14:02:00",
    }
    with store.transaction() as session:
        payload = {"type": "cluster.event", "data": data}
        insert_event(session, event_row("stored_naive", "events", "cluster.event", payload))

    service.drain()

    assert service.rows()[0].status == "done"
    with store.transaction() as session:
        stored = events_between(
            session,
            start=datetime(2026, 11, 30, tzinfo=UTC),
            end=datetime(2026, 12, 1, tzinfo=UTC),
            cluster_uids=["c-1a2b3c"],
        )
    assert [event.created_at for event in stored] == [datetime(2026, 11, 30, 14, 2, tzinfo=UTC)]


def test_two_workers_process_each_event_once(make_service: ServiceFactory, store: Store) -> None:
    service = make_service()
    for index in range(40):
        records = _records(str(index), cluster=f"cluster-{index}")
        service.event(f"msg_{index}", {"type": "cost.facts", "data": {"records": records}})

    asyncio.run(_drain(service.state, workers=3))

    with store.transaction() as session:
        batches = session.scalar(select(func.count()).select_from(IngestBatch))
        facts = session.scalar(select(func.count()).select_from(CostFact))
    assert batches == 40
    assert facts == 40
    assert {row.status for row in service.rows()} == {"done"}


def test_refresh_failure_marks_events_failed(make_service: ServiceFactory) -> None:
    from costwarden.errors import StoreError

    service = make_service()

    def failing(trigger: str, scope: RefreshScope | None = None) -> str:
        raise StoreError("database is read-only")

    service.runner.request = failing  # type: ignore[method-assign]
    service.event("msg_r", {"type": "refresh.requested", "data": {}})
    service.drain()

    row = service.rows()[0]
    assert row.status == "failed"
    assert "read-only" in (row.error or "")


def test_openapi_documents_event_types(make_service: ServiceFactory) -> None:
    service = make_service()

    spec = service.client.get("/openapi.json").json()

    description = spec["paths"]["/webhooks/events"]["post"]["description"]
    for event_type in ("cost.facts", "cluster.event", "refresh.requested"):
        assert event_type in description


def test_bad_stored_event_fails_alone(make_service: ServiceFactory, store: Store) -> None:
    # A row that passed an older validation; the worker must fail it without the others.
    service = make_service()
    good = {"type": "cost.facts", "data": {"records": _records("1", "2")}}
    bad = {"type": "cost.facts", "data": {"records": [{"day": "yesterday"}]}}
    with store.transaction() as session:
        insert_event(session, event_row("stored_good_1", "events", "cost.facts", good))
        insert_event(session, event_row("stored_bad", "events", "cost.facts", bad))
        insert_event(session, event_row("stored_other", "events", "future.type", {"data": {}}))
    service.event("msg_good_2", {"type": "cost.facts", "data": {"records": _records("7")}})

    service.drain()

    statuses = {row.id: row.status for row in service.rows()}
    assert statuses == {
        "stored_good_1": "done",
        "stored_bad": "failed",
        "stored_other": "ignored",
        "msg_good_2": "done",
    }
    with store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CostFact)) == 2


def test_database_failure_returns_503(make_service: ServiceFactory, store: Store) -> None:
    service = make_service()
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE webhook_events")

    signed = service.event("msg_lost", {"type": "refresh.requested", "data": {}})
    palette = service.palette("cluster dev down")

    for response in (signed, palette):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "10"
