"""Realised savings: the spend of a changed scope against the forecast of it without the change.

For each applied action run, the scope's daily spend before the change day is fitted with the
budget forecaster, and the days after the change day are forecast. That forecast is the
counterfactual "spend without the change". The actual spend is compared to it over each
evaluation window (7, 14 and 30 days after the change day by default). The difference, scaled to
a 30.4375-day month, is recorded as the realised savings beside the estimate the change was
approved on. The change day itself is neither fitted nor compared, because the change took
effect during it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from costwarden.config import ForecastSettings, Settings
from costwarden.domain.cost import quantize_money
from costwarden.domain.forecast import Forecast
from costwarden.domain.recommendation import DAYS_PER_MONTH
from costwarden.errors import ForecastError
from costwarden.forecast import forecast_series
from costwarden.review.spend import (
    Estimate,
    SpendScope,
    run_estimate,
    scope_currencies,
    spend_scope,
)
from costwarden.store.queries import daily_spend, source_last_day
from costwarden.store.tables import ActionRunRecord, RealisedSavingsRecord

logger = logging.getLogger(__name__)

EVALUATION_WINDOWS: tuple[int, ...] = (7, 14, 30)
"""Days after the change day over which realised savings are recorded."""

MIN_HISTORY_DAYS = 14
"""Complete days of spend before the change day that a counterfactual forecast needs."""

APPLY_MODE = "apply"
ROLLBACK_MODE = "rollback"
SUCCEEDED = "succeeded"

NOISE_LEVEL = 95
"""Prediction interval level that decides whether a realised figure is within noise."""

_QUANTILES = {80: (10.0, 90.0), 95: (2.5, 97.5)}
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class WindowResult:
    """Actual spend against the counterfactual over one window after a change.

    Totals are sums over ``window_start`` to ``window_end`` inclusive, in ``currency``.
    ``interval`` maps a level (80, 95) to the (lower, upper) bounds of the counterfactual
    total, taken from the forecast's sample paths so that correlated daily errors widen it.
    ``within_noise`` is true when the actual total lies inside the 95% interval: the change
    cannot be distinguished from ordinary variation yet.
    """

    days: int
    window_start: date
    window_end: date
    currency: str
    forecast_without_change: Decimal
    actual: Decimal
    interval: dict[int, tuple[Decimal, Decimal]]
    realised_per_month: Decimal
    realised_interval: tuple[Decimal, Decimal]
    within_noise: bool


@dataclass(frozen=True, slots=True)
class RealisedPass:
    """Counts of one ``record_realised_savings`` call.

    ``recorded`` counts window rows written or rewritten, ``waiting`` counts windows that are
    not complete yet, and ``skipped`` maps an action run id to why it has no result.
    """

    recorded: int = 0
    waiting: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Plan:
    run: ActionRunRecord
    scope: SpendScope
    change_day: date
    last_usable_day: date
    rolled_back_on: date | None


def record_realised_savings(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    windows: Sequence[int] = EVALUATION_WINDOWS,
    recompute: bool = False,
) -> RealisedPass:
    """Record realised savings of every applied action run whose windows have become complete.

    A window counts once all its days are complete UTC days at ``now`` and the Palette cost
    data reaches its last day. Windows already recorded are kept unless ``recompute`` is set,
    which recomputes them from the stored data. Rows are upserted on (action run id, window
    end), so a second call writes no new rows. The caller commits the session.
    """
    last_complete = now.astimezone(UTC).date() - timedelta(days=1)
    recorded = _recorded_windows(session)
    runs = _applied_runs(session)
    rollbacks = _rollback_days(session)

    written = waiting = 0
    skipped: dict[str, str] = {}
    for run in runs:
        plan, reason = _plan(session, run, last_complete, rollbacks)
        if plan is None:
            skipped[run.id] = reason or "no spend series"
            continue

        due = [
            days
            for days in windows
            if plan.change_day + timedelta(days=days) <= plan.last_usable_day
        ]
        waiting += len(windows) - len(due)
        if not recompute:
            due = [days for days in due if (run.id, _window_end(plan, days)) not in recorded]
        if not due:
            continue

        try:
            results, evidence = evaluate_change(
                session, plan.scope, plan.change_day, due, settings.forecast, run.id
            )
        except ForecastError as exc:
            logger.warning("realised savings of action run %s skipped: %s", run.id, exc)
            skipped[run.id] = str(exc)
            continue
        if not results:
            skipped[run.id] = evidence["note"]
            continue

        estimate = run_estimate(session, run)
        overlapping = _overlapping_runs(plan, runs)
        for result in results:
            detail = _detail(plan, result, estimate, evidence, overlapping)
            _upsert(session, plan, result, estimate, detail, now)
            written += 1

    logger.info(
        "realised savings: %d windows recorded from %d applied action runs, %d windows not "
        "complete yet, %d runs skipped",
        written,
        len(runs),
        waiting,
        len(skipped),
    )
    return RealisedPass(recorded=written, waiting=waiting, skipped=skipped)


def evaluate_change(
    session: Session,
    scope: SpendScope,
    change_day: date,
    windows: Sequence[int],
    settings: ForecastSettings,
    series_id: str,
) -> tuple[list[WindowResult], dict[str, Any]]:
    """Compare the scope's spend after ``change_day`` with its forecast from the days before.

    Returns one result per window, longest last, and the forecast evidence (data window, model,
    parameters). An empty list comes with ``evidence["note"]`` saying why nothing was computed.
    Raises ForecastError when the forecaster rejects the history.
    """
    currencies = scope_currencies(session, scope)
    if not currencies:
        return [], {"note": f"no cost data for {scope.label}"}
    resolved = replace(scope.resolved, currency=currencies[0])

    history_end = change_day - timedelta(days=1)
    history_start = history_end - timedelta(days=settings.fetch_days - 1)
    history = daily_spend(session, resolved, history_start, change_day)
    if len(history) < MIN_HISTORY_DAYS:
        note = (
            f"{scope.label} has {len(history)} days of spend before {change_day}, fewer than the "
            f"{MIN_HISTORY_DAYS} a counterfactual forecast needs"
        )
        return [], {"note": note}

    first = min(history)
    values = _dense(history, first, history_end)
    longest = max(windows)
    as_of = datetime.combine(change_day, time(), UTC)
    forecast = forecast_series(series_id, values, history_end, longest + 1, as_of, settings)
    actual = daily_spend(
        session, resolved, change_day + timedelta(days=1), change_day + timedelta(days=longest + 1)
    )

    results = [
        _window(forecast, actual, change_day, days, currencies[0]) for days in sorted(windows)
    ]
    evidence = {
        "data_window": {
            "start": first.isoformat(),
            "end": history_end.isoformat(),
            "days": len(values),
        },
        "model": {
            "name": forecast.model,
            "version": forecast.model_version,
            "fallback_reason": forecast.fallback_reason,
            "sample_paths": int(forecast.paths.shape[0]),
            "seed": settings.seed,
        },
        "other_currencies": currencies[1:],
    }
    return results, evidence


def _window(
    forecast: Forecast, actual: dict[date, Decimal], change_day: date, days: int, currency: str
) -> WindowResult:
    """Sum the forecast and actual spend over the ``days`` days after the change day."""
    start = change_day + timedelta(days=1)
    end = change_day + timedelta(days=days)
    # Forecast index 0 is the change day, so the window is indexes 1..days.
    mean_total = _decimal(float(np.sum(forecast.days.mean[1 : days + 1])))
    path_totals = forecast.paths[:, 1 : days + 1].sum(axis=1)
    interval = {
        level: (
            _decimal(float(np.percentile(path_totals, low))),
            _decimal(float(np.percentile(path_totals, high))),
        )
        for level, (low, high) in _QUANTILES.items()
    }
    actual_total = sum((amount for day, amount in actual.items() if start <= day <= end), ZERO)

    scale = DAYS_PER_MONTH / days
    realised = quantize_money((mean_total - actual_total) * scale)
    low, high = interval[NOISE_LEVEL]
    realised_interval = (
        quantize_money((low - actual_total) * scale),
        quantize_money((high - actual_total) * scale),
    )
    return WindowResult(
        days=days,
        window_start=start,
        window_end=end,
        currency=currency,
        forecast_without_change=mean_total,
        actual=actual_total,
        interval=interval,
        realised_per_month=realised,
        realised_interval=realised_interval,
        within_noise=low <= actual_total <= high,
    )


def _plan(
    session: Session,
    run: ActionRunRecord,
    last_complete: date,
    rollbacks: dict[str, datetime],
) -> tuple[_Plan | None, str | None]:
    """Decide the spend series and the last day a run's windows may reach."""
    scope = spend_scope(run.target or {})
    if scope is None:
        return None, f"target of {run.action} names no cluster, so there is no spend series"

    changed_at = run.finished_at or run.started_at
    change_day = changed_at.astimezone(UTC).date()
    last_usable = last_complete
    data_end = source_last_day(session, scope.resolved)
    if data_end is None:
        return None, f"no {scope.resolved.source} cost data at {scope.resolved.grain} grain"
    last_usable = min(last_usable, data_end)

    rolled_back = rollbacks.get(run.id)
    rolled_back_on = None
    if rolled_back is not None and rolled_back >= changed_at:
        # Windows must end before the rollback day, because the change was undone during it.
        rolled_back_on = rolled_back.astimezone(UTC).date()
        last_usable = min(last_usable, rolled_back_on - timedelta(days=1))
    return _Plan(run, scope, change_day, last_usable, rolled_back_on), None


