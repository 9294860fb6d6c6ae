"""Savings recommendations: a specific change to a cluster, pool, workload or volume.

Money is ``Decimal`` in an ISO 4217 currency. A month is 365.25 / 12 days. Every recommendation
names the prices it used with their source and date, and the resources whose cost the savings
come from, so that overlapping recommendations can be combined without counting twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

Level = Literal["low", "medium", "high"]
LEVELS: tuple[Level, ...] = ("low", "medium", "high")

DAYS_PER_MONTH = Decimal("30.4375")
"""Mean length of a month: 365.25 / 12 days."""

CENT = Decimal("0.01")
PER_DAY_PRECISION = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class PriceUsed:
    """One price a savings estimate is based on, with its unit, origin and publication date."""

    item: str
    amount: Decimal
    unit: str
    source: str
    published: date
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class Savings:
    """Estimated savings of a change per day and per 30.4375-day month.

    A negative amount is a cost: a change that adds capacity, such as raising the memory
    request of a container that ran out of memory.
    """

    per_day: Decimal
    currency: str
    method: str
    prices: tuple[PriceUsed, ...] = ()

    @property
    def per_month(self) -> Decimal:
        return (self.per_day * DAYS_PER_MONTH).quantize(CENT, rounding=ROUND_HALF_UP)

    @classmethod
    def from_hourly(
        cls, per_hour: Decimal, currency: str, method: str, prices: tuple[PriceUsed, ...] = ()
    ) -> Savings:
        """Build savings from an hourly amount, rounded to 1/10000 of the currency per day."""
        per_day = (per_hour * 24).quantize(PER_DAY_PRECISION, rounding=ROUND_HALF_UP)
        return cls(per_day, currency, method, prices)


@dataclass(frozen=True, slots=True)
class Target:
    """The object a recommendation changes.

    ``kind`` is a Kubernetes kind (``Deployment``, ``PersistentVolumeClaim``, ...) or
    ``MachinePool`` for a Palette machine pool. ``namespace`` is None for cluster-wide objects,
    and ``pool`` names the machine pool when one is involved.
    """

    cluster: str
    kind: str
    name: str
    namespace: str | None = None
    pool: str | None = None

    def label(self) -> str:
        parts = [self.cluster]
        if self.namespace is not None:
            parts.append(self.namespace)
        parts.append(f"{self.kind}/{self.name}")
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class ApiCall:
    """The Palette API request that applies a change.

    ``path`` keeps a ``{placeholder}`` for every identifier the inputs did not contain, such as
    ``{configUid}`` when machine pools were read from node labels instead of from Palette.
    """

    method: str
    path: str
    body: Mapping[str, Any]
    note: str = ""

    @property
    def complete(self) -> bool:
        return "{" not in self.path


@dataclass(frozen=True, slots=True, eq=False)
class Recommendation:
    """A ranked savings proposal with its change, estimate, risks and the way to apply it.

    ``kind`` is the registry name of the recommender. ``before`` and ``after`` describe the
    change as data. ``resources`` names the resources whose cost the savings come from, such as
    ``pool:prod-eks/general`` or ``workload:prod-eks/checkout/Deployment/api``. ``evidence``
    contains the data window, the queries and the figures measured.
    """

    kind: str
    title: str
    target: Target
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    savings: Savings
    confidence: Level
    risk: Level
    risk_note: str
    effort: Level
    reversible: bool
    resources: frozenset[str]
    api_call: ApiCall | None = None
    manual_change: str | None = None
    ui_link: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """A stable fingerprint of the recommender, the target and the proposed state."""
        payload = json.dumps(
            [self.kind, self.target.label(), self.target.pool, _plain(self.after)],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Return the recommendation as JSON-compatible values; money as decimal strings."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "target": _target_dict(self.target),
            "before": _plain(self.before),
            "after": _plain(self.after),
            "savings": _savings_dict(self.savings),
            "confidence": self.confidence,
            "risk": self.risk,
            "risk_note": self.risk_note,
            "effort": self.effort,
            "reversible": self.reversible,
            "resources": sorted(self.resources),
            "api_call": _api_call_dict(self.api_call),
            "manual_change": self.manual_change,
            "ui_link": self.ui_link,
            "evidence": _plain(self.evidence),
        }


def _target_dict(target: Target) -> dict[str, Any]:
    return {
        "cluster": target.cluster,
        "namespace": target.namespace,
        "kind": target.kind,
        "name": target.name,
        "pool": target.pool,
    }


def _savings_dict(savings: Savings) -> dict[str, Any]:
    return {
        "per_day": str(savings.per_day),
        "per_month": str(savings.per_month),
        "currency": savings.currency,
        "method": savings.method,
        "prices": [
            {
                "item": price.item,
                "amount": str(price.amount),
                "unit": price.unit,
                "currency": price.currency,
                "source": price.source,
                "published": price.published.isoformat(),
            }
            for price in savings.prices
        ],
    }


def _api_call_dict(call: ApiCall | None) -> dict[str, Any] | None:
    if call is None:
        return None
    return {
        "method": call.method,
        "path": call.path,
        "body": _plain(call.body),
        "note": call.note,
        "complete": call.complete,
    }


def _plain(value: Any) -> Any:
    """Convert mappings, sequences, Decimals and dates to JSON-compatible values."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = [_plain(item) for item in value]
        return sorted(items, key=str) if isinstance(value, frozenset | set) else items
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
