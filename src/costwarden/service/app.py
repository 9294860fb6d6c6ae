"""The FastAPI application of ``costwarden serve``, with its start-up and shutdown steps.

Start-up imports the budget file, marks runs left by a stopped process as abandoned, starts the
pass runner, the delivery worker (when notification channels are configured), the schedule and
the webhook worker, then reports ready. Shutdown stops the schedule and the webhook worker,
gives a running pass ``shutdown_grace_seconds`` to finish and then abandons it, stops the
delivery worker, and closes the store when the application owns it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from costwarden import __version__
from costwarden.budgets.loader import parse_budget_specs
from costwarden.config import Settings
from costwarden.errors import ConfigError
from costwarden.service import api, callbacks, health, webhooks
from costwarden.service.api.errors import install_error_handlers
from costwarden.service.state import ServiceState
from costwarden.service.telemetry import HTTP_REQUESTS
from costwarden.store import Store
from costwarden.store.budgets import import_budgets

if TYPE_CHECKING:
    from costwarden.notify.worker import DeliveryWorker

logger = logging.getLogger(__name__)

TASK_STOP_SECONDS = 10.0
"""Time the schedule and the webhook worker get to stop at shutdown."""


def open_service(settings: Settings) -> ServiceState:
    """Open the store with the service's pool settings and build the state with a PassRunner."""
    from costwarden.service.runner import PassRunner

    service = settings.service
    store = Store.open(
        settings.database_url,
        migrate=service.migrate_on_start,
        pool_size=service.db_pool_size,
        max_overflow=service.db_max_overflow,
        pool_timeout=service.db_pool_timeout_seconds,
        sqlite_wal=True,
    )
    return ServiceState(settings=settings, store=store, runner=PassRunner(settings, store))


def create_app(state: ServiceState, *, close_store: bool = False) -> FastAPI:
    """Build the application around an already opened store and runner.

    With ``close_store`` the application closes the store at shutdown (``costwarden serve``
    opens the store for it; tests keep their own).
    """
    app = FastAPI(
        title="costwarden",
        version=__version__,
        description="Predictive budgets, forecasts, anomalies and savings for Palette fleets.",
        lifespan=_lifespan_for(close_store),
    )
    app.state.service = state
    app.add_middleware(RequestMetrics)
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(webhooks.router)
    app.include_router(callbacks.router)
    install_error_handlers(app)
    return app


def _lifespan_for(close_store: bool) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: ServiceState = app.state.service
        stop = asyncio.Event()
        await asyncio.to_thread(_prepare, state)
        delivery = await asyncio.to_thread(start_delivery_worker, state)
        tasks = _start_tasks(state, stop)
        if state.settings.service.run_on_start:
            run_id = await asyncio.to_thread(state.runner.request, "start")
            logger.info("pass requested at start: run %s", run_id)
        state.ready = True
        logger.info("costwarden service ready (tenant %s)", state.settings.service.tenant)
        try:
            yield
        finally:
            state.ready = False
            await _shutdown(state, stop, tasks)
            if delivery is not None:
                await asyncio.to_thread(delivery.stop)
            if close_store:
                state.store.close()
            logger.info("costwarden service stopped")

    return lifespan


def _prepare(state: ServiceState) -> None:
    """Import the budget file, recover runs of stopped processes, start the pass runner."""
    if state.settings.budgets_file is not None:
        import_budget_file(state)
    runner: Any = state.runner
    if hasattr(runner, "recover"):
        abandoned = runner.recover()
        if abandoned:
            logger.warning("marked %d runs of stopped processes abandoned", len(abandoned))
    if hasattr(runner, "start"):
        runner.start()


def start_delivery_worker(state: ServiceState) -> DeliveryWorker | None:
    """Start the delivery worker thread when notify.channels configures any channel."""
    notify = state.settings.notify
    if not notify.channels:
        logger.info("no notification channels configured (notify.channels); outbox rows wait")
        return None
    from costwarden.notify.channels import build_channels
    from costwarden.notify.worker import DeliveryWorker

    worker = DeliveryWorker(
        state.store, notify, build_channels(notify), audit_tenant=state.settings.service.tenant
    )
    worker.start()
    return worker


def import_budget_file(state: ServiceState) -> None:
    """Store the budgets of ``settings.budgets_file`` with origin file, replacing earlier ones."""
    path = state.settings.budgets_file
    assert path is not None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read budget file {path}: {exc.strerror}; check budgets_file "
            "(COSTWARDEN_BUDGETS_FILE) or --budgets"
        ) from exc
    specs = [spec for _, spec in parse_budget_specs(text, path)]
    with state.store.transaction() as session:
        result = import_budgets(session, specs, "file", replace_origin=True)
    logger.info(
        "budget file %s: %d created, %d updated, %d unchanged, %d deleted",
        path, len(result.created), len(result.updated), len(result.unchanged),
        len(result.deleted),
    )


def _start_tasks(state: ServiceState, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Start the schedule and the webhook worker as tasks of the running event loop."""
    from costwarden.service.scheduler import run_schedule

    tasks = []
    schedule = state.settings.service.schedule
    if schedule is not None:
        tasks.append(asyncio.create_task(run_schedule(schedule, state.runner, stop)))
    else:
        logger.info("no schedule configured (service.schedule is null); passes run on request")

    worker = _event_worker()
    if worker is not None:
        tasks.append(asyncio.create_task(worker(state, stop)))
    return tasks


def _event_worker() -> Callable[[ServiceState, asyncio.Event], Awaitable[None]] | None:
    try:
        from costwarden.service.events import process_events
    except ImportError as exc:
        logger.warning("webhook event worker not available (%s); stored events wait", exc)
        return None
    return process_events


async def _shutdown(
    state: ServiceState, stop: asyncio.Event, tasks: list[asyncio.Task[None]]
) -> None:
    """Stop the tasks, then give the running pass its grace period."""
    stop.set()
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=TASK_STOP_SECONDS)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                logger.error("service task failed: %r", task.exception())

    runner: Any = state.runner
    if hasattr(runner, "stop"):
        grace = state.settings.service.shutdown_grace_seconds
        await asyncio.to_thread(runner.stop, grace)


class RequestMetrics:
    """ASGI middleware recording each request's duration under its route template.

    A plain ASGI class instead of an ``http`` middleware function keeps the cost per request to a
    few microseconds: the response is passed through without being wrapped.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            HTTP_REQUESTS.labels(
                method=scope["method"], route=_route_template(scope), status=str(status)
            ).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    """Return the matched route's full path template, such as ``/api/v1/budgets/{name}``."""
    # NOTE: FastAPI 0.165 keeps routes of included routers under their own path (``/runs``) in
    # scope["route"]; the full template, with the /api/v1 prefix, is on its effective route
    # context. Other FastAPI versions may lack it, and the route's own path is used then.
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    if context is not None and hasattr(context, "path"):
        return str(context.path)
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    for candidate in scope["app"].router.routes:
        match, _ = candidate.matches(scope)
        if match == Match.FULL and hasattr(candidate, "path"):
            return str(candidate.path)
    return "unmatched"
