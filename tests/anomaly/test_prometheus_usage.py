"""Prometheus usage for the utilisation checks: mapped onto Palette clusters, egress jumps found."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta

import numpy as np
import prometheus_data as fleet
import pytest
from prometheus_fixtures import PrometheusServer

from costwarden.anomaly.prometheus_usage import GIB, PrometheusUsage
from costwarden.anomaly.utilisation import UsageSeries, find_utilisation_anomalies
from costwarden.config import PrometheusSettings, load_settings
from costwarden.domain import ClusterInfo, ProjectInfo
from costwarden.domain.usage import DailyUsage, NamespaceKey, UsageResult
from costwarden.sources.prometheus import PrometheusSource
from costwarden.store import upsert_fleet

AS_OF = datetime(2026, 11, 15, 10, tzinfo=UTC)
LAST_DAY = date(2026, 11, 14)
DAYS = 42
FIRST_DAY = LAST_DAY - timedelta(days=DAYS - 1)


class FixedReader:
    """A reader that returns the same daily usage for any range."""

    def __init__(self, items: list[DailyUsage]) -> None:
        self.items = items
        self.calls: list[tuple[date, date]] = []

    def daily_usage(self, first_day: date, last_day: date) -> UsageResult[DailyUsage]:
        self.calls.append((first_day, last_day))
        start = datetime.combine(first_day, datetime.min.time(), UTC)
        end = datetime.combine(last_day, datetime.min.time(), UTC)
        return UsageResult(tuple(self.items), (), start, end, timedelta(days=7), ())


class NoStoredUsage:
    def load(self, session, first_day, last_day) -> list[UsageSeries]:
        return []


class StoredCpu:
    """A base source that already has the CPU series of prod-uid/checkout."""

    def load(self, session, first_day, last_day) -> list[UsageSeries]:
        days = (last_day - first_day).days + 1
        values = np.full(days, 2.0)
        series = UsageSeries("namespace", "prod-uid/checkout", "prod-uid", "checkout", "cpu", values)
        return [series]


def _daily(cluster: str, namespace: str, resource: str, statistic: str, values) -> DailyUsage:
    days = tuple(FIRST_DAY + timedelta(days=offset) for offset in range(len(values)))
    unit = {"cpu": "cores", "memory": "bytes", "egress": "bytes"}[resource]
    return DailyUsage(
        NamespaceKey(cluster, namespace), resource, statistic, unit, days, tuple(values)
    )


@pytest.fixture
def known_cluster(store):
    with store.transaction() as session:
        upsert_fleet(
            session,
            [ProjectInfo("p1", "proj")],
            [ClusterInfo("prod-uid", "prod", "p1", "proj", "aws")],
            [],
        )
    return store


def test_series_map_to_palette_clusters(known_cluster) -> None:
    memory = [3 * GIB] * DAYS
    reader = FixedReader(
        [
            _daily("prod", "checkout", "cpu", "max", [1.0] * DAYS),
            _daily("prod", "web", "cpu", "max", [0.5] * DAYS),
            _daily("prod", "web", "cpu", "mean", [0.2] * DAYS),
            _daily("prod", "web", "memory", "max", memory),
            _daily("other", "etl", "egress", "total", [GIB] * DAYS),
        ]
    )

    with known_cluster.transaction() as session:
        series = PrometheusUsage(reader, StoredCpu()).load(session, FIRST_DAY, LAST_DAY)

    keys = {(item.scope_id, item.resource): item for item in series}
    assert keys[("prod-uid/checkout", "cpu")].values[0] == 2.0, "the stored series wins"
    assert keys[("prod-uid/web", "cpu")].values[0] == 0.5, "the daily peak, not the mean"
    assert keys[("prod-uid/web", "memory")].values[0] == pytest.approx(3.0)
    assert keys[("other/etl", "egress")].cluster_uid == "other"
    assert keys[("other/etl", "egress")].values[0] == pytest.approx(1.0)
    assert len(series) == 4
    assert reader.calls == [(FIRST_DAY, LAST_DAY)]


def test_days_outside_range_are_dropped(known_cluster) -> None:
    late = DailyUsage(
        NamespaceKey("prod", "web"),
        "cpu",
        "max",
        "cores",
        (LAST_DAY, LAST_DAY + timedelta(days=1)),
        (1.5, 9.0),
    )

    with known_cluster.transaction() as session:
        series = PrometheusUsage(FixedReader([late]), NoStoredUsage()).load(
            session, FIRST_DAY, LAST_DAY
        )

    values = series[0].values
    assert values[-1] == 1.5
    assert np.isnan(values[0])
    assert len(values) == DAYS


def test_egress_jump_becomes_anomaly(known_cluster) -> None:
    rng = np.random.default_rng(4)
    egress = (20 + rng.normal(0, 1, DAYS)) * GIB
    egress[-6:] *= 8
    reader = FixedReader([_daily("prod", "etl", "egress", "total", egress)])
    settings = load_settings()

    with known_cluster.transaction() as session:
        anomalies = find_utilisation_anomalies(
            session, settings, AS_OF, source=PrometheusUsage(reader, NoStoredUsage())
        )

    assert [anomaly.triage.cause for anomaly in anomalies] == ["egress_jump"]
    anomaly = anomalies[0]
    assert anomaly.scope.name == "prod/etl"
    assert "GiB a day" in anomaly.triage.likely_cause
    assert anomaly.first_day == LAST_DAY - timedelta(days=5)


def test_steady_egress_raises_nothing(known_cluster) -> None:
    rng = np.random.default_rng(5)
    egress = (20 + rng.normal(0, 1, DAYS)) * GIB
    reader = FixedReader([_daily("prod", "etl", "egress", "total", egress)])

    with known_cluster.transaction() as session:
        anomalies = find_utilisation_anomalies(
            session, load_settings(), AS_OF, source=PrometheusUsage(reader, NoStoredUsage())
        )

    assert anomalies == []


def test_real_prometheus_egress_series(sqlite_store, prometheus_server: PrometheusServer) -> None:
    first_day = fleet.START.date()
    last_day = (fleet.END - timedelta(days=1)).date()

    # The seeded metrics have a 5-minute resolution, so rates need a window of four samples.
    settings = PrometheusSettings(url=prometheus_server.url, rate_window_seconds=1200)
    with PrometheusSource(settings) as source:
        with sqlite_store.transaction() as session:
            series = PrometheusUsage(source, NoStoredUsage()).load(session, first_day, last_day)

    found = {(item.scope_id, item.resource): item for item in series}
    egress = found[(f"{fleet.PROD}/checkout", "egress")]
    one_day = 2 * fleet.API_TRANSMIT_BYTES_PER_SECOND * 86_400 / GIB
    assert np.allclose(egress.values, one_day, rtol=0.01)
    assert (f"{fleet.PROD}/batch", "cpu") in found


def test_unreachable_prometheus_falls_back(sqlite_store, caplog) -> None:
    from contextlib import ExitStack

    from costwarden.pipeline import _prometheus_usage

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(
        prometheus={"url": f"http://127.0.0.1:{port}", "max_retries": 0, "timeout_seconds": 2}
    )

    with ExitStack() as stack:
        usage = _prometheus_usage(settings, stack)
        with sqlite_store.transaction() as session:
            series = usage.load(session, FIRST_DAY, LAST_DAY)

    assert series == []
    assert "Prometheus usage failed" in caplog.text


def test_no_prometheus_url_means_stored_usage_only() -> None:
    from contextlib import ExitStack

    from costwarden.pipeline import _prometheus_usage

    with ExitStack() as stack:
        assert _prometheus_usage(load_settings(), stack) is None

