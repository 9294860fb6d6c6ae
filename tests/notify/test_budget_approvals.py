"""A budget alert's message carries the approval request of the change it recommends."""

from __future__ import annotations

from typing import Any

from notify_samples import GENERATED_AT, budget_payload, notify_settings
from sqlalchemy import select

from costwarden.notify.build import recommendation_alert_id
from costwarden.notify.outbox import PassNotifier
from costwarden.store import Store
from costwarden.store.tables import OutboxRecord

RECOMMENDED = "00000000000000a1"
APPROVAL = {"request_id": "r-1", "action": "palette.resize_pool", "digest": "d" * 64}


def queued_notices(store: Store, approvals: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    payload = budget_payload()
    with store.transaction() as session:
        PassNotifier(notify_settings(), GENERATED_AT).budgets(
            session, [payload], [payload["budget"]["name"]], approvals
        )
    with store.transaction() as session:
        rows = session.scalars(select(OutboxRecord)).all()
        return [notice for row in rows for notice in row.notices]


def test_budget_alert_carries_request(sqlite_store: Store) -> None:
    notices = queued_notices(sqlite_store, {recommendation_alert_id(RECOMMENDED): APPROVAL})

    assert len(notices) == 1
    assert notices[0]["kind"] == "budget"
    assert notices[0]["approval"] == APPROVAL


def test_budget_alert_without_request(sqlite_store: Store) -> None:
    notices = queued_notices(sqlite_store, {recommendation_alert_id("other"): APPROVAL})

    assert len(notices) == 1
    assert notices[0].get("approval") is None
