"""Quota exhaustion forecasts: CPU, memory and GPU usage against Palette's limits.

Limits are namespace quotas, workspace quotas and the autoscaler maximums of machine pools and
clusters. ``evaluate_quotas`` projects each usage series stored by the Palette usage ingestion
against its limit and returns a ``QuotaReport``. ``quota_payload`` turns an alert into the JSON
payload of ``docs/schemas/quota-alert.schema.json``.
"""

from costwarden.quota.alerts import (
    QUOTA_SCHEMA_VERSION,
    decide_alerts,
    quota_fingerprint,
    quota_payload,
    record_quota_alerts,
)
from costwarden.quota.evaluate import evaluate_quotas
from costwarden.quota.model import (
    QuotaAlert,
    QuotaProjection,
    QuotaReport,
    QuotaTarget,
    UsageHistory,
)
from costwarden.quota.projection import first_crossings, headroom_clear, project, window_bounds

__all__ = [
    "QUOTA_SCHEMA_VERSION",
    "QuotaAlert",
    "QuotaProjection",
    "QuotaReport",
    "QuotaTarget",
    "UsageHistory",
    "decide_alerts",
    "evaluate_quotas",
    "first_crossings",
    "headroom_clear",
    "project",
    "quota_fingerprint",
    "quota_payload",
    "record_quota_alerts",
    "window_bounds",
]
