"""Plans of the clusters that carry the planted anomalies of ``anomalies.py``.

Each cluster has a quiet history: fixed pools and autoscaled workers with a small weekend dip
and 2% daily noise. Its anomaly adds nodes or changes a price from the moment of its event on,
so the daily averages of the first and last day of an anomaly are partial. The plans draw from
their own random streams, ``[seed, 7, index]`` with the index of the cluster in
``ANOMALY_CLUSTERS``, so they do not depend on the rest of the fleet.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from costwarden.domain.event import NAMESPACE_CREATED, POOL_SCALED, SPOT_FALLBACK, WORKLOAD_SCALED
from costwarden.simulator import anomalies as truth
from costwarden.simulator.anomalies import ANOMALY_CLUSTERS, DayTime
from costwarden.simulator.plans import CapacitySwitch, ClusterPlan, EventSpec, PoolPlan
from costwarden.simulator.templates import PROJECTS, ProjectTemplate

if TYPE_CHECKING:
    from costwarden.simulator.generator import FleetGenerator

AUTOSCALER = "cluster-autoscaler"
HPA_COMPONENT = "horizontal-pod-autoscaler"
POOL_SCALE_DELAY = timedelta(minutes=7)
"""Time between a workload's scale-up and the nodes the autoscaler adds for it."""


