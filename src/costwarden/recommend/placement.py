"""Pod placement: the node and requests of each running container, from kube-state-metrics."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from costwarden.domain.usage import ContainerKey, NodeKey
from costwarden.sources.prometheus import PrometheusSource
from costwarden.sources.prometheus.workloads import OwnerIndex

OWNER_METRICS = ("kube_pod_owner", "kube_replicaset_owner", "kube_job_owner")


@dataclass(frozen=True, slots=True)
class PodPlacement:
    """One container of a pod running at the end of the window, on ``node``."""

    node: NodeKey
    pod: str
    container: ContainerKey
    cpu_request_cores: float
    memory_request_bytes: float


def load_placements(
    source: PrometheusSource, end: datetime, window: timedelta
) -> tuple[PodPlacement, ...]:
    """Read the CPU and memory requests of the containers running at ``end``, per node.

    A container without a request counts as requesting 0 of that resource.
    """
    cluster = source.settings.cluster_label
    expression = (
        f"max by ({cluster}, namespace, pod, container, node, resource) "
        '(kube_pod_container_resource_requests{resource=~"cpu|memory"})'
    )
    requests: dict[tuple[str, str, str, str, str], dict[str, float]] = defaultdict(dict)
    for sample in source.query(expression, end):
        labels = sample.labels
        key = (labels.get(cluster, ""), labels.get("namespace", ""), labels.get("pod", ""),
               labels.get("container", ""), labels.get("node", ""))  # fmt: skip
        requests[key][labels.get("resource", "")] = sample.value

    owners = _owners(source, cluster, end, window)
    placements = []
    for (cluster_name, namespace, pod, container, node), values in sorted(requests.items()):
        workload = owners.workload(cluster_name, namespace, pod)
        placements.append(
            PodPlacement(
                node=NodeKey(cluster_name, node),
                pod=pod,
                container=ContainerKey(workload, container),
                cpu_request_cores=values.get("cpu", 0.0),
                memory_request_bytes=values.get("memory", 0.0),
            )
        )
    return tuple(placements)


def _owners(source: PrometheusSource, cluster: str, end: datetime, window: timedelta) -> OwnerIndex:
    index = OwnerIndex(cluster)
    adders = {
        "kube_pod_owner": index.add_pod_owner,
        "kube_replicaset_owner": index.add_replicaset_owner,
        "kube_job_owner": index.add_job_owner,
    }
    for labels in source.series(list(OWNER_METRICS), end - window, end):
        adders[labels["__name__"]](labels)
    return index
