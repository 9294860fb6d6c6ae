"""Batched PromQL for the inputs that only the recommenders read.

``BatchedQueries`` keeps the window and clusters of one recommendation run and sends its
queries through the Prometheus source's own batching: one ``count by`` query counts the series
of a metric per cluster and split label, the label values are packed into batches of at most
``max_series_per_query`` series, and each expression runs once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from costwarden.sources.prometheus import PrometheusSource, promql
from costwarden.sources.prometheus.batching import Batch
from costwarden.sources.prometheus.client import RangeSeries, Sample
from costwarden.sources.prometheus.engine import BuildExpr, template

__all__ = ["BatchedQueries", "BuildExpr", "template"]


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
        return self.source.plan(
            metric,
            base,
            end=self.end,
            window=self.window,
            clusters=self.clusters,
            split_label=split_label,
        )

    def run(self, batches: list[Batch], build: BuildExpr) -> list[Sample]:
        """Evaluate ``build(matchers)`` at the window's end for every batch."""
        return self.source.run_batches(batches, build, self.end)

    def run_range(
        self,
        batches: list[Batch],
        build: BuildExpr,
        start: datetime,
        end: datetime,
        step: timedelta,
    ) -> list[RangeSeries]:
        """Evaluate ``build(matchers)`` every ``step`` from ``start`` to ``end`` for every batch."""
        return self.source.run_batches_range(batches, build, start, end, step)
