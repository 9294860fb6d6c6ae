"""The REST API under ``/api/v1``: budgets, forecasts, alerts, anomalies, recommendations, runs,
deliveries, approval requests and the audit trail.

Every route needs an API key or an OIDC bearer token (see ``service.auth``); reads need the read
role and writes the admin role. Errors have the body ``{"error": {"code", "message", ...}}``.
"""

from __future__ import annotations

from fastapi import APIRouter

from costwarden.service.api import (
    alerts,
    anomalies,
    approvals,
    audit,
    budgets,
    deliveries,
    forecasts,
    recommendations,
    runs,
)

router = APIRouter(prefix="/api/v1")
_MODULES = (
    budgets, forecasts, alerts, anomalies, recommendations, runs, deliveries, approvals, audit,
)
for _module in _MODULES:
    router.include_router(_module.router)
