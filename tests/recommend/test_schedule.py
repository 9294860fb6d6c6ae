"""The off-hours schedule recommender against the seeded Prometheus fleet."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import prometheus_data as fleet
import pytest
from recommend_expected import CATALOG, per_day

from costwarden.domain.usage import NodeKey
from costwarden.errors import ConfigError
from costwarden.recommend import RECOMMENDERS, RecommendInput
from costwarden.recommend.hourly import whole_hour_ends
from costwarden.recommend.pricing import pool_node_price


def found(bundle: RecommendInput, **options: object) -> dict:
    recommendations = RECOMMENDERS.create("off-hours-schedule", options).recommend(bundle)
    return {(item.target.cluster, item.target.name): item for item in recommendations}


def test_hourly_cpu_read_per_hour(fleet_input: RecommendInput) -> None:
    hourly = {item.node: item for item in fleet_input.hourly_cpu.items}
    office = hourly[NodeKey(fleet.OFFICE, "aks-office-11223344-vmss000000")]

    assert len(office.hours) == 7 * 24
    assert max(office.cores) == pytest.approx(fleet.OFFICE_BUSY_CORES, rel=0.01)
    assert min(office.cores) == pytest.approx(fleet.OFFICE_IDLE_CORES, rel=0.01)
    assert fleet_input.hourly_cpu.environments[office.node] == "staging"


def test_only_weekday_pool_found(fleet_input: RecommendInput) -> None:
    """Every other pool is busy around the clock, or in prod-eks."""
    assert set(found(fleet_input)) == {(fleet.OFFICE, fleet.OFFICE_POOL)}


def test_savings_are_off_hours_share(fleet_input: RecommendInput) -> None:
    office = found(fleet_input)[(fleet.OFFICE, fleet.OFFICE_POOL)]
    pool = next(pool for pool in fleet_input.pools if pool.name == fleet.OFFICE_POOL)
    price = pool_node_price(CATALOG, pool)

    assert price is not None
    assert price.instance_type == "Standard_D2s_v5"
    assert float(office.savings.per_day) == pytest.approx(
        per_day(price.usd_per_hour * 2 * 108 / 168), abs=1e-4
    )
    assert "108/168" in office.savings.method


def test_schedule_and_two_calls(fleet_input: RecommendInput) -> None:
    office = found(fleet_input)[(fleet.OFFICE, fleet.OFFICE_POOL)]
    down, up = office.after["calls"]

    assert office.after["schedule"]["scale_down_at"] == "20:00"
    assert office.after["schedule"]["scale_up_at"] == "08:00"
    assert down["body"]["poolConfig"] == {"name": "office", "size": 0, "minSize": 0}
    assert up["body"]["poolConfig"] == {"name": "office", "size": 2, "minSize": 2}
    assert down["path"].endswith("/machinePools/office")
    assert office.api_call is not None
    assert office.api_call.body == down["body"]
    assert office.manual_change is not None
    assert "CronJob" in office.manual_change


def test_pattern_figures_in_evidence(fleet_input: RecommendInput) -> None:
    evidence = found(fleet_input)[(fleet.OFFICE, fleet.OFFICE_POOL)].evidence
    busy = 60 * fleet.OFFICE_BUSY_CORES
    expected = busy / (busy + 108 * fleet.OFFICE_IDLE_CORES) * 100

    assert evidence["working_share_percent"] == pytest.approx(expected, abs=0.5)
    assert evidence["off_hours_peak_cpu_percent"] < 5


def test_time_zone_moves_hours(fleet_input: RecommendInput) -> None:
    """In New York, 08:00-20:00 UTC is 03:00-15:00, so busy hours fall outside 08:00-20:00."""
    assert found(fleet_input, timezone="America/New_York") == {}


def test_production_label_excludes(fleet_input: RecommendInput) -> None:
    environments = {
        key: "production" if key.cluster == fleet.OFFICE else value
        for key, value in fleet_input.hourly_cpu.environments.items()
    }
    hourly = replace(fleet_input.hourly_cpu, environments=environments)

    assert found(replace(fleet_input, hourly_cpu=hourly)) == {}


def test_production_name_excludes(fleet_input: RecommendInput) -> None:
    assert found(fleet_input, production_cluster_patterns=["dev-*"]) == {}


def test_thresholds_are_settings(fleet_input: RecommendInput) -> None:
    assert found(fleet_input, max_off_hours_cpu_percent=1) == {}
    assert found(fleet_input, min_working_share_percent=99) == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown IANA time zone"),
        ({"start_hour": 20, "end_hour": 8}, "must be before end_hour"),
        ({"working_days": []}, "at least one day"),
        ({"working_days": ["monday"]}, "working_days"),
    ],
)
def test_invalid_settings(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RECOMMENDERS.create("off-hours-schedule", options)


def test_hour_ends_whole_hours() -> None:
    end = datetime(2026, 11, 16, 0, 30, tzinfo=UTC)

    first, last = whole_hour_ends(end, timedelta(days=1))

    assert first == datetime(2026, 11, 15, 2, tzinfo=UTC), "the hour 01:00-02:00 is the first"
    assert last == datetime(2026, 11, 16, 0, tzinfo=UTC)
