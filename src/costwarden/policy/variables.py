"""The variables a policy condition can read, and the conversion of facts into CEL values.

Every variable is a map. Its fields have a declared CEL type, and facts are converted to that
type before evaluation: an ``int`` field contains an integer, a ``double`` field a floating-point
number even when the fact is a ``Decimal`` or an ``int``. A fact that is missing or None is left
out of the map, so ``has(pool.gpu)`` tells whether it is known.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from celpy import celtypes
from pydantic import BaseModel

CelType = Literal["int", "double", "string", "bool", "map", "list", "timestamp", "duration"]


@dataclass(frozen=True, slots=True)
class Field:
    type: CelType
    description: str


@dataclass(frozen=True, slots=True)
class Variable:
    description: str
    fields: Mapping[str, Field]


def _fields(**fields: tuple[CelType, str]) -> dict[str, Field]:
    return {name: Field(kind, text) for name, (kind, text) in fields.items()}


VARIABLES: dict[str, Variable] = {
    "cluster": Variable(
        "The Palette cluster the action's scope belongs to.",
        _fields(
            name=("string", "Cluster name."),
            uid=("string", "Palette cluster uid."),
            project=("string", "Palette project name."),
            cloud=("string", "Cloud type: aws, azure, gcp, vsphere, edge-native, ..."),
            region=("string", "Cloud region."),
            labels=("map", "Cluster labels and Palette tags, as a map of strings."),
            node_count=("int", "Nodes in the cluster."),
            cost_per_month=("double", "Spend over the last 30 days, in the tenant currency."),
        ),
    ),
    "pool": Variable(
        "The machine pool an action resizes or changes.",
        _fields(
            name=("string", "Machine pool name."),
            size=("int", "Nodes the pool runs now."),
            min_size=("int", "Autoscaler minimum, when set."),
            max_size=("int", "Autoscaler maximum, when set."),
            instance_type=("string", "Instance type, such as m5.xlarge."),
            capacity_type=("string", "on-demand or spot."),
            gpu=("int", "GPUs per node."),
            cpu=("double", "vCPUs per node."),
            memory_gib=("double", "Memory per node, in GiB."),
            labels=("map", "Machine pool labels."),
            cost_per_month=("double", "Spend of the pool over the last 30 days."),
        ),
    ),
    "namespace": Variable(
        "The Kubernetes namespace of the scope.",
        _fields(
            name=("string", "Namespace name."),
            labels=("map", "Namespace labels."),
            cost_per_month=("double", "Spend of the namespace over the last 30 days."),
            idle_days=("int", "Days since a workload in the namespace last used CPU."),
        ),
    ),
    "workload": Variable(
        "Usage of the workloads in the scope, as measured by the analysis.",
        _fields(
            cpu_requested=("double", "CPU cores requested."),
            cpu_used=("double", "CPU cores used, at the analysis quantile."),
            memory_requested_gib=("double", "Memory requested, in GiB."),
            memory_used_gib=("double", "Memory used, in GiB, at the analysis quantile."),
            gpu_requested=("int", "GPUs requested."),
            gpu_used=("double", "GPUs busy on average."),
            pods=("int", "Running pods."),
        ),
    ),
    "recommendation": Variable(
        "The recommendation that proposed the action; absent for an alert.",
        _fields(
            id=("string", "Recommendation id."),
            kind=("string", "Recommendation kind, such as rightsize_pool or idle_namespace."),
            savings_per_month=("double", "Estimated savings per month."),
            currency=("string", "ISO 4217 currency of the savings."),
            confidence=("string", "low, medium or high."),
            risk=("string", "low, medium or high."),
            effort=("string", "low, medium or high."),
            reversible=("bool", "Whether the change can be undone."),
        ),
    ),
    "alert": Variable(
        "The budget alert that proposed the action; absent for a recommendation.",
        _fields(
            id=("string", "Alert id."),
            kind=("string", "Alert kind, such as forecast or actual."),
            budget=("string", "Budget name."),
            severity=("string", "info, warning or critical."),
            probability=("double", "Probability that spend reaches the limit, 0 to 1."),
            limit=("double", "The threshold's amount."),
            forecast_total=("double", "Forecast spend for the period."),
            overspend=("double", "Forecast spend above the limit."),
            currency=("string", "ISO 4217 currency of the amounts."),
        ),
    ),
    "scope": Variable(
        "The action's scope, as the selector sees it.",
        _fields(
            kind=("string", "cluster, machine_pool, namespace or repository."),
            cluster_uid=("string", "Palette cluster uid."),
            cluster=("string", "Cluster name."),
            name=("string", "Resource name: pool, namespace or repository."),
            project=("string", "Palette project."),
            cloud=("string", "Cloud type."),
            namespace=("string", "Namespace."),
            labels=("map", "Merged cluster, Palette tag and resource labels."),
        ),
    ),
}

SCALARS: dict[str, CelType] = {"now": "timestamp"}
"""Variables that are single values: ``now`` is the evaluation time."""


def to_cel(value: Any) -> Any:
    """Convert a Python value into a CEL value; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, enum.Enum):
        return to_cel(value.value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float | Decimal):
        return celtypes.DoubleType(float(value))
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return celtypes.TimestampType(aware.astimezone(UTC))
    if isinstance(value, date):
        return celtypes.TimestampType(datetime.combine(value, time(), tzinfo=UTC))
    if isinstance(value, timedelta):
        return celtypes.DurationType(value)
    if isinstance(value, BaseModel):
        return to_cel(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_cel({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return celtypes.MapType(
            {celtypes.StringType(str(k)): to_cel(v) for k, v in value.items() if v is not None}
        )
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return celtypes.ListType([to_cel(item) for item in items])
    raise TypeError(f"cannot convert {type(value).__name__} to a CEL value")


def _typed(value: Any, kind: CelType) -> Any:
    """Convert ``value`` to the declared type of its field, so comparisons are predictable."""
    if (
        kind == "double"
        and isinstance(value, int | float | Decimal)
        and not isinstance(value, bool)
    ):
        return celtypes.DoubleType(float(value))
    if kind == "int" and isinstance(value, float | Decimal) and value == int(value):
        return celtypes.IntType(int(value))
    if kind == "string" and isinstance(value, enum.Enum):
        return celtypes.StringType(str(value.value))
    return to_cel(value)


def _as_mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return value
    raise TypeError(
        f"expected a mapping, a dataclass or a pydantic model, not {type(value).__name__}"
    )


def build_activation(facts: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Build the CEL activation from facts keyed by variable name.

    Every declared variable is present, as an empty map when no fact was given. Declared fields
    take their declared type. Undeclared fields pass through with their natural CEL type, but
    conditions cannot name them because the compiler rejects unknown fields.
    """
    activation: dict[str, Any] = {}
    for name, variable in VARIABLES.items():
        data = _as_mapping(facts.get(name) or {})
        converted = {}
        for key, value in data.items():
            if value is None:
                continue
            declared = variable.fields.get(key)
            cel_value = _typed(value, declared.type) if declared else to_cel(value)
            converted[celtypes.StringType(key)] = cel_value
        activation[name] = celtypes.MapType(converted)
    activation["now"] = to_cel(now)
    return activation
