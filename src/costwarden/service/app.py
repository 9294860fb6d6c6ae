"""The FastAPI application of ``costwarden serve``."""

from __future__ import annotations

from fastapi import FastAPI

from costwarden import __version__
from costwarden.service import api, webhooks
from costwarden.service.state import ServiceState


def create_app(state: ServiceState) -> FastAPI:
    """Build the application around an already opened store and runner."""
    app = FastAPI(
        title="costwarden",
        version=__version__,
        description="Predictive budgets, forecasts, anomalies and savings for Palette fleets.",
    )
    app.state.service = state
    app.include_router(api.router)
    app.include_router(webhooks.router)
    return app
