"""Cost facts for backtest tests, written straight into a real store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from costwarden.domain import ClusterInfo, CostRecord, ProjectInfo
from costwarden.store import Store, upsert_facts, upsert_fleet

LAST_DAY = date(2026, 11, 14)
"""Last stored day of every test history."""


def daily_facts(name: str, first: date, values: np.ndarray) -> list[CostRecord]:
    """Return one Palette cluster fact per day from ``first``; the cluster uid is ``uid-NAME``."""
    records = []
    for offset, value in enumerate(values):
        start = datetime.combine(first + timedelta(days=offset), datetime.min.time(), UTC)
        records.append(
            CostRecord(
                source="palette",
                grain="cluster",
                period_start=start,
                period_end=start + timedelta(days=1),
                amount=Decimal(f"{value:.6f}"),
                currency="USD",
                cloud="aws",
                project_uid="p1",
                project_name="proj",
                cluster_uid=f"uid-{name}",
                cluster_name=name,
            )
        )
    return records


def billing_facts(cluster: str | None, first: date, values: np.ndarray) -> list[CostRecord]:
    """Return one FOCUS billing row per day from ``first``, tagged with ``cluster`` when set."""
    records = []
    for offset, value in enumerate(values):
        start = datetime.combine(first + timedelta(days=offset), datetime.min.time(), UTC)
        records.append(
            CostRecord(
                source="focus",
                grain="resource",
                period_start=start,
                period_end=start + timedelta(days=1),
                amount=Decimal(f"{value:.6f}"),
                currency="EUR",
                cloud="aws",
                cluster_name=cluster,
                service="Amazon Elastic Compute Cloud",
                resource_id=f"i-{cluster or 'untagged'}",
                fingerprint=f"{cluster}-{start.date()}",
            )
        )
    return records


def store_clusters(store: Store, series: dict[str, tuple[date, np.ndarray]]) -> None:
    """Store each ``name -> (first day, daily values)`` as a cluster of project p1."""
    clusters = [ClusterInfo(f"uid-{name}", name, "p1", "proj", "aws") for name in series]
    records = [
        fact
        for name, (first, values) in series.items()
        for fact in daily_facts(name, first, values)
    ]
    with store.transaction() as session:
        upsert_fleet(session, [ProjectInfo("p1", "proj")], clusters, [])
        upsert_facts(session, records, batch_id="backtest-test")


def days_until_end(first: date) -> int:
    return (LAST_DAY - first).days + 1
