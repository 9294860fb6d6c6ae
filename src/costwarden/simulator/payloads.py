"""JSON bodies in the shapes of Palette's OpenAPI definitions, built from the simulated fleet.

Field names and nesting follow the definitions named in each function's docstring. Values that
Palette does not document, such as the metric units, are plausible choices.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from costwarden.simulator.costs import CostSeries, month_to_date
from costwarden.simulator.model import Cluster, ClusterProfile, Fleet, MachinePool, Project

TimestampUnit = Literal["seconds", "milliseconds"]

AGENT_VERSION = "4.8.0"
CLOUD_CONFIG_KINDS = {
    "aws": "AwsCloudConfig",
    "eks": "EksCloudConfig",
    "azure": "AzureCloudConfig",
    "aks": "AzureCloudConfig",
    "gcp": "GcpCloudConfig",
    "gke": "GcpCloudConfig",
}
DECIMALS = 6


def rfc3339(moment: datetime) -> str:
    """Format a UTC datetime as Palette does: RFC 3339 with milliseconds and a ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def user_info(fleet: Fleet, org_name: str) -> dict[str, Any]:
    """``v1UserInfo``."""
    return {"orgName": org_name, "tenantUid": fleet.tenant_uid, "userUid": fleet.user_uid}


def projects_metadata(projects: list[Project]) -> dict[str, Any]:
    """``v1ProjectsMetadata``."""
    return {"items": [{"metadata": {"name": p.name, "uid": p.uid}} for p in projects]}


def _object_meta(
    uid: str,
    name: str,
    labels: dict[str, str],
    created: datetime,
    *,
    annotations: dict[str, str] | None = None,
    modified: datetime | None = None,
) -> dict[str, Any]:
    return {
        "uid": uid,
        "name": name,
        "labels": labels,
        "annotations": annotations or {},
        "creationTimestamp": rfc3339(created),
        "lastModifiedTimestamp": rfc3339(modified or created),
    }


def _cluster_meta(cluster: Cluster) -> dict[str, Any]:
    return _object_meta(
        cluster.uid,
        cluster.name,
        dict(cluster.labels),
        cluster.created_at,
        annotations=dict(cluster.annotations),
        modified=cluster.modified_at,
    )


def _profile_meta(profile: ClusterProfile) -> dict[str, Any]:
    """``v1ClusterProfileTemplateMeta``."""
    return {
        "uid": profile.uid,
        "name": profile.name,
        "type": profile.type,
        "version": profile.version,
        "scope": profile.scope,
        "cloudType": profile.cloud_type,
        "packs": [_pack(pack.name, pack.layer, pack.tag) for pack in profile.packs],
    }


def _pack(name: str, layer: str, tag: str) -> dict[str, Any]:
    return {"name": name, "layer": layer, "tag": tag, "version": tag, "type": "spectro"}


def _cost(compute: float, storage: float) -> dict[str, Any]:
    """``v1ResourceCost``."""
    total = round(compute + storage, DECIMALS)
    cloud = {
        "compute": round(compute, DECIMALS),
        "storage": round(storage, DECIMALS),
        "total": total,
    }
    return {"cloud": cloud, "total": total}


def _metrics(fleet: Fleet, cluster: Cluster) -> dict[str, Any]:
    """``v1SpectroClusterMetrics`` at ``as_of``: capacity from the pools, usage from the
    namespaces' share of today's compute cost."""
    workers = cluster.compute[-1] - sum(
        cluster.node_counts[index, -1] * float(pool.hourly_price) * 24
        for index, pool in enumerate(cluster.pools)
        if pool.is_control_plane
    )
    used = float(cluster.namespace_compute[:, -1].sum() / workers) if workers > 0 else 0.0
    cores = float(sum(pool.size * pool.vcpus for pool in cluster.pools))
    memory = float(sum(pool.size * pool.memory_gib for pool in cluster.pools))
    updated = rfc3339(fleet.as_of)

    def usage(total: float, unit: str) -> dict[str, Any]:
        return {
            "total": total,
            "request": round(total * min(1.0, used * 1.25), 2),
            "limit": round(total * min(1.5, used * 1.6), 2),
            "usage": round(total * used, 2),
            "unit": unit,
            "lastUpdatedTime": updated,
        }

    return {"cpu": usage(cores, "cores"), "memory": usage(memory, "GiB")}


