"""The engine: building recommenders from settings, ranking, and totals without double counting."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from pydantic import ValidationError
from recommend_expected import gp2_bundle

from costwarden.config import RecommendSettings
from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.errors import ConfigError
from costwarden.recommend import RECOMMENDERS, RecommendEngine, RecommendInput, summarise


def proposal(name: str, per_day: str, resources: set[str]) -> Recommendation:
    return Recommendation(
        kind="test",
        title=name,
        target=Target("c", "Deployment", name, "ns"),
        before={"cpu_cores": 1.0},
        after={"cpu_cores": 0.5},
        savings=Savings(Decimal(per_day), "USD", "fixed"),
        confidence="high",
        risk="low",
        risk_note="",
        effort="low",
        reversible=True,
        resources=frozenset(resources),
    )


def test_overlap_counts_largest_once() -> None:
    report = summarise(
        [
            proposal("requests", "3", {"workload:a", "pool:p"}),
            proposal("pool", "5", {"pool:p"}),
            proposal("volume", "2", {"volume:v"}),
        ]
    )

    assert report.total_per_day == Decimal(7), "the pool change counts once: 5 + 2"
    assert len(report.groups) == 1
    assert len(report.groups[0]) == 2


def test_overlap_is_transitive() -> None:
    report = summarise(
        [
            proposal("a", "1", {"x"}),
            proposal("b", "4", {"x", "y"}),
            proposal("c", "2", {"y"}),
        ]
    )

    assert report.total_per_day == Decimal(4)


def test_costs_kept_out_of_total() -> None:
    report = summarise([proposal("bump", "-1.5", {"workload:r"}), proposal("cut", "2", {"v"})])

    assert report.total_per_day == Decimal(2)
    assert report.added_cost_per_day == Decimal("1.5")


def test_rank_best_first() -> None:
    report = summarise(
        [proposal("small", "1", {"a"}), proposal("cost", "-1", {"b"}), proposal("big", "9", {"c"})]
    )

    assert [item.title for item in report.items] == ["big", "small", "cost"]


def test_id_stable_and_change_specific() -> None:
    first = proposal("api", "1", {"a"})
    again = proposal("api", "2", {"a"})
    other = replace(first, after={"cpu_cores": 0.25})

    assert first.id == again.id
    assert first.id != other.id
    assert len(first.id) == 16


def test_volume_deleted_or_moved_counts_once(fleet_input: RecommendInput) -> None:
    """A gp2 claim that no pod mounts gets both a delete and a gp3 move; only the delete counts."""
    settings = RecommendSettings(enabled=["idle-volumes", "storage-class"])
    report = RecommendEngine(settings).run(gp2_bundle(fleet_input))
    idle = {item.target.name: item for item in report.items if item.kind == "idle-volumes"}

    assert len(report.items) == 4
    assert len(report.groups) == 2
    expected = idle["old-export"].savings.per_day + idle["data-archive-0"].savings.per_day
    assert report.total_per_day == expected


def test_whole_fleet_runs_every_recommender(fleet_input: RecommendInput) -> None:
    report = RecommendEngine(RecommendSettings()).run(fleet_input)
    kinds = {item.kind for item in report.items}

    assert kinds == {
        "gpu-misuse",
        "idle-load-balancers",
        "idle-volumes",
        "node-pool",
        "off-hours-schedule",
        "workload-requests",
    }
    assert report.items[0].kind == "gpu-misuse"


def test_no_commitment_on_changed_pools(fleet_input: RecommendInput) -> None:
    """Every pool with steady nodes gets another change, so nothing is left to commit."""
    alone = RecommendEngine(RecommendSettings(enabled=["commitments"])).run(fleet_input)
    everything = RecommendEngine(RecommendSettings()).run(fleet_input)

    committed = {r for item in alone.items for r in item.resources}
    changed = {
        r for item in everything.items if item.target.kind == "MachinePool" for r in item.resources
    }
    assert committed
    assert committed <= changed
    assert not [item for item in everything.items if item.kind == "commitments"]


def test_requests_and_pool_counted_once(fleet_input: RecommendInput) -> None:
    """Rightsizing api and shrinking the general pool it runs on save the same money."""
    settings = RecommendSettings(enabled=["workload-requests", "node-pool"])
    report = RecommendEngine(settings).run(fleet_input)
    by_target = {(item.target.cluster, item.target.name): item for item in report.items}
    general, api = by_target[("prod-eks", "general")], by_target[("prod-eks", "api")]
    group = next(group for group in report.groups if general.id in group)

    assert api.id in group
    positive = sum((item.savings.per_day for item in report.items if item.savings.per_day > 0), 0)
    assert report.total_per_day < positive
    assert report.total_per_day >= general.savings.per_day


def test_total_is_max_per_group(fleet_input: RecommendInput) -> None:
    report = RecommendEngine(RecommendSettings()).run(fleet_input)
    by_id = {item.id: item for item in report.items}
    grouped = {item_id for group in report.groups for item_id in group}
    alone = sum(
        (
            item.savings.per_day
            for item in report.items
            if item.id not in grouped and item.savings.per_day > 0
        ),
        Decimal(0),
    )
    linked = sum(
        (max(max(by_id[i].savings.per_day for i in group), Decimal(0)) for group in report.groups),
        Decimal(0),
    )

    assert report.groups, "node-pool links pools to the workloads it packs"
    assert report.total_per_day == alone + linked


def test_unknown_recommender_lists_names() -> None:
    expected = "valid names: commitments, gpu-misuse, idle-load-balancers, idle-pools"
    with pytest.raises(ConfigError, match=expected):
        RecommendEngine(RecommendSettings(enabled=["gpu-missuse"]))


def test_options_for_unknown_recommender() -> None:
    with pytest.raises(ConfigError, match="unknown recommenders"):
        RecommendEngine(RecommendSettings(options={"rightsizing": {}}))


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("workload-requests", {"cpu_percentile": 0}),
        ("workload-requests", {"cpu_percentil": 90}),
        ("idle-pools", {"max_cpu_percent": 150}),
        ("gpu-misuse", {"taint_effect": "Never"}),
    ],
)
def test_invalid_options_rejected(name: str, options: dict) -> None:
    with pytest.raises(ConfigError, match=f"invalid options for recommender '{name}'"):
        RECOMMENDERS.create(name, options)


def test_invalid_option_names_setting_path() -> None:
    with pytest.raises(ConfigError) as raised:
        RECOMMENDERS.create("idle-pools", {"bogus_option": 3})

    assert "recommend.options.idle-pools.bogus_option" in str(raised.value)
    assert "Valid options: max_cpu_percent" in str(raised.value)


def test_percentile_reaches_loader() -> None:
    engine = RecommendEngine(
        RecommendSettings(options={"workload-requests": {"cpu_percentile": 90}})
    )

    assert engine.cpu_quantile == pytest.approx(0.9)


def test_history_longer_than_window_rejected() -> None:
    with pytest.raises(ValidationError, match="must not exceed window_days"):
        RecommendSettings(window_days=3, min_history_days=7)


@pytest.mark.parametrize("name", RECOMMENDERS.names())
def test_every_recommender_documents_method(name: str) -> None:
    spec = RECOMMENDERS.spec(name)

    assert "Method:" in (spec.factory.__doc__ or "")
    assert spec.settings_class.model_config.get("extra") == "forbid"
    assert spec.description
