"""The recommenders against the simulator's planted waste, read from a real Prometheus.

A recommendation is matched to planted waste by recommender name, cluster and target. The run
must find at least 95% of the planted savings in dollars, with at most 5% of recommendations
wrong (targeting something with no planted waste of that kind), and each matched estimate
within 10% of the planted figure. Kinds whose recommender is not registered are reported as
missing and left out of the totals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from prometheus_fixtures import WASTE_END, PrometheusServer
from recommend_expected import fleet_settings

from costwarden.config import PaletteSettings, RecommendSettings, Settings
from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.recommend import (
    RECOMMENDERS,
    RecommendationReport,
    RecommendEngine,
    RecommendInput,
    load_input,
)
from costwarden.recommend.palette_pools import with_palette_inputs
from costwarden.recommend.storage import StorageClassSettings
from costwarden.simulator import SimulatorServer, SimulatorSettings
from costwarden.simulator.waste import PLANTED_WASTE, PlantedWaste
from costwarden.simulator.waste_plans import COMMITMENTS_HELD, WASTE_CLUSTERS
from costwarden.sources.prices import PriceCatalog
from costwarden.sources.prometheus import PrometheusSource

WINDOW = timedelta(days=7)
MIN_FOUND_SHARE = Decimal("0.95")
MAX_WRONG_SHARE = 0.05
MAX_ESTIMATE_ERROR = Decimal("0.10")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod"}


@dataclass
class KindScore:
    """Planted and found savings of one recommender, and its unmatched recommendations."""

    planted: Decimal = Decimal(0)
    found: Decimal = Decimal(0)
    matched: int = 0
    wrong: list[str] = field(default_factory=list)
    imprecise: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    recommendations: int = 0
    missing: bool = False
    worst_error: Decimal = Decimal(0)

    def line(self, kind: str) -> str:
        if self.missing:
            return f"{kind}: planted, recommender missing (${self.planted}/day left out)"
        return (
            f"{kind}: found ${self.found:.2f} of ${self.planted:.2f}/day, "
            f"{self.matched} matched (worst estimate off by {self.worst_error:.1%}), "
            f"{len(self.wrong)} wrong {self.wrong}, "
            f"missed {self.missed}, off by more than 10% {self.imprecise}"
        )


def target_key(target: Target) -> str:
    """Return the planted-waste target string of a recommendation's target."""
    if target.kind in WORKLOAD_KINDS:
        return f"{target.namespace}/{target.kind}/{target.name}"
    if target.namespace:
        return f"{target.namespace}/{target.name}"
    return target.name


def recommender_present(planted: PlantedWaste) -> bool:
    """Return whether a recommender that can find this piece of waste is registered."""
    if planted.kind not in RECOMMENDERS.names():
        return False
    if planted.kind == "storage-class":
        claim = next(
            volume
            for plan in WASTE_CLUSTERS
            if plan.name == planted.cluster
            for volume in plan.volumes
            if f"{volume.namespace}/{volume.claim}" == planted.target
        )
        return claim.storage_class in StorageClassSettings().conversions
    return True


def score(items: tuple[Recommendation, ...]) -> dict[str, KindScore]:
    planted = {item.key: item for item in PLANTED_WASTE}
    scores: dict[str, KindScore] = defaultdict(KindScore)
    matched: set[tuple[str, str, str]] = set()
    for item in items:
        key = (item.kind, item.target.cluster, target_key(item.target))
        kind = scores[item.kind]
        kind.recommendations += 1
        truth = planted.get(key)
        if truth is None:
            kind.wrong.append(f"{key[1]}/{key[2]} ${item.savings.per_day}")
            continue
        matched.add(key)
        kind.matched += 1
        if truth.savings_per_day > 0:
            kind.found += min(item.savings.per_day, truth.savings_per_day)
        error = abs(item.savings.per_day - truth.savings_per_day) / abs(truth.savings_per_day)
        kind.worst_error = max(kind.worst_error, error)
        if error > MAX_ESTIMATE_ERROR:
            kind.imprecise.append(
                f"{key[1]}/{key[2]} ${item.savings.per_day} vs ${truth.savings_per_day}"
            )

    for key, truth in planted.items():
        kind = scores[truth.kind]
        if not recommender_present(truth):
            kind.missing = kind.missing or truth.kind not in RECOMMENDERS.names()
            kind.planted += max(truth.savings_per_day, Decimal(0))
            if truth.kind in RECOMMENDERS.names():
                kind.missed.append(f"{key[1]}/{key[2]} (class not converted)")
            continue
        kind.planted += max(truth.savings_per_day, Decimal(0))
        if key not in matched:
            kind.missed.append(f"{key[1]}/{key[2]}")
    return scores


