"""Pydantic models of the Palette API responses that costwarden reads.

Only the fields costwarden uses are declared and unknown fields are ignored, because Palette adds
fields in backward-compatible releases. Palette's Go server writes empty lists and maps as
``null``, so list and map fields accept ``null`` as empty. Cost figures become ``Decimal``
without a currency: the currency comes from ``PaletteSettings.currency``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")

MILLISECONDS_THRESHOLD = 1e11
"""Epoch values above this are milliseconds: 1e11 s is the year 5138, but 1e11 ms is 1973."""


def _empty_list_for_null(value: Any) -> Any:
    return [] if value is None else value


def _empty_dict_for_null(value: Any) -> Any:
    return {} if value is None else value


def _empty_str_for_null(value: Any) -> Any:
    return "" if value is None else value


def _epoch_to_utc(value: Any) -> Any:
    """Turn epoch seconds or milliseconds into an aware UTC datetime. Strings go to pydantic."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if not math.isfinite(value):
        raise ValueError(f"timestamp {value!r} is not a finite number")
    seconds = value / 1000 if abs(value) > MILLISECONDS_THRESHOLD else value
    return datetime.fromtimestamp(seconds, UTC)


def _as_utc(value: datetime) -> datetime:
    """Read a datetime without an offset as UTC, and convert any other offset to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _to_money(value: Any) -> Any:
    """Turn a JSON number into a Decimal through its shortest text form, and ``null`` into 0."""
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"amount {value!r} is not a finite number")
        return Decimal(repr(value))
    return value


NullableList = Annotated[list[T], BeforeValidator(_empty_list_for_null)]
Labels = Annotated[dict[str, str], BeforeValidator(_empty_dict_for_null)]
Nested = Annotated[T, BeforeValidator(_empty_dict_for_null)]
Text = Annotated[str, BeforeValidator(_empty_str_for_null)]
UtcDatetime = Annotated[datetime, BeforeValidator(_epoch_to_utc), AfterValidator(_as_utc)]
Money = Annotated[Decimal, BeforeValidator(_to_money), Field(allow_inf_nan=False)]


class PaletteModel(BaseModel):
    """Base of every Palette model: camelCase aliases, unknown fields ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class ErrorBody(PaletteModel):
    """Palette's error body (``V1Error``)."""

    code: Text = ""
    message: Text = ""
    ref: Text = ""


class ListMeta(PaletteModel):
    """Pagination state of a list response. An empty ``continue`` marks the last page."""

    continue_token: str = Field("", alias="continue")
    count: int | None = None
    limit: int | None = None
    offset: int | None = None


class UserInfo(PaletteModel):
    """The caller's identity, from ``GET /v1/users/info``."""

    org_name: str = ""
    tenant_uid: str = ""
    user_uid: str = ""


class ObjectEntity(PaletteModel):
    uid: str = ""
    name: str = ""


class ProjectMetadata(PaletteModel):
    """One item of ``GET /v1/dashboard/projects/metadata``."""

    metadata: Nested[ObjectEntity] = Field(default_factory=ObjectEntity)

    @property
    def uid(self) -> str:
        return self.metadata.uid

    @property
    def name(self) -> str:
        return self.metadata.name


class ProjectsMetadata(PaletteModel):
    items: NullableList[ProjectMetadata] = Field(default_factory=list)


class ObjectMeta(PaletteModel):
    """Kubernetes-style object metadata. Palette keeps cluster tags in ``labels``."""

    uid: str = ""
    name: str = ""
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    creation_timestamp: UtcDatetime | None = None
    deletion_timestamp: UtcDatetime | None = None


class ObjectReference(PaletteModel):
    uid: str = ""
    name: str = ""
    kind: str = ""


class CloudConfigMeta(PaletteModel):
    uid: str = ""
    cloud_type: str = ""


class ProfileTemplateMeta(PaletteModel):
    """A cluster profile attached to a cluster, as listed in summaries and cluster specs."""

    uid: str = ""
    name: str = ""
    type: str = ""


class ClusterSpecSummary(PaletteModel):
    cloud_config: CloudConfigMeta | None = None
    project_meta: ObjectEntity | None = None
    cloud_account_meta: ObjectEntity | None = None
    cluster_profile_templates: NullableList[ProfileTemplateMeta] = Field(default_factory=list)


class ClusterStatusSummary(PaletteModel):
    state: str = ""


class ClusterSummary(PaletteModel):
    """One item of ``POST /v1/dashboard/spectroclusters/search`` (``v1SpectroClusterSummary``)."""

    metadata: Nested[ObjectMeta] = Field(default_factory=ObjectMeta)
    spec_summary: Nested[ClusterSpecSummary] = Field(default_factory=ClusterSpecSummary)
    status: Nested[ClusterStatusSummary] = Field(default_factory=ClusterStatusSummary)


