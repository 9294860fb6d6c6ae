"""Probe and metrics endpoints: ``/healthz``, ``/readyz`` and ``/metrics``, open to any caller."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from costwarden.service.gauges import refresh_budget_gauges
from costwarden.service.state import ServiceState, service_state

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

DATABASE_CHECK_SECONDS = 5.0
"""Time the readiness probe gives the database to respond to SELECT 1, in seconds."""


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Report that the process is alive and serving requests."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: Annotated[ServiceState, Depends(service_state)]) -> JSONResponse:
    """Return 200 once start-up is done and while the database responds, else 503."""
    if not state.ready:
        return _not_ready("starting")
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping, state), DATABASE_CHECK_SECONDS)
    except Exception as exc:
        logger.warning("readiness check failed: the database did not respond: %s: %s",
                       type(exc).__name__, exc)
        return _not_ready(f"database unavailable: {type(exc).__name__}")
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def metrics(state: Annotated[ServiceState, Depends(service_state)]) -> Response:
    """Return every metric of the process in the Prometheus text format.

    The budget gauges are read from the stored statuses first. When the database fails, the
    gauges keep their last values and the failure is logged.
    """
    try:
        await asyncio.to_thread(refresh_budget_gauges, state.store)
    except Exception as exc:
        logger.error("reading budget statuses for /metrics failed: %s: %s",
                     type(exc).__name__, exc)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _ping(state: ServiceState) -> None:
    with state.store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _not_ready(reason: str) -> JSONResponse:
    body: dict[str, Any] = {"status": "not ready", "reason": reason}
    return JSONResponse(body, status_code=503)