def _pool_meta(cluster: Cluster, pool: MachinePool) -> dict[str, Any]:
    """``v1MachinePoolMeta``."""
    return {
        "cloudType": cluster.cloud_type,
        "size": pool.size,
        "healthy": pool.size,
        "maintenanceMode": 0,
        "isControlPlane": pool.is_control_plane,
        "labels": _pool_labels(pool),
    }


def _pool_labels(pool: MachinePool) -> list[str]:
    return ["control-plane"] if pool.is_control_plane else ["worker"]


def cluster_summary(fleet: Fleet, cluster: Cluster) -> dict[str, Any]:
    """``v1SpectroClusterSummary``; ``status.cost`` is month-to-date at ``as_of``."""
    compute, storage = month_to_date(fleet, cluster)
    hourly = _cost(float(cluster.compute[-1]) / 24, float(cluster.storage[-1]) / 24)
    profiles = [_profile_meta(profile) for profile in cluster.profiles]
    return {
        "metadata": _cluster_meta(cluster),
        "specSummary": {
            "archTypes": ["amd64"],
            "cloudAccountMeta": {
                "name": cluster.cloud_account_name,
                "uid": cluster.cloud_account_uid,
            },
            "cloudConfig": {
                "uid": cluster.cloud_config_uid,
                "cloudType": cluster.cloud_type,
                "machinePools": [_pool_meta(cluster, pool) for pool in cluster.pools],
                "hybridMachinePools": [],
            },
            "clusterConfig": {"timezone": "Etc/UTC"},
            "clusterProfileTemplate": profiles[0],
            "clusterProfileTemplates": profiles,
            "projectMeta": {"name": cluster.project.name, "uid": cluster.project.uid},
        },
        "status": {
            "state": "Running",
            "health": {
                "state": "Healthy",
                "agentVersion": AGENT_VERSION,
                "lastHeartBeatTimestamp": rfc3339(fleet.as_of - timedelta(seconds=30)),
                "conditions": [],
            },
            "cost": _cost(compute, storage),
            "hourlyRate": hourly,
            "metrics": _metrics(fleet, cluster),
            "location": {"regionCode": cluster.region, "regionName": cluster.region},
            "clusterImport": {"isBrownfield": False, "state": ""},
        },
    }


def cluster_detail(fleet: Fleet, cluster: Cluster) -> dict[str, Any]:
    """``v1SpectroCluster``."""
    templates = []
    for profile in cluster.profiles:
        template = _profile_meta(profile)
        template["profileVersion"] = f"1.{profile.version}.0"
        templates.append(template)

    return {
        "apiVersion": "v1",
        "kind": "SpectroCluster",
        "metadata": _cluster_meta(cluster),
        "spec": {
            "cloudType": cluster.cloud_type,
            "cloudConfigRef": {
                "kind": CLOUD_CONFIG_KINDS[cluster.cloud_type],
                "name": f"{cluster.name}-config",
                "uid": cluster.cloud_config_uid,
            },
            "clusterType": "PureManage",
            "clusterProfileTemplates": templates,
            "clusterConfig": {"timezone": "Etc/UTC"},
        },
        "status": {
            "state": "Running",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "",
                    "message": "",
                    "lastProbeTime": rfc3339(fleet.as_of),
                    "lastTransitionTime": rfc3339(cluster.created_at),
                }
            ],
            "location": {"regionCode": cluster.region, "regionName": cluster.region},
            "apiEndpoints": [
                {"host": f"{cluster.name}.{cluster.region}.example.internal", "port": 6443}
            ],
        },
    }


def cloud_config(cluster: Cluster) -> dict[str, Any]:
    """``v1AwsCloudConfig``, ``v1EksCloudConfig``, ``v1AzureCloudConfig`` or
    ``v1GcpCloudConfig``, after the cluster's cloud type."""
    return {
        "apiVersion": "v1",
        "kind": CLOUD_CONFIG_KINDS[cluster.cloud_type],
        "metadata": _object_meta(
            cluster.cloud_config_uid,
            f"{cluster.name}-config",
            {},
            cluster.created_at,
            modified=cluster.modified_at,
        ),
        "spec": {
            "cloudAccountRef": {
                "kind": "cloudaccount",
                "name": cluster.cloud_account_name,
                "uid": cluster.cloud_account_uid,
            },
            "clusterConfig": _cluster_config(cluster),
            "machinePoolConfig": [_machine_pool(cluster, pool) for pool in cluster.pools],
        },
        "status": {"conditions": []},
    }


