"""The input bundle of the recommenders: usage results, machine pools and prices.

``load_input`` reads every usage query once from a ``PrometheusSource``. Machine pools are
grouped from node labels (``node_pool`` and instance type per node), so they carry no Palette
identifiers until ``palette_pools.with_palette_inputs`` merges in the pools read from Palette.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from costwarden.domain.usage import (
    ContainerCpu,
    ContainerMemory,
    ContainerResources,
    GpuNodeWorkloads,
    NodeInfo,
    NodeUsage,
    OomKills,
    UsageResult,
    VolumeUsage,
    WorkloadReplicas,
)
from costwarden.recommend.autoscalers import HpaTargets, load_hpa_targets
from costwarden.recommend.disk_iops import IopsReport, load_claim_iops
from costwarden.recommend.hourly import HourlyCpuReport, load_hourly_cpu
from costwarden.recommend.placement import PodPlacement, load_placements
from costwarden.recommend.services import ServiceReport, load_load_balancers
from costwarden.sources.prices import INSTANCE_SHAPES, PriceCatalog, Provider
from costwarden.sources.prometheus import PrometheusSource

logger = logging.getLogger(__name__)

_AZURE_ZONE = re.compile(r"^(?P<region>[a-z0-9]+)-\d+$")
_AWS_ZONE = re.compile(r"^(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d)[a-z]$")
_GCP_ZONE = re.compile(r"^(?P<region>[a-z]+-[a-z]+\d+)-[a-z]$")


@dataclass(frozen=True, slots=True)
class PoolRef:
    """A machine pool of a cluster: its nodes, instance type and, when known, Palette ids.

    ``cloud_type`` is Palette's cloud type (``eks``, ``aks``, ...) and ``config_uid`` the cloud
    config uid; both are None for pools grouped from node labels. ``capacity_types`` are the
    capacity types of the nodes (``on-demand``, ``spot``), or Palette's setting for a pool
    without nodes in Prometheus. The fields after ``project_uid`` come from Palette's cloud
    config and stay at their defaults for pools grouped from node labels: ``size``,
    ``min_size`` and ``max_size`` are node counts, ``disk_gib`` the root disk of one node, and
    ``cluster_labels`` the cluster's Palette labels as sorted (key, value) pairs.
    """

    cluster: str
    name: str
    provider: Provider | None
    region: str | None
    instance_type: str | None
    nodes: tuple[str, ...]
    capacity_types: tuple[str, ...] = ()
    cloud_type: str | None = None
    config_uid: str | None = None
    cluster_uid: str | None = None
    project_uid: str | None = None
    size: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    disk_gib: int | None = None
    is_control_plane: bool = False
    is_system_pool: bool = False
    pool_labels: tuple[str, ...] = ()
    cluster_labels: tuple[tuple[str, str], ...] = ()

    @property
    def resource(self) -> str:
        return f"pool:{self.cluster}/{self.name}"

    @property
    def from_palette(self) -> bool:
        """Whether Palette's cloud config describes the pool, so its API path is concrete."""
        return self.cloud_type is not None and self.config_uid is not None

    def cluster_label(self, key: str) -> str | None:
        """Return the value of one of the cluster's Palette labels, None when it is not set."""
        return dict(self.cluster_labels).get(key)


@dataclass(frozen=True, slots=True)
class RecommendInput:
    """Everything one recommendation run reads, for one window ending at ``end``."""

    end: datetime
    window: timedelta
    min_history: timedelta
    cpu: UsageResult[ContainerCpu]
    memory: UsageResult[ContainerMemory]
    resources: UsageResult[ContainerResources]
    oom_kills: UsageResult[OomKills]
    replicas: UsageResult[WorkloadReplicas]
    node_info: UsageResult[NodeInfo]
    node_usage: UsageResult[NodeUsage]
    gpu_nodes: UsageResult[GpuNodeWorkloads]
    volumes: UsageResult[VolumeUsage]
    pools: tuple[PoolRef, ...]
    prices: PriceCatalog
    stateful_nodes: frozenset[tuple[str, str]] = frozenset()
    """(cluster, node) pairs that ran a StatefulSet pod or had a mounted claim in the window."""
    placements: tuple[PodPlacement, ...] = ()
    ui_url_template: str | None = None
    load_balancers: ServiceReport = ServiceReport()
    hourly_cpu: HourlyCpuReport = HourlyCpuReport()
    claim_iops: IopsReport = IopsReport()
    hpa_targets: HpaTargets = HpaTargets()

    def pool_of_node(self, cluster: str, node: str) -> PoolRef | None:
        for pool in self.pools:
            if pool.cluster == cluster and node in pool.nodes:
                return pool
        return None

    def cluster_links(self) -> dict[str, str]:
        """Return the Palette console link of each cluster that has a pool read from Palette."""
        links: dict[str, str] = {}
        for pool in self.pools:
            if pool.cluster not in links:
                link = self.ui_link(pool)
                if link is not None:
                    links[pool.cluster] = link
        return links

    def ui_link(self, pool: PoolRef | None) -> str | None:
        """Return the Palette console link of a pool's cluster, None without Palette ids."""
        if pool is None or self.ui_url_template is None or pool.cluster_uid is None:
            return None
        return self.ui_url_template.format(
            project_uid=pool.project_uid or "",
            cluster_uid=pool.cluster_uid,
            cluster_name=pool.cluster,
        )