class ClusterSearchPage(PaletteModel):
    items: NullableList[ClusterSummary] = Field(default_factory=list)
    listmeta: Nested[ListMeta] = Field(default_factory=ListMeta)


class ClusterSpec(PaletteModel):
    cloud_type: str = ""
    cloud_config_ref: ObjectReference | None = None
    cluster_profile_templates: NullableList[ProfileTemplateMeta] = Field(default_factory=list)


class ClusterStatus(PaletteModel):
    state: str = ""


class Cluster(PaletteModel):
    """One cluster from ``GET /v1/spectroclusters/{uid}`` (``v1SpectroCluster``)."""

    metadata: Nested[ObjectMeta] = Field(default_factory=ObjectMeta)
    spec: Nested[ClusterSpec] = Field(default_factory=ClusterSpec)
    status: Nested[ClusterStatus] = Field(default_factory=ClusterStatus)


class CloudCostTotal(PaletteModel):
    compute: Money = Decimal(0)
    storage: Money = Decimal(0)
    total: Money = Decimal(0)


class CloudCostPoint(CloudCostTotal):
    """One point of a cloud cost series (``v1CloudCostDataPoint``)."""

    timestamp: UtcDatetime


class CloudCostSeries(PaletteModel):
    """The cloud cost of one entity, such as a cluster, over time."""

    entity: ObjectReference
    data: NullableList[CloudCostPoint] = Field(default_factory=list)
    total: Nested[CloudCostTotal] = Field(default_factory=CloudCostTotal)


class CloudCostSummary(PaletteModel):
    """Response of ``POST /v1/dashboard/spectroclusters/cost``."""

    resources: NullableList[CloudCostSeries] = Field(default_factory=list)
    total: Nested[CloudCostTotal] = Field(default_factory=CloudCostTotal)


class ResourceCostTotal(PaletteModel):
    cpu: Money = Decimal(0)
    memory: Money = Decimal(0)
    storage: Money = Decimal(0)
    total: Money = Decimal(0)


class ResourceCostPoint(ResourceCostTotal):
    """One point of a usage-based cost series (``v1ResourceCostDataPoint``)."""

    timestamp: UtcDatetime


class ResourceCostSeries(PaletteModel):
    """The usage-based cost of one entity, such as a namespace, over time."""

    entity: ObjectReference
    associated_resources: NullableList[ObjectReference] = Field(default_factory=list)
    data: NullableList[ResourceCostPoint] = Field(default_factory=list)
    total: Nested[ResourceCostTotal] = Field(default_factory=ResourceCostTotal)


class ResourceCostSummary(PaletteModel):
    """Response of ``POST /v1/dashboard/spectroclusters/resources/cost``."""

    resources: NullableList[ResourceCostSeries] = Field(default_factory=list)
    total: Nested[ResourceCostTotal] = Field(default_factory=ResourceCostTotal)


class WorkloadMetadata(PaletteModel):
    namespace: str = ""
    labels: Labels = Field(default_factory=dict)
    entity: ObjectReference | None = None
    creation_timestamp: UtcDatetime | None = None


class WorkloadStatus(PaletteModel):
    phase: str = ""


class WorkloadNamespace(PaletteModel):
    """One live namespace of a cluster (``v1ClusterWorkloadNamespace``)."""

    metadata: Nested[WorkloadMetadata] = Field(default_factory=WorkloadMetadata)
    status: Nested[WorkloadStatus] = Field(default_factory=WorkloadStatus)

    @property
    def name(self) -> str:
        """The namespace name, from ``metadata.namespace`` or else the entity name."""
        if self.metadata.namespace:
            return self.metadata.namespace
        return self.metadata.entity.name if self.metadata.entity else ""


class WorkloadNamespaces(PaletteModel):
    namespaces: NullableList[WorkloadNamespace] = Field(default_factory=list)


def _zero_for_null(value: Any) -> Any:
    return 0.0 if value is None else value


Quantity = Annotated[float, BeforeValidator(_zero_for_null), Field(allow_inf_nan=False)]
"""A CPU or memory amount in the unit the response names; ``null`` reads as 0."""


class ConsumptionData(PaletteModel):
    """CPU and memory amounts (``v1ResourceConsumptionData``)."""

    cpu: Quantity = 0.0
    memory: Quantity = 0.0


