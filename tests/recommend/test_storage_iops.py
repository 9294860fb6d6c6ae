"""The storage class recommender's IOPS check for Azure premium to standard moves."""

from __future__ import annotations

from dataclasses import replace

import prometheus_data as fleet
import pytest
from recommend_expected import CATALOG, per_day

from costwarden.domain.usage import VolumeKey
from costwarden.recommend import RECOMMENDERS, RecommendInput

ARCHIVE = VolumeKey(fleet.PROD, "data", "data-archive-0")


def premium_bundle(bundle: RecommendInput) -> RecommendInput:
    """Return the bundle with every claim on Azure's premium class, managed-csi-premium.

    The claims stay in prod-eks, so their disk price is AWS's; the test is about the IOPS check.
    """
    volumes = tuple(
        replace(item, storage_class="managed-csi-premium") for item in bundle.volumes.items
    )
    return replace(bundle, volumes=replace(bundle.volumes, items=volumes))


def found(bundle: RecommendInput, **options: object) -> dict:
    recommender = RECOMMENDERS.create("storage-class", options)
    return {item.target.name: item for item in recommender.recommend(premium_bundle(bundle))}


def test_iops_bound_of_mounted_claim(fleet_input: RecommendInput) -> None:
    """data-archive-0's node has a data disk peaking at 300 IOPS and an OS disk at 20."""
    bound = fleet_input.claim_iops.items[ARCHIVE]

    assert bound.peak_iops == pytest.approx(fleet.DISK_PEAK_IOPS, rel=0.01)
    assert bound.nodes == (fleet.DISK_NODE,)
    assert bound.busiest_device == "nvme1n1"
    assert set(fleet_input.claim_iops.items) == {ARCHIVE}, "only mounted claims have a bound"


def test_premium_moves_below_limit(fleet_input: RecommendInput) -> None:
    moves = found(fleet_input)
    storage = CATALOG.storage_price_per_gib_hour("aws", "us-east-1")

    assert moves["data-archive-0"].after == {"storage_class": "managed-csi"}
    assert moves["data-archive-0"].evidence["peak_iops_bound"] == pytest.approx(300, rel=0.01)
    assert moves["data-archive-0"].evidence["iops_limit"] == 500
    assert float(moves["data-archive-0"].savings.per_day) == pytest.approx(
        per_day(storage * 100) * 0.5, abs=1e-4
    )


def test_unmounted_claim_has_no_io(fleet_input: RecommendInput) -> None:
    old = found(fleet_input)["old-export"]

    assert old.evidence["peak_iops_bound"] == 0
    assert old.evidence["iops_source"] == "not mounted"


def test_busy_claim_stays_premium(fleet_input: RecommendInput) -> None:
    moves = found(fleet_input, iops_limits={"managed-csi": 250})

    assert "data-archive-0" not in moves
    assert "old-export" in moves


def test_claim_without_disk_metrics_stays(fleet_input: RecommendInput) -> None:
    bundle = replace(fleet_input, claim_iops=replace(fleet_input.claim_iops, items={}))

    assert "data-archive-0" not in found(bundle)


def test_gp2_needs_no_iops_check(fleet_input: RecommendInput) -> None:
    """gp3's baseline beats gp2 below 1 TiB, so gp2 moves need no disk metrics."""
    volumes = tuple(replace(item, storage_class="gp2") for item in fleet_input.volumes.items)
    bundle = replace(
        fleet_input,
        volumes=replace(fleet_input.volumes, items=volumes),
        claim_iops=replace(fleet_input.claim_iops, items={}),
    )
    moves = RECOMMENDERS.create("storage-class").recommend(bundle)

    assert {item.target.name for item in moves} == {"data-archive-0", "old-export"}
    assert all("iops_limit" not in item.evidence for item in moves)
