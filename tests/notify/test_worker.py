"""The delivery worker against a loopback HTTP receiver, with an injected clock."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import time, timedelta
from typing import Any

import httpx
import pytest
from delivery_helpers import (
    START,
    FakeClock,
    Receiver,
    Reply,
    add_rows,
    make_notice,
    outbox_rows,
    webhook_channel,
)
from prometheus_client import REGISTRY
from sqlalchemy import select

from costwarden.config import DeliverySettings, NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.pacing import TokenBucket, quiet_until, retry_delay
from costwarden.notify.registry import (
    CHANNELS,
    Channel,
    ChannelSettings,
    ChannelSpec,
    Delivery,
    InboundResponse,
    QuietHours,
    SendResult,
)
from costwarden.notify.worker import DeliveryWorker
from costwarden.store import Store
from costwarden.store.tables import AlertResponseRecord, NotificationRecord


class MaxRandom(random.Random):
    """A random source whose ``uniform`` always returns the upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


OPENED: list[DeliveryWorker] = []


@pytest.fixture(autouse=True)
def close_workers() -> Iterator[None]:
    """Close the HTTP clients of every worker a test built."""
    yield
    while OPENED:
        OPENED.pop().close()


def make_worker(
    store: Store,
    channels: dict[str, dict[str, Any]],
    clock: FakeClock,
    rng: random.Random | None = None,
    **delivery: Any,
) -> DeliveryWorker:
    settings = NotifySettings(channels=channels, delivery=DeliverySettings(**delivery))
    return track(settings, store, clock, rng)


def track(
    settings: NotifySettings, store: Store, clock: FakeClock, rng: random.Random | None = None
) -> DeliveryWorker:
    worker = DeliveryWorker(
        store,
        settings,
        build_channels(settings),
        clock=clock,
        sleep=clock.sleep,
        rng=rng or random.Random(7),
    )
    OPENED.append(worker)
    return worker


