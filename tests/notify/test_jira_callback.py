"""Signed Jira webhooks through the service app: approve, reject, redelivery and bad input.

The service runs on uvicorn on 127.0.0.1 against the ``store`` database (SQLite and
PostgreSQL), with a jira channel aimed at the fake Jira, which both receives the ticket and
fires the webhook like an admin webhook does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fakes.jira import FakeJira
from sqlalchemy import select
from ticket_samples import budget_notice, delivery

from costwarden.config import Settings
from costwarden.notify import CHANNELS, ChannelContext
from costwarden.notify.notice import Notice
from costwarden.notify.tickets import ticket_key
from costwarden.service.app import create_app
from costwarden.service.state import ServiceState
from costwarden.simulator.server import LOOPBACK, bind_socket
from costwarden.store import Store
from costwarden.store.tables import AlertResponseRecord, NotificationRecord

CHANNEL = "finops-jira"
SECRET = "jira-webhook-secret-5e0a"
APPROVER = "557058:dana-approver"
STRANGER = "557058:someone-else"


class IdleRunner:
    """A pass runner that starts nothing: these tests send no passes."""

    def request(self, trigger: str, scope: Any = None, *, key: str | None = None) -> str:
        return "run-none"


@dataclass
class Service:
    url: str
    store: Store

    @property
    def hook(self) -> str:
        return f"{self.url}/callbacks/jira"

    def responses(self) -> list[AlertResponseRecord]:
        with self.store.transaction() as session:
            rows = session.scalars(select(AlertResponseRecord)).all()
            session.expunge_all()
            return list(rows)


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


@pytest.fixture
def start(store: Store, database_url: str, jira: FakeJira) -> Iterator[Callable[..., Service]]:
    """Start the service with a jira channel aimed at the fake; keywords override its options."""
    servers: list[tuple[uvicorn.Server, threading.Thread, Any]] = []

    def run(**options: Any) -> Service:
        defaults = {"webhook_secret": SECRET, "approvers": [APPROVER]}
        channel = jira.channel_options(**{**defaults, **options})
        settings = Settings(
            database_url=database_url,
            service={"schedule": None, "shutdown_grace_seconds": 5.0},
            notify={"channels": {CHANNEL: channel}},
        )
        app = create_app(ServiceState(settings=settings, store=store, runner=IdleRunner()))
        sock = bind_socket(LOOPBACK, 0)
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                               lifespan="on", timeout_graceful_shutdown=5))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread, sock))
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the service stopped while starting; see the log"
            assert time.monotonic() < deadline, "the service did not start within 20 s"
            time.sleep(0.01)
        return Service(f"http://{LOOPBACK}:{sock.getsockname()[1]}", store)

    yield run
    for server, thread, sock in servers:
        server.should_exit = True
        thread.join(30)
        sock.close()


def open_ticket(jira: FakeJira, store: Store, notice: Notice, *, remember: bool = True) -> str:
    """Open the notice's ticket and store its notification row, as the worker does."""
    channel = CHANNELS.create(CHANNEL, jira.channel_options(), ChannelContext())
    with httpx.Client() as client:
        key = channel.send(delivery(CHANNEL, "trigger", notice), client).external_ref
    assert key is not None
    now = datetime.now(UTC)
    with store.transaction() as session:
        session.add(NotificationRecord(
            alert_id=notice.alert_id, channel=CHANNEL, kind=notice.kind, budget=notice.budget,
            period_key=notice.period_key, route="default", state="firing",
            severity=notice.severity, probability=notice.probability,
            breach_date=notice.breach_date, overspend=notice.overspend,
            notice=notice.to_json(), external_ref=key if remember else None,
            digest_pending=False, first_notified_at=now, last_notified_at=now, last_seen_at=now,
        ))
    return key


