"""Passes of the main job: list, read, and start one on request."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy import select

from costwarden.errors import NotFoundError
from costwarden.service.api.deps import Admin, PageQuery, Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute, json_response
from costwarden.service.api.models import (
    Page,
    RunAccepted,
    RunDetail,
    RunRequest,
    RunStatus,
    RunTrigger,
)
from costwarden.service.state import RefreshScope, ServiceState
from costwarden.store.service_queries import list_runs
from costwarden.store.tables import Cluster, Run

logger = logging.getLogger(__name__)

router = APIRouter(tags=["runs"], route_class=ApiRoute, responses=ERROR_RESPONSES)


@router.get("/runs", response_model=Page[RunDetail], summary="List runs, newest first")
def get_runs(
    page: PageQuery,
    state: State,
    _: Reader,
    status: Annotated[RunStatus | None, Query()] = None,
    trigger: Annotated[RunTrigger | None, Query()] = None,
) -> Response:
    with state.store.transaction() as session:
        found = list_runs(
            session, status=status, trigger=trigger, limit=page.limit, offset=page.offset
        )
        items = [run_detail(run) for run in found.items]
    return json_response(Page(items=items, total=found.total, limit=page.limit, offset=page.offset))


@router.get(
    "/runs/{run_id}",
    response_model=RunDetail,
    summary="Read a run",
    responses={404: {"description": "No such run."}},
)
def get_run(
    run_id: str,
    state: State,
    _: Reader,
) -> RunDetail:
    with state.store.transaction() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run with id {run_id!r}; GET /api/v1/runs lists them")
        return run_detail(run)


@router.post(
    "/runs",
    response_model=RunAccepted,
    status_code=202,
    summary="Start a pass",
    description="Queue a pass, or join the one already queued. With `clusters` or `days` the "
    "pass fetches those clusters' last days of cost data again first. Poll the returned "
    "Location for its status.",
)
def post_run(
    response: Response,
    state: State,
    caller: Admin,
    body: Annotated[RunRequest | None, Body()] = None,
) -> RunAccepted:
    scope = _scope(state, body or RunRequest())
    run_id = state.runner.request("api", scope)
    with state.store.transaction() as session:
        run = session.get(Run, run_id)
        status = run.status if run is not None else "queued"

    location = f"/api/v1/runs/{run_id}"
    response.headers["Location"] = location
    logger.info("caller %s requested run %s", caller.name, run_id)
    return RunAccepted(run_id=run_id, status=status, location=location)


def run_detail(run: Run) -> RunDetail:
    duration = None
    if run.finished_at is not None and run.started_at is not None:
        duration = (run.finished_at - run.started_at).total_seconds()
    return RunDetail(
        id=run.id,
        status=run.status,
        trigger=run.trigger,
        tenant=run.tenant,
        scope=run.scope,
        as_of=run.as_of,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=duration,
        budgets=run.budgets or 0,
        alerts=run.alerts or 0,
        error=run.error,
    )


def _scope(state: ServiceState, body: RunRequest) -> RefreshScope | None:
    """Split the requested clusters into known uids and names; every other value is a name."""
    if not body.clusters and body.days is None:
        return None

    days = body.days or state.settings.service.refresh_days
    clusters = list(dict.fromkeys(body.clusters or ()))
    uids: set[str] = set()
    if clusters:
        with state.store.transaction() as session:
            uids = set(session.scalars(select(Cluster.uid).where(Cluster.uid.in_(clusters))))
    return RefreshScope(
        cluster_uids=tuple(value for value in clusters if value in uids),
        cluster_names=tuple(value for value in clusters if value not in uids),
        days=days,
    )
