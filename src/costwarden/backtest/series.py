"""Daily spend series of the scopes a backtest evaluates, read from the store."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.domain.budget import Budget, Period, PeriodWindow
from costwarden.store.queries import (
    ResolvedScope,
    daily_spend,
    daily_spend_by,
    data_bounds,
    resolve_scope,
)
from costwarden.store.tables import CostFact

logger = logging.getLogger(__name__)

MONTHLY_UTC = Period("monthly")


@dataclass(frozen=True, slots=True, eq=False)
class ScopeSeries:
    """Dense daily spend of one scope from its first day with cost data to ``last_day``.

    Days without cost facts count as 0, as in budget evaluation. ``month`` maps UTC days to the
    calendar months that exceedance events are scored on (a budget's time zone, else UTC).
    """

    name: str
    source: str
    first_day: date
    values: np.ndarray
    month: Period = MONTHLY_UTC
    currency: str | None = None

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=len(self.values) - 1)

    def history_days(self, origin: date) -> int:
        """Return how many days of data the scope has up to and including ``origin``."""
        return max((origin - self.first_day).days + 1, 0)

    def through(self, origin: date) -> np.ndarray:
        """Return the values from the first day up to and including ``origin``."""
        return self.values[: self.history_days(origin)]

    def between(self, start: date, end: date) -> np.ndarray:
        """Return the values of the days in ``[start, end)``; days before the first day are 0."""
        lead = max((self.first_day - start).days, 0)
        begin = max((start - self.first_day).days, 0)
        stop = max((end - self.first_day).days, 0)
        return np.concatenate([np.zeros(min(lead, (end - start).days)), self.values[begin:stop]])

    def total(self, window: PeriodWindow) -> float:
        return float(np.sum(self.between(window.start, window.end)))


@dataclass(frozen=True, slots=True)
class LoadedScopes:
    """The scopes with cost data, and the names of those without any."""

    source: str
    kind: str
    series: list[ScopeSeries]
    without_data: list[str]


def stored_source(session: Session) -> str | None:
    """Return "palette" when Palette cluster facts are stored, else "focus", else None."""
    for source, grain in (("palette", "cluster"), ("focus", "resource")):
        query = select(CostFact.id).where(CostFact.source == source, CostFact.grain == grain)
        if session.scalar(query.limit(1)) is not None:
            return source
    return None


def load_cluster_series(session: Session, source: str) -> LoadedScopes:
    """Read one series per cluster: Palette cluster costs, or FOCUS rows by their cluster tag.

    FOCUS rows without a cluster tag form the series "(untagged)".
    """
    resolved = (
        ResolvedScope("palette", "cluster")
        if source == "palette"
        else (ResolvedScope("focus", "resource"))
    )
    bounds = data_bounds(session, resolved)
    if bounds is None:
        return LoadedScopes(source, "cluster", [], [])

    first, last = bounds
    spend = daily_spend_by(session, resolved, first, last + timedelta(days=1), "cluster")
    currency = _single_currency(session, source)
    series = [
        _dense(name, source, days, last, currency=currency)
        for name, days in sorted(spend.items())
        if days
    ]
    return LoadedScopes(source, "cluster", _common_end(series), [])


def load_budget_series(session: Session, budgets: list[Budget]) -> LoadedScopes:
    """Read the daily spend of each budget's scope, as budget evaluation resolves it."""
    series: list[ScopeSeries] = []
    without_data: list[str] = []
    sources = set()

    for budget in budgets:
        resolved = resolve_scope(session, budget)
        bounds = data_bounds(session, resolved)
        spend = {}
        if bounds is not None:
            spend = daily_spend(session, resolved, bounds[0], bounds[1] + timedelta(days=1))
        if not spend:
            problem = resolved.problem or f"no {resolved.source} cost data"
            logger.warning("backtest budget %s: skipped, %s", budget.name, problem)
            without_data.append(budget.name)
            continue

        sources.add(resolved.source)
        month = Period("monthly", budget.period.timezone)
        series.append(
            _dense(budget.name, resolved.source, spend, max(spend), month, budget.currency)
        )

    source = "+".join(sorted(sources)) or "none"
    return LoadedScopes(source, "budget", _common_end(series), without_data)


def _dense(
    name: str,
    source: str,
    spend: dict[date, Decimal],
    last: date,
    month: Period = MONTHLY_UTC,
    currency: str | None = None,
) -> ScopeSeries:
    first = min(spend)
    values = np.zeros((last - first).days + 1, dtype=np.float64)
    for day, amount in spend.items():
        if first <= day <= last:
            values[(day - first).days] = float(amount)
    return ScopeSeries(name, source, first, values, month, currency)


def _single_currency(session: Session, source: str) -> str | None:
    """Return the currency of the source's facts, or None when they are in several."""
    query = select(CostFact.currency).where(CostFact.source == source).distinct().limit(2)
    currencies = list(session.scalars(query))
    return currencies[0] if len(currencies) == 1 else None


def _common_end(series: list[ScopeSeries]) -> list[ScopeSeries]:
    """Extend every series with zero days up to the latest last day among them.

    Origins are shared by all scopes, so the series must end on the same day. A scope whose facts
    stop earlier (a deleted cluster) spends 0 on the days after.
    """
    if not series:
        return series
    end = max(item.last_day for item in series)
    extended = []
    for item in series:
        padding = np.zeros((end - item.last_day).days)
        values = np.concatenate([item.values, padding])
        extended.append(replace(item, values=values))
    return extended
