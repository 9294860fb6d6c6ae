"""Compiled policies and the decision for one action request.

``PolicySet.decide`` applies these rules, in order:

1. A policy matches a request when its selector matches the request's scope and its condition,
   if any, is true. A condition that fails at run time counts as not matching; the failure is
   logged once per policy and listed in the decision's reasons.
2. The scope is production when a production selector (``policy.production_selectors``) matches
   its labels or a matching policy sets ``production: true``. It is critical when a matching
   policy sets ``critical: true``.
3. Among the matching policies that list the action, the most restrictive mode wins
   (monitor < approve < auto); with none, the mode is monitor.
4. The tenant-wide ``policy.mode`` caps the mode. On a production or critical scope, auto
   becomes approve. On a critical scope, ``kubernetes.pause_namespace`` becomes monitor.
5. Approver groups are the union of the groups of every matching rule for the action. The
   required approvals are the maximum of their ``min_approvals``, and on production at least
   ``policy.production_min_approvals``. Auto off production needs none.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from costwarden.config import PolicySettings
from costwarden.domain.governance import (
    MODE_RANK,
    ActionRequest,
    ActionScope,
    Mode,
    PolicyDecision,
    canonical_json,
    cap_mode,
)
from costwarden.domain.selector import Requirement, matches_all, parse_selector
from costwarden.policy.cel import Condition, ConditionEvalError
from costwarden.policy.variables import build_activation

logger = logging.getLogger(__name__)

NEVER_ON_CRITICAL = frozenset({"kubernetes.pause_namespace"})
"""Actions that never run on a critical scope, even when a policy allows them."""


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled policy selector; None parts match any scope."""

    kinds: tuple[str, ...] | None = None
    clusters: tuple[str, ...] | None = None
    projects: tuple[str, ...] | None = None
    clouds: tuple[str, ...] | None = None
    namespaces: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    labels: tuple[Requirement, ...] | None = None
    labels_text: str | None = None

    def matches(self, scope: ActionScope) -> bool:
        if self.kinds is not None and scope.kind not in self.kinds:
            return False
        if self.clusters is not None and not (
            _glob(self.clusters, scope.cluster) or _glob(self.clusters, scope.cluster_uid)
        ):
            return False
        checks = (
            (self.projects, scope.project),
            (self.clouds, scope.cloud),
            (self.namespaces, scope.namespace),
            (self.names, scope.name),
        )
        if any(patterns is not None and not _glob(patterns, value) for patterns, value in checks):
            return False
        return self.labels is None or matches_all(self.labels, dict(scope.labels))

    def summary(self) -> str:
        """Describe the selector in one line, such as ``kinds=machine_pool clouds=aws``."""
        parts = []
        for name in ("kinds", "clusters", "projects", "clouds", "namespaces", "names"):
            values = getattr(self, name)
            if values is not None:
                parts.append(f"{name}={','.join(values)}")
        if self.labels_text:
            parts.append(f"labels={self.labels_text}")
        return " ".join(parts) or "any resource"


