"""The FastAPI app that serves the simulated fleet on Palette's paths.

``create_app(settings)`` generates the fleet once and keeps it for the app's life; the routes
and the checks before them live in ``routes.py``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from costwarden import __version__
from costwarden.simulator.event_routes import event_router
from costwarden.simulator.fleet import build_fleet
from costwarden.simulator.guards import ApiError, FaultInjector, RateLimiter, Stats
from costwarden.simulator.quota_routes import quota_router
from costwarden.simulator.rate_routes import rate_router
from costwarden.simulator.routes import SimulatorState, router
from costwarden.simulator.settings import SimulatorSettings
from costwarden.simulator.write_routes import write_router

logger = logging.getLogger(__name__)


def create_app(settings: SimulatorSettings | None = None) -> FastAPI:
    """Build the simulator app; the fleet is generated here, once."""
    settings = settings or SimulatorSettings()
    as_of = settings.resolved_as_of()
    fleet = build_fleet(
        settings.seed,
        as_of,
        history_days=settings.history_days,
        cluster_count=settings.cluster_count,
        waste_clusters=settings.waste_clusters,
    )

    app = FastAPI(
        title="Palette API simulator",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.simulator = SimulatorState(
        settings=settings,
        fleet=fleet,
        limiter=RateLimiter(
            settings.rate_limits, settings.default_rate_per_second, settings.default_burst
        ),
        faults=FaultInjector(settings.seed, settings.fault_rate, settings.fault_statuses),
        stats=Stats(),
    )
    _add_error_handlers(app)
    app.include_router(router)
    app.include_router(quota_router)
    app.include_router(event_router)
    app.include_router(rate_router)
    app.include_router(write_router)

    logger.info(
        "Palette simulator app created: seed %d, as_of %s, %d projects, %d clusters",
        settings.seed,
        as_of.isoformat(),
        len(fleet.projects),
        len(fleet.clusters),
    )
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return ApiError(400, "BadRequest", f"invalid request: {problems}").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "ResourceNotFound", 405: "MethodNotAllowed"}
        code = codes.get(exc.status_code, "Error")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return ApiError(exc.status_code, code, message).response()
