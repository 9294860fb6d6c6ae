"""Off-hours schedule: scale pools of non-production clusters to zero outside working hours."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from costwarden.domain.recommendation import ApiCall, Recommendation, Savings, Target
from costwarden.domain.usage import NodeKey
from costwarden.recommend.inputs import PoolRef, RecommendInput
from costwarden.recommend.palette import machine_pool_update
from costwarden.recommend.pricing import pool_node_price, price_used
from costwarden.recommend.registry import RECOMMENDERS

logger = logging.getLogger(__name__)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_PER_WEEK = 168
ENVIRONMENT_KEYS = ("env", "environment")
"""Palette cluster label keys whose value names the cluster's environment."""


class OffHoursSettings(BaseModel):
    """Options of the off-hours schedule recommender."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field("UTC", description="IANA time zone of the working hours.")
    working_days: list[Weekday] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"],
        description="Days with working hours, as mon to sun.",
    )
    start_hour: int = Field(8, ge=0, le=23, description="Hour working hours start, local time.")
    end_hour: int = Field(20, ge=1, le=24, description="Hour working hours end, local time.")
    min_working_share_percent: float = Field(
        90,
        gt=0,
        le=100,
        description="Share of the pool's CPU use in the window that working hours must hold, in "
        "percent.",
    )
    max_off_hours_cpu_percent: float = Field(
        5,
        gt=0,
        le=100,
        description="CPU use, in percent of the pool's allocatable CPU, that every hour outside "
        "working hours must stay below.",
    )
    production_cluster_patterns: list[str] = Field(
        default_factory=lambda: ["*prod*"],
        description="Shell-style patterns of cluster names that are production.",
    )
    production_label_values: list[str] = Field(
        default_factory=lambda: ["prod", "production"],
        description="Values of a node's environment or env label that mark it as production.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}, such as Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _hours_in_order(self) -> OffHoursSettings:
        if self.start_hour >= self.end_hour:
            raise ValueError(
                f"start_hour {self.start_hour} must be before end_hour {self.end_hour}"
            )
        if not self.working_days:
            raise ValueError("working_days must name at least one day")
        return self

    @property
    def working_hours_per_week(self) -> int:
        return len(set(self.working_days)) * (self.end_hour - self.start_hour)

    def is_working(self, moment: datetime) -> bool:
        """Return whether the hour starting at ``moment`` is a working hour, in local time."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        day = WEEKDAYS[local.weekday()]
        return day in self.working_days and self.start_hour <= local.hour < self.end_hour


