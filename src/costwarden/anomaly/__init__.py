"""Anomaly detection: streaming detectors and the NAB scoring rules they are measured with.

The cost and utilisation anomaly pass lives here too. ``evaluate_anomalies`` detects anomalies
in the stored Palette cost and usage data, explains each one (contributors, cost drivers, cluster
events and a triage summary) and applies the feedback users gave. ``record_anomalies`` stores
the result, and ``anomaly_payload`` builds the alert of ``docs/schemas/anomaly-alert.schema.json``.
"""

from costwarden.anomaly.alerts import ANOMALY_SCHEMA_VERSION, anomaly_payload
from costwarden.anomaly.evaluate import evaluate_anomalies
from costwarden.anomaly.feedback import find_anomaly, mark_anomaly
from costwarden.anomaly.records import list_anomalies, record_anomalies

__all__ = [
    "ANOMALY_SCHEMA_VERSION",
    "anomaly_payload",
    "evaluate_anomalies",
    "find_anomaly",
    "list_anomalies",
    "mark_anomaly",
    "record_anomalies",
]
