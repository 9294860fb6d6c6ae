"""Clusters with a known cost story, planted in every simulated fleet whatever the seed.

The clusters of the planted anomalies are listed in ``anomalies.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from costwarden.simulator.anomalies import ANOMALY_CLUSTERS


@dataclass(frozen=True, slots=True)
class PlantedCluster:
    """A cluster with a known cost story, for budgets, tests and docs to refer to."""

    name: str
    project: str
    cloud_type: str
    region: str
    behaviour: Literal["overrun", "stable"]
    monthly_budget: Decimal
    currency: str
    description: str


OVERRUN_CLUSTER = "ml-training-eks"
STABLE_CLUSTER = "payments-prod"

PLANTED: Mapping[str, PlantedCluster] = MappingProxyType(
    {
        OVERRUN_CLUSTER: PlantedCluster(
            name=OVERRUN_CLUSTER,
            project="data-science",
            cloud_type="eks",
            region="us-east-1",
            behaviour="overrun",
            monthly_budget=Decimal("15000"),
            currency="USD",
            description="A GPU training pool (g5.2xlarge) scales up over the 30 days before "
            "as_of: about $410/day a month earlier, about $720/day at as_of and rising. With "
            "as_of on the 15th, month-to-date is about $9,100-9,800 and the month ends well "
            "over the budget.",
        ),
        STABLE_CLUSTER: PlantedCluster(
            name=STABLE_CLUSTER,
            project="payments",
            cloud_type="aks",
            region="eastus",
            behaviour="stable",
            monthly_budget=Decimal("10000"),
            currency="USD",
            description="Flat cost of about $200/day on weekdays and about $175/day at "
            "weekends with small noise: a month costs about 60% of the budget.",
        ),
    }
)

PLANTED_CLUSTER_COUNT = len(PLANTED) + len(ANOMALY_CLUSTERS)
"""Clusters in every fleet whatever the seed: the two above and those of the planted anomalies."""
