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


@dataclass(frozen=True, slots=True)
class Batch:
    """Label values of one cluster that one query covers, and the series they are expected to hold.

    ``matchers`` is the comma-separated label matcher list that selects the batch.
    """

    cluster: str
    label: str
    values: tuple[str, ...]
    series: int
    matchers: str


def pack_batches(
    counts: Mapping[tuple[str, str], int],
    *,
    cluster_label: str,
    label: str,
    max_series: int,
) -> list[Batch]:
    """Pack ``(cluster, value) -> series`` counts into batches of at most ``max_series`` series.

    Values are placed largest first into the first batch of their cluster with room (first fit
    decreasing). A single value with more series than the limit gets a batch of its own, and a
    warning, because it cannot be split by this label.
    """
    by_cluster: dict[str, list[tuple[str, int]]] = {}
    for (cluster, value), count in counts.items():
        by_cluster.setdefault(cluster, []).append((value, count))

    batches: list[Batch] = []
    for cluster in sorted(by_cluster):
        for values, series in _first_fit(by_cluster[cluster], max_series, cluster, label):
            matchers = promql.join(
                promql.equals(cluster_label, cluster), promql.one_of(label, values)
            )
            batches.append(Batch(cluster, label, tuple(sorted(values)), series, matchers))
    return batches


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
