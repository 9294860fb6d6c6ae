"""The shared vocabulary that the pipeline stages pass to each other."""

from costwarden.domain.anomaly import (
    Anomaly,
    AnomalyContributor,
    AnomalyReport,
    AnomalyScope,
    CostDriver,
    Feedback,
    Triage,
)
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
    "Anomaly",
    "AnomalyContributor",
    "AnomalyReport",
    "AnomalyScope",
    "Budget",
    "ClusterEvent",
    "ClusterInfo",
    "CostDriver",
    "CostRecord",
    "DailyForecast",
    "Exceedance",
    "Feedback",
    "Forecast",
    "IngestReport",
    "NamespaceInfo",
    "Period",
    "ProjectInfo",
    "Scope",
    "Threshold",
    "Triage",
    "quantize_money",
]
