"""The deliveries API and the delivery worker inside the service."""

from __future__ import annotations

import threading

import httpx
from delivery_helpers import (
    Receiver,
    Reply,
    ServiceServer,
    add_rows,
    outbox_rows,
    wait_for,
    webhook_channel,
)

from costwarden.config import Settings
from costwarden.store import Store

ADMIN_KEY = "admin-key-for-delivery-tests"
READ_KEY = "read-key-for-delivery-tests"


def settings_for(database_url: str, receiver: Receiver) -> Settings:
    return Settings(
        database_url=database_url,
        service={
            "schedule": None,
            "shutdown_grace_seconds": 5.0,
            "api_keys": [
                {"name": "admin", "key": ADMIN_KEY, "role": "admin"},
                {"name": "reader", "key": READ_KEY, "role": "read"},
            ],
        },
        notify={
            "channels": {"hook": webhook_channel(receiver.url("hook"), burst=10)},
            "delivery": {"poll_seconds": 0.05, "backoff_base_seconds": 0.01},
        },
    )


def test_dead_letter_listed_and_retried(
    store: Store, database_url: str, receiver: Receiver
) -> None:
    receiver.script("hook", Reply(400, body=b"rejected"))
    [dead_id] = add_rows(store, "hook", 1, alert_prefix="dead")
    read = {"X-API-Key": READ_KEY}
    admin = {"X-API-Key": ADMIN_KEY}

    with ServiceServer(settings_for(database_url, receiver), store) as service:
        wait_for(lambda: outbox_rows(store, status="dead"))
        sent_ids = add_rows(store, "hook", 2, alert_prefix="ok")
        wait_for(lambda: len(outbox_rows(store, status="sent")) == 2)

        with httpx.Client(base_url=service.url) as client:
            listed = client.get("/api/v1/deliveries", params={"status": "dead"}, headers=read)
            everything = client.get("/api/v1/deliveries", params={"limit": 1}, headers=read)
            detail = client.get(f"/api/v1/deliveries/{dead_id}", headers=read)
            forbidden = client.post(f"/api/v1/deliveries/{dead_id}/retry", headers=read)
            retried = client.post(f"/api/v1/deliveries/{dead_id}/retry", headers=admin)
            wait_for(lambda: dead_id in receiver.accepted["/hook"])
            again = client.post(f"/api/v1/deliveries/{dead_id}/retry", headers=admin)
            missing = client.get("/api/v1/deliveries/no-such-row", headers=read)
            anonymous = client.get("/api/v1/deliveries")

    assert not [thread for thread in threading.enumerate() if thread.name == "costwarden-delivery"]
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 1
    assert [item["id"] for item in body["items"]] == [dead_id]
    assert body["items"][0]["last_status"] == 400
    assert "rejected" in body["items"][0]["last_error"]
    assert everything.json()["total"] == 3
    assert len(everything.json()["items"]) == 1
    assert detail.status_code == 200
    assert detail.json()["notices"][0]["alert_id"] == "dead-0"
    assert forbidden.status_code == 403
    assert retried.status_code == 200
    assert retried.json()["status"] == "pending"
    assert retried.json()["attempts"] == 0
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert missing.status_code == 404
    assert anonymous.status_code == 401
    assert sorted(receiver.accepted["/hook"]) == sorted([*sent_ids, dead_id])
    assert {row.status for row in outbox_rows(store)} == {"sent"}


def test_service_without_channels_starts_no_worker(
    store: Store, database_url: str, receiver: Receiver
) -> None:
    settings = settings_for(database_url, receiver)
    settings.notify.channels = {}
    add_rows(store, "hook", 1)

    with ServiceServer(settings, store) as service:
        response = httpx.get(
            f"{service.url}/api/v1/deliveries", headers={"X-API-Key": READ_KEY}
        )

    assert response.json()["items"][0]["status"] == "pending"
    assert receiver.received == {}
