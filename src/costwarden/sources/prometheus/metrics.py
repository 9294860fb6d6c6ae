"""Metric and label names the Prometheus source reads, grouped by the exporter that writes them.

The names follow cAdvisor as embedded in the kubelet, kube-state-metrics 2.x, the kubelet's own
metrics, node-exporter 1.x and NVIDIA's DCGM exporter 3.x.
"""

from __future__ import annotations

# cAdvisor, scraped from the kubelet's /metrics/cadvisor endpoint. Series with container="" are
# the pod's cgroup total and container="POD" the pause container, so per-container queries drop
# both.
CONTAINER_CPU_USAGE_SECONDS = "container_cpu_usage_seconds_total"
CONTAINER_MEMORY_WORKING_SET_BYTES = "container_memory_working_set_bytes"
CONTAINER_OOM_EVENTS = "container_oom_events_total"
CONTAINER_NETWORK_TRANSMIT_BYTES = "container_network_transmit_bytes_total"
REAL_CONTAINERS = 'container!="",container!="POD"'

# kube-state-metrics.
KUBE_POD_CONTAINER_RESOURCE_REQUESTS = "kube_pod_container_resource_requests"
KUBE_POD_CONTAINER_RESOURCE_LIMITS = "kube_pod_container_resource_limits"
KUBE_POD_CONTAINER_LAST_TERMINATED_REASON = "kube_pod_container_status_last_terminated_reason"
KUBE_POD_CONTAINER_RESTARTS = "kube_pod_container_status_restarts_total"
KUBE_POD_OWNER = "kube_pod_owner"
KUBE_POD_INFO = "kube_pod_info"
KUBE_REPLICASET_OWNER = "kube_replicaset_owner"
KUBE_JOB_OWNER = "kube_job_owner"
KUBE_DEPLOYMENT_SPEC_REPLICAS = "kube_deployment_spec_replicas"
KUBE_STATEFULSET_REPLICAS = "kube_statefulset_replicas"
KUBE_HPA_INFO = "kube_horizontalpodautoscaler_info"
KUBE_HPA_SPEC_MIN_REPLICAS = "kube_horizontalpodautoscaler_spec_min_replicas"
KUBE_HPA_SPEC_MAX_REPLICAS = "kube_horizontalpodautoscaler_spec_max_replicas"
KUBE_NODE_STATUS_ALLOCATABLE = "kube_node_status_allocatable"
KUBE_NODE_LABELS = "kube_node_labels"
KUBE_PVC_INFO = "kube_persistentvolumeclaim_info"
KUBE_PVC_REQUESTED_BYTES = "kube_persistentvolumeclaim_resource_requests_storage_bytes"

RESOURCE_CPU = "cpu"
RESOURCE_MEMORY = "memory"
RESOURCE_GPU = "nvidia_com_gpu"
"""kube-state-metrics writes the extended resource nvidia.com/gpu with _ for . and /."""

# The kubelet's volume statistics, reported only for volumes that a running pod mounts.
KUBELET_VOLUME_STATS_USED_BYTES = "kubelet_volume_stats_used_bytes"
KUBELET_VOLUME_STATS_CAPACITY_BYTES = "kubelet_volume_stats_capacity_bytes"

# node-exporter.
NODE_CPU_SECONDS = "node_cpu_seconds_total"
NODE_MEMORY_TOTAL_BYTES = "node_memory_MemTotal_bytes"
NODE_MEMORY_AVAILABLE_BYTES = "node_memory_MemAvailable_bytes"

# NVIDIA DCGM exporter: GPU utilisation in percent, one series per GPU.
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"

# Node labels as kube-state-metrics exports them on kube_node_labels: label_ plus the Kubernetes
# label with every character outside [a-zA-Z0-9_] replaced by _. kube-state-metrics exports only
# the labels its --metric-labels-allowlist names. The first label present wins.
INSTANCE_TYPE_LABELS = (
    "label_node_kubernetes_io_instance_type",
    "label_beta_kubernetes_io_instance_type",
)
ZONE_LABELS = ("label_topology_kubernetes_io_zone", "label_failure_domain_beta_kubernetes_io_zone")
NODE_POOL_LABELS = (
    "label_karpenter_sh_nodepool",
    "label_eks_amazonaws_com_nodegroup",
    "label_cloud_google_com_gke_nodepool",
    "label_kubernetes_azure_com_agentpool",
    "label_agentpool",
)
GPU_MODEL_LABELS = ("label_nvidia_com_gpu_product",)
CAPACITY_TYPE_LABELS = {
    "label_karpenter_sh_capacity_type": {"spot": "spot", "on-demand": "on-demand"},
    "label_eks_amazonaws_com_capacity_type": {"SPOT": "spot", "ON_DEMAND": "on-demand"},
    "label_cloud_google_com_gke_spot": {"true": "spot"},
    "label_cloud_google_com_gke_preemptible": {"true": "spot"},
    "label_kubernetes_azure_com_scalesetpriority": {"spot": "spot", "regular": "on-demand"},
}
"""Capacity type labels and how their values read as ``spot`` or ``on-demand``."""