def test_worker_sends_due_rows(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    ids = add_rows(store, "hook", 3)
    worker = make_worker(store, {"hook": webhook_channel(receiver.url("hook"), burst=5)}, clock)
    counted = {"channel": "hook", "outcome": "sent"}
    before = REGISTRY.get_sample_value("costwarden_deliveries_total", counted) or 0

    report = worker.run_once()

    assert report.claimed == 3
    assert report.sent == 3
    assert REGISTRY.get_sample_value("costwarden_deliveries_total", counted) == before + 3
    assert REGISTRY.get_sample_value("costwarden_outbox_rows", {"status": "sent"}) == 3
    assert REGISTRY.get_sample_value("costwarden_outbox_rows", {"status": "pending"}) == 0
    assert sorted(receiver.accepted["/hook"]) == sorted(ids)
    rows = outbox_rows(store)
    assert {row.status for row in rows} == {"sent"}
    assert all(row.attempts == 1 for row in rows)
    assert all(row.sent_at == START for row in rows)
    assert all(row.claimed_until is None for row in rows)
    assert worker.run_once().claimed == 0


def test_server_error_retried_then_sent(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.script("hook", Reply(503, body=b"busy"))
    [row_id] = add_rows(store, "hook")
    worker = make_worker(
        store, {"hook": webhook_channel(receiver.url("hook"))}, clock, backoff_base_seconds=10
    )

    first = worker.run_once()

    assert first.retried == 1
    [row] = outbox_rows(store)
    assert row.status == "pending"
    assert row.attempts == 1
    assert row.last_status == 503
    assert START <= row.next_attempt_at <= START + timedelta(seconds=10)
    assert "/hook" not in row.last_error
    assert worker.run_once(START - timedelta(seconds=1)).claimed == 0

    clock.now = row.next_attempt_at
    second = worker.run_once()

    assert second.sent == 1
    assert receiver.received["/hook"] == [row_id, row_id]
    assert receiver.accepted["/hook"] == [row_id]
    [row] = outbox_rows(store)
    assert row.status == "sent"
    assert row.attempts == 2


def test_retry_after_overrides_backoff(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.script("hook", Reply(429, {"Retry-After": "120"}, b"slow down"))
    add_rows(store, "hook")
    worker = make_worker(
        store,
        {"hook": webhook_channel(receiver.url("hook"))},
        clock,
        backoff_base_seconds=1,
        backoff_max_seconds=30,
    )

    worker.run_once()

    [row] = outbox_rows(store)
    assert row.next_attempt_at == START + timedelta(seconds=120)
    assert row.last_status == 429


def test_backoff_doubles_up_to_cap(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.script("hook", *[Reply(500) for _ in range(6)])
    add_rows(store, "hook")
    worker = make_worker(
        store,
        {"hook": webhook_channel(receiver.url("hook"))},
        clock,
        rng=MaxRandom(),
        backoff_base_seconds=2,
        backoff_max_seconds=20,
        max_attempts=10,
    )

    delays = []
    for _ in range(6):
        before = clock.now
        assert worker.run_once().retried == 1
        [row] = outbox_rows(store)
        delays.append((row.next_attempt_at - before).total_seconds())
        clock.now = row.next_attempt_at

    assert delays == [2, 4, 8, 16, 20, 20]


def test_retry_delay_has_full_jitter() -> None:
    rng = random.Random(3)
    delays = [retry_delay(3, None, base=5, cap=3600, rng=rng) for _ in range(200)]

    assert all(0 <= delay <= 20 for delay in delays)
    assert min(delays) < 5
    assert max(delays) > 15
    assert retry_delay(1, 7200, base=5, cap=3600, rng=rng) == 7200


def test_client_error_is_dead(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.script("hook", Reply(400, body=b"bad payload"))
    add_rows(store, "hook")
    worker = make_worker(store, {"hook": webhook_channel(receiver.url("hook"))}, clock)

    report = worker.run_once()

    assert report.dead == 1
    [row] = outbox_rows(store)
    assert row.status == "dead"
    assert row.last_status == 400
    assert "bad payload" in row.last_error
    assert row.claimed_until is None
    assert worker.run_once(START + timedelta(days=1)).claimed == 0


def test_max_attempts_is_dead(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.script("hook", Reply(500), Reply(500))
    add_rows(store, "hook")
    worker = make_worker(
        store,
        {"hook": webhook_channel(receiver.url("hook"))},
        clock,
        max_attempts=2,
        backoff_base_seconds=1,
    )

    assert worker.run_once().retried == 1
    clock.advance(60)
    assert worker.run_once().dead == 1

    [row] = outbox_rows(store)
    assert row.status == "dead"
    assert row.attempts == 2
    assert len(receiver.received["/hook"]) == 2


def test_max_age_is_dead(store: Store, receiver: Receiver) -> None:
    clock = FakeClock(START + timedelta(hours=5))
    receiver.script("hook", Reply(502))
    add_rows(store, "hook")
    worker = make_worker(
        store, {"hook": webhook_channel(receiver.url("hook"))}, clock, max_age_hours=4
    )

    assert worker.run_once().dead == 1
    [row] = outbox_rows(store)
    assert row.status == "dead"
    assert row.attempts == 1


def test_quiet_hours_defer_all_but_critical(store: Store, receiver: Receiver) -> None:
    clock = FakeClock(START.replace(hour=23))
    warning_ids = add_rows(store, "hook", 2, severity="warning", alert_prefix="warn")
    critical_ids = add_rows(store, "hook", 1, severity="critical", alert_prefix="crit")
    quiet = {"start": "22:00", "end": "07:00", "timezone": "UTC"}
    channels = {"hook": webhook_channel(receiver.url("hook"), burst=5, quiet_hours=quiet)}
    worker = make_worker(store, channels, clock)

    report = worker.run_once()

    assert report.sent == 1
    assert report.deferred == 2
    assert receiver.accepted["/hook"] == critical_ids
    morning = START.replace(hour=7) + timedelta(days=1)
    for row in outbox_rows(store, status="pending"):
        assert row.id in warning_ids
        assert row.next_attempt_at == morning
        assert row.attempts == 0

    clock.now = morning
    assert worker.run_once().sent == 2


def test_quiet_hours_hold_critical(store: Store, receiver: Receiver) -> None:
    clock = FakeClock(START.replace(hour=23))
    add_rows(store, "hook", 1, severity="critical")
    quiet = {"start": "22:00", "end": "07:00", "hold_critical": True}
    worker = make_worker(
        store, {"hook": webhook_channel(receiver.url("hook"), quiet_hours=quiet)}, clock
    )

    report = worker.run_once()

    assert report.sent == 0
    assert report.deferred == 1
    assert receiver.received["/hook"] == []


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-03-02T21:59", None),
        ("2026-03-02T22:00", "2026-03-03T07:00"),
        ("2026-03-03T06:59", "2026-03-03T07:00"),
        ("2026-03-03T07:00", None),
        ("2026-03-07T12:00", "2026-03-09T07:00"),
        ("2026-03-06T23:00", "2026-03-09T07:00"),
    ],
)
def test_quiet_until_windows(local: str, expected: str | None) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Berlin")
    quiet = QuietHours(start=time(22), end=time(7), timezone="Europe/Berlin", weekends=True)
    now = datetime.fromisoformat(local).replace(tzinfo=zone)

    found = quiet_until(quiet, now)

    if expected is None:
        assert found is None
    else:
        assert found == datetime.fromisoformat(expected).replace(tzinfo=zone)


def test_token_bucket_paces_sends(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    add_rows(store, "hook", 5)
    worker = make_worker(
        store, {"hook": webhook_channel(receiver.url("hook"), rate_per_second=2, burst=2)}, clock
    )

    report = worker.run_once()

    assert report.sent == 5
    assert clock.sleeps == [0.5, 0.5, 0.5]
    sent_at = [row.sent_at for row in outbox_rows(store)]
    offsets = [(moment - START).total_seconds() for moment in sent_at]
    assert offsets == [0, 0, 0.5, 1.0, 1.5]


def test_token_bucket_unit() -> None:
    bucket = TokenBucket(rate=4, burst=2)

    waits = [bucket.reserve(0.0) for _ in range(4)]

    assert waits == [0, 0, 0.25, 0.5]
    assert bucket.reserve(10.0) == 0


def test_slow_channel_claims_only_its_horizon(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    add_rows(store, "hook", 10)
    worker = make_worker(
        store, {"hook": webhook_channel(receiver.url("hook"), rate_per_second=0.1)}, clock
    )

    report = worker.run_once()

    assert report.claimed == 3
    assert report.sent == 3
    assert clock.sleeps == [10, 10]
    assert len(outbox_rows(store, status="pending")) == 7


def test_failing_channel_paused_others_go_on(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.down.add("/down")
    down_ids = add_rows(store, "down", 5)
    up_ids = add_rows(store, "up", 5)
    channels = {
        "down": webhook_channel(receiver.url("down"), burst=10),
        "up": webhook_channel(receiver.url("up"), burst=10),
    }
    worker = make_worker(store, channels, clock, backoff_base_seconds=30)

    report = worker.run_once()

    assert sorted(receiver.accepted["/up"]) == sorted(up_ids)
    assert len(receiver.received["/down"]) == 1
    assert report.retried == 1
    assert report.deferred == 4
    pending = outbox_rows(store, status="pending")
    assert sorted(row.id for row in pending) == sorted(down_ids)
    assert worker.run_once().claimed == 0

    receiver.down.clear()
    clock.now = max(row.next_attempt_at for row in pending)
    worker.drain()
    assert sorted(receiver.accepted["/down"]) == sorted(down_ids)


def test_disabled_and_unknown_channels_stay_pending(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    add_rows(store, "off", 2)
    add_rows(store, "gone", 3)
    [on_id] = add_rows(store, "on", 1)
    channels = {
        "off": webhook_channel(receiver.url("off"), enabled=False),
        "on": webhook_channel(receiver.url("on")),
    }
    worker = make_worker(store, channels, clock)

    report = worker.run_once()

    assert report.claimed == 1
    assert report.sent == 1
    assert report.skipped == {"off": 2, "gone": 3}
    assert {row.status for row in outbox_rows(store, channel="off")} == {"pending"}
    assert {row.status for row in outbox_rows(store, channel="gone")} == {"pending"}
    assert list(receiver.received) == ["/on"]
    assert receiver.accepted["/on"] == [on_id]


def test_expired_claim_is_taken_again(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    [row_id] = add_rows(store, "hook")
    worker = make_worker(store, {"hook": webhook_channel(receiver.url("hook"))}, clock)
    from costwarden.store.tables import OutboxRecord

    with store.transaction() as session:
        row = session.get(OutboxRecord, row_id)
        row.status = "sending"
        row.claimed_by = "crashed-worker/1"
        row.claimed_until = START + timedelta(minutes=1)

    assert worker.run_once().claimed == 0
    clock.advance(120)
    assert worker.run_once().sent == 1
    assert receiver.accepted["/hook"] == [row_id]


RECORDED: list[Delivery] = []


class RecordingSettings(ChannelSettings):
    pass


class RecordingChannel(Channel):
    """Records deliveries in memory and returns an approval for every approval poll."""

    settings_class = RecordingSettings

    def send(self, delivery: Delivery, client: httpx.Client) -> SendResult:
        RECORDED.append(delivery)
        return SendResult(external_ref=f"ticket-{delivery.notice.alert_id}")

    def poll(self, external_ref: str, alert_id: str, client: httpx.Client) -> InboundResponse:
        return InboundResponse(
            alert_id=alert_id,
            channel=self.name,
            action="approve",
            actor="approver",
            dedupe_key=f"poll:{external_ref}",
            received_at=START,
        )


@pytest.fixture
def recording_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the recording channel type for one test only, so the registry stays as shipped."""
    spec = ChannelSpec("test-recording", RecordingSettings, RecordingChannel)
    monkeypatch.setitem(CHANNELS._specs, "test-recording", spec)
    monkeypatch.setattr(RecordingChannel, "type", "test-recording")


def test_delivery_carries_refs_and_links(store: Store, recording_type: None) -> None:
    RECORDED.clear()
    clock = FakeClock()
    add_rows(store, "rec", 1, alert_prefix="known", external_ref="ticket-old")
    add_rows(store, "rec", 1, alert_prefix="new")
    settings = NotifySettings(
        channels={"rec": {"type": "test-recording", "burst": 5}},
        public_url="https://costwarden.example",
        link_secret="link-signing-secret-1234-5678-9abc-def0",
    )
    worker = track(settings, store, clock)

    worker.run_once()

    by_alert = {delivery.notice.alert_id: delivery for delivery in RECORDED}
    assert by_alert["known-0"].external_ref == "ticket-old"
    assert by_alert["new-0"].external_ref is None
    assert by_alert["new-0"].notices == (make_notice("new-0"),)
    links = by_alert["new-0"].links["new-0"]
    assert links.approve.startswith("https://costwarden.example/actions/")
    with store.transaction() as session:
        record = session.get(NotificationRecord, ("new-0", "rec"))
        assert record is not None
        assert record.external_ref == "ticket-new-0"
    sent = {row.alert_id: row for row in outbox_rows(store)}
    assert sent["new-0"].external_ref == "ticket-new-0"
    assert sent["new-0"].status == "sent"


def test_polling_records_approvals_once(store: Store, recording_type: None) -> None:
    clock = FakeClock()
    add_rows(store, "rec", 2, external_ref="ticket")
    settings = NotifySettings(
        channels={"rec": {"type": "test-recording"}},
        delivery=DeliverySettings(approval_poll_minutes=5),
    )
    worker = track(settings, store, clock)

    first = worker.run_once()
    clock.advance(60)
    second = worker.run_once()

    assert first.polled == 2
    assert first.responses == 1
    assert second.polled == 0
    with store.transaction() as session:
        actions = session.scalars(select(AlertResponseRecord.action)).all()
    assert actions == ["approve"]


def test_stop_puts_claimed_rows_back(store: Store, receiver: Receiver) -> None:
    from delivery_helpers import wait_for

    ids = add_rows(store, "hook", 4)
    settings = NotifySettings(
        channels={"hook": webhook_channel(receiver.url("hook"), rate_per_second=0.2)},
        delivery=DeliverySettings(poll_seconds=0.05),
    )
    worker = DeliveryWorker(store, settings, build_channels(settings))
    OPENED.append(worker)

    worker.start()
    wait_for(lambda: len(receiver.accepted["/hook"]) == 1)
    worker.stop()

    assert receiver.accepted["/hook"] == ids[:1]
    rows = {row.id: row for row in outbox_rows(store)}
    assert rows[ids[0]].status == "sent"
    for row_id in ids[1:]:
        assert rows[row_id].status == "pending"
        assert rows[row_id].claimed_by is None
        assert rows[row_id].attempts == 0
    assert not [thread for thread in threading.enumerate() if thread.name == "costwarden-delivery"]
