"""Usage series from Prometheus for the utilisation checks, next to the stored Palette usage.

Palette reports CPU, memory and GPU usage but no network traffic, so Prometheus adds each
namespace's daily egress. It also adds CPU and memory peaks for namespaces that the Palette usage
facts do not cover. Prometheus names clusters by its ``cluster`` label, which is matched with the
Palette cluster name. A namespace of a cluster that Palette does not know keeps the label value in
place of the cluster uid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.anomaly.utilisation import StoredUsage, UsageSeries, UsageSource
from costwarden.domain.usage import DailyUsage, UsageResult
from costwarden.store.tables import Cluster

logger = logging.getLogger(__name__)

GIB = 1024.0**3
STATISTICS = {"cpu": "max", "memory": "max", "egress": "total"}
"""The statistic of each resource that the checks compare: daily peaks, and egress per day."""
SCALES = {"cpu": 1.0, "memory": 1.0 / GIB, "egress": 1.0 / GIB}
"""Factors to the units of the usage facts: cores, GiB, and GiB sent per day."""


class DailyUsageReader(Protocol):
    """The part of ``PrometheusSource`` this module calls: daily usage per namespace."""

    def daily_usage(self, first_day: date, last_day: date) -> UsageResult[DailyUsage]: ...


class PrometheusUsage:
    """A ``UsageSource`` that adds Prometheus series to those of another source."""

    def __init__(self, reader: DailyUsageReader, base: UsageSource | None = None) -> None:
        self.reader = reader
        self.base = base if base is not None else StoredUsage()

    def load(self, session: Session, first_day: date, last_day: date) -> list[UsageSeries]:
        """Return the base series and the Prometheus series that the base does not have."""
        series = self.base.load(session, first_day, last_day)
        known = {(item.scope_kind, item.scope_id, item.resource) for item in series}
        uids = {name: uid for name, uid in session.execute(select(Cluster.name, Cluster.uid))}

        result = self.reader.daily_usage(first_day, last_day)
        added = _series(result.items, uids, first_day, last_day, known)
        logger.info(
            "prometheus usage: %d series added to %d from the store (%d namespaces with too "
            "little history)",
            len(added),
            len(series),
            len(result.short_history),
        )
        return series + added


def _series(
    items: Sequence[DailyUsage],
    uids: dict[str, str],
    first_day: date,
    last_day: date,
    known: set[tuple[str, str, str]],
) -> list[UsageSeries]:
    days = (last_day - first_day).days + 1
    found = []
    for item in items:
        if STATISTICS.get(item.resource) != item.statistic:
            continue

        cluster = item.namespace.cluster
        uid = uids.get(cluster, cluster)
        scope_id = f"{uid}/{item.namespace.namespace}"
        if item.resource != "egress" and ("namespace", scope_id, item.resource) in known:
            continue

        values = np.full(days, np.nan)
        for day, value in zip(item.days, item.values, strict=True):
            offset = (day - first_day).days
            if 0 <= offset < days:
                values[offset] = value * SCALES[item.resource]
        found.append(
            UsageSeries(
                "namespace", scope_id, uid, item.namespace.namespace, item.resource, values
            )
        )
    return found
