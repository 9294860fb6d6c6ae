"""The planted waste clusters as clusters of the simulated Palette tenant.

They live in a project of their own (``WASTE_PROJECT``), so the budgets of the other projects
see none of their cost. Their pools keep a fixed size, so their daily cost is flat and matches
the node counts the Kubernetes metrics of ``metrics.py`` show. The project and clusters draw
from their own random streams (``[seed, 9]`` and ``[seed, 11, index]``), after every other
cluster is assembled, so the rest of the fleet does not change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from costwarden.simulator.anomalies import AKS_DISK_GIB, AWS_DISK_GIB, GCP_DISK_GIB
from costwarden.simulator.plans import ClusterPlan, PoolPlan
from costwarden.simulator.templates import ProjectTemplate
from costwarden.simulator.waste_plans import WASTE_CLUSTERS, WASTE_PROJECT, WasteClusterPlan
from costwarden.sources.prices import INSTANCE_SHAPES, provider_of

if TYPE_CHECKING:
    from costwarden.simulator.generator import FleetGenerator

WASTE_TEMPLATE = ProjectTemplate(
    name=WASTE_PROJECT,
    name_prefix="lab",
    team="finops",
    cost_center="CC-9900",
    workloads=(),
    namespaces=(),
)
DISK_GIB = {"eks": AWS_DISK_GIB, "aks": AKS_DISK_GIB, "gke": GCP_DISK_GIB}
CLUSTER_AGE = timedelta(days=300, hours=4)
"""Age of the waste clusters at the start of the history, so their whole history has cost."""


def waste_cluster_plans(generator: FleetGenerator) -> list[ClusterPlan]:
    """Return one fleet plan per waste cluster, in the order of ``WASTE_CLUSTERS``."""
    return [_plan(generator, waste) for waste in WASTE_CLUSTERS]


def _plan(generator: FleetGenerator, waste: WasteClusterPlan) -> ClusterPlan:
    disk = DISK_GIB[waste.cloud_type]
    pools = [
        PoolPlan(
            pool.name,
            pool.instance_type,
            generator._fixed(pool.nodes),
            pool.nodes,
            pool.nodes,
            disk,
            is_system_pool=pool.system,
            capacity_type=pool.capacity_type,
        )
        for pool in waste.pools
    ]
    namespaces = sorted(
        {workload.namespace for workload in waste.workloads if workload.namespace != "kube-system"}
        | {volume.namespace for volume in waste.volumes}
        | {"monitoring"}
    )
    shapes = INSTANCE_SHAPES[provider_of(waste.cloud_type)]
    gpu_pools = {pool.name for pool in waste.pools if shapes[pool.instance_type].gpus}
    gpu_namespaces = {w.namespace for w in waste.workloads if w.pool in gpu_pools}
    return ClusterPlan(
        name=waste.name,
        project=WASTE_TEMPLATE,
        cloud_type=waste.cloud_type,
        region=waste.region,
        env=waste.environment,
        created_at=generator.start - CLUSTER_AGE,
        pools=pools,
        namespaces=namespaces,
        gpu_weights={namespace: 1.0 for namespace in sorted(gpu_namespaces)},
        utilisation=(0.5, 0.7),
    )
