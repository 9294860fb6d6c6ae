"""Workload requests: CPU at a usage percentile, memory at the peak plus headroom."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from costwarden.domain.recommendation import Recommendation, Savings, Target
from costwarden.domain.usage import (
    ContainerCpu,
    ContainerKey,
    ContainerMemory,
    ContainerResources,
    OomKills,
    WorkloadKey,
    WorkloadReplicas,
)
from costwarden.recommend.inputs import RecommendInput
from costwarden.recommend.pricing import GIB, ResourceRates, cluster_rates
from costwarden.recommend.registry import RECOMMENDERS

logger = logging.getLogger(__name__)

MIB = 2.0**20


class WorkloadRequestsSettings(BaseModel):
    """Options of the workload requests recommender."""

    model_config = ConfigDict(extra="forbid")

    cpu_percentile: float = Field(
        95, gt=0, le=100, description="Percentile of per-pod CPU usage the CPU request covers."
    )
    memory_headroom_percent: float = Field(
        15, ge=0, le=200, description="Headroom added to the peak working set, in percent."
    )
    oom_bump_percent: float = Field(
        20,
        ge=0,
        le=400,
        description="Further increase of the memory request of a container that was OOM-killed "
        "in the window, in percent, applied to the larger of its peak and its memory limit.",
    )
    min_cpu_cores: float = Field(0.01, ge=0, description="Smallest CPU request proposed, in cores.")
    min_memory_mib: float = Field(
        100, ge=0, description="Smallest memory request proposed, in MiB."
    )
    min_change_percent: float = Field(
        10,
        ge=0,
        le=100,
        description="Smallest relative change of a request worth proposing, in percent.",
    )


@dataclass(frozen=True, slots=True)
class ContainerProposal:
    """The current and proposed requests of one container; None where nothing is proposed."""

    container: str
    cpu_before: float | None
    cpu_after: float | None
    memory_before: float | None
    memory_after: float | None
    memory_limit_after: float | None
    oom_killed: bool


@RECOMMENDERS.register("workload-requests", WorkloadRequestsSettings)
class WorkloadRequestsRecommender:
    """Set each container's requests from its measured usage.

    Method: the CPU request is the ``cpu_percentile`` of per-pod CPU usage over the window (the
    largest over the workload's pods), and the memory request is the peak working set plus
    ``memory_headroom_percent``. After an OOM kill the memory request starts from the larger of
    the peak and the memory limit and rises a further ``oom_bump_percent``, and a lower memory
    limit is raised to it. Requests never go below the minimums. A container needs
    ``min_history_days`` of metrics. Requests apply per pod, so a workload under a
    HorizontalPodAutoscaler is sized per replica and its savings are counted at its current
    replica count. An HPA with a CPU utilisation target
    (``kube_horizontalpodautoscaler_spec_target_metric``) scales out when the pods' mean CPU use
    passes the pod's CPU request times the target, so the risk note and evidence give that
    point before and after the change, and the target that would keep it. Savings are the
    request change times the replicas, priced at the cluster's mean price per vCPU-hour and
    GiB-hour.
    """

    name: str

    def __init__(self, settings: WorkloadRequestsSettings) -> None:
        self.settings = settings

    @property
    def cpu_quantile(self) -> float:
        return self.settings.cpu_percentile / 100

    def proposals(self, bundle: RecommendInput) -> dict[ContainerKey, ContainerProposal]:
        """Return the proposed requests of every container with enough history and a change."""
        cpu = {item.container: item for item in bundle.cpu.items}
        memory = {item.container: item for item in bundle.memory.items}
        ooms = {item.container: item for item in bundle.oom_kills.items}

        found = {}
        for resources in bundle.resources.items:
            key = resources.container
            if key not in cpu or key not in memory:
                continue
            proposal = self._propose(resources, cpu[key], memory[key], ooms.get(key))
            if proposal is not None:
                found[key] = proposal
        return found

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        replicas = {item.workload: item for item in bundle.replicas.items}
        pods: dict[WorkloadKey, int] = {}
        for item in bundle.resources.items:
            workload = item.container.workload
            pods[workload] = max(pods.get(workload, 0), item.pods)

        by_workload: dict[WorkloadKey, list[ContainerProposal]] = {}
        for key, proposal in self.proposals(bundle).items():
            by_workload.setdefault(key.workload, []).append(proposal)

        rates: dict[str, ResourceRates | None] = {}
        found = []
        for workload, proposals in sorted(by_workload.items()):
            if workload.cluster not in rates:
                rates[workload.cluster] = cluster_rates(bundle, workload.cluster)
            recommendation = self._recommendation(
                bundle, workload, proposals, replicas.get(workload), pods[workload],
                rates[workload.cluster],
            )  # fmt: skip
            if recommendation is not None:
                found.append(recommendation)
        return found

    def _propose(
        self,
        resources: ContainerResources,
        cpu: ContainerCpu,
        memory: ContainerMemory,
        oom: OomKills | None,
    ) -> ContainerProposal | None:
        settings = self.settings
        cpu_target = max(_round_up(cpu.cores, 0.001), settings.min_cpu_cores)

        oom_killed = oom is not None and (oom.oom_events > 0 or oom.last_terminated_oom)
        peak = memory.max_bytes
        if oom_killed and resources.memory_limit_bytes is not None:
            peak = max(peak, resources.memory_limit_bytes)
        factor = 1 + settings.memory_headroom_percent / 100
        if oom_killed:
            factor *= 1 + settings.oom_bump_percent / 100
        memory_target = max(_round_up(peak * factor, MIB), settings.min_memory_mib * MIB)

        cpu_after = cpu_target if self._worth(resources.cpu_request_cores, cpu_target) else None
        memory_after = memory_target
        if not oom_killed and not self._worth(resources.memory_request_bytes, memory_target):
            memory_after = None
        if cpu_after is None and memory_after is None:
            return None

        limit = resources.memory_limit_bytes
        limit_after = (
            memory_after if memory_after and limit is not None and limit < memory_after else None
        )
        return ContainerProposal(
            container=resources.container.container,
            cpu_before=resources.cpu_request_cores,
            cpu_after=cpu_after,
            memory_before=resources.memory_request_bytes,
            memory_after=memory_after,
            memory_limit_after=limit_after,
            oom_killed=oom_killed,
        )

    def _worth(self, current: float | None, target: float) -> bool:
        if current is None or current <= 0:
            return True
        return abs(target - current) / current * 100 >= self.settings.min_change_percent

    def _recommendation(
        self,
        bundle: RecommendInput,
        workload: WorkloadKey,
        proposals: list[ContainerProposal],
        replicas: WorkloadReplicas | None,
        pods: int,
        rates: ResourceRates | None,
    ) -> Recommendation | None:
        if rates is None:
            logger.warning("no prices for cluster %s; %s/%s not priced", workload.cluster,
                           workload.namespace, workload.name)  # fmt: skip
            return None

        count = replicas.current if replicas is not None else max(pods, 1)
        savings = self._savings(proposals, count, rates)
        hpa = replicas.hpa if replicas is not None else None
        scaling = _hpa_scaling(bundle, workload, hpa, proposals)
        oom = any(item.oom_killed for item in proposals)
        return Recommendation(
            kind=self.name,
            title=_title(workload, proposals),
            target=Target(workload.cluster, workload.kind, workload.name, workload.namespace),
            before={item.container: _before(item) for item in proposals},
            after={item.container: _after(item) for item in proposals},
            savings=savings,
            confidence="medium" if hpa else "high",
            risk="medium" if hpa or oom else "low",
            risk_note=_risk_note(replicas, oom, scaling),
            effort="low",
            reversible=True,
            resources=frozenset({workload_resource(workload)}),
            manual_change=_patch_note(workload),
            evidence={
                "window_start": bundle.cpu.start.isoformat(),
                "window_end": bundle.cpu.end.isoformat(),
                "cpu_percentile": self.settings.cpu_percentile,
                "replicas": count,
                "hpa": hpa,
                **(scaling or {}),
                "queries": list(bundle.cpu.queries + bundle.memory.queries)
                + (list(bundle.hpa_targets.queries) if scaling else []),
            },
        )

    def _savings(
        self, proposals: list[ContainerProposal], replicas: int, rates: ResourceRates
    ) -> Savings:
        cores = 0.0
        gib = 0.0
        for item in proposals:
            if item.cpu_after is not None and item.cpu_before is not None:
                cores += item.cpu_before - item.cpu_after
            if item.memory_after is not None and item.memory_before is not None:
                gib += (item.memory_before - item.memory_after) / GIB

        per_hour = (
            Decimal(str(round(cores * replicas, 6))) * rates.cpu_core_hour
            + Decimal(str(round(gib * replicas, 6))) * rates.memory_gib_hour
        )
        method = (
            f"request change x {replicas} replicas, at {rates.cpu_core_hour:.6f} per vCPU-hour "
            f"and {rates.memory_gib_hour:.6f} per GiB-hour (node list prices split by OpenCost "
            "unit price ratio); a container without a request counts as no change"
        )
        return Savings.from_hourly(per_hour, rates.currency, method, rates.prices)


def _round_up(value: float, step: float) -> float:
    """Round up to a whole number of ``step``, ignoring float noise below 1e-6 of a step."""
    return round(math.ceil(round(value / step, 6)) * step, 6)


def workload_resource(workload: WorkloadKey) -> str:
    return f"workload:{workload.cluster}/{workload.namespace}/{workload.kind}/{workload.name}"


def _before(item: ContainerProposal) -> dict[str, object]:
    return {"cpu_cores": item.cpu_before, "memory_bytes": item.memory_before}


def _after(item: ContainerProposal) -> dict[str, object]:
    after: dict[str, object] = {
        "cpu_cores": item.cpu_after if item.cpu_after is not None else item.cpu_before,
        "memory_bytes": item.memory_after if item.memory_after is not None else item.memory_before,
    }
    if item.memory_limit_after is not None:
        after["memory_limit_bytes"] = item.memory_limit_after
    return after


def _title(workload: WorkloadKey, proposals: list[ContainerProposal]) -> str:
    parts = []
    for item in proposals:
        if item.cpu_after is not None:
            parts.append(
                f"{item.container} cpu {_cores(item.cpu_before)} -> {_cores(item.cpu_after)}"
            )
        if item.memory_after is not None:
            parts.append(
                f"{item.container} memory {_mib(item.memory_before)} -> {_mib(item.memory_after)}"
            )
    return f"Resize requests of {workload.kind} {workload.namespace}/{workload.name}: " + ", ".join(
        parts
    )


def _cores(value: float | None) -> str:
    return "unset" if value is None else f"{round(value * 1000)}m"


def _mib(value: float | None) -> str:
    return "unset" if value is None else f"{math.ceil(value / MIB)}Mi"


def _hpa_scaling(
    bundle: RecommendInput,
    workload: WorkloadKey,
    hpa: str | None,
    proposals: list[ContainerProposal],
) -> dict[str, float] | None:
    """Return where the workload's HPA scales out before and after the CPU request change.

    An HPA with a CPU utilisation target scales out when the pods' mean CPU use passes the
    target times the pod's CPU request (the sum over its containers). None when the workload
    has no such HPA or a container has no CPU request, which HPA utilisation needs.
    """
    if hpa is None:
        return None
    target = bundle.hpa_targets.cpu_percent.get((workload.cluster, workload.namespace, hpa))
    if target is None:
        return None
    changed = {item.container: item.cpu_after for item in proposals if item.cpu_after is not None}
    requests = {
        item.container.container: item.cpu_request_cores
        for item in bundle.resources.items
        if item.container.workload == workload
    }
    if not requests or any(not value for value in requests.values()):
        return None

    before = sum(value for value in requests.values() if value)
    after = sum(changed.get(name, value) or 0.0 for name, value in requests.items())
    if after <= 0:
        return None
    return {
        "hpa_cpu_target_percent": target,
        "hpa_scale_point_cores_before": round(before * target / 100, 6),
        "hpa_scale_point_cores_after": round(after * target / 100, 6),
        "hpa_target_percent_keeping_scale_point": round(before * target / after, 1),
    }


def _risk_note(
    replicas: WorkloadReplicas | None, oom: bool, scaling: dict[str, float] | None
) -> str:
    notes = []
    if replicas is not None and replicas.hpa is not None and scaling is not None:
        notes.append(
            f"HorizontalPodAutoscaler {replicas.hpa} (min {replicas.hpa_min}, max "
            f"{replicas.hpa_max}) scales out at {scaling['hpa_cpu_target_percent']:g}% of the "
            f"pod's CPU request: at {_cores(scaling['hpa_scale_point_cores_before'])} per pod "
            f"now and {_cores(scaling['hpa_scale_point_cores_after'])} after this change; set "
            f"its target to {scaling['hpa_target_percent_keeping_scale_point']:g}% to keep "
            "the scaling point"
        )
    elif replicas is not None and replicas.hpa is not None:
        notes.append(
            f"HorizontalPodAutoscaler {replicas.hpa} (min {replicas.hpa_min}, max "
            f"{replicas.hpa_max}) measures utilisation against requests, so lower requests make "
            "it scale out sooner; check its target before applying"
        )
    if oom:
        notes.append("the container was OOM-killed in the window; the memory request rises")
    if not notes:
        notes.append("usage above the new CPU request is throttled only at the limit; "
                     "memory above the request risks eviction under node pressure")  # fmt: skip
    return "; ".join(notes)


def _patch_note(workload: WorkloadKey) -> str:
    return (
        f"Set the requests in the {workload.kind} manifest of {workload.namespace}/{workload.name} "
        "(the cluster profile's manifest or Helm values in Palette); Palette's API has no "
        "per-workload request call"
    )
