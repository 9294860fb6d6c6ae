"""Request bodies the simulator accepts, after Palette's OpenAPI definitions.

Unknown fields are ignored, as Palette adds fields in backward-compatible releases. Enumerations
are plain strings here and are checked by the routes, so an unsupported value gets a V1Error
body naming it, not a framework validation message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel


def _empty_for_null(value: Any) -> Any:
    return [] if value is None else value


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


Strings = Annotated[list[str], BeforeValidator(_empty_for_null)]
UtcTime = Annotated[datetime | None, AfterValidator(_as_utc)]


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class StringMatch(Body):
    conjunction: str = "or"
    values: Strings = Field(default_factory=list)


class StringCondition(Body):
    operator: str = "eq"
    negation: bool = False
    ignore_case: bool = False
    match: StringMatch = Field(default_factory=StringMatch)


class BoolCondition(Body):
    value: bool = False


class FilterCondition(Body):
    string: StringCondition | None = None
    boolean: BoolCondition | None = Field(None, alias="bool")


class FilterItem(Body):
    property: str = ""
    type: str = ""
    condition: FilterCondition = Field(default_factory=FilterCondition)


class FilterGroup(Body):
    conjunction: str = "and"
    filters: Annotated[list[FilterItem], BeforeValidator(_empty_for_null)] = Field(
        default_factory=list
    )


class SearchFilter(Body):
    conjunction: str = "and"
    filter_groups: Annotated[list[FilterGroup], BeforeValidator(_empty_for_null)] = Field(
        default_factory=list
    )


class SortSpec(Body):
    field: str = ""
    order: str = "asc"


class SearchSpec(Body):
    """``v1SearchFilterSummarySpec``."""

    filter: SearchFilter = Field(default_factory=SearchFilter)
    sort: Annotated[list[SortSpec], BeforeValidator(_empty_for_null)] = Field(default_factory=list)


class CloudCostFilter(Body):
    clouds: Strings = Field(default_factory=list)
    projects: Strings = Field(default_factory=list)
    workspaces: Strings = Field(default_factory=list)
    start_time: UtcTime = None
    end_time: UtcTime = None


class CloudCostOptions(Body):
    group_by: str = "project"
    period: int = 1440


class CloudCostSpec(Body):
    """``v1SpectroClusterCloudCostSummarySpec``."""

    filter: CloudCostFilter = Field(default_factory=CloudCostFilter)
    options: CloudCostOptions = Field(default_factory=CloudCostOptions)


class ResourceCostFilter(CloudCostFilter):
    clusters: Strings = Field(default_factory=list)
    namespaces: Strings = Field(default_factory=list)
    include_control_plane_machines: bool = False
    include_master_machines: bool = False


class ResourceCostOptions(Body):
    group_by: str = "cluster"
    period: int = 60
    enable_summary_view: bool = True


class ResourceCostSpec(Body):
    """``v1ResourceCostSummarySpec``."""

    filter: ResourceCostFilter = Field(default_factory=ResourceCostFilter)
    options: ResourceCostOptions = Field(default_factory=ResourceCostOptions)


class WorkloadsFilter(Body):
    namespaces: Strings = Field(default_factory=list)


class WorkloadsSpec(Body):
    """``v1ClusterWorkloadsSpec``."""

    filter: WorkloadsFilter = Field(default_factory=WorkloadsFilter)
