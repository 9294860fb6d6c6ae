"""Fixtures of the recommender tests: one input bundle read from the seeded Prometheus fleet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import prometheus_data as fleet
import pytest
from prometheus_fixtures import PrometheusServer
from recommend_expected import fleet_settings

from costwarden.recommend import RecommendInput, load_input
from costwarden.sources.prices import PriceCatalog
from costwarden.sources.prometheus import PrometheusSource

WINDOW = timedelta(days=7)


@pytest.fixture(scope="session")
def fleet_input(prometheus_server: PrometheusServer) -> Iterator[RecommendInput]:
    """Usage of the seeded fleet over the 7 days before its end, with 7 days of history."""
    with PrometheusSource(fleet_settings(prometheus_server.url)) as source:
        yield load_input(
            source,
            end=fleet.END,
            window=WINDOW,
            min_history=WINDOW,
            cpu_quantile=0.95,
            prices=PriceCatalog.packaged(),
        )