class AnomalyPlanner:
    """The planner of one fleet's anomaly clusters, on the generator's calendar."""

    def __init__(self, generator: FleetGenerator) -> None:
        self.generator = generator
        self.days = generator.days

    def plans(self) -> list[ClusterPlan]:
        """Return one plan per name of ``ANOMALY_CLUSTERS``, in that order."""
        builders = {
            truth.GPU_SPIKE_CLUSTER: self._gpu_spike,
            truth.NEW_NAMESPACE_CLUSTER: self._new_namespace,
            truth.SPOT_CLUSTER: self._spot_fallback,
            truth.HPA_CLUSTER: self._hpa_runaway,
            truth.GPU_MISUSE_CLUSTER: self._gpu_misuse,
            truth.MINING_CLUSTER: self._mining,
        }
        return [
            builders[name](self.generator._rng(7, index))
            for index, name in enumerate(ANOMALY_CLUSTERS)
        ]

    def _position(self, moment: DayTime) -> float:
        """Return the fractional day index of a moment in the fleet's series."""
        at = moment.resolve(self.generator.as_of)
        return (at - self.generator.start).total_seconds() / 86_400

    def _step(self, amount: float, begin: float, end: float = np.inf) -> np.ndarray:
        """Return the daily average of ``amount`` nodes present from ``begin`` to ``end``."""
        day = np.arange(self.days, dtype=np.float64)
        overlap = np.minimum(day + 1.0, end) - np.maximum(day, begin)
        return amount * np.clip(overlap, 0.0, 1.0)

    def _workers(
        self, rng: np.random.Generator, instance_type: str, level: float, max_size: int, disk: int
    ) -> PoolPlan:
        levels = self.generator._levels(
            rng, level, min_size=2, max_size=max_size, weekend_factor=0.9, noise=0.02
        )
        return PoolPlan("worker-pool", instance_type, levels, 2, max_size, disk)

    def _system_pool(self, instance_type: str, size: int, disk: int) -> PoolPlan:
        levels = self.generator._fixed(size)
        return PoolPlan(
            "system-pool", instance_type, levels, size, size, disk, is_system_pool=True
        )

    def _plan(self, name: str, project: str, cloud_type: str, region: str) -> ClusterPlan:
        template = _project(project)
        created = self.generator.start - timedelta(days=320, hours=6)
        return ClusterPlan(
            name, template, cloud_type, region, "prod", created, [], [], {}, (0.6, 0.75)
        )

    def _event(
        self, moment: DayTime | datetime, reason: str, message: str, **fields: str
    ) -> EventSpec:
        at = moment if isinstance(moment, datetime) else moment.resolve(self.generator.as_of)
        return EventSpec(at=at, reason=reason, message=message, **fields)

    def _gpu_spike(self, rng: np.random.Generator) -> ClusterPlan:
        plan = self._plan(truth.GPU_SPIKE_CLUSTER, "data-science", "eks", "us-east-1")
        low, high = truth.GPU_SPIKE_NODES
        up, down = self._position(truth.GPU_SPIKE_UP), self._position(truth.GPU_SPIKE_DOWN)
        extra = self._step(high - low, up, down)
        gpu = PoolPlan(
            truth.GPU_SPIKE_POOL,
            truth.GPU_SPIKE_INSTANCE,
            self.generator._fixed(low) + extra,
            1,
            high + 2,
            truth.GPU_DISK_GIB,
            extra_levels=extra,
            extra_namespace="inference",
        )
        plan.pools = [
            self._system_pool("m5.large", 2, truth.AWS_DISK_GIB),
            self._workers(rng, "m5.2xlarge", 6.0, 10, truth.AWS_DISK_GIB),
            gpu,
        ]
        plan.namespaces = ["inference", "model-serving", "feature-pipelines", "monitoring"]
        plan.gpu_weights = {"inference": 1.0}
        pool = truth.GPU_SPIKE_POOL
        plan.events = [
            self._pool_event(truth.GPU_SPIKE_UP, pool, low, high),
            self._pool_event(truth.GPU_SPIKE_DOWN, pool, high, low),
        ]
        return plan

    def _new_namespace(self, rng: np.random.Generator) -> ClusterPlan:
        plan = self._plan(truth.NEW_NAMESPACE_CLUSTER, "storefront", "aks", "eastus")
        workers = self._workers(rng, truth.NEW_NAMESPACE_INSTANCE, 8.0, 20, truth.AKS_DISK_GIB)
        extra = self._step(truth.NEW_NAMESPACE_NODES, self._position(truth.NEW_NAMESPACE_SCALED))
        before = self._rounded(workers.levels, truth.NEW_NAMESPACE_SCALED)
        workers.levels = workers.levels + extra
        workers.extra_levels = extra
        workers.extra_namespace = truth.NEW_NAMESPACE
        plan.pools = [self._system_pool("Standard_D4s_v5", 3, truth.AKS_DISK_GIB), workers]

        namespace = truth.NEW_NAMESPACE
        plan.namespaces = ["checkout", "cart", "web", "monitoring", namespace]
        created = truth.NEW_NAMESPACE_CREATED.resolve(self.generator.as_of)
        plan.late_namespaces = {namespace: created}
        plan.events = [
            self._event(
                truth.NEW_NAMESPACE_CREATED,
                NAMESPACE_CREATED,
                f"Namespace {namespace} created",
                involved_kind="Namespace",
                involved_name=namespace,
            ),
            self._pool_event(
                truth.NEW_NAMESPACE_SCALED,
                workers.name,
                before,
                before + truth.NEW_NAMESPACE_NODES,
            ),
        ]
        return plan

    def _spot_fallback(self, rng: np.random.Generator) -> ClusterPlan:
        plan = self._plan(truth.SPOT_CLUSTER, "data-science", "gke", "us-central1")
        batch = PoolPlan(
            truth.SPOT_POOL,
            truth.SPOT_INSTANCE,
            self.generator._fixed(truth.SPOT_NODES),
            truth.SPOT_NODES,
            truth.SPOT_NODES,
            truth.GCP_DISK_GIB,
            capacity_switch=CapacitySwitch(self._position(truth.SPOT_FALLBACK_AT), "spot"),
        )
        plan.pools = [
            self._system_pool("e2-standard-4", 2, truth.GCP_DISK_GIB),
            self._workers(rng, "e2-standard-8", 4.0, 8, truth.GCP_DISK_GIB),
            batch,
        ]
        plan.namespaces = ["spark-jobs", "airflow", "batch-scoring", "monitoring"]
        message = (
            f"Spot capacity for {truth.SPOT_INSTANCE} is unavailable in us-central1; machine "
            f"pool {truth.SPOT_POOL} fell back to on-demand capacity"
        )
        plan.events = [
            self._event(
                truth.SPOT_FALLBACK_AT,
                SPOT_FALLBACK,
                message,
                involved_kind="MachinePool",
                involved_name=truth.SPOT_POOL,
                severity="Warning",
                component=AUTOSCALER,
            )
        ]
        return plan

    def _hpa_runaway(self, rng: np.random.Generator) -> ClusterPlan:
        plan = self._plan(truth.HPA_CLUSTER, "storefront", "eks", "us-east-1")
        workers = self._workers(rng, truth.HPA_INSTANCE, 6.0, 48, truth.AWS_DISK_GIB)
        workload = f"{truth.HPA_NAMESPACE}/{truth.HPA_DEPLOYMENT}"
        extra = np.zeros(self.days)
        events = []
        for moment, replicas_from, replicas_to, nodes in truth.HPA_STEPS:
            scaled_at = moment.resolve(self.generator.as_of)
            nodes_at = scaled_at + POOL_SCALE_DELAY
            before = self._rounded(workers.levels, moment) + int(round(extra.max()))
            extra = extra + self._step(nodes, self._position_of(nodes_at))
            events.append(
                self._event(
                    scaled_at,
                    WORKLOAD_SCALED,
                    f"Deployment {workload} scaled from {replicas_from} to {replicas_to} "
                    "replicas by its horizontal pod autoscaler",
                    involved_kind="Deployment",
                    involved_name=workload,
                    component=HPA_COMPONENT,
                )
            )
            events.append(self._pool_event(nodes_at, workers.name, before, before + nodes))

        workers.levels = workers.levels + extra
        workers.extra_levels = extra
        workers.extra_namespace = truth.HPA_NAMESPACE
        plan.pools = [self._system_pool("m5.large", 2, truth.AWS_DISK_GIB), workers]
        plan.namespaces = [truth.HPA_NAMESPACE, "search", "catalog-api", "monitoring"]
        plan.events = events
        return plan

    def _gpu_misuse(self, rng: np.random.Generator) -> ClusterPlan:
        plan = self._plan(truth.GPU_MISUSE_CLUSTER, "data-science", "eks", "us-east-1")
        low, high = truth.GPU_MISUSE_NODES
        extra = self._step(high - low, self._position(truth.GPU_MISUSE_AT))
        gpu = PoolPlan(
            truth.GPU_MISUSE_POOL,
            truth.GPU_MISUSE_INSTANCE,
            self.generator._fixed(low) + extra,
            2,
            high + 1,
            truth.GPU_DISK_GIB,
            extra_levels=extra,
            extra_namespace=truth.GPU_MISUSE_NAMESPACE,
        )
        plan.pools = [
            self._system_pool("m5.large", 2, truth.AWS_DISK_GIB),
            self._workers(rng, "m5.2xlarge", 5.0, 12, truth.AWS_DISK_GIB),
            gpu,
        ]
        plan.namespaces = ["training", "notebooks", truth.GPU_MISUSE_NAMESPACE, "experiments"]
        plan.namespaces.append("monitoring")
        plan.gpu_weights = {"training": 1.0}
        plan.events = [self._pool_event(truth.GPU_MISUSE_AT, truth.GPU_MISUSE_POOL, low, high)]
        return plan

    def _mining(self, rng: np.random.Generator) -> ClusterPlan:
        """Plan the cryptomining cluster. The usage model plants the miner's CPU usage."""
        plan = self._plan(truth.MINING_CLUSTER, "platform", "gke", "us-central1")
        plan.pools = [
            self._system_pool("e2-standard-4", 2, truth.GCP_DISK_GIB),
            self._workers(rng, "n2-standard-8", 6.0, 12, truth.GCP_DISK_GIB),
        ]
        plan.namespaces = [truth.MINING_NAMESPACE, "argocd", "harbor", "monitoring"]
        return plan

    def _position_of(self, moment: datetime) -> float:
        return (moment - self.generator.start).total_seconds() / 86_400

    def _rounded(self, levels: np.ndarray, moment: DayTime) -> int:
        """Return the node count of a pool on the day of ``moment``, rounded."""
        return int(round(float(levels[int(self._position(moment))])))

    def _pool_event(
        self, moment: DayTime | datetime, pool: str, size_from: int, size_to: int
    ) -> EventSpec:
        return self._event(
            moment,
            POOL_SCALED,
            f"Machine pool {pool} scaled from {size_from} to {size_to} nodes",
            involved_kind="MachinePool",
            involved_name=pool,
            component=AUTOSCALER,
        )


def _project(name: str) -> ProjectTemplate:
    return next(template for template in PROJECTS if template.name == name)