def _waste_bundle(url: str, engine: RecommendEngine) -> RecommendInput:
    with PrometheusSource(fleet_settings(url)) as source:
        return load_input(
            source,
            end=WASTE_END,
            window=WINDOW,
            min_history=WINDOW,
            cpu_quantile=engine.cpu_quantile,
            prices=PriceCatalog.packaged(),
        )


@pytest.fixture(scope="module", params=["prometheus", "prometheus+palette"])
def waste_report(
    request: pytest.FixtureRequest, waste_prometheus_server: PrometheusServer
) -> Iterator[RecommendationReport]:
    """Recommendations from the planted metrics, with pools and prices from Palette or without."""
    settings = RecommendSettings(options={"commitments": {"covered": COMMITMENTS_HELD}})
    engine = RecommendEngine(settings)
    bundle = _waste_bundle(waste_prometheus_server.url, engine)
    if request.param == "prometheus":
        yield engine.run(bundle)
        return

    simulated = SimulatorSettings(seed=0, as_of=WASTE_END.isoformat(), waste_clusters=True)
    with SimulatorServer(simulated) as simulator:
        palette = PaletteSettings(url=simulator.url, api_key=simulator.api_key, max_retries=0)
        names = [plan.name for plan in WASTE_CLUSTERS]
        merged = with_palette_inputs(
            bundle, Settings(palette=palette, recommend=settings), clusters=names
        )
    assert all(pool.from_palette for pool in merged.pools)
    report = engine.run(merged)
    pool_calls = [item.api_call for item in report.items if item.target.kind == "MachinePool"]
    assert pool_calls and all(call is None or call.complete for call in pool_calls)
    yield report


def test_planted_waste_found(waste_report: RecommendationReport) -> None:
    scores = score(waste_report.items)
    report = "\n".join(scores[kind].line(kind) for kind in sorted(scores))
    counted = [item for item in scores.values() if not item.missing]
    planted = sum((item.planted for item in counted), Decimal(0))
    found = sum((item.found for item in counted), Decimal(0))
    recommendations = sum(item.recommendations for item in counted)
    wrong = sum(len(item.wrong) for item in counted)

    assert found >= planted * MIN_FOUND_SHARE, f"found ${found} of ${planted}/day:\n{report}"
    assert wrong <= recommendations * MAX_WRONG_SHARE, f"{wrong} wrong:\n{report}"
    imprecise = [entry for item in counted for entry in item.imprecise]
    assert not imprecise, f"estimates off by more than 10%:\n{report}"


def test_planted_waste_every_kind_matched(waste_report: RecommendationReport) -> None:
    scores = score(waste_report.items)
    report = "\n".join(scores[kind].line(kind) for kind in sorted(scores))
    missed = {
        kind: item.missed for kind, item in scores.items() if item.missed and not item.missing
    }

    assert not missed, f"planted waste not found:\n{report}"


def fabricated(kind: str, target: Target, per_day: str) -> Recommendation:
    return Recommendation(
        kind=kind,
        title="fabricated",
        target=target,
        before={},
        after={},
        savings=Savings(Decimal(per_day), "USD", "fixed"),
        confidence="high",
        risk="low",
        risk_note="",
        effort="low",
        reversible=True,
        resources=frozenset({f"{kind}:{target.name}"}),
    )


def test_score_counts_wrong_and_imprecise() -> None:
    truth = next(item for item in PLANTED_WASTE if item.kind == "idle-pools")
    items = (
        fabricated("idle-pools", Target(truth.cluster, "MachinePool", truth.target),
                   str(truth.savings_per_day * Decimal("1.2"))),
        fabricated("idle-pools", Target(truth.cluster, "MachinePool", "apps-pool"), "5"),
    )  # fmt: skip

    scores = score(items)

    assert scores["idle-pools"].matched == 1
    assert scores["idle-pools"].wrong == [f"{truth.cluster}/apps-pool $5"]
    assert len(scores["idle-pools"].imprecise) == 1
    assert scores["idle-pools"].found == truth.savings_per_day
    assert scores["spot"].missed