def _cluster_config(cluster: Cluster) -> dict[str, Any]:
    provider = cluster.provider
    if provider == "aws":
        return {"region": cluster.region}
    if provider == "azure":
        return {
            "location": cluster.region,
            "subscriptionId": cluster.cloud_account_uid,
            "resourceGroup": f"{cluster.name}-rg",
            "sshKey": "",
        }
    return {"project": cluster.project.name, "region": cluster.region}


def _machine_pool(cluster: Cluster, pool: MachinePool) -> dict[str, Any]:
    """Build one entry of ``machinePoolConfig``, with the fields of the cluster's cloud type."""
    entry: dict[str, Any] = {
        "name": pool.name,
        "isControlPlane": pool.is_control_plane,
        "size": pool.size,
        "minSize": pool.min_size,
        "maxSize": pool.max_size,
        "instanceType": pool.instance_type,
        "labels": _pool_labels(pool),
        "azs": [],
        "updateStrategy": {"type": "RollingUpdateScaleOut"},
        "instanceConfig": {
            "name": pool.instance_type,
            "numCPUs": pool.vcpus,
            "memoryMiB": int(pool.memory_gib * 1024),
            "diskGiB": pool.disk_gib,
        },
    }
    provider = cluster.provider
    if provider == "aws":
        entry["capacityType"] = pool.capacity_type
        entry["rootDeviceSize"] = pool.disk_gib
    elif provider == "azure":
        entry["isSystemNodePool"] = pool.is_system_pool
        if pool.capacity_type == "spot":
            entry["spotVMOptions"] = {}
        entry["osType"] = "Linux"
        entry["osDisk"] = {
            "diskSizeGB": pool.disk_gib,
            "osType": "Linux",
            "managedDisk": {"storageAccountType": "Premium_LRS"},
        }
    else:
        entry["rootDeviceSize"] = pool.disk_gib
    return entry


def workload_namespaces(cluster: Cluster, names: list[str]) -> dict[str, Any]:
    """``v1ClusterWorkloadNamespaces``; an empty ``names`` lists every namespace."""
    items = []
    for namespace in cluster.namespaces:
        if names and namespace.name not in names:
            continue
        labels = {"kubernetes.io/metadata.name": namespace.name, **namespace.labels}
        items.append(
            {
                "metadata": {
                    "creationTimestamp": rfc3339(namespace.created_at),
                    "entity": {"kind": "namespace", "name": namespace.name, "uid": namespace.uid},
                    "labels": labels,
                    "namespace": namespace.name,
                },
                "status": {"phase": "Active"},
            }
        )
    return {"namespaces": items}


def _timestamps(starts: np.ndarray, unit: TimestampUnit) -> list[int]:
    factor = 1000 if unit == "milliseconds" else 1
    return [int(start) * factor for start in starts]


def _series_json(
    series: CostSeries, fields: tuple[str, ...], unit: TimestampUnit, associated: bool
) -> dict[str, Any]:
    columns = {name: series.columns[name] for name in fields}
    data = []
    for index, timestamp in enumerate(_timestamps(series.starts, unit)):
        point: dict[str, Any] = {"timestamp": timestamp}
        point.update({name: round(float(columns[name][index]), DECIMALS) for name in fields})
        data.append(point)

    body: dict[str, Any] = {"entity": series.entity.as_json()}
    if associated:
        body["associatedResources"] = [ref.as_json() for ref in series.associated]
    body["data"] = data
    body["total"] = {name: round(float(columns[name].sum()), DECIMALS) for name in fields}
    return body


def _summary(
    series: list[CostSeries], fields: tuple[str, ...], unit: TimestampUnit, associated: bool
) -> dict[str, Any]:
    resources = [_series_json(item, fields, unit, associated) for item in series]
    total = {
        name: round(float(sum(item.columns[name].sum() for item in series)), DECIMALS)
        for name in fields
    }
    return {"resources": resources, "total": total}


def cloud_cost_summary(series: list[CostSeries], unit: TimestampUnit) -> dict[str, Any]:
    """``v1ResourcesCloudCostSummary``."""
    return _summary(series, ("compute", "storage", "total"), unit, associated=False)


def resource_cost_summary(series: list[CostSeries], unit: TimestampUnit) -> dict[str, Any]:
    """``v1ResourcesCostSummary``."""
    return _summary(series, ("cpu", "memory", "storage", "total"), unit, associated=True)