class ConsumptionPoint(PaletteModel):
    """One point of a consumption series (``v1ResourceConsumptionDataPoint``)."""

    timestamp: UtcDatetime
    usage: Nested[ConsumptionData] = Field(default_factory=ConsumptionData)
    allotted: Nested[ConsumptionData] = Field(default_factory=ConsumptionData)


class ConsumptionSeries(PaletteModel):
    """CPU and memory used versus allotted by one entity, such as a namespace, over time."""

    entity: ObjectReference
    associated_resources: NullableList[ObjectReference] = Field(default_factory=list)
    data: NullableList[ConsumptionPoint] = Field(default_factory=list)


class ResourceConsumption(PaletteModel):
    """Response of ``POST /v1/dashboard/spectroclusters/resources/consumption``.

    ``cpu_unit`` and ``memory_unit`` name the units of every amount in ``resources``.
    """

    cpu_unit: Text = ""
    memory_unit: Text = ""
    resources: NullableList[ConsumptionSeries] = Field(default_factory=list)


class GpuConfig(PaletteModel):
    """A GPU limit (``v1GpuConfig``); -1 means unlimited."""

    limit: int | None = None
    provider: Text = ""


class NamespaceAllocation(PaletteModel):
    """A namespace's quota (``v1ClusterNamespaceResourceAllocation``)."""

    cpu_cores: float | None = None
    memory_mib: float | None = Field(None, alias="memoryMiB")
    gpu_config: GpuConfig | None = None


class NamespaceConfigSpec(PaletteModel):
    is_regex: bool = False
    resource_allocation: NamespaceAllocation | None = None


class NamespaceConfig(PaletteModel):
    """One item of ``GET /v1/spectroclusters/{uid}/config/namespaces``.

    With ``spec.is_regex`` set, the name is a regular expression and the allocation applies to
    each namespace it matches.
    """

    metadata: Nested[ObjectMeta] = Field(default_factory=ObjectMeta)
    spec: Nested[NamespaceConfigSpec] = Field(default_factory=NamespaceConfigSpec)

    @property
    def name(self) -> str:
        return self.metadata.name


class NamespaceConfigs(PaletteModel):
    items: NullableList[NamespaceConfig] = Field(default_factory=list)


class InstanceConfig(PaletteModel):
    """The shape of a pool's instance type as Palette reports it."""

    name: Text = ""
    num_cpus: int | None = Field(None, alias="numCPUs")
    memory_mib: int | None = Field(None, alias="memoryMiB")
    disk_gib: int | None = Field(None, alias="diskGiB")


class OsDisk(PaletteModel):
    """The OS disk of an Azure or AKS pool."""

    disk_size_gb: int | None = Field(None, alias="diskSizeGB")


class MachinePoolConfig(PaletteModel):
    """One entry of a cloud config's ``spec.machinePoolConfig``; ``size`` is the node count now."""

    name: str = ""
    is_control_plane: bool = False
    size: int = 0
    min_size: int | None = None
    max_size: int | None = None
    instance_type: Text = ""
    instance_config: InstanceConfig | None = None
    labels: NullableList[str] = Field(default_factory=list)
    azs: NullableList[str] = Field(default_factory=list)
    capacity_type: Text = ""
    """AWS and EKS: ``on-demand`` (the default when empty) or ``spot``."""
    spot_vm_options: dict[str, Any] | None = Field(None, alias="spotVMOptions")
    """Azure and AKS: present, even empty, when the pool runs on Spot VMs."""
    root_device_size: int | None = None
    os_disk: OsDisk | None = None
    is_system_node_pool: bool = False


class CloudClusterConfig(PaletteModel):
    """The cluster-wide part of a cloud config: ``region`` on AWS and GCP, ``location`` on Azure."""

    region: Text = ""
    location: Text = ""


class CloudConfigSpec(PaletteModel):
    cluster_config: Nested[CloudClusterConfig] = Field(default_factory=CloudClusterConfig)
    machine_pool_config: NullableList[MachinePoolConfig] = Field(default_factory=list)


class CloudConfig(PaletteModel):
    """A cluster's cloud config from ``GET /v1/cloudconfigs/{cloud}/{configUid}``."""

    metadata: Nested[ObjectMeta] = Field(default_factory=ObjectMeta)
    spec: Nested[CloudConfigSpec] = Field(default_factory=CloudConfigSpec)


class WorkspaceClusterRef(PaletteModel):
    uid: str = ""
    name: str = ""


class WorkspaceAllocation(PaletteModel):
    """A workspace quota in the units that ``DashboardWorkspaces`` names."""

    cpu: float | None = None
    memory: float | None = None
    gpu_config: GpuConfig | None = None


class WorkspaceQuota(PaletteModel):
    resource_allocation: WorkspaceAllocation | None = None


