"""Split work so that no request exceeds what Prometheus returns in one response.

Two limits apply. A range query may return at most ``max_points_per_query`` points per series,
so a long range is split into consecutive time chunks on the same step grid. A query may return
at most ``max_series_per_query`` series, so a query over many namespaces (or nodes) is split into
groups of label values, sized by counting each value's series first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from costwarden.sources.prometheus import promql

logger = logging.getLogger(__name__)


def time_chunks(
    start: float, end: float, step: float, max_points: int
) -> list[tuple[float, float]]:
    """Split ``[start, end]`` into ranges of at most ``max_points`` evaluation steps each.

    Times are Unix seconds. Each chunk starts one ``step`` after the previous one ends, so the
    chunks evaluate at exactly the times the whole range would.
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")

    span = (max_points - 1) * step
    chunks: list[tuple[float, float]] = []
    chunk_start = start
    while chunk_start <= end:
        chunk_end = min(chunk_start + span, end)
        chunks.append((chunk_start, chunk_end))
        chunk_start = chunk_end + step
    return chunks


def points_in(start: float, end: float, step: float) -> int:
    """Return how many evaluation steps Prometheus makes from ``start`` to ``end``."""
    return math.floor((end - start) / step + 1e-9) + 1


MAX_CLUSTERS_PER_BATCH = 100
"""Clusters one query may name, which keeps the cluster matcher short."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Clusters and label values that one query covers, and the series they are expected to hold.

    A batch holds either several whole clusters (``values`` then lists every value they have,
    and the matchers name only the clusters) or part of the values of one large cluster.
    ``matchers`` is the comma-separated label matcher list that selects the batch.
    """

    clusters: tuple[str, ...]
    label: str
    values: tuple[str, ...]
    series: int
    matchers: str
    whole: bool = False
    """True when the batch selects every series of its clusters."""


def pack_batches(
    counts: Mapping[tuple[str, str], int],
    *,
    cluster_label: str,
    label: str,
    max_series: int,
    whole_clusters: bool = True,
) -> list[Batch]:
    """Pack ``(cluster, value) -> series`` counts into batches of at most ``max_series`` series.

    With ``whole_clusters``, clusters whose series fit in one query are packed whole, several
    to a query, and their batches select every value. That needs ``counts`` to hold every value
    of the metric queried. Other clusters are split by ``label``: their values are placed largest
    first into the first batch with room (first fit decreasing). A single value with more series
    than the limit gets a batch of its own, and a warning, because it cannot be split by this
    label.
    """
    by_cluster: dict[str, list[tuple[str, int]]] = {}
    for (cluster, value), count in counts.items():
        by_cluster.setdefault(cluster, []).append((value, count))

    batches: list[Batch] = []
    whole: list[tuple[str, int]] = []
    for cluster in sorted(by_cluster):
        total = sum(count for _, count in by_cluster[cluster])
        if whole_clusters and total <= max_series:
            whole.append((cluster, total))
            continue
        for values, series in _first_fit(by_cluster[cluster], max_series, cluster, label):
            matchers = promql.join(
                promql.equals(cluster_label, cluster), promql.one_of(label, values)
            )
            batches.append(Batch((cluster,), label, tuple(sorted(values)), series, matchers))

    for clusters, series in _pack_clusters(whole, max_series):
        values = sorted({value for cluster in clusters for value, _ in by_cluster[cluster]})
        matchers = promql.one_of(cluster_label, clusters)
        batches.append(
            Batch(tuple(sorted(clusters)), label, tuple(values), series, matchers, whole=True)
        )
    return batches


def _pack_clusters(
    clusters: list[tuple[str, int]], max_series: int
) -> list[tuple[list[str], int]]:
    """Group whole clusters, largest first, into bins of at most ``max_series`` series."""
    bins: list[tuple[list[str], int]] = []
    for cluster, count in sorted(clusters, key=lambda item: (-item[1], item[0])):
        for index, (names, total) in enumerate(bins):
            if total + count <= max_series and len(names) < MAX_CLUSTERS_PER_BATCH:
                names.append(cluster)
                bins[index] = (names, total + count)
                break
        else:
            bins.append(([cluster], count))
    return bins


def _first_fit(
    items: Iterable[tuple[str, int]], max_series: int, cluster: str, label: str
) -> list[tuple[list[str], int]]:
    bins: list[tuple[list[str], int]] = []
    for value, count in sorted(items, key=lambda item: (-item[1], item[0])):
        if count > max_series:
            logger.warning(
                "%s=%r in cluster %r has %d series, more than max_series_per_query %d; "
                "querying it alone",
                label,
                value,
                cluster,
                count,
                max_series,
            )
        for index, (values, total) in enumerate(bins):
            if total + count <= max_series:
                values.append(value)
                bins[index] = (values, total + count)
                break
        else:
            bins.append(([value], count))
    return bins
