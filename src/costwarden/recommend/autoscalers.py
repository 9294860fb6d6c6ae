"""The CPU utilisation targets of HorizontalPodAutoscalers, from kube-state-metrics."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from costwarden.recommend.queries import BatchedQueries, template
from costwarden.sources.prometheus import PrometheusSource, promql

logger = logging.getLogger(__name__)

HPA_TARGET_METRIC = "kube_horizontalpodautoscaler_spec_target_metric"
CPU_UTILISATION = 'metric_name="cpu",metric_target_type="utilization"'

HpaKey = tuple[str, str, str]
"""Cluster, namespace and name of a HorizontalPodAutoscaler."""


@dataclass(frozen=True, slots=True)
class HpaTargets:
    """Each HPA's target CPU utilisation in percent of the pods' CPU requests."""

    cpu_percent: Mapping[HpaKey, float] = field(default_factory=dict)
    queries: tuple[str, ...] = ()


def load_hpa_targets(
    source: PrometheusSource,
    end: datetime,
    window: timedelta,
    clusters: Sequence[str] | None = None,
) -> HpaTargets:
    """Read the last CPU utilisation target of every HPA in the window."""
    queries = BatchedQueries(source, end, window, clusters)
    by = f"{queries.cluster}, namespace, horizontalpodautoscaler"

    def build(matchers: str) -> str:
        selector = promql.selector(HPA_TARGET_METRIC, CPU_UTILISATION, matchers)
        return f"max by ({by}) (last_over_time({selector}[{queries.range}]))"

    batches = queries.plan(HPA_TARGET_METRIC, base=CPU_UTILISATION)
    found = {}
    for sample in queries.run(batches, build):
        labels = sample.labels
        key = (labels.get(queries.cluster, ""), labels.get("namespace", ""),
               labels.get("horizontalpodautoscaler", ""))  # fmt: skip
        found[key] = sample.value
    logger.info("read CPU targets of %d HorizontalPodAutoscalers", len(found))
    return HpaTargets(found, (template(build),))