def load_input(
    source: PrometheusSource,
    *,
    end: datetime,
    window: timedelta,
    min_history: timedelta,
    cpu_quantile: float,
    prices: PriceCatalog,
    pools: tuple[PoolRef, ...] | None = None,
    clusters: list[str] | None = None,
) -> RecommendInput:
    """Read the usage every recommender needs from Prometheus, one query family at a time."""
    common = {"end": end, "window": window, "clusters": clusters}
    node_info = source.node_info(**common)
    bundle = RecommendInput(
        end=end,
        window=window,
        min_history=min_history,
        cpu=source.cpu_usage(**common, quantile=cpu_quantile, min_history=min_history),
        memory=source.memory_peak(**common, min_history=min_history),
        resources=source.resources(**common),
        oom_kills=source.oom_kills(**common),
        replicas=source.replicas(**common),
        node_info=node_info,
        node_usage=source.node_usage(**common, min_history=min_history),
        gpu_nodes=source.gpu_node_workloads(**common),
        volumes=source.volumes(**common, min_history=min_history),
        pools=pools if pools is not None else pools_from_nodes(node_info.items),
        prices=prices,
        stateful_nodes=stateful_nodes(source, end, window),
        placements=load_placements(source, end, window),
        load_balancers=load_load_balancers(source, end, window, clusters),
        hourly_cpu=load_hourly_cpu(source, end, window, clusters),
        claim_iops=load_claim_iops(source, end, window, clusters),
        hpa_targets=load_hpa_targets(source, end, window, clusters),
    )
    logger.info(
        "read usage for recommendations: %d containers, %d nodes, %d volumes, %d pools",
        len(bundle.resources.items),
        len(node_info.items),
        len(bundle.volumes.items),
        len(bundle.pools),
    )
    return bundle


def stateful_nodes(
    source: PrometheusSource, end: datetime, window: timedelta
) -> frozenset[tuple[str, str]]:
    """Return the nodes that ran StatefulSet pods or mounted claims at any time in the window.

    Pods come from kube-state-metrics' ``kube_pod_info`` and mounted claims from the kubelet's
    ``kubelet_volume_stats_used_bytes``, both of which carry a ``node`` label.
    """
    cluster = source.settings.cluster_label
    seconds = int(window.total_seconds())
    expressions = (
        f'max by ({cluster}, node) (max_over_time(kube_pod_info{{created_by_kind="StatefulSet"}}'
        f"[{seconds}s]))",
        f"max by ({cluster}, node) (max_over_time(kubelet_volume_stats_used_bytes[{seconds}s]))",
    )
    found: set[tuple[str, str]] = set()
    for expression in expressions:
        for sample in source.query(expression, end):
            node = sample.labels.get("node")
            if node:
                found.add((sample.labels.get(cluster, ""), node))
    return frozenset(found)


def pools_from_nodes(nodes: tuple[NodeInfo, ...]) -> tuple[PoolRef, ...]:
    """Group nodes into pools by cluster and pool label; a node without one is its own pool."""
    groups: dict[tuple[str, str], list[NodeInfo]] = defaultdict(list)
    for info in nodes:
        groups[(info.node.cluster, info.node_pool or info.node.node)].append(info)

    pools = []
    for (cluster, name), members in sorted(groups.items()):
        types = sorted({info.instance_type for info in members if info.instance_type})
        if len(types) > 1:
            logger.warning("pool %s/%s mixes instance types %s", cluster, name, types)
        instance_type = types[0] if types else None
        provider = provider_of_instance(instance_type)
        zones = sorted({info.zone for info in members if info.zone})
        pools.append(
            PoolRef(
                cluster=cluster,
                name=name,
                provider=provider,
                region=region_of_zone(zones[0], provider) if zones and provider else None,
                instance_type=instance_type,
                nodes=tuple(sorted(info.node.node for info in members)),
                capacity_types=tuple(sorted({i.capacity_type for i in members if i.capacity_type})),
            )
        )
    return tuple(pools)


def provider_of_instance(instance_type: str | None) -> Provider | None:
    """Guess the provider from an instance type name: ``Standard_*`` is Azure, ``a.b`` AWS."""
    if not instance_type:
        return None
    if instance_type.startswith("Standard_"):
        return "azure"
    if "." in instance_type:
        return "aws"
    if instance_type in INSTANCE_SHAPES["gcp"] or re.match(
        r"^[a-z0-9]+-[a-z]+-\d+$", instance_type
    ):
        return "gcp"
    return None


def region_of_zone(zone: str, provider: Provider) -> str | None:
    """Return the region of a ``topology.kubernetes.io/zone`` value, None when it does not parse.

    AWS zones end in a letter (``us-east-1a``), Azure zones in ``-<n>`` (``westeurope-1``) and GCP
    zones in ``-<letter>`` (``us-central1-a``).
    """
    pattern = {"aws": _AWS_ZONE, "azure": _AZURE_ZONE, "gcp": _GCP_ZONE}[provider]
    match = pattern.match(zone)
    return match.group("region") if match else None
