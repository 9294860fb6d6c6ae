"""The production guard: the one check that allows or refuses running an action.

The action runner calls ``authorize`` right before every apply and rollback. The guard trusts
neither the decision's mode nor its production flag alone. It caps the mode with the tenant-wide
mode again and derives production from the request's scope labels again, using rules taken from
the settings rather than from the decision.

Approvals count per person: ``approvals.people`` maps the identities one person uses on different
channels (a Slack user id, an email typed on a link page) to that person. On a production scope,
votes from signed links (channel ``link``, a bearer token with a typed name) count only when
``approvals.links_count_for_production`` is true.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from costwarden.actions.registry import ACTIONS, ActionRegistry
from costwarden.config import ApprovalSettings, PolicySettings
from costwarden.domain.governance import (
    ActionRequest,
    ApprovalVote,
    Mode,
    PolicyDecision,
    cap_mode,
)
from costwarden.domain.selector import matches_all, parse_selector
from costwarden.errors import ActionNotAllowedError


@dataclass(frozen=True, slots=True)
class GuardRules:
    """The settings the guard applies independently of the decision."""

    production_selectors: tuple[str, ...]
    production_min_approvals: int
    tenant_mode: Mode
    people: Mapping[str, str] = field(default_factory=dict)
    """Case-folded identity to the person it belongs to (``approvals.people``)."""
    links_count_for_production: bool = True
    """Whether signed-link votes count on a production scope."""

    @classmethod
    def from_settings(
        cls, settings: PolicySettings, approvals: ApprovalSettings | None = None
    ) -> GuardRules:
        """Build the rules from the policy settings and, when given, the approval settings.

        Without ``approvals`` every identity is its own person and signed-link votes count on
        production, so every caller that runs actions passes them.
        """
        if approvals is None:
            return cls(
                production_selectors=tuple(settings.production_selectors),
                production_min_approvals=settings.production_min_approvals,
                tenant_mode=settings.mode,
            )
        return cls(
            production_selectors=tuple(settings.production_selectors),
            production_min_approvals=settings.production_min_approvals,
            tenant_mode=settings.mode,
            people=person_index(approvals.people),
            links_count_for_production=approvals.links_count_for_production,
        )


LINK_CHANNEL = "link"
"""Channel name of decisions made on the signed link page."""


def person_index(people: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Map every case-folded identity of ``approvals.people`` to its person's name."""
    index: dict[str, str] = {}
    for person, identities in people.items():
        index[person.strip().casefold()] = person.strip().casefold()
        for identity in identities:
            index[identity.strip().casefold()] = person.strip().casefold()
    return index


def person_of(actor: str, people: Mapping[str, str]) -> str:
    """Return the person an actor identity belongs to, or the case-folded identity itself."""
    folded = actor.strip().casefold()
    return people.get(folded, folded)


def authorize(
    decision: PolicyDecision,
    request: ActionRequest,
    votes: Sequence[ApprovalVote],
    *,
    now: datetime,
    approval_ttl: timedelta,
    rules: GuardRules,
    registry: ActionRegistry = ACTIONS,
) -> None:
    """Return when ``request`` may run now; raise ``ActionNotAllowedError`` saying why not.

    Votes count only when they approve this exact ``request.digest``, were decided within
    ``approval_ttl`` before ``now`` (not after it), come from different actors, and, when the
    decision names approver groups, from a member of one of them. Any reject of the digest
    blocks the run, in every mode.
    """
    action = request.action
    if decision.action != action or decision.digest != request.digest:
        raise ActionNotAllowedError(
            f"{action}: the policy decision was made for another change; decide again for this "
            "request"
        )
    if action not in registry:
        raise ActionNotAllowedError(f"{action}: not a registered action, so it cannot run")

    mode = cap_mode(decision.mode, rules.tenant_mode)
    if mode == "monitor":
        raise ActionNotAllowedError(
            f"{action}: the mode is monitor, so the change is only reported (policy "
            f"{decision.policy or 'none'}, tenant mode {rules.tenant_mode})"
        )

    rejecters = sorted(
        {v.actor for v in votes if v.digest == request.digest and v.vote == "reject"}
    )
    if rejecters:
        raise ActionNotAllowedError(f"{action}: rejected by {', '.join(rejecters)}")

    production = decision.production or is_production(request, rules.production_selectors)
    if mode == "auto" and not production and registry.spec(action).auto_allowed:
        return

    required = max(1, decision.required_approvals)
    if production:
        required = max(required, rules.production_min_approvals)
    approvers, ignored = count_approvals(
        decision, request, votes, now=now, ttl=approval_ttl, rules=rules, production=production
    )
    if len(approvers) < required:
        raise ActionNotAllowedError(
            _missing_message(action, mode, production, required, approvers, ignored)
        )


def is_production(request: ActionRequest, selectors: Sequence[str]) -> bool:
    """Tell whether any production selector matches the request's scope labels."""
    labels = dict(request.scope.labels)
    return any(matches_all(_parse_selector(text), labels) for text in selectors)


def count_approvals(
    decision: PolicyDecision,
    request: ActionRequest,
    votes: Sequence[ApprovalVote],
    *,
    now: datetime,
    ttl: timedelta,
    rules: GuardRules | None = None,
    production: bool = False,
) -> tuple[set[str], Counter[str]]:
    """Return the distinct people whose approvals count, and why the other votes do not.

    ``rules`` supplies the identity-to-person map and whether signed-link votes count when
    ``production`` is true; without ``rules`` each identity is its own person.
    """
    now = _utc(now)
    groups = set(decision.approver_groups)
    people = rules.people if rules is not None else {}
    links_count = rules.links_count_for_production if rules is not None else True
    approvers: set[str] = set()
    ignored: Counter[str] = Counter()
    for vote in votes:
        actor = person_of(vote.actor, people) if vote.actor.strip() else ""
        decided_at = _utc(vote.decided_at)
        if vote.vote != "approve":
            continue
        if vote.digest != request.digest:
            ignored["for another change"] += 1
        elif not actor:
            ignored["without an actor"] += 1
        elif production and vote.channel == LINK_CHANNEL and not links_count:
            ignored["from signed links, which do not count on production"] += 1
        elif decided_at > now:
            ignored["dated in the future"] += 1
        elif now - decided_at > ttl:
            ignored["expired"] += 1
        elif groups and not groups.intersection(vote.groups):
            ignored["outside the approver groups"] += 1
        elif actor in approvers:
            ignored["repeated by the same person"] += 1
        else:
            approvers.add(actor)
    return approvers, ignored


def _missing_message(
    action: str,
    mode: Mode,
    production: bool,
    required: int,
    approvers: set[str],
    ignored: Counter[str],
) -> str:
    if mode == "auto":
        why = "production scope" if production else "the action is not safe and reversible"
        reason = f"auto mode cannot skip approval ({why})"
    else:
        reason = "approve mode" + (" on a production scope" if production else "")
    message = (
        f"{action}: {reason} needs {required} approval(s) from different people for this exact "
        f"change; {len(approvers)} valid"
    )
    if ignored:
        message += (
            " (ignored: " + ", ".join(f"{n} {why}" for why, n in sorted(ignored.items())) + ")"
        )
    return message


_parse_selector = functools.lru_cache(maxsize=256)(parse_selector)


def _utc(moment: datetime) -> datetime:
    """Read a naive datetime, as SQLite returns them, as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
