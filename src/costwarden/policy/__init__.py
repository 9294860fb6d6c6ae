"""Cost policies: the file format, CEL conditions, the decision engine and the production guard.

``load_policies`` reads policy files into a ``PolicySet``; ``PolicySet.decide`` turns an
``ActionRequest`` into a ``PolicyDecision``; ``guard.authorize`` is the only check that allows a
run. docs/policies.md describes the format and the rules.
"""

from costwarden.policy.engine import ActionRule, Policy, PolicyFile, PolicySet, Selector
from costwarden.policy.guard import GuardRules, authorize
from costwarden.policy.loader import (
    FileReport,
    Problem,
    check_file,
    check_files,
    load_configured_policies,
    load_policies,
)

__all__ = [
    "ActionRule",
    "FileReport",
    "GuardRules",
    "Policy",
    "PolicyFile",
    "PolicySet",
    "Problem",
    "Selector",
    "authorize",
    "check_file",
    "check_files",
    "load_configured_policies",
    "load_policies",
]