def _glob(patterns: tuple[str, ...], value: str | None) -> bool:
    if value is None:
        return False
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class ActionRule:
    action: str
    mode: Mode
    approvers: tuple[str, ...] = ()
    min_approvals: int = 1


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated, compiled policy. ``spec`` is its canonical content, used for digests."""

    name: str
    selector: Selector
    rules: tuple[ActionRule, ...]
    condition: Condition | None = None
    production: bool = False
    critical: bool = False
    description: str | None = None
    path: str = ""
    line: int | None = None
    spec: Mapping[str, Any] = field(default_factory=dict)

    def rule(self, action: str) -> ActionRule | None:
        return next((rule for rule in self.rules if rule.action == action), None)


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """One loaded file: its policies and the sha256 of their canonical content."""

    path: str
    digest: str
    policies: tuple[Policy, ...]


@dataclass(frozen=True, slots=True)
class _Match:
    policy: Policy
    why: str


class PolicySet:
    """Every loaded policy, with the settings that cap them.

    ``digest`` is the sha256 of the canonical content of every policy, sorted by name, so it
    changes exactly when a policy changes, whatever the file layout, comments or key order.
    """

    def __init__(self, files: Iterable[PolicyFile], settings: PolicySettings | None = None) -> None:
        self.files = tuple(files)
        self.settings = settings or PolicySettings()
        self.policies = tuple(policy for file in self.files for policy in file.policies)
        self.production_selectors = tuple(
            parse_selector(text) for text in self.settings.production_selectors
        )
        self._logged_failures: set[tuple[str, str]] = set()

    @property
    def digest(self) -> str:
        specs = sorted((dict(policy.spec) for policy in self.policies), key=lambda s: s["name"])
        return hashlib.sha256(canonical_json(specs).encode()).hexdigest()

    @property
    def file_digests(self) -> dict[str, str]:
        return {file.path: file.digest for file in self.files}

    def policy(self, name: str) -> Policy | None:
        return next((policy for policy in self.policies if policy.name == name), None)

    def decide(
        self, request: ActionRequest, facts: Mapping[str, Any], *, now: datetime | None = None
    ) -> PolicyDecision:
        """Decide the mode and approvals for ``request``; ``facts`` feed the CEL conditions."""
        now = now or datetime.now(UTC)
        activation = build_activation({**facts, "scope": request.scope.as_dict()}, now)
        reasons: list[str] = []

        matches = [
            m
            for policy in self.policies
            if (m := self._match(policy, request, activation, reasons))
        ]
        for match in matches:
            reasons.append(f"policy {match.policy.name!r} matches: {match.why}")

        production, critical = self._markers(request.scope, matches, reasons)
        rules = [(m.policy, rule) for m in matches if (rule := m.policy.rule(request.action))]
        mode, policy_name = _most_restrictive(rules, request.action, reasons)

        capped = cap_mode(mode, self.settings.mode)
        if capped != mode:
            reasons.append(f"the tenant-wide mode {self.settings.mode!r} caps {mode!r}")
        mode = capped
        if mode == "auto" and (production or critical):
            mode = "approve"
            reasons.append(
                f"auto becomes approve on a {'production' if production else 'critical'} scope"
            )
        if critical and request.action in NEVER_ON_CRITICAL and mode != "monitor":
            mode = "monitor"
            reasons.append(f"{request.action} never runs on a critical scope")

        groups = tuple(sorted({group for _, rule in rules for group in rule.approvers}))
        required = _required_approvals(mode, rules, production, self.settings)
        return PolicyDecision(
            action=request.action,
            mode=mode,
            policy=policy_name,
            production=production,
            required_approvals=required,
            approver_groups=groups,
            reasons=tuple(reasons),
            digest=request.digest,
        )

    def _match(
        self,
        policy: Policy,
        request: ActionRequest,
        activation: Mapping[str, Any],
        reasons: list[str],
    ) -> _Match | None:
        if not policy.selector.matches(request.scope):
            return None
        if policy.condition is None:
            return _Match(policy, f"selector {policy.selector.summary()}")

        try:
            matched = policy.condition.evaluate(activation)
        except ConditionEvalError as exc:
            self._log_failure(policy, str(exc))
            reasons.append(
                f"policy {policy.name!r} does not apply: its condition failed ({exc}); a failing "
                "condition counts as false"
            )
            return None
        if not matched:
            return None
        return _Match(
            policy, f"selector {policy.selector.summary()}, condition {policy.condition.source}"
        )

    def _markers(
        self, scope: ActionScope, matches: list[_Match], reasons: list[str]
    ) -> tuple[bool, bool]:
        production = False
        for text, requirements in zip(
            self.settings.production_selectors, self.production_selectors, strict=True
        ):
            if matches_all(requirements, dict(scope.labels)):
                production = True
                reasons.append(f"production: the scope's labels match {text!r}")
        for match in matches:
            if match.policy.production:
                production = True
                reasons.append(f"production: policy {match.policy.name!r} marks the scope")
        critical = any(match.policy.critical for match in matches)
        for match in matches:
            if match.policy.critical:
                reasons.append(f"critical: policy {match.policy.name!r} marks the scope")
        return production, critical

    def _log_failure(self, policy: Policy, message: str) -> None:
        key = (policy.name, message)
        if key in self._logged_failures:
            return
        self._logged_failures.add(key)
        logger.warning(
            "policy %s: condition failed and counts as false: %s (condition: %s)",
            policy.name,
            message,
            policy.condition.source if policy.condition else "",
        )


def _most_restrictive(
    rules: list[tuple[Policy, ActionRule]], action: str, reasons: list[str]
) -> tuple[Mode, str | None]:
    if not rules:
        reasons.append(f"no matching policy allows {action}, so the mode is monitor")
        return "monitor", None
    policy, rule = min(rules, key=lambda pair: MODE_RANK[pair[1].mode])
    if len(rules) > 1:
        listed = ", ".join(f"{p.name}={r.mode}" for p, r in rules)
        reasons.append(f"the most restrictive mode wins among {listed}: {rule.mode}")
    else:
        reasons.append(f"policy {policy.name!r} allows {action} in {rule.mode} mode")
    return rule.mode, policy.name


def _required_approvals(
    mode: Mode,
    rules: list[tuple[Policy, ActionRule]],
    production: bool,
    settings: PolicySettings,
) -> int:
    if mode == "auto" and not production:
        return 0
    required = max((rule.min_approvals for _, rule in rules), default=1)
    if production:
        required = max(required, settings.production_min_approvals)
    return max(required, 1)

