"""Re-evaluate an approval request against the current labels and policies.

A request copies the scope's labels and the policy decision when it is opened. Both can change
before the approvals are in: a cluster relabelled from ``env=dev`` to ``env=prod``, or a policy
file that now marks the scope production or names other approver groups. Two places re-check:

- each pass re-evaluates the pending requests against the labels the pass stored in the
  ``clusters`` table and the policies loaded now (``stage``);
- ``decisions.execute`` re-checks right before the run, against the stored labels and the
  cluster's live labels read from Palette (``GET /v1/spectroclusters/{uid}``).

A request runs only when the labels it was opened with equal every current source and the
current decision requires the same mode, production flag, required approvals and approver
groups. Otherwise it is superseded and nothing runs; the next pass that proposes the change
opens (or reopens) a request bound to the current scope and decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from costwarden.actions.context import ActionContext
from costwarden.approvals.requests import cluster_facts, stored_action_request
from costwarden.domain.governance import ActionScope, PolicyDecision
from costwarden.policy import PolicySet
from costwarden.store.tables import ApprovalRequestRecord, Cluster, Namespace

STORED = "stored clusters table"
LIVE = "Palette cluster metadata"


@dataclass(frozen=True, slots=True)
class Recheck:
    """The outcome of re-evaluating one request.

    ``changes`` lists each difference in plain words and is empty when the request is still
    valid. ``decision`` is the current policy decision, or None when the labels changed.
    """

    changes: tuple[str, ...]
    decision: PolicyDecision | None = None

    @property
    def still_valid(self) -> bool:
        return not self.changes


def stored_labels(session: Session, scope: ActionScope) -> dict[str, str] | None:
    """Return the scope's labels as the ``clusters`` (and ``namespaces``) tables store them now.

    Returns None when the cluster is no longer stored. Scopes without a cluster keep their own
    labels, because no table stores them.
    """
    if not scope.cluster_uid:
        return dict(scope.labels)
    cluster = session.get(Cluster, scope.cluster_uid)
    if cluster is None:
        return None
    labels = {str(key): str(value) for key, value in (cluster.labels or {}).items()}
    if scope.kind == "namespace" and scope.namespace:
        namespace = session.get(Namespace, (scope.cluster_uid, scope.namespace))
        if namespace is not None:
            labels.update({str(k): str(v) for k, v in (namespace.labels or {}).items()})
    return labels


def live_labels(
    session: Session, context: ActionContext, scope: ActionScope
) -> dict[str, str] | None:
    """Return the scope's labels with the cluster's labels read from Palette now.

    Raises the Palette client's ``SourceError`` when Palette cannot be read, so nothing runs on
    labels that could not be checked. Namespace labels come from the stored table.
    """
    if not scope.cluster_uid:
        return dict(scope.labels)
    cluster = context.palette.get_json(f"/v1/spectroclusters/{scope.cluster_uid}")
    labels = {
        str(key): str(value)
        for key, value in ((cluster.get("metadata") or {}).get("labels") or {}).items()
    }
    if scope.kind == "namespace" and scope.namespace:
        namespace = session.get(Namespace, (scope.cluster_uid, scope.namespace))
        if namespace is not None:
            labels.update({str(k): str(v) for k, v in (namespace.labels or {}).items()})
    return labels


def request_facts(record: ApprovalRequestRecord, scope: ActionScope) -> dict[str, Any]:
    """Return the CEL facts of ``record``'s recommendation with the scope's labels.

    Requests store their facts when opened. Older requests lack them; their facts are rebuilt
    from the evidence, which contains the same recommendation fields.
    """
    evidence = dict(record.evidence or {})
    facts = dict(evidence.get("facts") or {})
    if not facts:
        before = evidence.get("before") or {}
        facts = {
            "pool": {"name": scope.name, "size": before.get("size")},
            "recommendation": {
                "id": evidence.get("recommendation_id"),
                "kind": evidence.get("recommendation_kind"),
                "savings_per_month": evidence.get("estimated_savings_per_month"),
                "currency": evidence.get("currency"),
                "risk": evidence.get("risk"),
            },
        }
    facts["cluster"] = cluster_facts(scope)
    return facts


def recheck(
    record: ApprovalRequestRecord,
    policies: PolicySet,
    current_labels: Mapping[str, Mapping[str, str] | None],
    *,
    now: datetime,
) -> Recheck:
    """Compare ``record`` with the current labels of each source and the current decision.

    ``current_labels`` maps a source name (``STORED``, ``LIVE``) to the labels it stores now,
    or None when the source no longer has the cluster.
    """
    request = stored_action_request(record)
    opened_with = dict(request.scope.labels)
    changes: list[str] = []
    for source, labels in current_labels.items():
        if labels is None:
            changes.append(f"cluster {request.scope.cluster_uid} is no longer in the {source}")
        elif dict(labels) != opened_with:
            changes.append(
                f"the labels in the {source} are now {_labels_text(labels)}, but the request "
                f"was opened with {_labels_text(opened_with)}"
            )
    if changes:
        return Recheck(tuple(changes))

    decision = policies.decide(request, request_facts(record, request.scope), now=now)
    return Recheck(tuple(decision_changes(record, decision)), decision)


def decision_changes(record: ApprovalRequestRecord, decision: PolicyDecision) -> list[str]:
    """Describe each decision field that differs between ``record`` and ``decision``."""
    changes = []
    if decision.mode != "approve":
        changes.append(f"the policies now decide mode {decision.mode}, not approve")
    if decision.production != record.production:
        now_is = "production" if decision.production else "not production"
        changes.append(f"the scope is now {now_is}")
    required = max(1, decision.required_approvals)
    if required != record.required_approvals:
        changes.append(
            f"the policies now require {required} approval(s), not {record.required_approvals}"
        )
    groups = sorted(decision.approver_groups)
    if groups != sorted(record.approver_groups or []):
        changes.append(
            f"the approver groups are now {', '.join(groups) or 'none'}, not "
            f"{', '.join(sorted(record.approver_groups or [])) or 'none'}"
        )
    return changes


def _labels_text(labels: Mapping[str, str]) -> str:
    if not labels:
        return "{}"
    return "{" + ", ".join(f"{key}={value}" for key, value in sorted(labels.items())) + "}"
