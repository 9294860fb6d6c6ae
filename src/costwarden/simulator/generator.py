"""Seeded generation of the simulated fleet and its daily node counts and costs.

Every cluster draws from its own stream, ``numpy.random.default_rng([seed, kind, index])``, so a
cluster does not change when other clusters are added. The fleet lists the two planted clusters
first, then the clusters of the planted anomalies (``anomaly_plans.py``), then those of the
planted waste when asked for (``waste_fleet.py``), then the random ones.
Node counts are daily averages, so they are fractional. Autoscaling pools follow a level with
slow growth, a weekend dip and noise, clipped to the pool's minimum and maximum size. Other pools
keep a fixed size.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import MappingProxyType

import numpy as np

from costwarden.simulator import templates
from costwarden.simulator.anomaly_plans import AnomalyPlanner
from costwarden.simulator.events import fleet_events
from costwarden.simulator.model import (
    HOURS_PER_DAY,
    Cluster,
    ClusterProfile,
    Fleet,
    MachinePool,
    Namespace,
    Pack,
    Project,
)
from costwarden.simulator.plans import ClusterPlan, PoolPlan
from costwarden.simulator.planted import OVERRUN_CLUSTER, PLANTED, STABLE_CLUSTER
from costwarden.simulator.templates import PROJECTS, ProjectTemplate
from costwarden.simulator.waste_fleet import WASTE_TEMPLATE, waste_cluster_plans
from costwarden.sources.prices import CLOUD_TYPE_PROVIDERS, PriceCatalog

KUBE_SYSTEM = "kube-system"
GPU_POOL_MAX_SIZE = 24
"""Autoscaler maximum of the planted GPU pool, which its growth reaches soon after ``as_of``."""
PLATFORM = next(template for template in PROJECTS if template.name == "platform")
EXTRA_NODE_UTILISATION = 0.85
"""Share of the cost of nodes added by a planted anomaly that goes to the namespace using them."""


class FleetGenerator:
    """Builds one ``Fleet`` for a seed, an ``as_of`` time and a history length."""

    def __init__(
        self, seed: int, as_of: datetime, history_days: int, catalog: PriceCatalog
    ) -> None:
        self.seed = seed
        self.as_of = as_of
        self.catalog = catalog
        self.start = datetime.combine(as_of.date(), time(0), tzinfo=UTC) - timedelta(
            days=history_days
        )
        self.days = history_days + 1

        day = np.arange(self.days)
        self.weekend = (self.start.weekday() + day) % 7 >= 5
        self.days_before_as_of = (self.days - 1) - day
        self._profiles: dict[str, ClusterProfile] = {}
        self._accounts: dict[tuple[str, str], str] = {}

    def build(self, cluster_count: int, *, waste_clusters: bool = False) -> Fleet:
        """Generate the projects, the planted clusters and random ones up to ``cluster_count``.

        With ``waste_clusters``, the project and clusters of the planted waste
        (``waste_fleet.py``) come on top of ``cluster_count``.

        The random clusters keep the streams they had before the anomaly clusters existed:
        random cluster ``i`` is assembled from stream ``[seed, 3, 2 + i]``, and the random
        clusters are assembled before the anomaly clusters, which share their cloud accounts.
        """
        rng = self._rng(0)
        tenant_uid, user_uid = _uid(rng), _uid(rng)
        projects = {
            template.name: Project(_uid(rng), template.name, self.start - timedelta(days=720))
            for template in PROJECTS
        }
        self._profiles = self._make_profiles(rng)

        plans = [self._overrun_plan(), self._stable_plan()]
        anomaly_plans = AnomalyPlanner(self).plans()
        names = {plan.name for plan in [*plans, *anomaly_plans]}
        for index in range(cluster_count - len(plans) - len(anomaly_plans)):
            plan = self._random_plan(self._rng(2, index), names)
            names.add(plan.name)
            plans.append(plan)

        clusters = [
            self._assemble(self._rng(3, index), plan, projects[plan.project.name])
            for index, plan in enumerate(plans)
        ]
        anomaly_clusters = [
            self._assemble(self._rng(8, index), plan, projects[plan.project.name])
            for index, plan in enumerate(anomaly_plans)
        ]
        waste_project = Project(
            _uid(self._rng(9)), WASTE_TEMPLATE.name, self.start - timedelta(days=720)
        )
        waste_plans = waste_cluster_plans(self) if waste_clusters else []
        waste = [
            self._assemble(self._rng(11, index), plan, waste_project)
            for index, plan in enumerate(waste_plans)
        ]
        if waste:
            projects[waste_project.name] = waste_project
        planned = list(
            zip(
                [*plans, *anomaly_plans, *waste_plans],
                [*clusters, *anomaly_clusters, *waste],
                strict=True,
            )
        )
        return Fleet(
            seed=self.seed,
            as_of=self.as_of,
            start=self.start,
            days=self.days,
            tenant_uid=tenant_uid,
            user_uid=user_uid,
            projects=tuple(projects.values()),
            clusters=(
                *clusters[: len(PLANTED)],
                *anomaly_clusters,
                *waste,
                *clusters[len(PLANTED) :],
            ),
            events=fleet_events(self.seed, self.start, self.as_of, planned),
        )

    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stream])

    def _levels(
        self,
        rng: np.random.Generator,
        level: float,
        *,
        min_size: int,
        max_size: int,
        weekend_factor: float = 1.0,
        monthly_growth: float = 0.0,
        noise: float = 0.0,
    ) -> np.ndarray:
        """Return daily average node counts that reach ``level`` on the day of ``as_of``."""
        months_back = self.days_before_as_of / 30.0
        levels = level * (1.0 + monthly_growth) ** (-months_back)
        levels = levels * np.where(self.weekend, weekend_factor, 1.0)
        levels = levels * (1.0 + noise * rng.standard_normal(self.days))
        return np.clip(levels, min_size, max_size)

    def _fixed(self, size: int) -> np.ndarray:
        return np.full(self.days, float(size))

    def _overrun_plan(self) -> ClusterPlan:
        """Plan the planted ml-training-eks.

        Its GPU pool grows from about 12 to 23.5 nodes over the 30 days before ``as_of``, about
        0.37 nodes a day, so it reaches its autoscaler maximum of 24 nodes about two days after
        ``as_of``. The general worker pool keeps a fixed size, so the GPU pool is the cluster's
        only autoscaled pool and its node count can be read from the cluster's capacity.
        """
        planted = PLANTED[OVERRUN_CLUSTER]
        rng = self._rng(1, 0)

        ramp = np.clip((30.0 - self.days_before_as_of) / 30.0, 0.0, 1.0)
        months_before_ramp = np.clip(self.days_before_as_of - 30.0, 0.0, None) / 30.0
        gpu = 12.3 * 1.01 ** (-months_before_ramp) + (23.5 - 12.3) * ramp
        gpu = np.clip(gpu * (1.0 + 0.02 * rng.standard_normal(self.days)), 4, GPU_POOL_MAX_SIZE)

        pools = [
            PoolPlan("system-pool", "m5.xlarge", self._fixed(3), 3, 3, 100, is_system_pool=True),
            PoolPlan("worker-pool", "m5.2xlarge", self._fixed(4), 4, 4, 100),
            PoolPlan("gpu-training", "g5.2xlarge", gpu, 4, GPU_POOL_MAX_SIZE, 200),
        ]
        namespaces = [
            "training",
            "inference",
            "feature-pipelines",
            "notebooks",
            "experiments",
            "monitoring",
        ]
        return ClusterPlan(
            name=planted.name,
            project=_project(planted.project),
            cloud_type=planted.cloud_type,
            region=planted.region,
            env="prod",
            created_at=self.start - timedelta(days=200, hours=5),
            pools=pools,
            namespaces=namespaces,
            gpu_weights={"training": 0.85, "inference": 0.15},
            utilisation=(0.7, 0.85),
        )

    def _stable_plan(self) -> ClusterPlan:
        """Plan the planted payments-prod: about 20 Standard_D8s_v5 workers, fewer at weekends."""
        planted = PLANTED[STABLE_CLUSTER]
        rng = self._rng(1, 1)

        workers = self._levels(
            rng, 20.5, min_size=10, max_size=30, weekend_factor=0.85, noise=0.015
        )
        pools = [
            PoolPlan(
                "system-pool", "Standard_D4s_v5", self._fixed(3), 3, 3, 128, is_system_pool=True
            ),
            PoolPlan("worker-pool", "Standard_D8s_v5", workers, 10, 30, 128),
        ]
        namespaces = [
            "payments-api",
            "ledger",
            "fraud-scoring",
            "settlement",
            "webhooks",
            "monitoring",
        ]
        return ClusterPlan(
            name=planted.name,
            project=_project(planted.project),
            cloud_type=planted.cloud_type,
            region=planted.region,
            env="prod",
            created_at=self.start - timedelta(days=240, hours=9),
            pools=pools,
            namespaces=namespaces,
            gpu_weights={},
            utilisation=(0.65, 0.8),
        )

    def _random_plan(self, rng: np.random.Generator, taken_names: set[str]) -> ClusterPlan:
        weights = np.array([template.cluster_weight for template in PROJECTS])
        project = PROJECTS[int(rng.choice(len(PROJECTS), p=weights / weights.sum()))]
        cloud_type = str(rng.choice(templates.CLOUD_TYPES))
        region = str(rng.choice(templates.REGIONS[cloud_type]))
        env = str(rng.choice(templates.ENVIRONMENTS, p=templates.ENVIRONMENT_WEIGHTS))
        name = _unique_name(
            f"{project.name_prefix}-{rng.choice(project.workloads)}-{env}", taken_names
        )

        pools = self._random_pools(rng, project, cloud_type, env)
        namespaces = _pick_namespaces(rng, project, has_gpu=any(_is_gpu(p) for p in pools))
        gpu_names = [name for name in namespaces if name in project.gpu_namespaces]
        gpu_weights: dict[str, float] = {}
        if gpu_names:
            draws = rng.dirichlet(np.full(len(gpu_names), 2.0))
            gpu_weights = {name: float(w) for name, w in zip(gpu_names, draws, strict=True)}
        utilisation = (0.35, 0.7) if env == "dev" else (0.55, 0.85)

        return ClusterPlan(
            name,
            project,
            cloud_type,
            region,
            env,
            self._created_at(rng),
            pools,
            namespaces,
            gpu_weights,
            utilisation,
        )

    def _random_pools(
        self, rng: np.random.Generator, project: ProjectTemplate, cloud_type: str, env: str
    ) -> list[PoolPlan]:
        provider = CLOUD_TYPE_PROVIDERS[cloud_type]
        disk = templates.DISK_GIB[provider]
        scale = {"prod": 1.0, "staging": 0.55, "dev": 0.35}[env]
        pools: list[PoolPlan] = []

        if cloud_type in templates.MANAGED_CLOUD_TYPES:
            size = int(rng.choice([2, 3]))
            kind = str(rng.choice(templates.SYSTEM_POOL_TYPES[cloud_type]))
            pools.append(
                PoolPlan(
                    "system-pool", kind, self._fixed(size), size, size, disk, is_system_pool=True
                )
            )
        else:
            size = 3 if env == "prod" else 1
            kind = str(rng.choice(templates.CONTROL_PLANE_TYPES[provider]))
            pools.append(
                PoolPlan(
                    "control-plane-pool",
                    kind,
                    self._fixed(size),
                    size,
                    size,
                    disk,
                    is_control_plane=True,
                )
            )

        for number in range(int(rng.integers(1, 4))):
            name = "worker-pool" if number == 0 else f"worker-pool-{number + 1}"
            kind = str(rng.choice(templates.WORKER_TYPES[provider]))
            pools.append(self._random_worker(rng, name, kind, provider, env, scale * 8.0, disk))

        if project.gpu_namespaces and provider in templates.GPU_TYPES and rng.random() < 0.5:
            kind = str(rng.choice(templates.GPU_TYPES[provider]))
            pools.append(self._random_worker(rng, "gpu-pool", kind, provider, env, 3.0, 200))
        return pools

    def _random_worker(
        self,
        rng: np.random.Generator,
        name: str,
        instance_type: str,
        provider: str,
        env: str,
        max_level: float,
        disk: int,
    ) -> PoolPlan:
        level = round(float(rng.uniform(max(1.0, max_level / 4), max_level)), 1)
        min_size = max(1, int(level * 0.5))
        max_size = int(np.ceil(level * 1.8)) + 1
        autoscale = rng.random() < 0.75
        weekend = float(rng.uniform(0.4, 0.6) if env == "dev" else rng.uniform(0.7, 0.9))
        levels = self._levels(
            rng,
            level,
            min_size=min_size,
            max_size=max_size,
            weekend_factor=weekend if autoscale else 1.0,
            monthly_growth=float(rng.uniform(-0.01, 0.04)),
            noise=float(rng.uniform(0.02, 0.06)) if autoscale else 0.0,
        )
        if not autoscale:
            levels = self._fixed(int(round(level)))
            min_size = max_size = int(round(level))

        spot = provider == "aws" and rng.random() < 0.3
        return PoolPlan(
            name,
            instance_type,
            levels,
            min_size,
            max_size,
            disk,
            capacity_type="spot" if spot else "on-demand",
        )

    def _created_at(self, rng: np.random.Generator) -> datetime:
        """Most clusters predate the history window; about one in seven starts inside it."""
        seconds = int(rng.integers(0, 86_400))
        if rng.random() < 0.15:
            day = int(rng.integers(10, max(11, self.days - 20)))
            return self.start + timedelta(days=day, seconds=seconds)
        return self.start - timedelta(days=int(rng.integers(5, 400)), seconds=seconds)

    def _assemble(self, rng: np.random.Generator, plan: ClusterPlan, project: Project) -> Cluster:
        """Price the pools, apply the creation time, and split the cost among namespaces."""
        provider = CLOUD_TYPE_PROVIDERS[plan.cloud_type]
        storage_price = float(self.catalog.storage_price_per_gib_hour(provider, plan.region))
        pools = [self._priced_pool(plan, pool) for pool in plan.pools]
        prices = np.array([float(pool.hourly_price) for pool in pools])
        disks = np.array([float(pool.disk_gib) for pool in pools])

        node_counts = np.stack([pool.levels for pool in plan.pools])
        first_day = self._apply_creation(node_counts, plan.created_at)
        pool_compute = node_counts * prices[:, None] * HOURS_PER_DAY
        self._apply_capacity_switches(plan, pools, node_counts, pool_compute)
        storage = (node_counts * disks[:, None]).sum(axis=0) * storage_price * HOURS_PER_DAY

        split = NamespaceSplit(rng, plan, pools, self.days)
        extra_compute = _extra_compute(plan, pool_compute)
        namespaces = self._namespaces(rng, plan, split.names)
        node_counts.setflags(write=False)
        return Cluster(
            uid=_uid(rng),
            name=plan.name,
            project=project,
            cloud_type=plan.cloud_type,
            region=plan.region,
            cloud_config_uid=_uid(rng),
            cloud_account_uid=self._account_uid(plan.project.name, provider),
            cloud_account_name=f"{plan.project.name}-{provider}",
            labels=MappingProxyType(_cluster_labels(plan)),
            profiles=self._cluster_profiles(plan, pools),
            created_at=plan.created_at,
            pools=tuple(pools),
            namespaces=namespaces,
            first_day=first_day,
            node_counts=node_counts,
            pool_compute=_frozen(pool_compute),
            compute=_frozen(pool_compute.sum(axis=0)),
            storage=_frozen(storage),
            namespace_compute=_frozen(split.compute(pool_compute, extra_compute)),
            namespace_control_plane=_frozen(split.control_plane(pool_compute)),
            namespace_storage=_frozen(split.storage(storage)),
            cpu_share=_cpu_share(pools),
        )

    def _priced_pool(self, plan: ClusterPlan, pool: PoolPlan) -> MachinePool:
        # NOTE: spot pools are charged the on-demand list price. Palette does not document
        # whether its cost uses spot prices, and the packaged AWS list has on-demand prices only.
        price = self.catalog.hourly_price(plan.cloud_type, plan.region, pool.instance_type)
        shape = self.catalog.shape(plan.cloud_type, pool.instance_type)
        size = int(np.clip(round(float(pool.levels[-1])), pool.min_size, pool.max_size))
        switch = pool.capacity_switch
        return MachinePool(
            name=pool.name,
            instance_type=pool.instance_type,
            is_control_plane=pool.is_control_plane,
            is_system_pool=pool.is_system_pool,
            capacity_type=pool.capacity_type,
            size=size,
            min_size=pool.min_size,
            max_size=pool.max_size,
            disk_gib=pool.disk_gib,
            hourly_price=price,
            vcpus=shape.vcpus,
            memory_gib=shape.memory_gib,
            gpus=shape.gpus,
            capacity_type_before=switch.before if switch else None,
            capacity_changed_at=self.start + timedelta(days=switch.day) if switch else None,
        )

    def _apply_capacity_switches(
        self,
        plan: ClusterPlan,
        pools: list[MachinePool],
        node_counts: np.ndarray,
        pool_compute: np.ndarray,
    ) -> None:
        """Price each day of a pool that changed capacity type at that day's mix of the two."""
        day = np.arange(self.days, dtype=np.float64)
        for index, (pool_plan, pool) in enumerate(zip(plan.pools, pools, strict=True)):
            switch = pool_plan.capacity_switch
            if switch is None:
                continue
            before = float(
                self.catalog.hourly_price(
                    plan.cloud_type, plan.region, pool.instance_type, switch.before
                )
            )
            after_share = np.clip(day + 1.0 - switch.day, 0.0, 1.0)
            hourly = before + (float(pool.hourly_price) - before) * after_share
            pool_compute[index] = node_counts[index] * hourly * HOURS_PER_DAY

    def _apply_creation(self, node_counts: np.ndarray, created_at: datetime) -> int:
        """Zero the node counts before ``created_at`` and return the first day with cost."""
        if created_at <= self.start:
            return 0
        offset = (created_at - self.start).total_seconds() / 86_400
        first_day = int(offset)
        node_counts[:, :first_day] = 0.0
        node_counts[:, first_day] *= 1.0 - (offset - first_day)
        return first_day

    def _namespaces(
        self, rng: np.random.Generator, plan: ClusterPlan, names: list[str]
    ) -> tuple[Namespace, ...]:
        namespaces = []
        for name in names:
            owner = (
                PLATFORM
                if name == KUBE_SYSTEM or name in templates.SHARED_NAMESPACES
                else (plan.project)
            )
            labels = {"team": owner.team, "env": plan.env, "cost-center": owner.cost_center}
            created = plan.created_at
            if name != KUBE_SYSTEM:
                created += timedelta(minutes=int(rng.integers(2, 120)))
            created = plan.late_namespaces.get(name, created)
            namespaces.append(Namespace(_uid(rng), name, MappingProxyType(labels), created))
        return tuple(namespaces)

    def _make_profiles(self, rng: np.random.Generator) -> dict[str, ClusterProfile]:
        profiles: dict[str, ClusterProfile] = {}
        for cloud_type, packs in templates.INFRA_PACKS.items():
            profiles[cloud_type] = ClusterProfile(
                uid=_uid(rng),
                name=f"{cloud_type}-base",
                type="cluster",
                version=int(rng.integers(1, 6)),
                cloud_type=cloud_type,
                scope="tenant",
                packs=tuple(Pack(p.name, p.layer, p.tag) for p in packs),
            )
        for name, packs in templates.ADDON_PROFILES.items():
            profiles[name] = ClusterProfile(
                uid=_uid(rng),
                name=name,
                type="add-on",
                version=int(rng.integers(1, 4)),
                cloud_type="all",
                scope="tenant",
                packs=tuple(Pack(p.name, p.layer, p.tag) for p in packs),
            )
        return profiles

    def _cluster_profiles(
        self, plan: ClusterPlan, pools: list[MachinePool]
    ) -> tuple[ClusterProfile, ...]:
        chosen = [self._profiles[plan.cloud_type], self._profiles["observability"]]
        if plan.project.name in ("storefront", "platform"):
            chosen.append(self._profiles["ingress"])
        if any(pool.gpus for pool in pools):
            chosen.append(self._profiles["gpu-stack"])
        if plan.env == "prod":
            chosen.append(self._profiles["security"])
        return tuple(chosen)

    def _account_uid(self, project: str, provider: str) -> str:
        key = (project, provider)
        if key not in self._accounts:
            self._accounts[key] = _uid(self._rng(4, len(self._accounts)))
        return self._accounts[key]


