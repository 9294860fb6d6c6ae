"""Cost facts and the fleet metadata they refer to."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

Grain = Literal["cluster", "namespace", "resource"]
"""The coverage of one cost fact: a cluster, one namespace, or one billed resource (FOCUS row)."""

CENT = Decimal("0.01")


def quantize_money(value: Decimal | float | int) -> Decimal:
    """Round an amount to cents with banker's rounding, the rule used in every report."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class CostRecord:
    """One cost fact: an amount for one scope over one charge period, in one currency.

    ``period_start`` and ``period_end`` are timezone-aware UTC datetimes. ``fingerprint`` replaces
    the natural key for sources whose rows have no identity of their own (FOCUS).
    """

    source: str
    grain: Grain
    period_start: datetime
    period_end: datetime
    amount: Decimal
    currency: str
    cloud: str | None = None
    project_uid: str | None = None
    project_name: str | None = None
    cluster_uid: str | None = None
    cluster_name: str | None = None
    namespace: str | None = None
    account_id: str | None = None
    service: str | None = None
    resource_id: str | None = None
    region: str | None = None
    breakdown: dict[str, Decimal] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    fingerprint: str | None = None

    @property
    def day(self) -> date:
        """The UTC calendar day the charge period starts on."""
        return self.period_start.date()

    def natural_key(self) -> str:
        """Return the key that makes re-ingesting the same fact an update, not a new row."""
        if self.fingerprint:
            return f"{self.source}:{self.fingerprint}"

        identity = [
            self.source,
            self.grain,
            self.project_uid or "",
            self.cluster_uid or "",
            self.namespace or "",
            self.resource_id or "",
            self.period_start.isoformat(),
            self.period_end.isoformat(),
        ]
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
        return f"{self.source}:{digest}"


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    uid: str
    name: str


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """A Palette cluster as the cost data and budgets refer to it."""

    uid: str
    name: str
    project_uid: str | None
    project_name: str | None
    cloud: str
    region: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    cloud_config_uid: str | None = None
    state: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    cluster_uid: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IngestReport:
    """The outcome of one ingestion. ``warnings`` name rows kept although they break a rule."""

    source: str
    origin: str
    batch_id: str
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    warnings: tuple[str, ...] = ()
    window_start: date | None = None
    window_end: date | None = None