def test_approve_transition_records_approval(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    notice = budget_notice()
    key = open_ticket(jira, store, notice)

    event = jira.transition(key, "Approve", APPROVER)
    response, identifier = jira.send_webhook(service.hook, event, SECRET)

    assert response.status_code == 204
    [record] = service.responses()
    assert record.alert_id == notice.alert_id
    assert record.action == "approve"
    assert record.actor == APPROVER
    assert record.channel == CHANNEL
    assert record.dedupe_key == f"jira:{identifier}"
    assert record.detail["issue"] == key
    assert ("GET", f"/rest/api/3/issue/{key}") in jira.requests


def test_redelivery_recorded_once(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    key = open_ticket(jira, store, budget_notice())
    event = jira.transition(key, "Approve", APPROVER)

    first, identifier = jira.send_webhook(service.hook, event, SECRET)
    reads = jira.requests.count(("GET", f"/rest/api/3/issue/{key}"))
    again, _ = jira.send_webhook(service.hook, event, SECRET, identifier=identifier, retry=1)

    assert first.status_code == 204
    assert again.status_code == 204
    assert len(service.responses()) == 1
    assert jira.requests.count(("GET", f"/rest/api/3/issue/{key}")) == reads


def test_decline_records_rejection(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    key = open_ticket(jira, store, budget_notice())

    response, _ = jira.send_webhook(service.hook, jira.transition(key, "Decline", APPROVER),
                                    SECRET)

    assert response.status_code == 204
    assert [record.action for record in service.responses()] == ["reject"]


def test_status_ids_take_precedence(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start(approve_status_ids=["10003"])
    key = open_ticket(jira, store, budget_notice())

    approved, _ = jira.send_webhook(service.hook, jira.transition(key, "Approve", APPROVER),
                                    SECRET)
    assert approved.status_code == 204
    assert service.responses() == []

    pending, _ = jira.send_webhook(
        service.hook, jira.transition(key, "Request approval", APPROVER), SECRET
    )
    assert pending.status_code == 204
    assert [record.action for record in service.responses()] == ["approve"]


def test_bad_signature_gets_401(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    key = open_ticket(jira, store, budget_notice())
    event = jira.transition(key, "Approve", APPROVER)

    wrong, _ = jira.send_webhook(service.hook, event, "another-secret")
    missing, _ = jira.send_webhook(service.hook, event, None)
    garbled, _ = jira.send_webhook(service.hook, event, None, signature="sha256=00ff")

    assert [r.status_code for r in (wrong, missing, garbled)] == [401, 401, 401]
    assert SECRET not in wrong.text
    assert service.responses() == []


def test_unlisted_approver_is_ignored(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    key = open_ticket(jira, store, budget_notice())

    response, _ = jira.send_webhook(service.hook, jira.transition(key, "Approve", STRANGER),
                                    SECRET)

    assert response.status_code == 204
    assert service.responses() == []


def test_stale_event_is_not_confirmed(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    key = open_ticket(jira, store, budget_notice())
    event = jira.transition(key, "Approve", APPROVER)
    jira.transition(key, "Request approval", APPROVER)

    response, _ = jira.send_webhook(service.hook, event, SECRET)

    assert response.status_code == 204
    assert service.responses() == []


def test_other_events_are_acknowledged(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    key = open_ticket(jira, store, budget_notice())
    event = jira.transition(key, "Approve", APPROVER)
    event["webhookEvent"] = "comment_created"

    response, _ = jira.send_webhook(service.hook, event, SECRET)

    assert response.status_code == 204
    assert service.responses() == []
    assert ("GET", f"/rest/api/3/issue/{key}") not in jira.requests


def test_alert_found_by_key_label(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    notice = budget_notice()
    key = open_ticket(jira, store, notice, remember=False)
    assert ticket_key(notice) in jira.issues[key].fields["labels"]

    response, _ = jira.send_webhook(service.hook, jira.transition(key, "Approve", APPROVER),
                                    SECRET)

    assert response.status_code == 204
    assert [record.alert_id for record in service.responses()] == [notice.alert_id]


def test_jira_down_asks_for_redelivery(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start()
    key = open_ticket(jira, store, budget_notice())
    event = jira.transition(key, "Approve", APPROVER)
    jira.fail_next(503)

    failed, identifier = jira.send_webhook(service.hook, event, SECRET)
    retried, _ = jira.send_webhook(service.hook, event, SECRET, identifier=identifier, retry=1)

    assert failed.status_code == 503
    assert failed.headers["Retry-After"]
    assert retried.status_code == 204
    assert len(service.responses()) == 1


def test_no_secret_configured_gets_404(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start(webhook_secret=None)

    response, _ = jira.send_webhook(service.hook, {"webhookEvent": "jira:issue_updated"}, SECRET)

    assert response.status_code == 404


def test_transition_name_approves(
    start: Callable[..., Service], jira: FakeJira, store: Store
) -> None:
    service = start(approve_status_names=[])
    key = open_ticket(jira, store, budget_notice())
    event = jira.transition(key, "Approve", APPROVER)
    event.pop("changelog")
    event["transition"] = {
        "workflowName": "Cost approvals", "transitionId": 31, "transitionName": "Approve",
        "from_status": "To Do", "to_status": "Approved",
    }

    response, _ = jira.send_webhook(service.hook, event, SECRET)

    assert response.status_code == 204
    assert [record.action for record in service.responses()] == ["approve"]
