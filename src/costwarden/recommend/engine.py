"""Run the enabled recommenders, rank their proposals and total the savings once.

Two recommendations overlap when they name a common resource (a workload, a pool, a volume).
Overlapping changes draw on the same cost, so their savings do not add up: the total takes, in
each group of recommendations linked by shared resources, only the largest saving. That is a
lower bound of the combined effect, and never more than applying every change could save.
Changes that add cost (negative savings, such as a memory bump after an OOM kill) are left out
of that total and summed in ``added_cost_per_day``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from costwarden.config import RecommendSettings
from costwarden.domain.recommendation import LEVELS, Recommendation
from costwarden.errors import ConfigError
from costwarden.recommend.inputs import RecommendInput
from costwarden.recommend.registry import RECOMMENDERS, Recommender

logger = logging.getLogger(__name__)

DEFAULT_CPU_QUANTILE = 0.95
COMMIT_AFTER_CHANGES = frozenset({"commitments"})
"""Recommenders that run after the others, on the pools the others leave unchanged."""


@dataclass(frozen=True, slots=True)
class RecommendationReport:
    """Recommendations best first, and their savings per day counted without overlap.

    ``groups`` lists the ids of recommendations that share resources, each group once.
    """

    items: tuple[Recommendation, ...]
    total_per_day: Decimal
    added_cost_per_day: Decimal
    currency: str
    groups: tuple[tuple[str, ...], ...]
    inputs_empty: bool = False
    """True when the usage source returned no container, node or volume usage at all."""


class RecommendEngine:
    """The recommenders named in ``RecommendSettings``, built from the registry."""

    def __init__(self, settings: RecommendSettings) -> None:
        self.settings = settings
        unknown = sorted(set(settings.options) - set(RECOMMENDERS.names()))
        if unknown:
            valid = ", ".join(RECOMMENDERS.names())
            raise ConfigError(f"options given for unknown recommenders {unknown}; valid: {valid}")
        names = settings.enabled if settings.enabled is not None else RECOMMENDERS.names()
        self.recommenders: list[Recommender] = [
            RECOMMENDERS.create(name, settings.options.get(name)) for name in names
        ]

    @property
    def cpu_quantile(self) -> float:
        """Return the CPU quantile the workload requests recommender reads, or 0.95."""
        for recommender in self.recommenders:
            quantile = getattr(recommender, "cpu_quantile", None)
            if quantile is not None:
                return float(quantile)
        return DEFAULT_CPU_QUANTILE

    def run(self, bundle: RecommendInput) -> RecommendationReport:
        """Run every recommender. Commitments run last, on the pools no other change touches.

        A commitment on nodes that another recommendation removes, resizes, moves to Spot or
        schedules would contradict it, so those pools are left out of the commitment's input.
        Recommendations without a console link get their cluster's link.
        """
        found: list[Recommendation] = []
        last = [r for r in self.recommenders if r.name in COMMIT_AFTER_CHANGES]
        for recommender in [r for r in self.recommenders if r not in last]:
            found.extend(self._run_one(recommender, bundle))

        changed = {
            resource
            for item in found
            if item.target.kind == "MachinePool"
            for resource in item.resources
        }
        remaining = replace(
            bundle, pools=tuple(pool for pool in bundle.pools if pool.resource not in changed)
        )
        for recommender in last:
            found.extend(self._run_one(recommender, remaining))
        links = bundle.cluster_links()
        return summarise([_with_link(links, item) for item in found])

    @staticmethod
    def _run_one(recommender: Recommender, bundle: RecommendInput) -> list[Recommendation]:
        recommendations = recommender.recommend(bundle)
        logger.info(
            "recommender %s returned %d recommendations", recommender.name, len(recommendations)
        )
        return recommendations


def _with_link(links: dict[str, str], item: Recommendation) -> Recommendation:
    if item.ui_link is not None:
        return item
    link = links.get(item.target.cluster)
    return replace(item, ui_link=link) if link is not None else item


def rank(recommendations: Iterable[Recommendation]) -> list[Recommendation]:
    """Sort by savings per day, then confidence, then lower risk, then id for a stable order."""
    return sorted(
        recommendations,
        key=lambda item: (
            -item.savings.per_day,
            -LEVELS.index(item.confidence),
            LEVELS.index(item.risk),
            item.id,
        ),
    )


def summarise(recommendations: Sequence[Recommendation]) -> RecommendationReport:
    """Rank recommendations and total their savings, counting overlapping ones once."""
    ranked = rank(recommendations)
    groups = overlap_groups(ranked)
    total = Decimal(0)
    for group in groups:
        best = max(item.savings.per_day for item in group)
        total += max(best, Decimal(0))
    added = sum((-item.savings.per_day for item in ranked if item.savings.per_day < 0), Decimal(0))

    currencies = {item.savings.currency for item in ranked}
    if len(currencies) > 1:
        raise ConfigError(f"recommendations mix currencies {sorted(currencies)}; cannot total")
    return RecommendationReport(
        items=tuple(ranked),
        total_per_day=total,
        added_cost_per_day=added,
        currency=currencies.pop() if currencies else "USD",
        groups=tuple(tuple(item.id for item in group) for group in groups if len(group) > 1),
    )


def overlap_groups(recommendations: Sequence[Recommendation]) -> list[list[Recommendation]]:
    """Split recommendations into groups linked by shared resources (connected components)."""
    parent = list(range(len(recommendations)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    owner: dict[str, int] = {}
    for index, item in enumerate(recommendations):
        for resource in item.resources:
            if resource in owner:
                parent[root(index)] = root(owner[resource])
            else:
                owner[resource] = index

    groups: dict[int, list[Recommendation]] = {}
    for index, item in enumerate(recommendations):
        groups.setdefault(root(index), []).append(item)
    return list(groups.values())
