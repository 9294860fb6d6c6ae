"""The REST API under ``/api/v1``: budgets, forecasts, alerts, anomalies, recommendations, runs
and deliveries.

Every route needs an API key or an OIDC bearer token (see ``service.auth``); reads need the read
role and writes the admin role. Errors have the body ``{"error": {"code", "message", ...}}``.
"""

from __future__ import annotations

from fastapi import APIRouter

from costwarden.service.api import (
    alerts,
    anomalies,
    budgets,
    deliveries,
    forecasts,
    recommendations,
    runs,
)

router = APIRouter(prefix="/api/v1")
for _module in (budgets, forecasts, alerts, anomalies, recommendations, runs, deliveries):
    router.include_router(_module.router)
