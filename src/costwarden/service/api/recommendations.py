"""Savings recommendations stored by the passes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from costwarden.errors import NotFoundError
from costwarden.service.api.deps import PageQuery, Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute
from costwarden.service.api.models import Pagination, RecommendationPage
from costwarden.store.service_queries import latest_recommendations, run_recommendations
from costwarden.store.tables import RecommendationReportRecord

router = APIRouter(tags=["recommendations"], route_class=ApiRoute, responses=ERROR_RESPONSES)


class Filters:
    """Query parameters that narrow a recommendation report."""

    def __init__(
        self,
        cluster: Annotated[str | None, Query(description="Cluster name of the target.")] = None,
        kind: Annotated[
            str | None, Query(description="Recommendation kind, e.g. rightsize_pool.")
        ] = None,
        min_savings: Annotated[
            Decimal | None,
            Query(ge=0, description="Minimum savings per month, in the report's currency."),
        ] = None,
    ) -> None:
        self.cluster = cluster
        self.kind = kind
        self.min_savings = min_savings

    def keep(self, item: dict[str, Any]) -> bool:
        if self.cluster is not None and (item.get("target") or {}).get("cluster") != self.cluster:
            return False
        if self.kind is not None and item.get("kind") != self.kind:
            return False
        if self.min_savings is not None:
            return _per_month(item) >= self.min_savings
        return True


@router.get(
    "/recommendations",
    response_model=RecommendationPage,
    summary="Latest recommendations",
    description="Recommendations of the latest pass that produced a report, largest savings "
    "first as the pass ordered them.",
    responses={404: {"description": "No pass has stored recommendations yet."}},
)
def get_latest(
    filters: Annotated[Filters, Depends()],
    page: PageQuery,
    state: State,
    _: Reader,
) -> RecommendationPage:
    with state.store.transaction() as session:
        record = latest_recommendations(session)
        if record is None:
            raise NotFoundError(
                "no pass has stored recommendations yet; start one with POST /api/v1/runs"
            )
        return _page(record, filters, page)


@router.get(
    "/runs/{run_id}/recommendations",
    response_model=RecommendationPage,
    tags=["runs"],
    summary="Recommendations of one run",
    responses={404: {"description": "The run stored no recommendations."}},
)
def get_for_run(
    run_id: str,
    filters: Annotated[Filters, Depends()],
    page: PageQuery,
    state: State,
    _: Reader,
) -> RecommendationPage:
    with state.store.transaction() as session:
        record = run_recommendations(session, run_id)
        if record is None:
            raise NotFoundError(
                f"run {run_id!r} stored no recommendations; it may not exist, may still run, "
                "or may have failed"
            )
        return _page(record, filters, page)


def _page(
    record: RecommendationReportRecord, filters: Filters, page: Pagination
) -> RecommendationPage:
    payload = record.payload
    items = [item for item in payload.get("items", []) if filters.keep(item)]
    return RecommendationPage(
        items=items[page.offset : page.offset + page.limit],
        total=len(items),
        limit=page.limit,
        offset=page.offset,
        run_id=record.run_id,
        created_at=record.created_at,
        source=record.source,
        currency=payload.get("currency"),
        note=payload.get("note"),
        total_per_day=payload.get("total_per_day"),
    )


def _per_month(item: dict[str, Any]) -> Decimal:
    try:
        return Decimal(str((item.get("savings") or {}).get("per_month", "0")))
    except InvalidOperation:
        return Decimal(0)