def _applied_runs(session: Session) -> list[ActionRunRecord]:
    query = (
        select(ActionRunRecord)
        .where(ActionRunRecord.mode == APPLY_MODE, ActionRunRecord.status == SUCCEEDED)
        .order_by(ActionRunRecord.started_at, ActionRunRecord.id)
    )
    return list(session.scalars(query))


def _rollback_days(session: Session) -> dict[str, datetime]:
    """Return the time of the first succeeded rollback of each apply run, by apply run id."""
    query = (
        select(ActionRunRecord)
        .where(
            ActionRunRecord.mode == ROLLBACK_MODE,
            ActionRunRecord.status == SUCCEEDED,
            ActionRunRecord.rollback_of.is_not(None),
        )
        .order_by(ActionRunRecord.started_at)
    )
    found: dict[str, datetime] = {}
    for run in session.scalars(query):
        found.setdefault(str(run.rollback_of), run.started_at)
    return found


def _recorded_windows(session: Session) -> set[tuple[str, date]]:
    query = select(RealisedSavingsRecord.action_run_id, RealisedSavingsRecord.window_end)
    return {(run_id, end) for run_id, end in session.execute(query)}


def _window_end(plan: _Plan, days: int) -> date:
    return plan.change_day + timedelta(days=days)


def _overlapping_runs(plan: _Plan, runs: Sequence[ActionRunRecord]) -> list[dict[str, str]]:
    """Return the later applied runs on the same spend series, which also move its spend."""
    overlapping = []
    for other in runs:
        if other.id == plan.run.id:
            continue
        other_scope = spend_scope(other.target or {})
        other_day = (other.finished_at or other.started_at).astimezone(UTC).date()
        if (
            other_scope is not None
            and other_scope.label == plan.scope.label
            and other_day > plan.change_day
        ):
            overlapping.append(
                {"action_run_id": other.id, "action": other.action, "day": other_day.isoformat()}
            )
    return overlapping


