"""Budget status, contributors and alerts: the results the decision stage acts on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from costwarden.domain.budget import Budget, PeriodWindow, Threshold
from costwarden.domain.forecast import Exceedance, Forecast
from costwarden.domain.recommendation import Recommendation
from costwarden.domain.schedule import ScheduledComponent


@dataclass(frozen=True, slots=True)
class Contributor:
    """One child of a budget scope, ranked by how much it adds to forecast spend growth.

    ``growth`` is this period's forecast total minus the previous period's actual total.
    ``share_of_growth`` is ``growth`` divided by the scope's total growth, or ``None`` when the
    scope did not grow.
    """

    name: str
    kind: Literal["cluster", "namespace", "service", "idle"]
    previous_total: Decimal
    forecast_total: Decimal
    growth: Decimal
    share_of_growth: float | None


@dataclass(frozen=True, slots=True)
class ClusterLink:
    name: str
    url: str


@dataclass(frozen=True, slots=True, eq=False)
class BudgetStatus:
    """The state of one budget in its current period, with the evidence behind it.

    ``problem`` is set, and the forecast fields are ``None``, when the scope matched no cost data.
    ``scheduled`` is the cost of scheduled jobs in the period, already included in ``forecast``
    and ``exceedance``; it is ``None`` when no scheduled job applies.
    """

    budget: Budget
    window: PeriodWindow
    previous_window: PeriodWindow
    as_of: datetime
    history_end: date
    source: str
    grain: str
    spent_to_date: Decimal
    previous_total: Decimal | None
    forecast: Forecast | None = None
    exceedance: Exceedance | None = None
    contributors: tuple[Contributor, ...] = ()
    links: tuple[ClusterLink, ...] = ()
    data_start: date | None = None
    problem: str | None = None
    scheduled: ScheduledComponent | None = None
    missing_days: int = 0

    @property
    def at_risk(self) -> bool:
        return self.exceedance is not None and self.exceedance.probability >= 0.5


AlertKind = Literal["budget_actual", "budget_forecast"]


def alert_fingerprint(budget: str, period_start: date, kind: str) -> str:
    """Return the stable alert id: the same budget, period and kind always give the same id."""
    text = f"{budget}\x1f{period_start.isoformat()}\x1f{kind}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True, eq=False)
class Alert:
    """A threshold of a budget that the current status crosses."""

    alert_id: str
    kind: AlertKind
    threshold: Threshold
    limit: Decimal
    status: BudgetStatus
    generated_at: datetime
    title: str
    details: dict[str, object] = field(default_factory=dict)
    actions: tuple[Recommendation, ...] = ()
    """Recommendations that lower the budget's cost, best first."""

    @property
    def severity(self) -> str:
        return self.threshold.severity
