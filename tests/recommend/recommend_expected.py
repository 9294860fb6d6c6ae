"""Savings the recommenders should find on the seeded fleet, computed from the packaged prices."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from costwarden.config import PrometheusSettings
from costwarden.recommend import RecommendInput
from costwarden.sources.prices import PriceCatalog

CATALOG = PriceCatalog.packaged()
HOURS_PER_DAY = 24
RATE_WINDOW_SECONDS = 1200
"""Four times the 5-minute resolution of the seeded fleet."""


def fleet_settings(url: str) -> PrometheusSettings:
    return PrometheusSettings(url=url, rate_window_seconds=RATE_WINDOW_SECONDS, max_retries=0)


def gp2_bundle(bundle: RecommendInput) -> RecommendInput:
    """Return the bundle with every claim's storage class set to gp2."""
    volumes = tuple(replace(item, storage_class="gp2") for item in bundle.volumes.items)
    return replace(bundle, volumes=replace(bundle.volumes, items=volumes))


def split_rates(cloud: str, region: str, instance_type: str) -> tuple[float, float]:
    """Return (price per vCPU-hour, per GiB-hour) of one instance, split by OpenCost's ratio."""
    price = float(CATALOG.hourly_price(cloud, region, instance_type))
    shape = CATALOG.shape(cloud, instance_type)
    units = CATALOG.unit_prices(cloud)
    weight = float(units.cpu_hour) * shape.vcpus + float(units.ram_gib_hour) * shape.memory_gib
    return price * float(units.cpu_hour) / weight, price * float(units.ram_gib_hour) / weight


def per_day(per_hour: float | Decimal) -> float:
    return float(per_hour) * HOURS_PER_DAY
