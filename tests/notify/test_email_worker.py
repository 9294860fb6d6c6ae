"""A digest outbox row through the delivery worker to the fake SMTP server."""

from __future__ import annotations

import random
from datetime import timedelta

from delivery_helpers import START, FakeClock, add_rows, outbox_rows
from fakes.smtp import FakeSmtp

from costwarden.config import NotifySettings
from costwarden.notify.channels import build_channels
from costwarden.notify.worker import DeliveryWorker
from costwarden.simulator.server import LOOPBACK
from costwarden.store import Store


def make_worker(store: Store, smtp: FakeSmtp, clock: FakeClock) -> DeliveryWorker:
    channel = {
        "type": "email",
        "host": LOOPBACK,
        "port": smtp.port,
        "starttls": False,
        "sender": "costwarden@example.com",
        "recipients": ["finops@example.com"],
        "timeout_seconds": 5,
    }
    settings = NotifySettings(channels={"mail": channel})
    return DeliveryWorker(
        store,
        settings,
        build_channels(settings),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(5),
    )


def test_digest_row_mailed(sqlite_store: Store) -> None:
    clock = FakeClock(START + timedelta(seconds=5))
    [row_id] = add_rows(sqlite_store, "mail", event="digest", severity="info")

    with FakeSmtp() as smtp:
        worker = make_worker(sqlite_store, smtp, clock)
        try:
            report = worker.run_once()
        finally:
            worker.close()

    assert report.sent == 1
    [mail] = smtp.messages
    assert mail.message["Message-ID"] == f"<{row_id}@example.com>"
    assert "Budget alert mail-alert-0" in mail.part("text/plain")
    [row] = outbox_rows(sqlite_store)
    assert row.status == "sent"


def test_smtp_451_retried_then_sent(sqlite_store: Store) -> None:
    clock = FakeClock(START + timedelta(seconds=5))
    add_rows(sqlite_store, "mail", event="digest", severity="info")

    with FakeSmtp() as smtp:
        smtp.fail_next("451 4.3.0 Try again later", "data")
        worker = make_worker(sqlite_store, smtp, clock)
        try:
            first = worker.run_once()
            [row] = outbox_rows(sqlite_store)
            clock.advance(3600)
            second = worker.run_once()
        finally:
            worker.close()

    assert first.retried == 1
    assert row.last_status == 451
    assert second.sent == 1
    assert len(smtp.messages) == 1


def test_smtp_550_dead_letter(sqlite_store: Store) -> None:
    clock = FakeClock(START + timedelta(seconds=5))
    add_rows(sqlite_store, "mail", event="digest", severity="info")

    with FakeSmtp() as smtp:
        smtp.fail_next("550 5.1.1 No such user", "rcpt")
        worker = make_worker(sqlite_store, smtp, clock)
        try:
            report = worker.run_once()
        finally:
            worker.close()

    assert report.dead == 1
    [row] = outbox_rows(sqlite_store)
    assert row.status == "dead"
    assert row.last_status == 550
    assert "No such user" in row.last_error
