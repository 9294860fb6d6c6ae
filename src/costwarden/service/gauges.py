"""Per-budget Prometheus gauges, set from the statuses stored in ``budget_statuses``.

Every replica reads the same table, so every replica's ``/metrics`` shows the latest pass of the
tenant, whichever replica ran it. Budgets that no longer exist lose their gauges.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from costwarden.service import telemetry
from costwarden.store import Store
from costwarden.store.tables import BudgetStatusRecord, StoredBudget

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_currencies: dict[str, str] = {}
"""Currency label of each budget that has gauges, so they can be removed by name."""


def refresh_budget_gauges(store: Store) -> int:
    """Set the gauges of every stored budget from its latest status; return how many are set."""
    with store.transaction() as session:
        payloads = list(
            session.scalars(
                select(BudgetStatusRecord.payload).join(
                    StoredBudget, StoredBudget.name == BudgetStatusRecord.budget
                )
            )
        )
    with _lock:
        names = set()
        for payload in payloads:
            _set(payload)
            names.add(payload["budget"])
        for name in set(_currencies) - names:
            _remove_budget(name)
    return len(names)


def _set(snapshot: dict[str, Any]) -> None:
    name, currency = snapshot["budget"], snapshot["currency"]
    if _currencies.get(name, currency) != currency:
        _remove_budget(name)
    _currencies[name] = currency

    telemetry.BUDGET_SPEND.labels(name, currency).set(_number(snapshot["spend_to_date"]))
    telemetry.BUDGET_LIMIT.labels(name, currency).set(_number(snapshot["amount"]))
    _set_or_remove(telemetry.BUDGET_FORECAST, (name, currency), snapshot["forecast_total"])
    _set_or_remove(telemetry.BUDGET_EXCEEDANCE, (name,), snapshot["exceedance_probability"])
    _set_or_remove(telemetry.BUDGET_DAYS_TO_BREACH, (name,), snapshot["days_to_breach"])


def _set_or_remove(metric: Any, labels: tuple[str, ...], value: Any) -> None:
    if value is None:
        _remove(metric, labels)
    else:
        metric.labels(*labels).set(_number(value))


def _remove_budget(name: str) -> None:
    currency = _currencies.pop(name, None)
    if currency is not None:
        for metric in (telemetry.BUDGET_SPEND, telemetry.BUDGET_LIMIT, telemetry.BUDGET_FORECAST):
            _remove(metric, (name, currency))
    _remove(telemetry.BUDGET_EXCEEDANCE, (name,))
    _remove(telemetry.BUDGET_DAYS_TO_BREACH, (name,))


def _remove(metric: Any, labels: tuple[str, ...]) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass


def _number(value: Any) -> float:
    return float(Decimal(str(value)))
