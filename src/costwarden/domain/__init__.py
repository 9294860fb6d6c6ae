"""The shared vocabulary that the pipeline stages pass to each other."""

from costwarden.domain.budget import Budget, Period, Scope, Threshold
from costwarden.domain.cost import (
    ClusterInfo,
    CostRecord,
    IngestReport,
    NamespaceInfo,
    ProjectInfo,
    quantize_money,
)
from costwarden.domain.event import ClusterEvent
from costwarden.domain.forecast import DailyForecast, Exceedance, Forecast

__all__ = [
    "ClusterEvent",
    "Budget",
    "ClusterInfo",
    "CostRecord",
    "DailyForecast",
    "Exceedance",
    "Forecast",
    "IngestReport",
    "NamespaceInfo",
    "Period",
    "ProjectInfo",
    "Scope",
    "Threshold",
    "quantize_money",
]
