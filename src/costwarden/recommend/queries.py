"""Batched PromQL for the inputs that only the recommenders read.

``BatchedQueries`` sizes its work the way the Prometheus source does. One ``count by`` query
counts the series of a metric per cluster and split label in the window. The label values are
packed into batches of at most ``max_series_per_query`` series, and each expression runs once
per batch. The client splits range queries into chunks of at most ``max_points_per_query``
points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from costwarden.sources.prometheus import PrometheusSource, promql
from costwarden.sources.prometheus.batching import Batch, pack_batches
from costwarden.sources.prometheus.client import RangeSeries, Sample

BuildExpr = Callable[[str], str]
"""Builds a PromQL expression from the label matchers of one batch."""


class BatchedQueries:
    """Batched instant and range queries over the window ``[end - window, end]``."""

    def __init__(
        self,
        source: PrometheusSource,
        end: datetime,
        window: timedelta,
        clusters: Sequence[str] | None = None,
    ) -> None:
        self.source = source
        self.end = end
        self.window = window
        self.cluster = source.settings.cluster_label
        self.clusters = tuple(clusters) if clusters is not None else None

    @property
    def range(self) -> str:
        """The window as a PromQL duration."""
        return promql.duration(self.window)

    @property
    def rate_window(self) -> str:
        return promql.duration(self.source.settings.rate_window_seconds)

    @property
    def step(self) -> str:
        return promql.duration(self.source.settings.step_seconds)

    def plan(self, metric: str, split_label: str = "namespace", base: str = "") -> list[Batch]:
        """Count the series of ``metric{base}`` per cluster and ``split_label`` and batch them."""
        scope = ""
        if self.clusters is not None:
            # An empty list selects nothing: no cluster name matches this regular expression.
            scope = (
                promql.one_of(self.cluster, self.clusters)
                if self.clusters
                else f'{self.cluster}=~"$^"'
            )
        selector = promql.selector(metric, base, scope)
        expr = (
            f"count by ({self.cluster}, {split_label}) (last_over_time({selector}[{self.range}]))"
        )
        counts = {
            (sample.labels.get(self.cluster, ""), sample.labels.get(split_label, "")): int(
                sample.value
            )
            for sample in self.source.query(expr, self.end)
        }
        return pack_batches(
            counts,
            cluster_label=self.cluster,
            label=split_label,
            max_series=self.source.settings.max_series_per_query,
        )

    def run(self, batches: list[Batch], build: BuildExpr) -> list[Sample]:
        """Evaluate ``build(matchers)`` at the window's end for every batch."""
        found: list[Sample] = []
        for batch in batches:
            found.extend(self.source.query(build(batch.matchers), self.end))
        return found

    def run_range(
        self,
        batches: list[Batch],
        build: BuildExpr,
        start: datetime,
        end: datetime,
        step: timedelta,
    ) -> list[RangeSeries]:
        """Evaluate ``build(matchers)`` every ``step`` from ``start`` to ``end`` for every batch."""
        found: list[RangeSeries] = []
        for batch in batches:
            found.extend(self.source.query_range(build(batch.matchers), start, end, step))
        return found


def template(build: BuildExpr) -> str:
    """Return the expression a batch runs, with its label matchers shown as ``...``."""
    return build("...")
