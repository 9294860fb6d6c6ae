"""Two delivery workers on one database never send a row twice."""

from __future__ import annotations

import threading
from collections import Counter

from delivery_helpers import Receiver, add_rows, outbox_rows, webhook_channel

from costwarden.config import DeliverySettings, NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.worker import DeliveryWorker, WorkerReport
from costwarden.store import Store

CHANNELS = 6
ROWS_PER_CHANNEL = 80


def test_two_workers_send_each_row_once(database_url: str, receiver: Receiver) -> None:
    setup = Store.open(database_url)
    try:
        check_two_workers(setup, database_url, receiver)
    finally:
        setup.close()


def check_two_workers(setup: Store, database_url: str, receiver: Receiver) -> None:
    expected = []
    for index in range(CHANNELS):
        expected += add_rows(setup, f"c{index}", ROWS_PER_CHANNEL)
    channels = {
        f"c{index}": webhook_channel(receiver.url(f"c{index}"), rate_per_second=10_000, burst=100)
        for index in range(CHANNELS)
    }
    settings = NotifySettings(
        channels=channels, delivery=DeliverySettings(batch_size=15, concurrency=3)
    )
    # Each worker has its own engine and connection pool, as two processes would.
    stores = [Store.open(database_url, migrate=False) for _ in range(2)]
    workers = [
        DeliveryWorker(store, settings, build_channels(settings), worker_id=f"worker-{index}")
        for index, store in enumerate(stores)
    ]
    reports: list[WorkerReport] = []
    start = threading.Barrier(2)

    def drain(worker: DeliveryWorker) -> None:
        # A scan may find every due row locked by the other worker, so keep scanning until
        # no row is waiting.
        start.wait()
        total = WorkerReport()
        while outbox_rows(worker.store, status="pending") or outbox_rows(
            worker.store, status="sending"
        ):
            total.add(worker.run_once())
        reports.append(total)

    threads = [threading.Thread(target=drain, args=(worker,)) for worker in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for worker, store in zip(workers, stores, strict=True):
            worker.close()
            store.close()

    accepted = Counter(
        delivery_id for path in receiver.accepted for delivery_id in receiver.accepted[path]
    )
    assert sorted(accepted) == sorted(expected)
    assert max(accepted.values()) == 1
    assert sum(report.sent for report in reports) == len(expected)
    assert all(report.sent > 0 for report in reports)
    assert {row.status for row in outbox_rows(setup)} == {"sent"}