class WorkspaceSpec(PaletteModel):
    cluster_refs: NullableList[WorkspaceClusterRef] = Field(default_factory=list)
    namespaces: NullableList[str] = Field(default_factory=list)
    quota: WorkspaceQuota | None = None


class DashboardWorkspace(PaletteModel):
    """One workspace of ``GET /v1/dashboard/workspaces`` (``v1DashboardWorkspace``)."""

    metadata: Nested[ObjectMeta] = Field(default_factory=ObjectMeta)
    spec: Nested[WorkspaceSpec] = Field(default_factory=WorkspaceSpec)


class DashboardWorkspaces(PaletteModel):
    """Response of ``GET /v1/dashboard/workspaces``; quotas use ``cpu_unit`` and ``memory_unit``."""

    cpu_unit: Text = ""
    memory_unit: Text = ""
    items: NullableList[DashboardWorkspace] = Field(default_factory=list)


class EventSource(PaletteModel):
    component: Text = ""
    host: Text = ""


class ComponentEvent(PaletteModel):
    """One item of ``GET /v1/events/components/{kind}/{uid}`` (``v1Event``).

    ``related_object`` is the cluster (``spectrocluster``) or edge host the event belongs to.
    """

    metadata: Nested[ObjectMeta] = Field(default_factory=ObjectMeta)
    involved_object: Nested[ObjectReference] = Field(default_factory=ObjectReference)
    related_object: Nested[ObjectReference] = Field(default_factory=ObjectReference)
    reason: Text = ""
    message: Text = ""
    severity: Text = ""
    source: Nested[EventSource] = Field(default_factory=EventSource)


class ComponentEvents(PaletteModel):
    """A page of component events (``v1Events``)."""

    items: NullableList[ComponentEvent] = Field(default_factory=list)
    listmeta: Nested[ListMeta] = Field(default_factory=ListMeta)


class ComputeRate(PaletteModel):
    """``v1ComputeRate``: the compute rate of a pool, whose ``type`` is the instance type."""

    type: Text = ""
    rate: Money = Decimal(0)


class StorageRate(PaletteModel):
    """``v1StorageRate``: the rate of one disk type of a pool."""

    type: Text = ""
    size_gb: float | None = Field(None, alias="sizeGB")
    rate: Money = Decimal(0)


class PoolRate(PaletteModel):
    """``v1CloudRate``: a pool's compute and storage rate over the requested period."""

    total: Money = Decimal(0)
    compute: Nested[ComputeRate] = Field(default_factory=ComputeRate)
    storage: NullableList[StorageRate] = Field(default_factory=list)


class MachinePoolRate(PaletteModel):
    """``v1MachinePoolRate``."""

    name: Text = ""
    nodes_count: int = 0
    rate: Nested[PoolRate] = Field(default_factory=PoolRate)


class TotalClusterRate(PaletteModel):
    compute: Money = Decimal(0)
    storage: Money = Decimal(0)
    total: Money = Decimal(0)


class InstancePriceEntry(PaletteModel):
    """``v1InstancePrice``: the on-demand and Spot price of an instance type for one OS."""

    on_demand: Money = Decimal(0)
    spot: Money = Decimal(0)
    os: Text = ""


class InstanceCost(PaletteModel):
    price: NullableList[InstancePriceEntry] = Field(default_factory=list)


class InstanceTypeRate(PaletteModel):
    """``v1InstanceType``: an instance type's shape and prices.

    NOTE: Palette does not document the units. The simulator sends ``memory`` in MiB and prices
    per hour, and costwarden reads them so.
    """

    type: Text = ""
    category: Text = ""
    cpu: float | None = None
    memory: float | None = None
    gpu: float | None = None
    price: Money = Decimal(0)
    cost: Nested[InstanceCost] = Field(default_factory=InstanceCost)


class CloudResourceMetadata(PaletteModel):
    instance_types: Annotated[
        dict[str, InstanceTypeRate], BeforeValidator(_empty_dict_for_null)
    ] = Field(default_factory=dict)


class ClusterRate(PaletteModel):
    """``v1SpectroClusterRate`` from ``GET /v1/spectroclusters/{uid}/rate`` and the what-if
    ``POST /v1/spectroclusters/{cloud}/rate``; amounts cover one ``periodType``."""

    name: Text = ""
    rate: Nested[TotalClusterRate] = Field(default_factory=TotalClusterRate)
    machine_pools: NullableList[MachinePoolRate] = Field(default_factory=list)
    resource_metadata: Nested[CloudResourceMetadata] = Field(default_factory=CloudResourceMetadata)
