"""The building blocks the fleet generator draws from: projects, names, instance menus, profiles."""

from __future__ import annotations

from dataclasses import dataclass

CLOUD_TYPES = ("aws", "eks", "azure", "aks", "gcp", "gke")
MANAGED_CLOUD_TYPES = frozenset({"eks", "aks", "gke"})
"""Managed Kubernetes services run the control plane themselves, so their clusters have a system
node pool instead of a control-plane pool."""

AZURE_REGIONS = (
    "eastus",
    "eastus2",
    "westus2",
    "centralus",
    "westeurope",
    "northeurope",
    "uksouth",
    "southeastasia",
)
REGIONS: dict[str, tuple[str, ...]] = {
    "aws": ("us-east-1",),
    "eks": ("us-east-1",),
    "azure": AZURE_REGIONS,
    "aks": AZURE_REGIONS,
    "gcp": ("us-central1",),
    "gke": ("us-central1",),
}

ENVIRONMENTS = ("prod", "staging", "dev")
ENVIRONMENT_WEIGHTS = (0.4, 0.3, 0.3)


@dataclass(frozen=True, slots=True)
class ProjectTemplate:
    """A Palette project of the simulated tenant and what its clusters run."""

    name: str
    name_prefix: str
    team: str
    cost_center: str
    workloads: tuple[str, ...]
    namespaces: tuple[str, ...]
    gpu_namespaces: tuple[str, ...] = ()
    cluster_weight: float = 1.0


PROJECTS: tuple[ProjectTemplate, ...] = (
    ProjectTemplate(
        name="data-science",
        name_prefix="ds",
        team="ml-platform",
        cost_center="CC-4100",
        workloads=(
            "notebooks",
            "feature-store",
            "batch-scoring",
            "etl",
            "inference",
            "labeling",
            "mlflow",
            "spark",
            "airflow",
            "vector-db",
        ),
        namespaces=(
            "notebooks",
            "feature-pipelines",
            "model-serving",
            "experiments",
            "airflow",
            "spark-jobs",
            "mlflow",
            "label-studio",
            "batch-scoring",
            "vector-db",
        ),
        gpu_namespaces=("training", "inference"),
        cluster_weight=1.0,
    ),
    ProjectTemplate(
        name="payments",
        name_prefix="pay",
        team="payments",
        cost_center="CC-2100",
        workloads=("ledger", "gateway", "fraud", "settlement", "reconcile", "billing", "risk"),
        namespaces=(
            "payments-api",
            "ledger",
            "fraud-scoring",
            "settlement",
            "reconciliation",
            "webhooks",
            "card-vault",
            "reporting",
        ),
        cluster_weight=1.0,
    ),
    ProjectTemplate(
        name="platform",
        name_prefix="plat",
        team="platform",
        cost_center="CC-1100",
        workloads=(
            "ingress",
            "observability",
            "ci-runners",
            "registry",
            "vault",
            "logging",
            "mesh",
            "backstage",
        ),
        namespaces=(
            "monitoring",
            "logging",
            "ingress-nginx",
            "cert-manager",
            "argocd",
            "ci-runners",
            "harbor",
            "vault",
            "istio-system",
        ),
        cluster_weight=1.2,
    ),
    ProjectTemplate(
        name="storefront",
        name_prefix="shop",
        team="storefront",
        cost_center="CC-3100",
        workloads=("web", "catalog", "checkout", "search", "cart", "recs", "cms"),
        namespaces=(
            "web",
            "catalog-api",
            "checkout",
            "search",
            "cart",
            "recommendations",
            "cms",
            "images",
        ),
        cluster_weight=1.2,
    ),
)

SHARED_NAMESPACES = ("monitoring", "ingress-nginx", "cert-manager")

