"""Map pods to their workloads with kube-state-metrics' owner series.

A Deployment's pod is owned by a ReplicaSet, which ``kube_replicaset_owner`` maps to the
Deployment. A CronJob's pod is owned by a Job, which ``kube_job_owner`` maps to the CronJob.
Other owners (StatefulSet, DaemonSet, ...) are the workload themselves. A pod without an owner,
or one that kube-state-metrics did not report, is its own workload of kind ``Pod``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from costwarden.domain.usage import WorkloadKey

NO_OWNER = "<none>"
"""The owner_kind and owner_name kube-state-metrics writes for an object without an owner."""

PodKey = tuple[str, str, str]
"""(cluster, namespace, pod)."""


@dataclass
class OwnerIndex:
    """Owner references read from ``kube_pod_owner``, ``kube_replicaset_owner`` and
    ``kube_job_owner``, each keyed by (cluster, namespace, object name).
    """

    cluster_label: str
    pods: dict[PodKey, tuple[str, str]] = field(default_factory=dict)
    replicasets: dict[PodKey, tuple[str, str]] = field(default_factory=dict)
    jobs: dict[PodKey, tuple[str, str]] = field(default_factory=dict)

    def add_pod_owner(self, labels: dict[str, str]) -> None:
        self._add(self.pods, labels, "pod")

    def add_replicaset_owner(self, labels: dict[str, str]) -> None:
        self._add(self.replicasets, labels, "replicaset")

    def add_job_owner(self, labels: dict[str, str]) -> None:
        self._add(self.jobs, labels, "job_name")

    def _add(self, index: dict[PodKey, tuple[str, str]], labels: dict[str, str], name: str) -> None:
        kind = labels.get("owner_kind", NO_OWNER)
        owner = labels.get("owner_name", NO_OWNER)
        key = (
            labels.get(self.cluster_label, ""),
            labels.get("namespace", ""),
            labels.get(name, ""),
        )
        # A controller owner wins over other owner references of the same object.
        if key in index and labels.get("owner_is_controller") != "true":
            return
        index[key] = (kind, owner)

    def workload(self, cluster: str, namespace: str, pod: str) -> WorkloadKey:
        """Return the workload at the top of the pod's owner chain."""
        kind, name = self.pods.get((cluster, namespace, pod), (NO_OWNER, NO_OWNER))
        if kind == NO_OWNER or name == NO_OWNER:
            return WorkloadKey(cluster, namespace, "Pod", pod)

        parent: tuple[str, str] | None = None
        if kind == "ReplicaSet":
            parent = self.replicasets.get((cluster, namespace, name))
        elif kind == "Job":
            parent = self.jobs.get((cluster, namespace, name))
        if parent is not None and parent[0] != NO_OWNER and parent[1] != NO_OWNER:
            kind, name = parent
        return WorkloadKey(cluster, namespace, kind, name)
