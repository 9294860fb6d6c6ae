"""The spend series an action changed, and the savings estimate the action was approved on."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from costwarden.store.queries import ResolvedScope
from costwarden.store.tables import ActionRunRecord, ApprovalRequestRecord, CostFact

logger = logging.getLogger(__name__)

SOURCE = "palette"

ESTIMATE_FIELD = "estimated_savings_per_month"
"""Key of the monthly savings estimate in an approval request's evidence or a run's params."""

CURRENCY_FIELD = "currency"


@dataclass(frozen=True, slots=True)
class SpendScope:
    """The cost facts whose daily total is the spend an action changed.

    ``label`` names the series in reports: ``cluster:<uid>`` or ``namespace:<uid>/<name>``.
    """

    label: str
    resolved: ResolvedScope


@dataclass(frozen=True, slots=True)
class Estimate:
    """The savings per month a change was expected to bring, and where that figure came from.

    ``per_month`` is None when neither the approval request nor the run carries a usable
    estimate, and ``note`` gives the reason.
    """

    per_month: Decimal | None
    currency: str | None
    source: str | None
    note: str | None = None


def spend_scope(target: Mapping[str, Any]) -> SpendScope | None:
    """Return the spend series of an action's target (an ``ActionScope`` as a dict), or None.

    A namespace action changes the namespace's spend. A cluster or machine pool action changes
    the cluster's spend. Targets without a cluster uid (a repository) have no spend series.
    """
    cluster_uid = target.get("cluster_uid")
    if not cluster_uid:
        return None

    # NOTE: Palette cost facts have no machine pool grain, so a pool change is measured on the
    # spend of its whole cluster, where other pools add their own variation.
    namespace = target.get("namespace")
    if target.get("kind") == "namespace" and not namespace:
        namespace = target.get("name")
    if target.get("kind") == "namespace" and namespace:
        resolved = ResolvedScope(
            SOURCE, "namespace", namespaces=frozenset({(cluster_uid, namespace)})
        )
        return SpendScope(f"namespace:{cluster_uid}/{namespace}", resolved)

    resolved = ResolvedScope(SOURCE, "cluster", clusters=frozenset({cluster_uid}))
    return SpendScope(f"cluster:{cluster_uid}", resolved)


def scope_currencies(session: Session, scope: SpendScope) -> list[str]:
    """Return the currencies of the scope's cost facts, the most frequent first."""
    resolved = scope.resolved
    count = func.count()
    query = select(CostFact.currency, count).where(
        CostFact.source == resolved.source, CostFact.grain == resolved.grain
    )
    if resolved.namespaces is not None:
        ((cluster_uid, namespace),) = resolved.namespaces
        query = query.where(CostFact.cluster_uid == cluster_uid, CostFact.namespace == namespace)
    elif resolved.clusters is not None:
        query = query.where(CostFact.cluster_uid.in_(resolved.clusters))
    rows = session.execute(query.group_by(CostFact.currency).order_by(count.desc()))
    return [currency for currency, _ in rows]


def run_estimate(session: Session, run: ActionRunRecord) -> Estimate:
    """Read the savings estimate of the recommendation an action run came from.

    The approval request's ``evidence`` is read first, then the run's ``params``. Each may carry
    ``estimated_savings_per_month`` (a decimal number or string) with ``currency`` (ISO 4217),
    or a recommendation's ``savings`` object with ``per_month`` and ``currency``.
    """
    places: list[tuple[str, Mapping[str, Any]]] = []
    if run.request_id is not None:
        request = session.get(ApprovalRequestRecord, run.request_id)
        if request is not None:
            places.append(("approval_request.evidence", request.evidence or {}))
    places.append(("action_run.params", run.params or {}))

    notes = []
    for source, data in places:
        amount, currency = _estimate_fields(data)
        if amount is None:
            continue
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            notes.append(f"{source} has an invalid {ESTIMATE_FIELD} {amount!r}")
            continue
        if not value.is_finite():
            notes.append(f"{source} has an invalid {ESTIMATE_FIELD} {amount!r}")
            continue
        return Estimate(value, str(currency).upper() if currency else None, source)

    if notes:
        logger.warning("action run %s: %s", run.id, "; ".join(notes))
    note = "; ".join(notes) or "neither the approval request nor the run carries an estimate"
    return Estimate(None, None, None, note)


def _estimate_fields(data: Mapping[str, Any]) -> tuple[Any, Any]:
    if data.get(ESTIMATE_FIELD) is not None:
        return data[ESTIMATE_FIELD], data.get(CURRENCY_FIELD)
    savings = data.get("savings")
    if isinstance(savings, Mapping) and savings.get("per_month") is not None:
        return savings["per_month"], savings.get(CURRENCY_FIELD) or data.get(CURRENCY_FIELD)
    return None, None
