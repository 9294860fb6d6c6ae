"""Response and request bodies of the REST API, so ``/openapi.json`` describes every route."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")

MAX_PAGE = 500

AnomalyStatus = Literal["ongoing", "resolved", "new_normal"]
RunStatus = Literal["queued", "running", "succeeded", "failed", "abandoned"]
RunTrigger = Literal["schedule", "api", "webhook", "start", "cli"]


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]
"""A timestamp in UTC; a date (midnight) or a time without an offset is read as UTC."""


@dataclass(frozen=True, slots=True)
class Pagination:
    """Query parameters ``limit`` and ``offset`` of every list."""

    limit: int
    offset: int


async def pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> Pagination:
    """FastAPI dependency: the page that a list request selects."""
    return Pagination(limit, offset)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Items that match the filters, across all pages.")
    limit: int
    offset: int


class BudgetStatusSummary(BaseModel):
    as_of: datetime
    run_id: str
    spend_to_date: str | None = Field(None, description="Decimal string in the budget currency.")
    forecast_total: str | None = Field(None, description="Median forecast of the period total.")
    exceedance_probability: float | None = None
    breach_date: date | None = None
    problem: str | None = None


class BudgetSummary(BaseModel):
    name: str
    origin: Literal["file", "api"] = Field(
        description="file: from the budget file (read-only here); api: managed through the API."
    )
    version: int
    amount: str
    currency: str
    period: str | dict[str, Any]
    scope: dict[str, Any]
    updated_at: datetime
    status: BudgetStatusSummary | None = Field(None, description="Latest pass's evaluation.")


class BudgetDetail(BaseModel):
    name: str
    origin: Literal["file", "api"]
    version: int = Field(description="Send it back in If-Match to update safely.")
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any] = Field(
        description="The budget as the budget file writes it, with the defaults filled in."
    )
    status: dict[str, Any] | None = Field(
        None, description="Latest stored evaluation: spend, forecast, intervals and thresholds."
    )


class ImportSummary(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str] = Field(description="API budgets missing from the file (replace=true).")


class DailyForecastPoint(BaseModel):
    date: date
    mean: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


class ForecastResponse(BaseModel):
    status: dict[str, Any] = Field(
        description="Spend to date, median total, 80% and 95% intervals, exceedance, thresholds."
    )
    refreshed: bool = Field(description="True when evaluated for this request, not by a pass.")
    daily: list[DailyForecastPoint] = Field(
        default_factory=list, description="Daily forecast; only when evaluated for this request."
    )


class ScopeForecast(BaseModel):
    scope: dict[str, Any]
    currency: str
    period_start: date
    period_end: date = Field(description="First day after the period.")
    spend_to_date: str
    forecast_total: str | None = Field(None, description="Median of the period's total spend.")
    forecast_mean_total: str | None = None
    interval: dict[str, str] | None = Field(None, description="lo80, hi80, lo95, hi95 totals.")
    daily: list[DailyForecastPoint]
    model: str | None = None
    problem: str | None = Field(None, description="Why there is no forecast, when there is none.")


class AlertSummary(BaseModel):
    alert_id: str
    budget: str
    kind: str
    severity: str
    title: str | None
    period_start: date
    first_seen: datetime
    last_seen: datetime
    run_id: str


class AlertDetail(AlertSummary):
    payload: dict[str, Any] = Field(description="The alert payload that notifications carry.")


class AnomalySummary(BaseModel):
    anomaly_id: str
    scope_kind: str
    scope_key: str
    scope_name: str
    metric: str
    kind: str
    cause: str
    status: str
    severity: str
    first_day: date
    last_day: date
    currency: str
    expected: str
    actual: str
    impact_total: str | None
    score: float
    first_seen: datetime
    last_seen: datetime


class AnomalyDetail(AnomalySummary):
    payload: dict[str, Any]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["expected", "problem"] = Field(
        description="expected: suppress later anomalies of this scope and cause; problem: confirm."
    )
    reason: str | None = Field(None, max_length=2000, description="Required for expected.")
    until: date | None = Field(
        None, description="Last day the expected verdict suppresses; none: for good."
    )

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackRequest:
        if self.verdict == "expected" and not (self.reason and self.reason.strip()):
            raise ValueError("an expected verdict needs a reason, e.g. 'quarterly load test'")
        if self.verdict == "problem" and self.until is not None:
            raise ValueError("until applies to expected verdicts only")
        return self


class FeedbackItem(BaseModel):
    anomaly_id: str
    verdict: str
    reason: str | None
    until: date | None
    created_at: datetime


class RecommendationPage(Page[dict[str, Any]]):
    run_id: str
    created_at: datetime
    source: str
    currency: str | None = None
    note: str | None = None
    total_per_day: str | None = Field(None, description="Current cost per day of the fleet.")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clusters: list[str] | None = Field(
        None, description="Cluster names or uids to fetch again; none: the whole fleet."
    )
    days: int | None = Field(
        None, ge=1, le=31, description="Days of cost data to fetch again; default refresh_days."
    )


class RunAccepted(BaseModel):
    run_id: str
    status: str
    location: str


class RunDetail(BaseModel):
    id: str
    status: str = Field(description="queued, running, succeeded, failed or abandoned.")
    trigger: str
    tenant: str | None
    scope: dict[str, Any] | None
    as_of: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    budgets: int
    alerts: int
    error: str | None
