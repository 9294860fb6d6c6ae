"""The workload requests recommender keeps the HPA's CPU scaling point in view."""

from __future__ import annotations

from dataclasses import replace

import prometheus_data as fleet
import pytest

from costwarden.recommend import RECOMMENDERS, RecommendInput


def api(bundle: RecommendInput):
    found = RECOMMENDERS.create("workload-requests").recommend(bundle)
    return next(
        item for item in found
        if (item.target.cluster, item.target.namespace, item.target.name)
        == (fleet.PROD, "checkout", "api")
    )  # fmt: skip


def test_target_read_from_kube_state_metrics(fleet_input: RecommendInput) -> None:
    targets = fleet_input.hpa_targets.cpu_percent

    assert targets == {(fleet.PROD, "checkout", "api"): fleet.API_HPA_CPU_TARGET_PERCENT}


def test_scale_point_before_and_after(fleet_input: RecommendInput) -> None:
    """The HPA scales at request x target: 2 cores x 70% now, about 0.4 x 70% after."""
    evidence = api(fleet_input).evidence
    target = fleet.API_HPA_CPU_TARGET_PERCENT / 100

    assert evidence["hpa_cpu_target_percent"] == fleet.API_HPA_CPU_TARGET_PERCENT
    assert evidence["hpa_scale_point_cores_before"] == pytest.approx(
        fleet.API_CPU_REQUEST_CORES * target
    )
    assert evidence["hpa_scale_point_cores_after"] == pytest.approx(
        fleet.API_CPU_P95_CORES * target, rel=0.03
    )
    assert evidence["hpa_target_percent_keeping_scale_point"] == pytest.approx(
        fleet.API_HPA_CPU_TARGET_PERCENT * fleet.API_CPU_REQUEST_CORES / fleet.API_CPU_P95_CORES,
        rel=0.03,
    )


def test_risk_note_states_scale_point(fleet_input: RecommendInput) -> None:
    note = api(fleet_input).risk_note

    assert "HorizontalPodAutoscaler api" in note
    assert "70% of the pod's CPU request" in note
    assert "1400m per pod now" in note


def test_without_target_generic_note(fleet_input: RecommendInput) -> None:
    bundle = replace(fleet_input, hpa_targets=replace(fleet_input.hpa_targets, cpu_percent={}))
    found = api(bundle)

    assert "check its target before applying" in found.risk_note
    assert "hpa_cpu_target_percent" not in found.evidence
