"""Past periods of a budget: the amount against what was actually spent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from costwarden.domain.budget import Budget, PeriodWindow
from costwarden.store.queries import daily_spend, data_bounds, resolve_scope


@dataclass(frozen=True, slots=True)
class PeriodActual:
    """Actual spend of one budget period; ``complete`` is False for the period still running."""

    window: PeriodWindow
    amount: Decimal
    actual: Decimal | None
    complete: bool

    @property
    def used(self) -> float | None:
        if self.actual is None:
            return None
        return float(self.actual / self.amount)


def period_actuals(session: Session, budget: Budget, today: date, count: int = 6) -> list[PeriodActual]:
    """Return the current period and up to ``count - 1`` before it, oldest first.

    Periods that start before the first stored day of the scope have ``actual`` ``None``.
    """
    resolved = resolve_scope(session, budget)
    bounds = data_bounds(session, resolved)

    windows = [budget.period.window_for(today)]
    while len(windows) < count and budget.period.kind != "custom":
        windows.append(budget.period.previous(windows[-1]))

    rows = []
    for window in reversed(windows):
        actual = None
        if bounds is not None and bounds[0] <= window.start:
            spend = daily_spend(session, resolved, window.start, window.end)
            actual = sum(spend.values(), Decimal(0))
        rows.append(PeriodActual(window, budget.amount, actual, complete=window.end <= today))
    return rows