class NamespaceSplit:
    """Shares of one cluster's cost among its namespaces, leaving part of it idle.

    Each worker pool gives a share of its compute cost to the namespaces, scaled by the pool's
    utilisation, and GPU pools serve only the GPU namespaces. Control-plane pools serve only
    kube-system. A daily factor between 0.85 and 1.15 moves each namespace. Shares of a pool sum
    to at most 0.85, so namespaces never add up to more than the cluster. Nodes that a planted
    anomaly added are left out of the pool shares, and 85% of their cost goes to the namespace
    that uses them. Namespaces created inside the history get only such cost.
    """

    def __init__(
        self, rng: np.random.Generator, plan: ClusterPlan, pools: list[MachinePool], days: int
    ) -> None:
        self.names = [KUBE_SYSTEM, *plan.namespaces]
        count = len(self.names)
        self.worker_shares = np.zeros((len(pools), count))
        self.control_plane_shares = np.zeros((len(pools), count))
        self.extra_targets = {
            index: self.names.index(pool.extra_namespace)
            for index, pool in enumerate(plan.pools)
            if pool.extra_namespace is not None
        }

        gpu_index = [self.names.index(name) for name in plan.gpu_weights]
        late_index = [self.names.index(name) for name in plan.late_namespaces]
        gpu_weights = np.array(list(plan.gpu_weights.values()))
        general_alpha = np.where(np.arange(count) == 0, 0.3, 1.5)
        general_alpha[gpu_index] = 0.0
        general_alpha[late_index] = 0.0

        for index, pool in enumerate(pools):
            used = rng.uniform(*plan.utilisation)
            if pool.is_control_plane:
                self.control_plane_shares[index, 0] = rng.uniform(0.3, 0.5)
            elif pool.gpus and gpu_index:
                self.worker_shares[index, gpu_index] = used * gpu_weights / gpu_weights.sum()
            else:
                self.worker_shares[index] = used * _dirichlet(rng, general_alpha)

        self.storage_shares = rng.uniform(0.3, 0.7) * rng.dirichlet(np.ones(count))
        self.storage_shares[late_index] = 0.0
        self.daily = np.clip(1.0 + 0.08 * rng.standard_normal((count, days)), 0.85, 1.15)

    def compute(self, pool_compute: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Split the pools' compute cost. ``extra`` is the cost of nodes added by an anomaly."""
        if extra is None:
            return (self.worker_shares.T @ pool_compute) * self.daily
        shares = self.worker_shares.T @ (pool_compute - extra)
        for pool_index, namespace_index in self.extra_targets.items():
            shares[namespace_index] += EXTRA_NODE_UTILISATION * extra[pool_index]
        return shares * self.daily

    def control_plane(self, pool_compute: np.ndarray) -> np.ndarray:
        return (self.control_plane_shares.T @ pool_compute) * self.daily

    def storage(self, storage: np.ndarray) -> np.ndarray:
        return self.storage_shares[:, None] * storage[None, :] * self.daily


def _extra_compute(plan: ClusterPlan, pool_compute: np.ndarray) -> np.ndarray | None:
    """Return the compute cost of the nodes that planted anomalies added, or None if none."""
    if all(pool.extra_levels is None for pool in plan.pools):
        return None
    extra = np.zeros_like(pool_compute)
    for index, pool in enumerate(plan.pools):
        if pool.extra_levels is None:
            continue
        share = np.zeros(len(pool.levels))
        np.divide(pool.extra_levels, pool.levels, out=share, where=pool.levels > 0)
        extra[index] = pool_compute[index] * share
    return extra


def _dirichlet(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """Draw a Dirichlet sample over the entries of ``alpha`` that are positive."""
    weights = np.zeros(len(alpha))
    positive = alpha > 0
    weights[positive] = rng.dirichlet(alpha[positive])
    return weights


def _pick_namespaces(
    rng: np.random.Generator, project: ProjectTemplate, *, has_gpu: bool
) -> list[str]:
    """Pick 3 to 8 workload namespaces, with the project's GPU namespaces when there is a GPU."""
    candidates = list(dict.fromkeys([*project.namespaces, *templates.SHARED_NAMESPACES]))
    count = int(rng.integers(3, 9))
    picked = [str(name) for name in rng.choice(candidates, size=count, replace=False)]
    if has_gpu:
        picked = [*project.gpu_namespaces, *picked[: max(1, count - len(project.gpu_namespaces))]]
    return picked


def _is_gpu(pool: PoolPlan) -> bool:
    return pool.name == "gpu-pool"


def _cpu_share(pools: list[MachinePool]) -> float:
    """Return 0.25 when memory-optimised instances carry most worker cost, else 0.65.

    Palette's usage cost splits an instance's rate 65/35 between CPU and memory for general
    purpose and compute optimised instances, and 25/75 for memory optimised ones.
    """
    workers = [pool for pool in pools if not pool.is_control_plane]
    total = sum(float(pool.hourly_price) * pool.size for pool in workers)
    memory = sum(
        float(pool.hourly_price) * pool.size
        for pool in workers
        if pool.instance_type.startswith(templates.MEMORY_OPTIMISED_PREFIXES)
    )
    return 0.25 if total and memory / total > 0.5 else 0.65


def _cluster_labels(plan: ClusterPlan) -> dict[str, str]:
    return {"env": plan.env, "team": plan.project.team, "cost-center": plan.project.cost_center}


def _project(name: str) -> ProjectTemplate:
    return next(template for template in PROJECTS if template.name == name)


def _unique_name(name: str, taken_names: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken_names:
        candidate = f"{name}-{number}"
        number += 1
    return candidate


def _uid(rng: np.random.Generator) -> str:
    """Return a 24-digit hex uid, the form of Palette's object ids."""
    return rng.bytes(12).hex()


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