# Instance types by cloud and role. Every type here has a price in the packaged catalogue and a
# shape in costwarden.sources.prices.INSTANCE_SHAPES.
CONTROL_PLANE_TYPES: dict[str, tuple[str, ...]] = {
    "aws": ("m5.large", "m5.xlarge"),
    "azure": ("Standard_D2s_v5", "Standard_D4s_v5"),
    "gcp": ("n2-standard-2", "n2-standard-4"),
}
SYSTEM_POOL_TYPES: dict[str, tuple[str, ...]] = {
    "eks": ("m5.large", "t3.large"),
    "aks": ("Standard_D4s_v5", "Standard_D2s_v5"),
    "gke": ("e2-standard-4", "e2-standard-2"),
}
WORKER_TYPES: dict[str, tuple[str, ...]] = {
    "aws": (
        "m5.xlarge",
        "m5.2xlarge",
        "m6i.xlarge",
        "m6i.2xlarge",
        "c5.2xlarge",
        "r5.xlarge",
        "r5.2xlarge",
        "t3.large",
    ),
    "azure": (
        "Standard_D4s_v5",
        "Standard_D8s_v5",
        "Standard_D16s_v5",
        "Standard_E4s_v5",
        "Standard_E8s_v5",
        "Standard_F4s_v2",
        "Standard_F8s_v2",
        "Standard_B2ms",
    ),
    "gcp": (
        "e2-standard-4",
        "e2-standard-8",
        "n2-standard-4",
        "n2-standard-8",
        "n2-standard-16",
        "n2-highmem-4",
        "n2-highmem-8",
        "n2-highcpu-8",
        "c2-standard-8",
    ),
}
GPU_TYPES: dict[str, tuple[str, ...]] = {
    "aws": ("g4dn.xlarge", "g5.xlarge"),
    "azure": ("Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3"),
}
MEMORY_OPTIMISED_PREFIXES = ("r5.", "Standard_E", "n2-highmem")
"""Instance families whose usage cost Palette splits 25/75 between CPU and memory (65/35 else)."""

DISK_GIB: dict[str, int] = {"aws": 100, "azure": 128, "gcp": 100}


@dataclass(frozen=True, slots=True)
class PackTemplate:
    name: str
    layer: str
    tag: str


def _packs(*specs: str) -> tuple[PackTemplate, ...]:
    """Build packs from ``name:layer:tag`` strings."""
    return tuple(PackTemplate(*spec.split(":")) for spec in specs)


INFRA_PACKS: dict[str, tuple[PackTemplate, ...]] = {
    "aws": _packs(
        "ubuntu-aws:os:22.04",
        "kubernetes:k8s:1.30.4",
        "cni-calico:cni:3.28.0",
        "csi-aws-ebs:csi:1.34.0",
    ),
    "eks": _packs(
        "amazon-linux-eks:os:1.0.0",
        "kubernetes-eks:k8s:1.30",
        "cni-aws-vpc-eks:cni:1.18.3",
        "csi-aws-ebs:csi:1.34.0",
    ),
    "azure": _packs(
        "ubuntu-azure:os:22.04",
        "kubernetes:k8s:1.30.4",
        "cni-calico-azure:cni:3.28.0",
        "csi-azure:csi:1.30.3",
    ),
    "aks": _packs(
        "ubuntu-aks:os:22.04",
        "kubernetes-aks:k8s:1.30",
        "cni-kubenet:cni:1.0",
        "csi-azure:csi:1.30.3",
    ),
    "gcp": _packs(
        "ubuntu-gcp:os:22.04",
        "kubernetes:k8s:1.30.4",
        "cni-calico:cni:3.28.0",
        "csi-gcp-driver:csi:1.13.2",
    ),
    "gke": _packs(
        "cos-gke:os:1.0",
        "kubernetes-gke:k8s:1.30",
        "cni-kubenet:cni:1.0",
        "csi-gcp-driver:csi:1.13.2",
    ),
}

ADDON_PROFILES: dict[str, tuple[PackTemplate, ...]] = {
    "observability": _packs("prometheus-operator:addon:58.2.2", "grafana-loki:addon:6.6.2"),
    "ingress": _packs("nginx:addon:4.10.1", "cert-manager:addon:1.14.5"),
    "gpu-stack": _packs("nvidia-gpu-operator:addon:24.3.0"),
    "security": _packs("kyverno:addon:3.2.2", "falco:addon:4.4.2"),
}
