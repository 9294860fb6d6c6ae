"""Outbox rows through the delivery worker to the fake ServiceNow, and polled approvals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fakes.servicenow import FakeServiceNow
from sqlalchemy import select
from ticket_samples import Clock, budget_notice, external_ref, make_worker, queue

from costwarden.notify.worker import DeliveryWorker
from costwarden.store import Store
from costwarden.store.tables import AlertResponseRecord

SNOW = "finops-snow"


@pytest.fixture
def snow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow() as fake:
        yield fake


@pytest.fixture
def workers() -> Iterator[list[DeliveryWorker]]:
    built: list[DeliveryWorker] = []
    yield built
    for worker in built:
        worker.close()


def test_worker_polls_servicenow_approval(
    store: Store, snow: FakeServiceNow, workers: list[DeliveryWorker]
) -> None:
    clock = Clock()
    options = snow.channel_options(table="change_request")
    worker = make_worker(store, {SNOW: options}, workers, clock)
    notice = budget_notice()
    queue(store, SNOW, "trigger", notice)
    worker.run_once()
    sys_id = external_ref(store, notice.alert_id, SNOW)
    assert sys_id in snow.records["change_request"]

    snow.set_approval(str(sys_id), "approved", by="dana.approver")
    clock.offset = timedelta(minutes=2)
    worker.run_once()
    clock.offset = timedelta(minutes=4)
    worker.run_once()

    with store.transaction() as session:
        responses = session.scalars(select(AlertResponseRecord)).all()
        assert [(r.alert_id, r.action, r.actor) for r in responses] == [
            (notice.alert_id, "approve", "dana.approver")
        ]


def test_worker_notes_servicenow_update(
    store: Store, snow: FakeServiceNow, workers: list[DeliveryWorker]
) -> None:
    worker = make_worker(store, {SNOW: snow.channel_options()}, workers)
    notice = budget_notice()
    queue(store, SNOW, "trigger", notice)
    worker.run_once()
    queue(store, SNOW, "update", notice)
    worker.run_once()

    [record] = snow.all("incident")
    assert external_ref(store, notice.alert_id, SNOW) == record["sys_id"]
    assert [note.split(":")[0] for note in snow.work_notes[record["sys_id"]]] == ["Alert updated"]
