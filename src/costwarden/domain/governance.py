"""The vocabulary of governance: modes, action requests, policy decisions and approval votes.

A recommendation or alert becomes an ``ActionRequest``: one registered action with its exact
target and parameters. The policy package turns a request into a ``PolicyDecision`` (the mode
that applies and who must approve), and the production guard allows a run only when the decision
and the recorded ``ApprovalVote`` rows permit it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Mode = Literal["monitor", "approve", "auto"]
"""monitor: report only; approve: run after the required approvals; auto: run without approval,
allowed only for actions that are safe and reversible and never on a production scope."""

MODES: tuple[Mode, ...] = ("monitor", "approve", "auto")

MODE_RANK: dict[Mode, int] = {"monitor": 0, "approve": 1, "auto": 2}
"""Order of the modes from the most to the least restrictive; a cap keeps the lower rank."""

Vote = Literal["approve", "reject"]

SubjectKind = Literal["recommendation", "alert"]


def cap_mode(mode: Mode, cap: Mode) -> Mode:
    """Return the more restrictive of two modes."""
    return mode if MODE_RANK[mode] <= MODE_RANK[cap] else cap


def canonical_json(value: Any) -> str:
    """Serialise a JSON value with sorted keys and no spaces, so equal values hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class ActionScope:
    """The resource an action changes, with what the policy selectors match on.

    ``kind`` is ``cluster``, ``machine_pool``, ``namespace`` or ``repository``. ``labels``
    merges the cluster's Palette tags and labels with the resource's own labels.
    """

    kind: str
    cluster_uid: str | None = None
    cluster: str | None = None
    name: str | None = None
    project: str | None = None
    cloud: str | None = None
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionScope:
        """Rebuild a scope from ``as_dict`` output, as approval requests and runs store it."""
        return cls(
            kind=str(data.get("kind")),
            cluster_uid=data.get("cluster_uid"),
            cluster=data.get("cluster"),
            name=data.get("name"),
            project=data.get("project"),
            cloud=data.get("cloud"),
            namespace=data.get("namespace"),
            labels={str(key): str(value) for key, value in (data.get("labels") or {}).items()},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cluster_uid": self.cluster_uid,
            "cluster": self.cluster,
            "name": self.name,
            "project": self.project,
            "cloud": self.cloud,
            "namespace": self.namespace,
            "labels": dict(sorted(self.labels.items())),
        }


DESCRIPTIVE_PARAMS = frozenset(
    {"title", "description", "reason", "estimated_savings", "evidence", "link"}
)
"""Parameters that only word a change for people: pull request and ticket text. The digest
leaves them out, because a pass rewords them (a title with a measured value) while the change
stays the same, and a new digest would open a second pull request or ticket."""


def bound_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the parameters that the digest binds: all but ``DESCRIPTIVE_PARAMS``."""
    return {key: value for key, value in params.items() if key not in DESCRIPTIVE_PARAMS}


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One registered action with its exact scope and parameters.

    ``expected`` is the state the recommendation was computed from (for example the pool's
    size); an action reads the current state first and refuses to run when it differs.
    ``digest`` binds approvals to this exact change: any other action, scope or parameter
    has another digest, except for the wording in ``DESCRIPTIVE_PARAMS``.

    ``rollback_of`` is set on the request that undoes an applied run: it names that apply run,
    and the runner reads the undo data from it. A rollback has a digest of its own, so votes
    on the apply never count for the rollback.
    """

    action: str
    scope: ActionScope
    params: Mapping[str, Any]
    subject_kind: SubjectKind
    subject_id: str
    expected: Mapping[str, Any] = field(default_factory=dict)
    rollback_of: str | None = None

    @property
    def digest(self) -> str:
        body: dict[str, Any] = {
            "action": self.action,
            "scope": self.scope.as_dict(),
            "params": bound_params(self.params),
            "expected": dict(self.expected),
        }
        if self.rollback_of is not None:
            body["rollback_of"] = self.rollback_of
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The mode that applies to one action request and who must approve it.

    ``mode`` is already capped by the tenant-wide mode. ``policy`` is None when no policy
    matched, which means ``monitor``. ``production`` is true when any production marker matched
    the scope; then ``required_approvals`` is at least 1 whatever the mode says. ``digest`` is
    the ``ActionRequest.digest`` the decision was made for: the production guard refuses a
    decision without one, or one made for another request.
    """

    action: str
    mode: Mode
    policy: str | None
    production: bool
    required_approvals: int
    approver_groups: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovalVote:
    """One recorded approve or reject of the change with digest ``digest``."""

    actor: str
    vote: Vote
    digest: str
    decided_at: datetime
    groups: tuple[str, ...] = ()
    channel: str = ""
