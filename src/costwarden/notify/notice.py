"""The notice: what every channel renders, built from a stored alert payload.

Delivery never computes. A notice carries the figures of one alert already formatted for
people, plus the raw values that noise control compares between passes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

NoticeKind = Literal["budget", "anomaly", "quota", "recommendation", "rollback"]
NoticeState = Literal["firing", "resolved"]
Severity = Literal["info", "warning", "critical"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class NoticeContributor:
    """One top contributor: a cluster, namespace or service and what it adds."""

    name: str
    kind: str
    amount: str | None = None
    """Formatted amount, for example ``1,204.50 USD`` of growth or impact."""
    share: float | None = None


@dataclass(frozen=True, slots=True)
class NoticeAction:
    """One recommended action with its estimated savings and where to apply it."""

    id: str
    title: str
    savings_per_month: str | None = None
    """Formatted monthly savings, for example ``310.00 USD``."""
    link: str | None = None
    """The Palette page or API call that applies it."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One alert, ready to render.

    ``facts`` is an ordered list of (label, formatted value) pairs that every channel shows
    as-is: budget, spent, forecast, probability, breach date, overspend. ``probability``,
    ``breach_date`` and ``overspend`` are the raw values that noise control compares.
    """

    alert_id: str
    kind: NoticeKind
    severity: Severity
    title: str
    generated_at: datetime
    state: NoticeState = "firing"
    budget: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    currency: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    owners: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    probability: float | None = None
    breach_date: date | None = None
    overspend: float | None = None
    contributors: tuple[NoticeContributor, ...] = ()
    actions: tuple[NoticeAction, ...] = ()
    palette_url: str | None = None
    alert_url: str | None = None
    """The full alert in the costwarden API; trimmed messages link here."""
    approval: dict[str, Any] | None = None
    """The pending approval request of the notice's action: ``request_id``, ``action``,
    ``digest``, ``expires_at`` and, when ``notify.link_secret`` is set, the signed
    ``approve_token`` and ``reject_token``. Approve and reject buttons and links then decide the
    request instead of recording a response to the alert."""

    @property
    def period_key(self) -> str:
        """The budget period (or the alert itself) that deduplication is keyed on."""
        return self.period_start.isoformat() if self.period_start else self.alert_id

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["generated_at"] = self.generated_at.isoformat()
        for key in ("period_start", "period_end", "breach_date"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        data["owners"] = list(self.owners)
        data["facts"] = [list(pair) for pair in self.facts]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notice:
        values = dict(data)
        values["generated_at"] = datetime.fromisoformat(values["generated_at"])
        for key in ("period_start", "period_end", "breach_date"):
            if values.get(key):
                values[key] = date.fromisoformat(values[key])
        values["owners"] = tuple(values.get("owners", ()))
        values["facts"] = tuple(tuple(pair) for pair in values.get("facts", ()))
        values["contributors"] = tuple(
            NoticeContributor(**item) for item in values.get("contributors", ())
        )
        values["actions"] = tuple(NoticeAction(**item) for item in values.get("actions", ()))
        return cls(**values)