def _detail(
    plan: _Plan,
    result: WindowResult,
    estimate: Estimate,
    evidence: dict[str, Any],
    overlapping: list[dict[str, str]],
) -> dict[str, Any]:
    window_end = result.window_end
    later = [item for item in overlapping if item["day"] <= window_end.isoformat()]
    estimate_note = estimate.note
    if estimate.per_month is not None and estimate.currency not in (None, result.currency):
        estimate_note = (
            f"estimate is in {estimate.currency}, spend in {result.currency}; not compared"
        )
    return {
        "window_days": result.days,
        "change_day": plan.change_day.isoformat(),
        "action": plan.run.action,
        "target": plan.run.target,
        "interval_80": _pair(result.interval[80]),
        "interval_95": _pair(result.interval[95]),
        "realised_per_month_interval_95": _pair(result.realised_interval),
        "within_noise": result.within_noise,
        "noise_level": NOISE_LEVEL,
        "estimate": {
            "source": estimate.source,
            "currency": estimate.currency,
            "note": estimate_note,
        },
        "rolled_back_on": plan.rolled_back_on.isoformat() if plan.rolled_back_on else None,
        "overlapping_runs": later,
        **evidence,
    }


def _upsert(
    session: Session,
    plan: _Plan,
    result: WindowResult,
    estimate: Estimate,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    query = select(RealisedSavingsRecord).where(
        RealisedSavingsRecord.action_run_id == plan.run.id,
        RealisedSavingsRecord.window_end == result.window_end,
    )
    record = session.scalars(query).one_or_none()
    if record is None:
        record = RealisedSavingsRecord(
            id=str(uuid.uuid4()), action_run_id=plan.run.id, window_end=result.window_end
        )
        session.add(record)

    comparable = estimate.per_month is not None and estimate.currency in (None, result.currency)
    record.tenant = plan.run.tenant
    record.scope = plan.scope.label
    record.window_start = result.window_start
    record.currency = result.currency
    record.forecast_without_change = result.forecast_without_change
    record.actual = result.actual
    record.estimated_per_month = estimate.per_month if comparable else None
    record.realised_per_month = result.realised_per_month
    record.computed_at = now
    record.detail = detail


def _dense(spend: dict[date, Decimal], first: date, last: date) -> np.ndarray:
    """Return one float per day from ``first`` to ``last``; days without facts count as zero."""
    values = np.zeros((last - first).days + 1, dtype=float)
    for day, amount in spend.items():
        if first <= day <= last:
            values[(day - first).days] = float(amount)
    return values


def _decimal(value: float) -> Decimal:
    """Convert a model float to Decimal with 10 decimal places, the precision money is stored at."""
    return Decimal(repr(value)).quantize(Decimal("1e-10"))


def _pair(bounds: tuple[Decimal, Decimal]) -> list[str]:
    return [format(bounds[0], "f"), format(bounds[1], "f")]
