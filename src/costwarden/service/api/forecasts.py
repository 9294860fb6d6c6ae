"""Forecasts: a budget's latest evaluation, a fresh one on request, and forecasts of any scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from costwarden.budgets.evaluate import evaluate_budget
from costwarden.budgets.loader import parse_budget_spec
from costwarden.budgets.snapshot import status_snapshot
from costwarden.domain.alert import BudgetStatus
from costwarden.errors import BudgetFileError, NotFoundError
from costwarden.service.api.deps import Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute
from costwarden.service.api.imports import period_spec
from costwarden.service.api.models import DailyForecastPoint, ForecastResponse, ScopeForecast
from costwarden.store.budgets import get_budget_spec
from costwarden.store.service_queries import budget_status

router = APIRouter(tags=["forecasts"], route_class=ApiRoute, responses=ERROR_RESPONSES)

# The amount of the budget behind a scope forecast only affects exceedance fields, which the
# scope forecast leaves out.
_SCOPE_AMOUNT = "1"


@router.get(
    "/budgets/{name}/forecast",
    response_model=ForecastResponse,
    summary="Forecast of a budget's period",
    description="The evaluation of the latest pass. With `refresh=true` the budget is evaluated "
    "now on the stored cost data (this takes up to a few seconds) and nothing is stored.",
    responses={404: {"description": "No such budget, or no pass has evaluated it yet."}},
)
def budget_forecast(
    name: str,
    state: State,
    _: Reader,
    refresh: Annotated[
        bool, Query(description="Evaluate now instead of reading the last pass.")
    ] = False,
) -> ForecastResponse:
    with state.store.transaction() as session:
        row = get_budget_spec(session, name)
        if row is None:
            raise NotFoundError(f"no budget named {name!r}; GET /api/v1/budgets lists them")
        if not refresh:
            return _stored(session, name)

        budget, _ = parse_budget_spec(row.spec, f"stored budget {name!r}")
        status = evaluate_budget(session, budget, datetime.now(UTC), state.settings)
    snapshot = status_snapshot(status, "")
    snapshot["run_id"] = None
    return ForecastResponse(status=snapshot, refreshed=True, daily=_daily(status))


@router.get(
    "/forecasts",
    response_model=ScopeForecast,
    summary="Forecast of any scope",
    description="Forecast the current period's spend of a scope that need not have a budget. "
    "Filters combine with AND; none forecasts the whole fleet.",
)
def scope_forecast(
    state: State,
    _: Reader,
    cluster: Annotated[str | None, Query(description="Cluster name or uid.")] = None,
    project: Annotated[str | None, Query(description="Project name or uid.")] = None,
    namespace: Annotated[
        str | None, Query(description="Namespace, within cluster when set.")
    ] = None,
    labels: Annotated[str | None, Query(description="Label selector, e.g. team=core.")] = None,
    period: Annotated[
        str,
        Query(
            description="weekly, monthly, quarterly, yearly, or a custom range "
            "START..END such as 2026-12-01..2026-12-31 (both days inclusive)."
        ),
    ] = "monthly",
    currency: Annotated[str, Query(description="ISO 4217 code of the cost data.")] = "USD",
    timezone: Annotated[str, Query(description="IANA time zone of the period boundaries.")] = "UTC",
    source: Annotated[Literal["palette", "focus"] | None, Query(description="Cost source.")] = None,
) -> ScopeForecast:
    scope = {
        key: value
        for key, value in (
            ("cluster", cluster),
            ("project", project),
            ("namespace", namespace),
            ("labels", labels),
        )
        if value is not None
    }
    spec: dict[str, Any] = {
        "name": "scope-forecast",
        "scope": scope,
        "amount": _SCOPE_AMOUNT,
        "period": period_spec(period),
        "currency": currency,
        "timezone": timezone,
    }
    if source is not None:
        spec["source"] = source
    budget = _scope_budget(spec)

    with state.store.transaction() as session:
        status = evaluate_budget(session, budget, datetime.now(UTC), state.settings)
    return _scope_forecast(status, scope)


def _scope_budget(spec: dict[str, Any]) -> Any:
    """Validate the query as a budget; errors name the query parameter, not the budget."""
    try:
        budget, _ = parse_budget_spec(spec, "query")
    except BudgetFileError as exc:
        field = exc.field or "query"
        parameter = field.removeprefix("scope.").partition(".")[0]
        message = str(exc).partition(f"field {field}: ")[2] or str(exc)
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", parameter),
                    "msg": message,
                    "input": _query_value(spec, parameter, exc.value),
                }
            ]
        ) from exc
    return budget


def _query_value(spec: dict[str, Any], parameter: str, fallback: Any) -> Any:
    if parameter == "period" and isinstance(spec["period"], dict):
        return f"{spec['period']['start']}..{spec['period']['end']}"
    return spec.get(parameter, spec["scope"].get(parameter, fallback))


def _stored(session: Any, name: str) -> ForecastResponse:
    record = budget_status(session, name)
    if record is None:
        raise NotFoundError(
            f"no pass has evaluated budget {name!r} yet; start one with POST /api/v1/runs or "
            "ask for ?refresh=true"
        )
    return ForecastResponse(status=record.payload, refreshed=False)


def _scope_forecast(status: BudgetStatus, scope: dict[str, str]) -> ScopeForecast:
    snapshot = status_snapshot(status, "")
    return ScopeForecast(
        scope=scope,
        currency=status.budget.currency,
        period_start=status.window.start,
        period_end=status.window.end,
        spend_to_date=snapshot["spend_to_date"],
        forecast_total=snapshot["forecast_total"],
        forecast_mean_total=snapshot["forecast_mean_total"],
        interval=snapshot["interval"],
        daily=_daily(status),
        model=status.forecast.model if status.forecast is not None else None,
        problem=status.problem,
    )


def _daily(status: BudgetStatus) -> list[DailyForecastPoint]:
    if status.forecast is None:
        return []
    days = status.forecast.days
    return [
        DailyForecastPoint(
            date=day,
            mean=float(days.mean[index]),
            lo80=float(days.lo80[index]),
            hi80=float(days.hi80[index]),
            lo95=float(days.lo95[index]),
            hi95=float(days.hi95[index]),
        )
        for index, day in enumerate(days.dates)
    ]
