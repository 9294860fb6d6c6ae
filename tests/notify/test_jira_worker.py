"""Outbox rows through the delivery worker to the fake Jira: ticket, update, retry, dead letter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.jira import FakeJira
from ticket_samples import budget_notice, external_ref, make_worker, queue, row

from costwarden.notify.worker import DeliveryWorker
from costwarden.store import Store

JIRA = "finops-jira"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


@pytest.fixture
def workers() -> Iterator[list[DeliveryWorker]]:
    built: list[DeliveryWorker] = []
    yield built
    for worker in built:
        worker.close()


def test_worker_opens_and_updates_jira_ticket(
    store: Store, jira: FakeJira, workers: list[DeliveryWorker]
) -> None:
    worker = make_worker(store, {JIRA: jira.channel_options()}, workers)
    notice = budget_notice()
    trigger = queue(store, JIRA, "trigger", notice)

    worker.run_once()
    key = external_ref(store, notice.alert_id, JIRA)
    update = queue(store, JIRA, "update", notice)
    worker.run_once()

    assert row(store, trigger).status == "sent"
    assert row(store, trigger).external_ref == key
    assert row(store, update).status == "sent"
    assert list(jira.issues) == [key]
    assert len(jira.issues[str(key)].comments) == 1


def test_worker_retries_jira_rate_limit(
    store: Store, jira: FakeJira, workers: list[DeliveryWorker]
) -> None:
    worker = make_worker(store, {JIRA: jira.channel_options()}, workers)
    jira.fail_next(429, retry_after="90")
    row_id = queue(store, JIRA, "trigger", budget_notice())
    before = datetime.now(UTC)

    worker.run_once()

    failed = row(store, row_id)
    assert failed.status == "pending"
    assert failed.last_status == 429
    assert failed.next_attempt_at >= before + timedelta(seconds=89)
    assert jira.issues == {}


def test_worker_dead_letters_bad_jira_token(
    store: Store, jira: FakeJira, workers: list[DeliveryWorker]
) -> None:
    options = jira.channel_options(api_token="revoked-token-value")
    worker = make_worker(store, {JIRA: options}, workers)
    row_id = queue(store, JIRA, "trigger", budget_notice())

    worker.run_once()

    dead = row(store, row_id)
    assert dead.status == "dead"
    assert dead.last_status == 401
    assert "revoked-token-value" not in (dead.last_error or "")
    assert jira.issues == {}
