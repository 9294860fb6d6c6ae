"""The steps every usage query shares: scope matchers, batching, owners, history and results.

A usage query first sizes its work with one ``count by (cluster, namespace)`` query over the
window, in which ``last_over_time`` counts every series that had a sample. It packs the
namespaces into batches of at most ``max_series_per_query`` series. Then it runs each PromQL
expression once per batch, concurrently, and the client bounds how many requests are in flight.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio

from costwarden.config import PrometheusSettings
from costwarden.domain.usage import ShortHistory, UsageKey, UsageResult
from costwarden.sources.prometheus import metrics, promql
from costwarden.sources.prometheus.batching import Batch, pack_batches
from costwarden.sources.prometheus.client import AsyncPrometheusClient, RangeSeries, Sample
from costwarden.sources.prometheus.workloads import OwnerIndex

ItemT = TypeVar("ItemT")
KeyT = TypeVar("KeyT", bound=UsageKey)
BuildExpr = Callable[[str], str]
"""Builds a PromQL expression from the label matchers of one batch."""

BATCH_PLACEHOLDER = "..."
"""Stands for a batch's label matchers in the expressions a result records."""


@dataclass(frozen=True, slots=True)
class Window:
    """The time range ``[start, end]`` a usage query reads."""

    start: datetime
    end: datetime

    @classmethod
    def ending(cls, end: datetime, span: timedelta) -> Window:
        if end.tzinfo is None:
            raise ValueError(f"naive datetime {end!r}: pass a timezone-aware UTC datetime")
        if span <= timedelta(0):
            raise ValueError(f"the window must be positive, got {span}")
        return cls(end - span, end)

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def range(self) -> str:
        """The window as a PromQL duration, such as ``604800s``."""
        return promql.duration(self.span)


@dataclass(frozen=True, slots=True)
class Scope:
    """Clusters and namespaces a query is limited to. None means all of them."""

    clusters: tuple[str, ...] | None = None
    namespaces: tuple[str, ...] | None = None

    @classmethod
    def of(cls, clusters: Iterable[str] | None, namespaces: Iterable[str] | None) -> Scope:
        return cls(
            tuple(clusters) if clusters is not None else None,
            tuple(namespaces) if namespaces is not None else None,
        )

    def matchers(self, cluster_label: str, *, namespaced: bool = True) -> str:
        parts = []
        if self.clusters is not None:
            parts.append(_one_of_or_nothing(cluster_label, self.clusters))
        if namespaced and self.namespaces is not None:
            parts.append(_one_of_or_nothing("namespace", self.namespaces))
        return promql.join(*parts)


def _one_of_or_nothing(label: str, values: tuple[str, ...]) -> str:
    # An empty list selects nothing: no label value matches this regular expression.
    return promql.one_of(label, values) if values else f'{label}=~"$^"'


