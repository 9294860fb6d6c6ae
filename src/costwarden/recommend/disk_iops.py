"""Peak IOPS of the claims' nodes' disks, an upper bound on each mounted claim's IOPS.

No standard metric maps a PersistentVolumeClaim to the block device it appears as on a node.
The kubelet's volume statistics name the nodes that mounted a claim, and node-exporter counts
completed reads and writes per device of each node. The claim's device is one of those devices,
so the largest peak of any device on any node that mounted the claim bounds the claim's own
peak from above.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from costwarden.domain.usage import VolumeKey
from costwarden.recommend.queries import BatchedQueries, BuildExpr, template
from costwarden.sources.prometheus import PrometheusSource, promql

logger = logging.getLogger(__name__)

VOLUME_USED_BYTES = "kubelet_volume_stats_used_bytes"
DISK_READS = "node_disk_reads_completed_total"
DISK_WRITES = "node_disk_writes_completed_total"


@dataclass(frozen=True, slots=True)
class ClaimIops:
    """The peak IOPS bound of one mounted claim, and the nodes and device it comes from."""

    peak_iops: float
    nodes: tuple[str, ...]
    busiest_device: str


@dataclass(frozen=True, slots=True)
class IopsReport:
    """Peak IOPS bounds of the mounted claims of a window, and the PromQL sent."""

    items: Mapping[VolumeKey, ClaimIops] = field(default_factory=dict)
    queries: tuple[str, ...] = ()


def load_claim_iops(
    source: PrometheusSource,
    end: datetime,
    window: timedelta,
    clusters: Sequence[str] | None = None,
) -> IopsReport:
    """Read the peak read plus write IOPS of each device of the nodes that mounted claims.

    IOPS are ``rate()`` over ``rate_window_seconds``, sampled every ``step_seconds``, so a
    burst shorter than the rate window is averaged down.
    """
    queries = BatchedQueries(source, end, window, clusters)
    node_label = source.settings.node_exporter_node_label
    cluster = queries.cluster

    def mounts(matchers: str) -> str:
        selector = promql.selector(VOLUME_USED_BYTES, matchers)
        by = f"{cluster}, namespace, persistentvolumeclaim, node"
        return f"max by ({by}) (max_over_time({selector}[{queries.range}]))"

    def iops(matchers: str) -> str:
        by = f"{cluster}, {node_label}, device"
        rates = " + ".join(
            f"sum by ({by}) (rate({promql.selector(metric, matchers)}[{queries.rate_window}]))"
            for metric in (DISK_READS, DISK_WRITES)
        )
        return f"max_over_time(({rates})[{queries.range}:{queries.step}])"

    claims = queries.run(queries.plan(VOLUME_USED_BYTES), mounts)
    devices = queries.run(queries.plan(DISK_READS, split_label=node_label), iops)

    node_peaks: dict[tuple[str, str], tuple[float, str]] = {}
    for sample in devices:
        key = (sample.labels.get(cluster, ""), sample.labels.get(node_label, ""))
        device = sample.labels.get("device", "")
        if key not in node_peaks or sample.value > node_peaks[key][0]:
            node_peaks[key] = (sample.value, device)

    nodes_of: dict[VolumeKey, set[str]] = defaultdict(set)
    for sample in claims:
        labels = sample.labels
        key = VolumeKey(labels.get(cluster, ""), labels.get("namespace", ""),
                        labels.get("persistentvolumeclaim", ""))  # fmt: skip
        if labels.get("node"):
            nodes_of[key].add(labels["node"])

    items = {}
    for key, nodes in nodes_of.items():
        peaks = [
            node_peaks[(key.cluster, node)] for node in nodes if (key.cluster, node) in node_peaks
        ]
        if peaks:
            peak, device = max(peaks)
            items[key] = ClaimIops(peak, tuple(sorted(nodes)), device)
    builders: list[BuildExpr] = [mounts, iops]
    logger.info("read disk IOPS bounds of %d claims", len(items))
    return IopsReport(items, tuple(template(build) for build in builders))
