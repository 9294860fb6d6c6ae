"""PolicySet.decide: matching, the most restrictive mode, caps, markers and approvals."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from policy_helpers import NOW, REGISTRY, pool_request

from costwarden.config import PolicySettings
from costwarden.policy.cel import ConditionEvalError, compile_condition
from costwarden.policy.engine import PolicySet
from costwarden.policy.loader import PolicyFile, check_text
from costwarden.policy.variables import build_activation


def _policy_set(text: str, **settings: object) -> PolicySet:
    report = check_text(text, "p.yaml", registry=REGISTRY)
    assert report.ok, [str(p) for p in report.problems]
    config = PolicySettings(**{"mode": "auto", **settings})
    return PolicySet([PolicyFile("p.yaml", report.digest or "", report.policies)], config)


TWO_POLICIES = """\
policies:
  - name: pools-auto
    selector: {kinds: [machine_pool], clouds: [aws]}
    actions:
      - {action: palette.resize_pool, mode: auto, approvers: [sre]}
  - name: ml-approve
    selector: {labels: "team=ml"}
    actions:
      - {action: palette.resize_pool, mode: approve, approvers: [leads], min_approvals: 2}
"""


def test_no_matching_policy_means_monitor() -> None:
    policies = _policy_set(TWO_POLICIES)

    decision = policies.decide(pool_request("palette.tag_cluster"), {}, now=NOW)

    assert decision.mode == "monitor"
    assert decision.policy is None
    assert "no matching policy allows palette.tag_cluster" in decision.reasons[-1]


def test_single_match_uses_its_mode() -> None:
    decision = _policy_set(TWO_POLICIES).decide(pool_request(), {}, now=NOW)

    assert decision.mode == "auto"
    assert decision.policy == "pools-auto"
    assert decision.required_approvals == 0
    assert decision.digest == pool_request().digest


def test_most_restrictive_mode_wins_and_approvals_merge() -> None:
    request = pool_request(labels={"team": "ml"})

    decision = _policy_set(TWO_POLICIES).decide(request, {}, now=NOW)

    assert decision.mode == "approve"
    assert decision.policy == "ml-approve"
    assert decision.approver_groups == ("leads", "sre")
    assert decision.required_approvals == 2
    assert any("pools-auto=auto, ml-approve=approve" in r for r in decision.reasons)


def test_selector_parts_all_must_match() -> None:
    policies = _policy_set(TWO_POLICIES)

    assert policies.decide(pool_request(cloud="gcp"), {}, now=NOW).mode == "monitor"
    assert policies.decide(pool_request(kind="cluster"), {}, now=NOW).mode == "monitor"


def test_cluster_globs_match_name_or_uid() -> None:
    text = (
        "policies:\n  - name: a\n    selector: {clusters: ['prod-*', 'uid-42']}\n"
        "    actions: [{action: ticket, mode: auto}]\n"
    )
    policies = _policy_set(text)

    assert policies.decide(pool_request("ticket", cluster="prod-eu"), {}, now=NOW).mode == "auto"
    by_uid = pool_request("ticket", cluster="x", cluster_uid="uid-42")
    assert policies.decide(by_uid, {}, now=NOW).mode == "auto"
    assert policies.decide(pool_request("ticket", cluster="dev"), {}, now=NOW).mode == "monitor"


def test_tenant_mode_caps_every_policy() -> None:
    policies = _policy_set(TWO_POLICIES, mode="approve")

    decision = policies.decide(pool_request(), {}, now=NOW)

    assert decision.mode == "approve"
    assert decision.required_approvals == 1
    assert "the tenant-wide mode 'approve' caps 'auto'" in decision.reasons


def test_production_label_turns_auto_into_approve() -> None:
    policies = _policy_set(TWO_POLICIES, production_min_approvals=3)

    decision = policies.decide(pool_request(labels={"env": "prod"}), {}, now=NOW)

    assert decision.production is True
    assert decision.mode == "approve"
    assert decision.required_approvals == 3
    assert "production: the scope's labels match 'env=prod'" in decision.reasons


def test_production_marker_policy() -> None:
    marker = "  - name: vip\n    selector: {clusters: [ml-eks]}\n    production: true\n"
    text = TWO_POLICIES + marker

    decision = _policy_set(text).decide(pool_request(), {}, now=NOW)

    assert decision.production is True
    assert decision.mode == "approve"
    assert "production: policy 'vip' marks the scope" in decision.reasons


def test_critical_scope_never_pauses_namespaces() -> None:
    text = """\
policies:
  - name: pause
    selector: {kinds: [namespace]}
    actions: [{action: kubernetes.pause_namespace, mode: auto}, {action: ticket, mode: auto}]
  - name: system
    selector: {namespaces: [kube-system]}
    critical: true
"""
    policies = _policy_set(text)
    system = pool_request("kubernetes.pause_namespace", kind="namespace", namespace="kube-system")
    ticket = pool_request("ticket", kind="namespace", namespace="kube-system")
    other = pool_request("kubernetes.pause_namespace", kind="namespace", namespace="preview-1")

    assert policies.decide(system, {}, now=NOW).mode == "monitor"
    assert policies.decide(ticket, {}, now=NOW).mode == "approve"
    assert policies.decide(other, {}, now=NOW).mode == "auto"


CONDITIONAL = """\
policies:
  - name: idle-gpu
    condition: "pool.gpu > 0 && workload.gpu_requested == 0"
    actions: [{action: palette.resize_pool, mode: approve}]
  - name: big-savings
    condition: >
      recommendation.savings_per_month >= 100.0 && now > timestamp('2025-01-01T00:00:00Z')
    actions: [{action: ticket, mode: auto}]
"""


def test_condition_reads_facts() -> None:
    policies = _policy_set(CONDITIONAL)
    idle = {"pool": {"gpu": 4}, "workload": {"gpu_requested": Decimal(0)}}
    busy = {"pool": {"gpu": 4}, "workload": {"gpu_requested": 2}}

    assert policies.decide(pool_request(), idle, now=NOW).mode == "approve"
    assert policies.decide(pool_request(), busy, now=NOW).mode == "monitor"


def test_decimal_and_datetime_facts_convert() -> None:
    policies = _policy_set(CONDITIONAL)
    facts = {"recommendation": {"savings_per_month": Decimal("120.50")}}
    request = pool_request("ticket")

    assert policies.decide(request, facts, now=NOW).mode == "auto"
    naive_past = datetime(2024, 6, 1)
    assert policies.decide(request, facts, now=naive_past).mode == "monitor"
    small = {"recommendation": {"savings_per_month": 99}}
    assert policies.decide(request, small, now=datetime.now(UTC)).mode == "monitor"


def test_failing_condition_counts_as_false_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policies = _policy_set(CONDITIONAL)
    caplog.set_level(logging.WARNING, logger="costwarden.policy.engine")

    first = policies.decide(pool_request(), {}, now=NOW)
    policies.decide(pool_request(), {}, now=NOW)

    assert first.mode == "monitor"
    assert any("'idle-gpu' does not apply: its condition failed" in r for r in first.reasons)
    assert any("no such member in mapping: 'gpu'" in r for r in first.reasons)
    logged = [r for r in caplog.records if "idle-gpu" in r.getMessage()]
    assert len(logged) == 1


def test_unparsable_timestamp_fact_names_cause() -> None:
    condition = compile_condition("timestamp(cluster.name) < now")

    with pytest.raises(ConditionEvalError, match=r"Unable to parse string \[garbage\]") as caught:
        condition.evaluate(build_activation({"cluster": {"name": "garbage"}}, NOW))
    assert "overflow" not in str(caught.value)