class QueryEngine:
    """Runs batched PromQL for the usage queries of one ``AsyncPrometheusSource``."""

    def __init__(self, client: AsyncPrometheusClient) -> None:
        self.client = client
        self.settings: PrometheusSettings = client.settings
        self.cluster = client.settings.cluster_label
        self._owners: tuple[Window, OwnerIndex, set[tuple[str, str | None]]] | None = None
        self.memo: dict[tuple[object, ...], Any] = {}
        """Results that several query families share, for the window of the latest call."""
        self._memo_window: Window | None = None

    def remember(self, key: tuple[object, ...], window: Window, value: Any) -> None:
        """Keep a shared result; results of other windows are dropped first."""
        if self._memo_window != window:
            self.memo.clear()
            self._memo_window = window
        self.memo[key] = value

    @property
    def step(self) -> str:
        return promql.duration(self.settings.step_seconds)

    @property
    def rate_window(self) -> str:
        return promql.duration(self.settings.rate_window_seconds)

    async def plan(
        self, metric: str, base: str, window: Window, scope: Scope, split_label: str = "namespace"
    ) -> list[Batch]:
        """Size the series of ``metric{base}`` per cluster and ``split_label`` and batch them."""
        namespaced = split_label == "namespace"
        selector = promql.selector(
            metric, base, scope.matchers(self.cluster, namespaced=namespaced)
        )
        expr = (
            f"count by ({self.cluster}, {split_label}) (last_over_time({selector}[{window.range}]))"
        )
        samples = await self.client.query(expr, window.end)
        counts = {
            (sample.labels.get(self.cluster, ""), sample.labels.get(split_label, "")): int(
                sample.value
            )
            for sample in samples
        }
        # Batches of whole clusters name no namespaces, so a namespace scope needs them named.
        return pack_batches(
            counts,
            cluster_label=self.cluster,
            label=split_label,
            max_series=self.settings.max_series_per_query,
            whole_clusters=not (namespaced and scope.namespaces is not None),
        )

    async def run(self, batches: list[Batch], build: BuildExpr, at: datetime) -> list[Sample]:
        """Evaluate ``build(matchers)`` at ``at`` for every batch and join the samples."""
        results: list[list[Sample]] = [[] for _ in batches]

        async def evaluate(index: int, batch: Batch) -> None:
            results[index] = await self.client.query(build(batch.matchers), at)

        async with anyio.create_task_group() as group:
            for index, batch in enumerate(batches):
                group.start_soon(evaluate, index, batch)
        return [sample for found in results for sample in found]

    async def run_range(
        self, batches: list[Batch], build: BuildExpr, window: Window, step: timedelta
    ) -> list[RangeSeries]:
        """Evaluate ``build(matchers)`` over the window every ``step`` for every batch."""
        results: list[list[RangeSeries]] = [[] for _ in batches]

        async def evaluate(index: int, batch: Batch) -> None:
            expr = build(batch.matchers)
            results[index] = await self.client.query_range(expr, window.start, window.end, step)

        async with anyio.create_task_group() as group:
            for index, batch in enumerate(batches):
                group.start_soon(evaluate, index, batch)
        return [series for found in results for series in found]

    async def series(
        self, batches: list[Batch], metric_names: list[str], window: Window
    ) -> list[dict[str, str]]:
        """Return the label sets of ``metric_names`` in every batch during the window."""
        found: list[list[dict[str, str]]] = [[] for _ in batches]

        async def read(position: int, batch: Batch) -> None:
            matchers = [promql.selector(name, batch.matchers) for name in metric_names]
            found[position] = await self.client.series(matchers, window.start, window.end)

        async with anyio.create_task_group() as group:
            for position, batch in enumerate(batches):
                group.start_soon(read, position, batch)
        return [labels for label_sets in found for labels in label_sets]

    async def owners(self, batches: list[Batch], window: Window) -> OwnerIndex:
        """Read the pod, ReplicaSet and Job owners of every batch's namespaces in the window.

        The owners read for one window are kept, so that the query families of one pass read
        each cluster's owners once. A call for another window starts afresh.
        """
        if self._owners is None or self._owners[0] != window:
            self._owners = (window, OwnerIndex(self.cluster), set())
        _, index, covered = self._owners
        missing = [batch for batch in batches if not _covered(batch, covered)]
        if not missing:
            return index

        adders = {
            metrics.KUBE_POD_OWNER: index.add_pod_owner,
            metrics.KUBE_REPLICASET_OWNER: index.add_replicaset_owner,
            metrics.KUBE_JOB_OWNER: index.add_job_owner,
        }
        for labels in await self.series(missing, list(adders), window):
            adders[labels["__name__"]](labels)
        for batch in missing:
            if batch.whole:
                covered.update((cluster, None) for cluster in batch.clusters)
            else:
                covered.update((batch.clusters[0], value) for value in batch.values)
        return index

    def first_seen_expr(self, selector: str, by: str, window: Window) -> str:
        """Return PromQL for the time of each group's oldest sample in the window."""
        return f"min by ({by}) (min_over_time(timestamp({selector})[{window.range}:{self.step}]))"

    def pod_labels(self, sample: Sample) -> tuple[str, str, str]:
        labels = sample.labels
        return labels.get(self.cluster, ""), labels.get("namespace", ""), labels.get("pod", "")


def _covered(batch: Batch, covered: set[tuple[str, str | None]]) -> bool:
    """Return whether the owners of every cluster and value of the batch were read already."""
    if batch.label != "namespace":
        return False
    if all((cluster, None) in covered for cluster in batch.clusters):
        return True
    return not batch.whole and all((batch.clusters[0], value) in covered for value in batch.values)


async def gather(*calls: Awaitable[Any]) -> list[Any]:
    """Await ``calls`` concurrently and return their results in order."""
    results: list[Any] = [None] * len(calls)

    async def wait(index: int, call: Awaitable[Any]) -> None:
        results[index] = await call

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(wait, index, call)
    return results


def template(build: BuildExpr) -> str:
    """Return the expression a batch runs, with its label matchers shown as ``...``."""
    return build(BATCH_PLACEHOLDER)


def split_by_history(
    found: Mapping[KeyT, ItemT],
    first_seen: Mapping[KeyT, float],
    window: Window,
    min_history: timedelta,
) -> tuple[list[ItemT], list[ShortHistory]]:
    """Keep the items with at least ``min_history`` of data before the window's end.

    An item without a first-seen time has no samples of the history metric, so it counts as
    having none.
    """
    long_enough: list[ItemT] = []
    short: list[ShortHistory] = []
    for key in sorted(found):  # type: ignore[type-var]
        seen = first_seen.get(key)
        first = promql.from_timestamp(seen) if seen is not None else window.end
        history = window.end - max(first, window.start)
        if history >= min_history:
            long_enough.append(found[key])
        else:
            short.append(ShortHistory(key, first, history, min_history))
    return long_enough, short


def result(
    items: Iterable[ItemT],
    short: Iterable[ShortHistory],
    window: Window,
    min_history: timedelta,
    queries: Iterable[str],
) -> UsageResult[ItemT]:
    return UsageResult(
        items=tuple(items),
        short_history=tuple(short),
        start=window.start,
        end=window.end,
        min_history=min_history,
        queries=tuple(queries),
    )