@RECOMMENDERS.register("off-hours-schedule", OffHoursSettings)
class OffHoursRecommender:
    """Scale pools of non-production clusters to zero outside working hours, on a schedule.

    Method: node-exporter's non-idle ``node_cpu_seconds_total`` is read as a mean per whole
    hour over the window and summed over the pool's nodes. A cluster is production when its
    name matches ``production_cluster_patterns``, or when its Palette labels or a node's labels
    have an ``env`` or ``environment`` value in ``production_label_values``. A pool of another
    cluster qualifies when every weekday has data, working hours (``working_days`` from
    ``start_hour`` to ``end_hour`` in ``timezone``) hold at least
    ``min_working_share_percent`` of the CPU use, and every other hour stays below
    ``max_off_hours_cpu_percent`` of the pool's allocatable CPU. Palette has no scheduler, so
    the proposal is a schedule with two ``PUT .../machinePools/{name}`` calls, run from CI or
    a Kubernetes CronJob outside the pool. Savings are the pool's nodes times the list price of
    one node (Spot for an all-Spot pool) times the share of the week outside working hours
    (108/168 with the defaults).
    """

    name: str

    def __init__(self, settings: OffHoursSettings) -> None:
        self.settings = settings

    def recommend(self, bundle: RecommendInput) -> list[Recommendation]:
        hourly = {item.node: item for item in bundle.hourly_cpu.items}
        allocatable = {
            info.node: info.cpu_allocatable_cores
            for info in bundle.node_info.items
            if info.cpu_allocatable_cores
        }
        found = []
        for pool in bundle.pools:
            if not pool.nodes or self._production(bundle, pool):
                continue
            keys = [NodeKey(pool.cluster, node) for node in pool.nodes]
            if any(key not in hourly or key not in allocatable for key in keys):
                continue
            per_hour: dict[float, float] = defaultdict(float)
            for key in keys:
                for hour, cores in zip(hourly[key].hours, hourly[key].cores, strict=True):
                    per_hour[hour] += cores
            capacity = sum(allocatable[key] for key in keys)
            figures = self._pattern(per_hour, capacity)
            if figures is not None:
                found.append(self._recommendation(bundle, pool, figures))
        return found

    def _production(self, bundle: RecommendInput, pool: PoolRef) -> bool:
        if any(fnmatchcase(pool.cluster, p) for p in self.settings.production_cluster_patterns):
            return True
        marks = {value.lower() for value in self.settings.production_label_values}
        palette = [pool.cluster_label(key) or "" for key in ENVIRONMENT_KEYS]
        environments = bundle.hourly_cpu.environments
        nodes = [environments.get(NodeKey(pool.cluster, node), "") for node in pool.nodes]
        return any(value.lower() in marks for value in palette + nodes)

    def _pattern(self, per_hour: dict[float, float], capacity: float) -> dict[str, Any] | None:
        """Return the figures of a weekday-only pattern, None when the pool does not have one."""
        zone = ZoneInfo(self.settings.timezone)
        days = {datetime.fromtimestamp(hour, zone).weekday() for hour in per_hour}
        total = sum(per_hour.values())
        if len(days) < len(WEEKDAYS) or total <= 0:
            return None

        working = 0.0
        off_peak = 0.0
        for hour, cores in per_hour.items():
            if self.settings.is_working(datetime.fromtimestamp(hour, zone)):
                working += cores
            else:
                off_peak = max(off_peak, cores)
        share = working / total * 100
        off_percent = off_peak / capacity * 100
        if share < self.settings.min_working_share_percent:
            return None
        if off_percent >= self.settings.max_off_hours_cpu_percent:
            return None
        return {
            "working_share_percent": round(share, 2),
            "off_hours_peak_cpu_percent": round(off_percent, 2),
            "hours_with_data": len(per_hour),
        }

    def _recommendation(
        self, bundle: RecommendInput, pool: PoolRef, figures: dict[str, Any]
    ) -> Recommendation:
        settings = self.settings
        nodes = len(pool.nodes)
        down = machine_pool_update(pool, pool_config={"size": 0, "minSize": 0})
        up = machine_pool_update(pool, pool_config={"size": nodes, "minSize": nodes})
        days = ",".join(settings.working_days)
        schedule = {
            "timezone": settings.timezone,
            "working_days": list(settings.working_days),
            "scale_up_at": f"{settings.start_hour:02d}:00",
            "scale_down_at": f"{settings.end_hour % 24:02d}:00",
        }
        return Recommendation(
            kind=self.name,
            title=f"Scale pool {pool.cluster}/{pool.name} to 0 outside {days} "
            f"{settings.start_hour:02d}:00-{settings.end_hour:02d}:00 {settings.timezone}",
            target=Target(pool.cluster, "MachinePool", pool.name, pool=pool.name),
            before={"size": nodes, "schedule": None},
            after={
                "schedule": schedule,
                "working_hours_size": nodes,
                "off_hours_size": 0,
                "calls": [
                    _call_dict(down, f"{days} at {schedule['scale_down_at']}"),
                    _call_dict(up, f"{days} at {schedule['scale_up_at']}"),
                ],
            },
            savings=self._savings(bundle, pool),
            confidence="medium",
            risk="medium",
            risk_note="work outside the schedule finds no nodes until the scale-up call runs; "
            "the scale-up call sets minSize to the node count seen, so restore the pool's own "
            "minimum if it autoscales",
            effort="medium",
            reversible=True,
            resources=frozenset({pool.resource}),
            api_call=down,
            manual_change="Palette has no scheduler: run the two PUT calls from CI or a "
            f"Kubernetes CronJob outside this pool (spec.timeZone: {settings.timezone}), "
            "scale-down first",
            ui_link=bundle.ui_link(pool),
            evidence={**figures, "queries": list(bundle.hourly_cpu.queries)},
        )

    def _savings(self, bundle: RecommendInput, pool: PoolRef) -> Savings:
        price = pool_node_price(bundle.prices, pool)
        if price is None:
            return Savings(Decimal(0), "USD", "not estimated: no list price for the pool")
        off_hours = HOURS_PER_WEEK - self.settings.working_hours_per_week
        share = Decimal(off_hours) / Decimal(HOURS_PER_WEEK)
        method = (
            f"{len(pool.nodes)} node(s) x {price.instance_type} {price.capacity_type} list price x "
            f"{off_hours}/{HOURS_PER_WEEK} of the week outside working hours"
        )
        per_hour = price.usd_per_hour * len(pool.nodes) * share
        return Savings.from_hourly(per_hour, price.currency, method, (price_used(price),))


def _call_dict(call: ApiCall, when: str) -> dict[str, Any]:
    return {"when": when, "method": call.method, "path": call.path, "body": dict(call.body)}
