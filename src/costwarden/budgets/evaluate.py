"""Evaluate a budget: read its spend, forecast the period, and rank what drives the growth."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy.orm import Session

from costwarden.budgets.scheduled import apply_schedule
from costwarden.config import ForecastSettings, Settings
from costwarden.domain.alert import BudgetStatus, ClusterLink, Contributor
from costwarden.domain.budget import Budget, PeriodWindow
from costwarden.domain.cost import quantize_money
from costwarden.domain.forecast import Forecast
from costwarden.domain.schedule import ScheduledComponent
from costwarden.forecast import exceedance, forecast_series
from costwarden.sources.calendar import Calendar, cached_calendar
from costwarden.store.adjustments import latest_adjustment
from costwarden.store.queries import (
    ResolvedScope,
    cluster_links,
    daily_spend,
    daily_spend_by,
    other_currencies,
    resolve_scope,
    source_last_day,
)

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
RECENT_DAYS = 14
MAX_CONTRIBUTORS = 3
MAX_LINKS = 10


def evaluate_budget(
    session: Session,
    budget: Budget,
    as_of: datetime,
    settings: Settings,
    *,
    calendar: Calendar | None = None,
) -> BudgetStatus:
    """Return the status of ``budget`` in the period that contains ``as_of``.

    Only complete UTC days are used: the last one is the day before ``as_of``. The cost of
    scheduled jobs in ``calendar``, or else in ``settings.calendar_file``, is added to the forecast.
    """
    complete_end = as_of.date() - timedelta(days=1)
    window = budget.period.window_for(as_of.date())
    previous_window = budget.period.previous(window)
    resolved = resolve_scope(session, budget)
    history_end = _data_end(session, resolved, complete_end, budget)
    base = BudgetStatus(
        budget=budget,
        window=window,
        previous_window=previous_window,
        as_of=as_of,
        history_end=history_end,
        source=resolved.source,
        grain=resolved.grain,
        spent_to_date=ZERO,
        previous_total=None,
        missing_days=(complete_end - history_end).days,
    )

    history_start = history_end - timedelta(days=settings.forecast.fetch_days - 1)
    spend = daily_spend(
        session,
        resolved,
        min(history_start, previous_window.start),
        history_end + timedelta(days=1),
    )
    ignored = other_currencies(session, resolved)
    if ignored and not resolved.problem:
        logger.warning(
            "budget %s: cost data in %s is ignored because the budget is in %s",
            budget.name,
            ", ".join(ignored),
            budget.currency,
        )
    if resolved.problem or not spend:
        problem = (
            resolved.problem or f"no {resolved.source} cost data for {budget.scope.describe()}"
        )
        if ignored and not resolved.problem:
            problem = (
                f"the cost data for {budget.scope.describe()} is in {', '.join(ignored)}, not "
                f"{budget.currency}; set the budget's currency to match"
            )
        logger.warning("budget %s: %s", budget.name, problem)
        return replace(base, problem=problem)

    spent = sum((amount for day, amount in spend.items() if day in window), ZERO)
    previous_total = sum((amount for day, amount in spend.items() if day in previous_window), ZERO)
    first_day = max(min(spend), history_start)
    values = _dense(spend, first_day, history_end)

    horizon = max((window.end - history_end).days - 1, settings.forecast.min_horizon_days)
    forecast_settings = _with_adjustment(session, settings.forecast, resolved.source, history_end)
    model_forecast = forecast_series(
        budget.name, values, history_end, horizon, as_of, forecast_settings
    )
    forecast, scheduled = _with_schedule(
        session, budget, model_forecast, window, settings, calendar
    )
    crossed = _actual_breach_date(spend, window, history_end, budget.amount)
    result = exceedance(forecast, window, spent, budget.amount, actual_breach_date=crossed)

    # Contributors explain the model's growth, so the scheduled jobs are reported on their own.
    contributors = _contributors(
        session, resolved, window, previous_window, history_end, model_forecast, spent
    )
    links = _links(session, resolved, settings.palette.ui_url_template, contributors)
    return replace(
        base,
        spent_to_date=spent,
        previous_total=previous_total if min(spend) <= previous_window.start else None,
        forecast=forecast,
        exceedance=result,
        contributors=contributors,
        links=links,
        data_start=first_day,
        scheduled=scheduled,
    )


def _data_end(
    session: Session, resolved: ResolvedScope, complete_end: date, budget: Budget
) -> date:
    """Return the last complete day to fit on: yesterday, or the day before the source's last day.

    Days after the source's last reported day are forecast rather than counted as zero spend, so
    a late export or a Palette outage does not make an overrunning budget look safe. A source that
    stopped reporting may have stopped in the middle of its last day, so that day is forecast too.
    """
    last = source_last_day(session, resolved)
    if last is None or last >= complete_end:
        return complete_end
    usable = last - timedelta(days=1)
    logger.warning(
        "budget %s: %s cost data ends on %s, before %s; the %d days from %s on are forecast",
        budget.name,
        resolved.source,
        last,
        complete_end,
        (complete_end - usable).days,
        last,
    )
    return usable


def _with_schedule(
    session: Session,
    budget: Budget,
    forecast: Forecast,
    window: PeriodWindow,
    settings: Settings,
    calendar: Calendar | None,
) -> tuple[Forecast, ScheduledComponent | None]:
    if calendar is None and settings.calendar_file is not None:
        calendar = cached_calendar(settings.calendar_file)
    if calendar is None:
        return forecast, None
    return apply_schedule(session, budget, forecast, window, calendar)


def _dense(spend: dict[date, Decimal], first: date, last: date) -> np.ndarray:
    """Return one float per day from ``first`` to ``last``; days without facts count as zero."""
    days = (last - first).days + 1
    values = np.zeros(max(days, 0), dtype=float)
    for day, amount in spend.items():
        if first <= day <= last:
            values[(day - first).days] = float(amount)
    return values


def _actual_breach_date(
    spend: dict[date, Decimal], window: PeriodWindow, history_end: date, amount: Decimal
) -> date | None:
    total = ZERO
    day = window.start
    while day <= history_end and day < window.end:
        total += spend.get(day, ZERO)
        if total > amount:
            return day
        day += timedelta(days=1)
    return None


def _remaining_mean(forecast, window: PeriodWindow) -> Decimal:  # type: ignore[no-untyped-def]
    total = sum(
        float(mean)
        for day, mean in zip(forecast.days.dates, forecast.days.mean, strict=True)
        if day in window
    )
    return Decimal(str(total))


def _contributors(
    session: Session,
    resolved: ResolvedScope,
    window: PeriodWindow,
    previous: PeriodWindow,
    history_end: date,
    forecast,  # type: ignore[no-untyped-def]
    spent: Decimal,
) -> tuple[Contributor, ...]:
    """Rank children by the growth of their forecast period total over the previous period.

    A child's remaining spend is the scope's remaining forecast split by the child's share of the
    last 14 days. For a cluster scope ranked by namespace, what no namespace accounts for is
    reported as the "idle and unallocated" contributor.
    """
    dimension = resolved.child_dimension
    child_scope = resolved
    if dimension == "namespace" and resolved.grain == "cluster":
        child_scope = replace(resolved, grain="namespace")

    end = history_end + timedelta(days=1)
    recent_start = end - timedelta(days=RECENT_DAYS)
    current = _totals(
        daily_spend_by(session, child_scope, window.start, min(end, window.end), dimension)
    )
    before = _totals(daily_spend_by(session, child_scope, previous.start, previous.end, dimension))
    recent = _totals(daily_spend_by(session, child_scope, recent_start, end, dimension))
    if not current and not before:
        return ()

    scope_recent = sum(daily_spend(session, resolved, recent_start, end).values(), ZERO)
    scope_previous = sum(
        daily_spend(session, resolved, previous.start, previous.end).values(), ZERO
    )
    if child_scope is not resolved:
        current["(idle and unallocated)"] = spent - sum(current.values(), ZERO)
        before["(idle and unallocated)"] = scope_previous - sum(before.values(), ZERO)
        recent["(idle and unallocated)"] = scope_recent - sum(recent.values(), ZERO)

    remaining = _remaining_mean(forecast, window)
    total_growth = spent + remaining - scope_previous
    ranked = []
    for name in set(current) | set(before):
        share_recent = recent.get(name, ZERO) / scope_recent if scope_recent > 0 else ZERO
        projected = current.get(name, ZERO) + remaining * share_recent
        growth = projected - before.get(name, ZERO)
        kind = "idle" if name.startswith("(idle") else dimension
        ranked.append(
            Contributor(
                name=name,
                kind=kind,  # type: ignore[arg-type]
                previous_total=quantize_money(before.get(name, ZERO)),
                forecast_total=quantize_money(projected),
                growth=quantize_money(growth),
                share_of_growth=float(growth / total_growth) if total_growth > 0 else None,
            )
        )
    ranked.sort(key=lambda contributor: contributor.growth, reverse=True)
    return tuple(ranked[:MAX_CONTRIBUTORS])


def _totals(series: dict[str, dict[date, Decimal]]) -> dict[str, Decimal]:
    return {name: sum(days.values(), ZERO) for name, days in series.items()}


def _links(
    session: Session,
    resolved: ResolvedScope,
    template: str,
    contributors: tuple[Contributor, ...],
) -> tuple[ClusterLink, ...]:
    """Return Palette console links to the scope's clusters, top contributors' clusters first."""
    if resolved.source != "palette":
        return ()

    clusters = cluster_links(session, resolved)
    rank = {}
    for position, contributor in enumerate(contributors):
        cluster_name = contributor.name.split("/", 1)[0]
        rank.setdefault(cluster_name, position)
    clusters.sort(key=lambda cluster: (rank.get(cluster[2], len(contributors)), cluster[2]))

    links = []
    for uid, project_uid, name in clusters[:MAX_LINKS]:
        url = template.format(cluster_uid=uid, project_uid=project_uid or "", cluster_name=name)
        links.append(ClusterLink(name=name, url=url))
    return tuple(links)


def _with_adjustment(
    session: Session, settings: ForecastSettings, source: str, history_end: date
) -> ForecastSettings:
    """Return the forecast settings with the source's latest backtest adjustment, if any.

    An adjustment fitted on data after ``history_end`` is not used: a pass dated before it
    would otherwise be scaled by what happened later.
    """
    if not settings.backtest_adjustment or settings.batch.interval_adjustment is not None:
        return settings

    adjustment = latest_adjustment(session, source)
    if adjustment is None:
        return settings
    if adjustment.history_end is not None and adjustment.history_end > history_end:
        logger.info(
            "backtest adjustment of %s data up to %s not used for a forecast from %s",
            source,
            adjustment.history_end,
            history_end,
        )
        return settings

    logger.info(
        "forecast intervals scaled by the backtest adjustment of %s data up to %s (%d forecasts)",
        source,
        adjustment.history_end,
        adjustment.forecasts,
    )
    batch = settings.batch.model_copy(update={"interval_adjustment": adjustment})
    return settings.model_copy(update={"batch": batch})
