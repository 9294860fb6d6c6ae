"""Seeded spend series, action runs and alerts for the review tests, written into a real store."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from costwarden.domain import ClusterInfo, CostRecord, NamespaceInfo, ProjectInfo
from costwarden.store import upsert_facts, upsert_fleet
from costwarden.store.tables import ActionRunRecord, ApprovalRequestRecord

NOW = datetime(2026, 12, 20, 8, 0, tzinfo=UTC)
FIRST_DAY = date(2026, 8, 1)
CHANGE_DAY = date(2026, 11, 10)
"""The day the planted action ran; the spend after it is ``BASE - DROP`` a day."""

BASE = 200.0
DROP = 40.0
NOISE_SD = 4.0
WEEKEND_DIP = 30.0


def daily_cost(day: date, rng: np.random.Generator, *, drop_from: date | None) -> Decimal:
    """Return one day of cluster spend: a base with a weekend dip and seeded Gaussian noise."""
    amount = BASE - (WEEKEND_DIP if day.weekday() >= 5 else 0.0) + rng.normal(0.0, NOISE_SD)
    if drop_from is not None and day > drop_from:
        amount -= DROP
    elif drop_from is not None and day == drop_from:
        amount -= DROP / 2
    return Decimal(str(round(amount, 4)))


def _record(
    day: date, amount: Decimal, cluster_uid: str, grain: str, namespace: str | None
) -> CostRecord:
    start = datetime.combine(day, time(), UTC)
    return CostRecord(
        source="palette",
        grain=grain,
        period_start=start,
        period_end=start + timedelta(days=1),
        amount=amount,
        currency="USD",
        cloud="aws",
        project_uid="p1",
        project_name="shop",
        cluster_uid=cluster_uid,
        cluster_name=f"{cluster_uid}-name",
        namespace=namespace,
    )


def seed_fleet(
    store: Any,
    *,
    drops: dict[str, date | None],
    last_day: date | None = None,
    seed: int = 7,
) -> None:
    """Write daily cluster spend from FIRST_DAY to ``last_day`` for each cluster in ``drops``.

    A cluster mapped to a date drops by DROP a day after that date (half on the date itself).
    Each cluster also gets a namespace ``web`` with a third of its spend.
    """
    last_day = last_day or NOW.date() - timedelta(days=1)
    rng = np.random.default_rng(seed)
    records = []
    for cluster_uid, drop_from in drops.items():
        day = FIRST_DAY
        while day <= last_day:
            amount = daily_cost(day, rng, drop_from=drop_from)
            records.append(_record(day, amount, cluster_uid, "cluster", None))
            records.append(
                _record(
                    day, (amount / 3).quantize(Decimal("0.0001")), cluster_uid, "namespace", "web"
                )
            )
            day += timedelta(days=1)

    with store.transaction() as session:
        upsert_fleet(
            session,
            [ProjectInfo("p1", "shop")],
            [ClusterInfo(uid, f"{uid}-name", "p1", "shop", "aws") for uid in drops],
            [NamespaceInfo(uid, "web", {}) for uid in drops],
        )
        upsert_facts(session, records, batch_id="review-test")


def add_run(
    session: Any,
    *,
    cluster_uid: str,
    day: date,
    action: str = "palette.resize_pool",
    mode: str = "apply",
    status: str = "succeeded",
    kind: str = "machine_pool",
    request_id: str | None = None,
    params: dict[str, Any] | None = None,
    namespace: str | None = None,
    run_key: str | None = None,
    rollback_of: str | None = None,
) -> ActionRunRecord:
    """Insert an action run that finished at 14:00 UTC on ``day``."""
    started = datetime.combine(day, time(14, 0), UTC)
    run = ActionRunRecord(
        id=str(uuid.uuid4()),
        tenant="default",
        run_key=run_key or f"{uuid.uuid4().hex}:{mode}",
        request_id=request_id,
        action=action,
        mode=mode,
        target={
            "kind": kind,
            "cluster_uid": cluster_uid,
            "cluster": f"{cluster_uid}-name",
            "name": namespace or "workers",
            "namespace": namespace,
            "labels": {},
        },
        params=params if params is not None else {"size": 2},
        status=status,
        before={},
        result={},
        error=None,
        started_at=started,
        finished_at=started + timedelta(minutes=1),
        rollback_of=rollback_of,
    )
    session.add(run)
    session.flush()
    return run


def add_request(
    session: Any,
    *,
    evidence: dict[str, Any],
    status: str = "approved",
    created: datetime,
    decided: datetime | None = None,
    expires: datetime | None = None,
    action: str = "palette.resize_pool",
) -> ApprovalRequestRecord:
    request = ApprovalRequestRecord(
        id=str(uuid.uuid4()),
        tenant="default",
        subject_kind="recommendation",
        subject_id=uuid.uuid4().hex[:16],
        policy="rightsize",
        action=action,
        target={},
        params={},
        params_digest=uuid.uuid4().hex,
        production=False,
        required_approvals=1,
        approver_groups=[],
        status=status,
        created_at=created,
        expires_at=expires or created + timedelta(hours=72),
        decided_at=decided,
        evidence=evidence,
    )
    session.add(request)
    session.flush()
    return request


def seed_flat(store: Any, cluster_uid: str, amount: str, last_day: date | None = None) -> None:
    """Write exactly ``amount`` of cluster spend a day from FIRST_DAY to ``last_day``."""
    last_day = last_day or NOW.date() - timedelta(days=1)
    records = []
    day = FIRST_DAY
    while day <= last_day:
        records.append(_record(day, Decimal(amount), cluster_uid, "cluster", None))
        day += timedelta(days=1)
    with store.transaction() as session:
        upsert_fleet(
            session,
            [ProjectInfo("p1", "shop")],
            [ClusterInfo(cluster_uid, f"{cluster_uid}-name", "p1", "shop", "aws")],
            [],
        )
        upsert_facts(session, records, batch_id="review-flat")
