"""A flood of 10,000 outbox rows across 50 channels, one of them down, delivered exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from delivery_helpers import START, FakeClock, Receiver, make_notice, outbox_rows, webhook_channel
from sqlalchemy import insert

from costwarden.config import DeliverySettings, NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.worker import DeliveryWorker
from costwarden.store import Store
from costwarden.store.tables import OutboxRecord

CHANNELS = 50
ROWS = 10_000
DOWN = "c07"


def insert_flood(store: Store) -> dict[str, list[str]]:
    """Insert ROWS pending rows spread round-robin over the channels; return ids by channel."""
    ids: dict[str, list[str]] = {f"c{index:02d}": [] for index in range(CHANNELS)}
    values = []
    for index in range(ROWS):
        channel = f"c{index % CHANNELS:02d}"
        row_id = str(uuid.uuid4())
        ids[channel].append(row_id)
        values.append(
            {
                "id": row_id, "channel": channel, "alert_id": f"alert-{index}",
                "event": "trigger", "route": "flood",
                "notices": [make_notice(f"alert-{index}").to_json()], "status": "pending",
                "attempts": 0, "next_attempt_at": START,
                "created_at": START + timedelta(microseconds=index), "updated_at": START,
            }
        )
    with store.transaction() as session:
        session.execute(insert(OutboxRecord), values)
    return ids


def test_flood_with_one_channel_down(store: Store, receiver: Receiver) -> None:
    clock = FakeClock()
    ids = insert_flood(store)
    receiver.down.add(f"/{DOWN}")
    channels = {
        name: webhook_channel(receiver.url(name), rate_per_second=100_000, burst=10_000)
        for name in ids
    }
    settings = NotifySettings(
        channels=channels,
        delivery=DeliverySettings(
            batch_size=2_000, concurrency=8, backoff_base_seconds=60, max_attempts=3
        ),
    )
    worker = DeliveryWorker(store, settings, build_channels(settings), clock=clock,
                            sleep=clock.sleep)
    try:
        first = worker.drain()

        accepted = Counter(
            delivery_id for path in receiver.accepted for delivery_id in receiver.accepted[path]
        )
        for name, channel_ids in ids.items():
            if name == DOWN:
                continue
            assert sorted(receiver.accepted[f"/{name}"]) == sorted(channel_ids), name
        assert max(accepted.values()) == 1
        assert first.sent == ROWS - len(ids[DOWN])
        assert first.dead == 0
        # The down channel was tried once, then paused; its rows wait without attempts.
        assert len(receiver.received[f"/{DOWN}"]) == 1
        waiting = outbox_rows(store, channel=DOWN)
        assert len(waiting) == len(ids[DOWN])
        assert {row.status for row in waiting} == {"pending"}
        assert sum(row.attempts for row in waiting) == 1

        receiver.down.clear()
        clock.advance(settings.delivery.backoff_base_seconds + 1)
        second = worker.drain()
    finally:
        worker.close()

    assert second.sent == len(ids[DOWN])
    assert sorted(receiver.accepted[f"/{DOWN}"]) == sorted(ids[DOWN])
    everything = Counter(
        delivery_id for path in receiver.accepted for delivery_id in receiver.accepted[path]
    )
    assert len(everything) == ROWS
    assert max(everything.values()) == 1
    assert {row.status for row in outbox_rows(store)} == {"sent"}
