"""A Palette API simulator: a seeded fleet and a FastAPI app that speaks Palette's wire format.

``SimulatorServer(SimulatorSettings(seed=7, as_of=...))`` runs it on a free loopback port for
tests and the demo; ``costwarden palette-sim`` runs it in the foreground. ``PLANTED`` names the
clusters with a known cost story and the budgets they are meant for, and ``PLANTED_ANOMALIES``
the ground truth of the anomalies planted on six more clusters.
"""

from costwarden.simulator.anomalies import PLANTED_ANOMALIES, PlantedAnomaly
from costwarden.simulator.app import create_app
from costwarden.simulator.fleet import OVERRUN_CLUSTER, PLANTED, STABLE_CLUSTER, build_fleet
from costwarden.simulator.server import SimulatorServer
from costwarden.simulator.settings import DEFAULT_API_KEY, RateLimitRule, SimulatorSettings

__all__ = [
    "DEFAULT_API_KEY",
    "OVERRUN_CLUSTER",
    "PLANTED",
    "PLANTED_ANOMALIES",
    "STABLE_CLUSTER",
    "PlantedAnomaly",
    "RateLimitRule",
    "SimulatorServer",
    "SimulatorSettings",
    "build_fleet",
    "create_app",
]
