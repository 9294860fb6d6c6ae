"""Hourly CPU use per node from node-exporter, and the environment label of each node."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from costwarden.domain.usage import NodeKey
from costwarden.recommend.queries import BatchedQueries, template
from costwarden.sources.prometheus import PrometheusSource, promql

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
NODE_CPU_SECONDS = "node_cpu_seconds_total"
NODE_LABELS = "kube_node_labels"
ENVIRONMENT_LABELS = ("label_environment", "label_env")
"""Node labels ``environment`` and ``env`` as kube-state-metrics exports them; the first wins."""


@dataclass(frozen=True, slots=True)
class NodeHourlyCpu:
    """A node's mean non-idle CPU, in cores, in each whole UTC hour of the window with data.

    ``hours`` are the Unix start times of the hours and ``cores`` the means, in the same order.
    """

    node: NodeKey
    hours: tuple[float, ...]
    cores: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class HourlyCpuReport:
    """Hourly node CPU of a window, node environment labels and the PromQL sent."""

    items: tuple[NodeHourlyCpu, ...] = ()
    environments: Mapping[NodeKey, str] = field(default_factory=dict)
    queries: tuple[str, ...] = ()


def load_hourly_cpu(
    source: PrometheusSource,
    end: datetime,
    window: timedelta,
    clusters: Sequence[str] | None = None,
) -> HourlyCpuReport:
    """Read each node's mean busy cores per whole hour in the window, with a range query.

    The value at the end of each hour is ``rate()`` over that hour, so it is the hour's mean.
    The client splits the range into chunks of at most ``max_points_per_query`` points.
    """
    queries = BatchedQueries(source, end, window, clusters)
    node_label = source.settings.node_exporter_node_label
    by = f"{queries.cluster}, {node_label}"

    def busy(matchers: str) -> str:
        selector = promql.selector(NODE_CPU_SECONDS, 'mode!="idle"', matchers)
        return f"sum by ({by}) (rate({selector}[{promql.duration(HOUR)}]))"

    first_end, last_end = whole_hour_ends(end, window)
    batches = queries.plan(NODE_CPU_SECONDS, split_label=node_label)
    items = []
    if first_end <= last_end:
        for series in queries.run_range(batches, busy, first_end, last_end, HOUR):
            key = NodeKey(series.labels.get(queries.cluster, ""), series.labels.get(node_label, ""))
            hours = tuple(float(moment) - HOUR.total_seconds() for moment in series.timestamps)
            items.append(NodeHourlyCpu(key, hours, tuple(float(v) for v in series.values)))

    environments, label_query = _environments(queries)
    logger.info("read hourly CPU of %d nodes", len(items))
    return HourlyCpuReport(
        tuple(sorted(items, key=lambda item: item.node)),
        environments,
        (template(busy), label_query),
    )


def whole_hour_ends(end: datetime, window: timedelta) -> tuple[datetime, datetime]:
    """Return the ends of the first and last whole UTC hours inside ``[end - window, end]``."""
    seconds = HOUR.total_seconds()
    start = (end - window).timestamp()
    first_end = (start // seconds + (0 if start % seconds == 0 else 1)) * seconds + seconds
    last_end = end.timestamp() // seconds * seconds
    return datetime.fromtimestamp(first_end, UTC), datetime.fromtimestamp(last_end, UTC)


def _environments(queries: BatchedQueries) -> tuple[dict[NodeKey, str], str]:
    """Return each node's ``environment`` or ``env`` label value, where a node has one."""
    labels = ", ".join(ENVIRONMENT_LABELS)
    batches = queries.plan(NODE_LABELS, split_label="node")

    def build(matchers: str) -> str:
        selector = promql.selector(NODE_LABELS, matchers)
        return (
            f"max by ({queries.cluster}, node, {labels}) "
            f"(last_over_time({selector}[{queries.range}]))"
        )

    found: dict[NodeKey, str] = {}
    for sample in queries.run(batches, build):
        value = next((sample.labels[n] for n in ENVIRONMENT_LABELS if sample.labels.get(n)), None)
        if value:
            key = NodeKey(sample.labels.get(queries.cluster, ""), sample.labels.get("node", ""))
            found[key] = value
    return found, template(build)
