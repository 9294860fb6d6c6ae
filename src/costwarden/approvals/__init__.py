"""Approval requests, single-use approval tokens, decisions from every channel, and the
governance stage of a pass.

``stage.govern_recommendations`` opens requests for the pass's recommendations in ``approve``
mode; ``decisions.decide`` records an approve or reject and runs the action through
``costwarden.actions.runner`` once the required approvals are in. docs/approvals.md describes
the flow.
"""

from costwarden.approvals.decisions import DecisionOutcome, decide
from costwarden.approvals.requests import (
    STATUSES,
    find_request,
    list_requests,
    request_json,
)
from costwarden.approvals.stage import GovernanceReport, govern_recommendations
from costwarden.approvals.tokens import ApprovalClaims, ApprovalTokenSigner, is_approval_token

__all__ = [
    "STATUSES",
    "ApprovalClaims",
    "ApprovalTokenSigner",
    "DecisionOutcome",
    "GovernanceReport",
    "decide",
    "find_request",
    "govern_recommendations",
    "is_approval_token",
    "list_requests",
    "request_json",
]
