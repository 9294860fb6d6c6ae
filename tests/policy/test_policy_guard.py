"""The production guard: examples of each rule, then properties over random inputs."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_helpers import NOW, REGISTRY, SAFE_ACTIONS, UNSAFE_ACTIONS, pool_request

from costwarden.config import PolicySettings
from costwarden.domain.governance import (
    MODE_RANK,
    MODES,
    ActionRequest,
    ApprovalVote,
    PolicyDecision,
)
from costwarden.errors import ActionNotAllowedError
from costwarden.policy import GuardRules, authorize
from costwarden.policy.engine import PolicySet
from costwarden.policy.loader import PolicyFile, check_text

TTL = timedelta(hours=72)
SELECTORS = ("env=production", "env=prod")
RULES = GuardRules(SELECTORS, production_min_approvals=2, tenant_mode="auto")
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _decision(request: ActionRequest, **changes: object) -> PolicyDecision:
    base = PolicyDecision(
        action=request.action,
        mode="approve",
        policy="p",
        production=False,
        required_approvals=1,
        digest=request.digest,
    )
    return dataclasses.replace(base, **changes)


def _vote(request: ActionRequest, actor: str, **changes: object) -> ApprovalVote:
    base = ApprovalVote(actor, "approve", request.digest, NOW - timedelta(hours=1), ("leads",))
    return dataclasses.replace(base, **changes)


def _authorize(
    decision: PolicyDecision,
    request: ActionRequest,
    votes: list[ApprovalVote],
    rules: GuardRules = RULES,
) -> None:
    authorize(decision, request, votes, now=NOW, approval_ttl=TTL, rules=rules, registry=REGISTRY)


def _rejection(
    decision: PolicyDecision,
    request: ActionRequest,
    votes: list[ApprovalVote],
    rules: GuardRules = RULES,
) -> str:
    with pytest.raises(ActionNotAllowedError) as caught:
        _authorize(decision, request, votes, rules)
    return str(caught.value)


def test_auto_runs_safe_action_without_votes() -> None:
    request = pool_request("palette.resize_pool", labels={"env": "dev"})

    _authorize(_decision(request, mode="auto", required_approvals=0), request, [])


def test_auto_unsafe_action_needs_approval() -> None:
    request = pool_request("palette.set_instance_type", labels={"env": "dev"})
    decision = _decision(request, mode="auto", required_approvals=0)

    message = _rejection(decision, request, [])

    assert "the action is not safe and reversible" in message
    _authorize(decision, request, [_vote(request, "ann")])


def test_monitor_never_runs() -> None:
    request = pool_request()
    votes = [_vote(request, "ann"), _vote(request, "bob")]

    message = _rejection(_decision(request, mode="monitor"), request, votes)

    assert "the mode is monitor" in message


def test_tenant_mode_caps_the_decision() -> None:
    request = pool_request(labels={"env": "dev"})
    rules = dataclasses.replace(RULES, tenant_mode="monitor")

    message = _rejection(_decision(request, mode="auto"), request, [], rules)

    assert "tenant mode monitor" in message


def test_decision_for_other_change_is_rejection() -> None:
    request = pool_request(size=2)
    other = pool_request(size=3)
    votes = [_vote(request, "ann")]

    assert "another change" in _rejection(_decision(other), request, votes)
    assert "another change" in _rejection(_decision(request, digest=None), request, votes)
    assert "another change" in _rejection(_decision(request, action="ticket"), request, votes)


def test_production_from_labels_even_if_decision_says_no() -> None:
    request = pool_request(labels={"env": "production"})
    decision = _decision(request, mode="auto", production=False, required_approvals=0)

    message = _rejection(decision, request, [_vote(request, "ann")])

    assert "production scope" in message
    assert "needs 2 approval(s)" in message
    _authorize(decision, request, [_vote(request, "ann"), _vote(request, "bob")])


def test_invalid_votes_do_not_count() -> None:
    request = pool_request()
    decision = _decision(request, required_approvals=2, approver_groups=("leads",))
    votes = [
        _vote(request, "ann"),
        _vote(request, "ANN "),
        _vote(request, "bob", digest=pool_request(size=9).digest),
        _vote(request, "cid", decided_at=NOW - TTL - timedelta(seconds=1)),
        _vote(request, "dan", decided_at=NOW + timedelta(seconds=1)),
        _vote(request, "eve", groups=("finance",)),
        _vote(request, " "),
    ]

    message = _rejection(decision, request, votes)

    assert "1 valid" in message
    for reason in (
        "1 for another change",
        "1 expired",
        "1 dated in the future",
        "1 outside the approver groups",
        "1 repeated by the same person",
        "1 without an actor",
    ):
        assert reason in message


def test_vote_at_ttl_edge_counts() -> None:
    request = pool_request()
    decision = _decision(request)

    _authorize(decision, request, [_vote(request, "ann", decided_at=NOW - TTL)])
    _authorize(decision, request, [_vote(request, "ann", decided_at=NOW)])


def test_reject_blocks_even_auto() -> None:
    request = pool_request(labels={"env": "dev"})
    decision = _decision(request, mode="auto", required_approvals=0)
    votes = [_vote(request, "ann"), _vote(request, "bob", vote="reject")]

    assert "rejected by bob" in _rejection(decision, request, votes)


def test_unregistered_action_never_runs() -> None:
    request = pool_request("palette.delete_cluster")

    message = _rejection(_decision(request), request, [_vote(request, "ann")])

    assert "not a registered action" in message


# Properties. Strategies draw scopes, decisions (possibly built wrongly) and votes (valid ones
# plus forged, expired, future-dated, out-of-group, repeated and rejecting ones).

ACTORS = ("ann", "bob", "cid", "dan", "eve")
GROUPS = ("leads", "sre", "finance")
LABEL_VALUES = st.sampled_from(["production", "prod", "staging", "dev", "ml"])

labels = st.dictionaries(st.sampled_from(["env", "team", "tier"]), LABEL_VALUES, max_size=3)
requests = st.builds(
    pool_request,
    st.sampled_from(SAFE_ACTIONS + UNSAFE_ACTIONS),
    labels=labels,
    size=st.integers(0, 5),
)
rules = st.builds(
    GuardRules,
    production_selectors=st.just(SELECTORS),
    production_min_approvals=st.integers(1, 3),
    tenant_mode=st.sampled_from(MODES),
)


@st.composite
def decisions(draw: st.DrawFn, request: ActionRequest) -> PolicyDecision:
    wrong_digest = draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())
    return PolicyDecision(
        action=request.action,
        mode=draw(st.sampled_from(MODES)),
        policy="p",
        production=draw(st.booleans()),
        required_approvals=draw(st.integers(0, 3)),
        approver_groups=tuple(draw(st.sets(st.sampled_from(GROUPS), max_size=2))),
        digest="0" * 64 if wrong_digest else request.digest,
    )


@st.composite
def votes(draw: st.DrawFn, request: ActionRequest) -> list[ApprovalVote]:
    other = pool_request(request.action, labels=dict(request.scope.labels), size=99).digest
    drawn = []
    for _ in range(draw(st.integers(0, 6))):
        offset = draw(st.integers(-2 * int(TTL.total_seconds()), 3600))
        drawn.append(
            ApprovalVote(
                actor=draw(st.sampled_from(ACTORS)),
                vote=draw(st.sampled_from(["approve", "approve", "approve", "reject"])),
                digest=draw(st.sampled_from([request.digest, request.digest, other])),
                decided_at=NOW + timedelta(seconds=offset),
                groups=tuple(draw(st.sets(st.sampled_from(GROUPS), max_size=2))),
            )
        )
    return drawn


def _valid_approvers(
    decision: PolicyDecision, request: ActionRequest, drawn: list[ApprovalVote]
) -> set[str]:
    """An independent statement of which votes may count."""
    return {
        vote.actor
        for vote in drawn
        if vote.vote == "approve"
        and vote.digest == request.digest
        and NOW - TTL <= vote.decided_at <= NOW
        and (not decision.approver_groups or set(vote.groups) & set(decision.approver_groups))
    }


def _passes(
    decision: PolicyDecision,
    request: ActionRequest,
    drawn: list[ApprovalVote],
    guard_rules: GuardRules,
) -> bool:
    try:
        _authorize(decision, request, drawn, guard_rules)
    except ActionNotAllowedError:
        return False
    return True


@PROPERTY_SETTINGS
@given(data=st.data(), request=requests, guard_rules=rules)
def test_property_a_run_always_has_its_approvals(
    data: st.DataObject, request: ActionRequest, guard_rules: GuardRules
) -> None:
    decision = data.draw(decisions(request))
    drawn = data.draw(votes(request))

    if not _passes(decision, request, drawn, guard_rules):
        return

    valid = _valid_approvers(decision, request, drawn)
    production = decision.production or request.scope.labels.get("env") in ("production", "prod")
    mode = min(decision.mode, guard_rules.tenant_mode, key=MODE_RANK.__getitem__)
    assert decision.digest == request.digest
    assert mode != "monitor"
    assert MODE_RANK[mode] <= MODE_RANK[guard_rules.tenant_mode]
    assert not any(v.vote == "reject" and v.digest == request.digest for v in drawn)
    if production:
        needed = max(1, guard_rules.production_min_approvals, decision.required_approvals)
        assert len(valid) >= needed
    if request.action in UNSAFE_ACTIONS or mode == "approve":
        assert len(valid) >= max(1, decision.required_approvals)


@PROPERTY_SETTINGS
@given(data=st.data(), request=requests, guard_rules=rules)
def test_property_invalid_votes_never_count(
    data: st.DataObject, request: ActionRequest, guard_rules: GuardRules
) -> None:
    decision = data.draw(decisions(request))
    drawn = [v for v in data.draw(votes(request)) if v.vote == "approve"]
    counted = _valid_approvers(decision, request, drawn)
    forged_digest = pool_request(request.action, size=1234).digest
    outside = tuple(g for g in GROUPS if g not in decision.approver_groups)
    junk = []
    for actor in ACTORS:
        junk.append(ApprovalVote(actor, "approve", forged_digest, NOW, ("leads",)))
        junk.append(ApprovalVote(actor, "approve", request.digest, NOW - TTL - timedelta(1), ()))
        junk.append(ApprovalVote(actor, "approve", request.digest, NOW + timedelta(minutes=1), ()))
        if decision.approver_groups and outside:
            junk.append(ApprovalVote(actor, "approve", request.digest, NOW, outside))
    repeats = [dataclasses.replace(v, decided_at=NOW) for v in drawn if v.actor in counted]

    alone = _passes(decision, request, drawn, guard_rules)
    padded = _passes(decision, request, drawn + junk + repeats, guard_rules)

    assert padded == alone


@PROPERTY_SETTINGS
@given(data=st.data(), request=requests, guard_rules=rules)
def test_property_no_votes_needs_safe_auto(
    data: st.DataObject, request: ActionRequest, guard_rules: GuardRules
) -> None:
    decision = data.draw(decisions(request))

    if not _passes(decision, request, [], guard_rules):
        return

    assert request.action in SAFE_ACTIONS
    assert decision.mode == "auto"
    assert guard_rules.tenant_mode == "auto"
    assert not decision.production
    assert request.scope.labels.get("env") not in ("production", "prod")


ACTION_NAMES = SAFE_ACTIONS + UNSAFE_ACTIONS
CONDITIONS = [None, "pool.gpu > 0", "has(workload.gpu_requested)", "scope.kind == 'machine_pool'"]


@st.composite
def policy_files(draw: st.DrawFn) -> str:
    policies = []
    for index in range(draw(st.integers(1, 5))):
        entry: dict[str, object] = {"name": f"policy-{index}"}
        selector = {}
        if draw(st.booleans()):
            selector["labels"] = draw(st.sampled_from(["env=production", "team=ml", "env!=dev"]))
        if draw(st.booleans()):
            selector["kinds"] = draw(st.sampled_from([["machine_pool"], ["cluster"]]))
        entry["selector"] = selector
        if condition := draw(st.sampled_from(CONDITIONS)):
            entry["condition"] = condition
        actions = []
        for name in draw(st.sets(st.sampled_from(ACTION_NAMES), max_size=3)):
            modes = MODES if name in SAFE_ACTIONS else ("monitor", "approve")
            actions.append(
                {
                    "action": name,
                    "mode": draw(st.sampled_from(modes)),
                    "min_approvals": draw(st.integers(1, 3)),
                    "approvers": sorted(draw(st.sets(st.sampled_from(GROUPS), max_size=2))),
                }
            )
        entry["actions"] = actions
        entry["production"] = draw(st.booleans()) and draw(st.booleans())
        entry["critical"] = draw(st.booleans()) and draw(st.booleans())
        if not actions and not entry["production"] and not entry["critical"]:
            entry["production"] = True
        policies.append(entry)
    return json.dumps({"policies": policies})


@PROPERTY_SETTINGS
@given(
    text=policy_files(),
    request=requests,
    tenant_mode=st.sampled_from(MODES),
    minimum=st.integers(1, 3),
    facts=st.fixed_dictionaries(
        {"pool": st.fixed_dictionaries({"gpu": st.integers(0, 2)}), "workload": st.just({})}
    ),
    data=st.data(),
)
def test_property_random_policy_sets_never_bypass_production(
    text: str,
    request: ActionRequest,
    tenant_mode: str,
    minimum: int,
    facts: dict[str, object],
    data: st.DataObject,
) -> None:
    report = check_text(text, "random.yaml", registry=REGISTRY)
    assert report.ok, report.problems
    settings_ = PolicySettings(
        mode=tenant_mode, production_selectors=list(SELECTORS), production_min_approvals=minimum
    )
    policy_set = PolicySet(
        [PolicyFile("random.yaml", report.digest or "", report.policies)], settings_
    )
    guard_rules = GuardRules.from_settings(settings_)

    decision = policy_set.decide(request, facts, now=NOW)
    drawn = data.draw(votes(request))
    passed = _passes(decision, request, drawn, guard_rules)

    assert MODE_RANK[decision.mode] <= MODE_RANK[tenant_mode]
    on_production = request.scope.labels.get("env") in ("production", "prod")
    if on_production:
        assert decision.production
        assert decision.mode != "auto"
        assert decision.required_approvals >= minimum
    if passed and (on_production or decision.production):
        assert len(_valid_approvers(decision, request, drawn)) >= max(minimum, 1)
    if passed and not drawn:
        assert decision.mode == "auto"
        assert request.action in SAFE_ACTIONS
