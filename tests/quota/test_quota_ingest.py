"""Ingestion of Palette usage and quotas: idempotent, transactional, and true to the simulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from quota_helpers import AS_OF, palette_settings
from sqlalchemy import func, select

from costwarden.config import QuotaSettings
from costwarden.errors import PaletteApiError
from costwarden.simulator.fleet import build_fleet
from costwarden.simulator.server import SimulatorServer
from costwarden.sources.palette.client import PaletteClient
from costwarden.sources.palette.models import NamespaceConfig
from costwarden.sources.palette.usage import ingest_palette_usage
from costwarden.sources.palette.usage_rows import (
    ClusterMeta,
    Point,
    PoolInfo,
    derive_pool_rows,
    namespace_limits,
)
from costwarden.store import Store
from costwarden.store.tables import IngestBatch, QuotaLimit, UsageFact

SINCE = date(2026, 11, 1)


def _counts(store: Store) -> tuple[int, int, int]:
    with store.transaction() as session:
        facts = session.scalar(select(func.count()).select_from(UsageFact))
        limits = session.scalar(select(func.count()).select_from(QuotaLimit))
        batches = session.scalar(select(func.count()).select_from(IngestBatch))
    return int(facts or 0), int(limits or 0), int(batches or 0)


def _series(store: Store, scope_kind: str, name: str, resource: str) -> dict[date, float]:
    query = select(UsageFact.day, UsageFact.value).where(
        UsageFact.scope_kind == scope_kind, UsageFact.name == name, UsageFact.resource == resource
    )
    with store.transaction() as session:
        return {day: value for day, value in session.execute(query)}


def test_ingest_twice_changes_nothing(
    store: Store, start_simulator: Callable[..., SimulatorServer]
) -> None:
    sim = start_simulator()
    settings = palette_settings(sim)

    first = ingest_palette_usage(store, settings, QuotaSettings(), as_of=AS_OF, since=SINCE)
    counts_after_first = _counts(store)
    second = ingest_palette_usage(store, settings, QuotaSettings(), as_of=AS_OF, since=SINCE)

    assert first.inserted > 0
    assert first.window_start == SINCE
    assert first.window_end == date(2026, 11, 14)
    assert (second.inserted, second.updated) == (0, 0)
    assert second.unchanged == first.inserted
    facts, limits, batches = _counts(store)
    assert (facts, limits) == counts_after_first[:2]
    assert batches == 2
    assert first.warnings == ()


def test_next_ingest_refetches_two_days(
    sqlite_store: Store, start_simulator: Callable[..., SimulatorServer]
) -> None:
    sim = start_simulator()
    settings = palette_settings(sim)
    ingest_palette_usage(sqlite_store, settings, QuotaSettings(), as_of=AS_OF, since=SINCE)

    report = ingest_palette_usage(sqlite_store, settings, QuotaSettings(), as_of=AS_OF)

    assert report.window_start == date(2026, 11, 13)
    assert report.window_end == date(2026, 11, 14)
    assert report.inserted == 0


def test_first_ingest_reads_configured_history(
    sqlite_store: Store, start_simulator: Callable[..., SimulatorServer]
) -> None:
    sim = start_simulator()

    report = ingest_palette_usage(
        sqlite_store, palette_settings(sim), QuotaSettings(usage_history_days=10), as_of=AS_OF
    )

    assert report.window_start == date(2026, 11, 5)
    days = _series(sqlite_store, "cluster", "payments-prod", "cpu")
    assert min(days) == date(2026, 11, 5)
    assert max(days) == date(2026, 11, 14)


def test_pool_node_counts_follow_simulated_fleet(
    sqlite_store: Store, start_simulator: Callable[..., SimulatorServer]
) -> None:
    sim = start_simulator()
    ingest_palette_usage(
        sqlite_store, palette_settings(sim), QuotaSettings(), as_of=AS_OF, since=SINCE
    )

    nodes = _series(sqlite_store, "pool", "gpu-training", "nodes")
    gpus = _series(sqlite_store, "pool", "gpu-training", "gpu")

    fleet = build_fleet(7, AS_OF, history_days=40, cluster_count=12)
    cluster = fleet.cluster_named("ml-training-eks")
    pool_index = [pool.name for pool in cluster.pools].index("gpu-training")
    for day, value in nodes.items():
        if day == AS_OF.date():
            assert value == cluster.pools[pool_index].size
            continue
        expected = cluster.node_counts[pool_index, (day - fleet.start.date()).days]
        assert value == pytest.approx(expected, abs=1e-4)
    assert gpus == nodes
    assert len(nodes) == 15


def test_namespace_peak_is_highest_point_of_day(
    sqlite_store: Store, start_simulator: Callable[..., SimulatorServer]
) -> None:
    sim = start_simulator()
    settings = palette_settings(sim)
    quota = QuotaSettings(usage_period_minutes=120)
    ingest_palette_usage(sqlite_store, settings, quota, as_of=AS_OF, since=SINCE)

    with PaletteClient(settings) as client:
        raw = client.resource_consumption(
            date(2026, 11, 10), date(2026, 11, 11), group_by="namespace", period_minutes=120
        )
    ledger = next(s for s in raw.resources if s.entity.name == "ledger")
    stored = _series(sqlite_store, "namespace", "ledger", "memory")

    assert len(ledger.data) == 12
    expected = max(point.usage.memory for point in ledger.data) / 1024
    assert stored[date(2026, 11, 10)] == pytest.approx(expected, rel=1e-6)
    cpu = _series(sqlite_store, "namespace", "ledger", "cpu")[date(2026, 11, 10)]
    assert cpu == pytest.approx(max(point.usage.cpu for point in ledger.data), rel=1e-6)


def test_limits_cover_quotas_pools_and_workspaces(
    sqlite_store: Store, start_simulator: Callable[..., SimulatorServer]
) -> None:
    sim = start_simulator()
    ingest_palette_usage(
        sqlite_store, palette_settings(sim), QuotaSettings(), as_of=AS_OF, since=SINCE
    )

    with sqlite_store.transaction() as session:
        limits = {
            (limit.scope_kind, limit.details.get("cluster_name"), limit.name, limit.resource): limit
            for limit in session.scalars(select(QuotaLimit))
        }

    gpu_pool = limits[("pool", "ml-training-eks", "gpu-training", "gpu")]
    assert gpu_pool.limit_kind == "autoscaler_max"
    assert gpu_pool.limit_value == 24
    assert gpu_pool.details["gpus_per_node"] == 1
    assert ("pool", "ml-training-eks", "worker-pool", "nodes") not in limits
    ledger = limits[("namespace", "payments-prod", "ledger", "memory")]
    assert ledger.limit_kind == "namespace_quota"
    assert {key[3] for key in limits if key[0] == "workspace"} >= {"cpu", "memory"}
    cluster_cpu = limits[("cluster", "ml-training-eks", "ml-training-eks", "cpu")]
    assert cluster_cpu.limit_value == 3 * 4 + 4 * 8 + 24 * 8


class _FailingWorkspaceConsumption(httpx.AsyncBaseTransport):
    """Send requests over real HTTP, except the workspace consumption call, which gets a 503."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if (
            request.url.path.endswith("/resources/consumption")
            and b'"workspace"' in request.content
        ):
            return httpx.Response(503, text="<html>Service Unavailable</html>")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_failure_midway_stores_nothing(
    store: Store, start_simulator: Callable[..., SimulatorServer]
) -> None:
    sim = start_simulator()
    settings = palette_settings(sim, max_retries=1)

    with PaletteClient(settings, transport=_FailingWorkspaceConsumption()) as client:
        with pytest.raises(PaletteApiError, match="HTTP 503"):
            ingest_palette_usage(
                store, settings, QuotaSettings(), as_of=AS_OF, since=SINCE, client=client
            )

    assert _counts(store) == (0, 0, 0)


def _point(day: int, cpu: float, memory: float) -> Point:
    moment = datetime(2026, 11, day, tzinfo=UTC)
    return Point(moment, 0.0, 0.0, cpu, memory)


def _pool(name: str, size: int, vcpus: float, memory: float, low: int, high: int) -> PoolInfo:
    return PoolInfo(name, "m5.large", size, low, high, vcpus, memory, 0)


def test_two_pool_shapes_are_solved_exactly() -> None:
    cluster = ClusterMeta(
        "c1",
        "two-pools",
        None,
        "eks",
        pools=(
            _pool("fixed", 2, 4, 16, 2, 2),
            _pool("compute", 5, 8, 16, 1, 10),
            _pool("memory", 3, 4, 32, 1, 10),
        ),
    )
    found = [
        _point(1, 8 + 4 * 8 + 2 * 4, 32 + 4 * 16 + 2 * 32),
        _point(2, 8 + 5 * 8 + 3 * 4, 32 + 5 * 16 + 3 * 32),
    ]
    warnings: list[str] = []

    rows = derive_pool_rows(cluster, found, warnings.append)

    values = {(row.name, row.day.day): row.value for row in rows}
    assert values == {("compute", 1): 4, ("memory", 1): 2, ("compute", 2): 5, ("memory", 2): 3}
    assert warnings == []


def test_same_shape_pools_are_not_derived() -> None:
    cluster = ClusterMeta(
        "c1",
        "twins",
        None,
        "eks",
        pools=(_pool("a", 3, 8, 32, 1, 10), _pool("b", 3, 8, 32, 1, 10)),
    )

    assert derive_pool_rows(cluster, [_point(1, 48, 192)], lambda message: None) == []


def test_capacity_that_contradicts_pool_size_is_rejected() -> None:
    cluster = ClusterMeta("c1", "odd", None, "eks", pools=(_pool("a", 3, 8, 32, 1, 10),))
    warnings: list[str] = []

    rows = derive_pool_rows(cluster, [_point(1, 80, 320)], warnings.append)

    assert rows == []
    assert "implies 10.0 nodes" in warnings[0]
    assert "the pool has 3" in warnings[0]


def test_regex_quota_applies_to_each_matching_namespace() -> None:
    config = NamespaceConfig.model_validate(
        {
            "metadata": {"name": "team-.*"},
            "spec": {"isRegex": True, "resourceAllocation": {"cpuCores": 4, "memoryMiB": 2048}},
        }
    )
    broken = NamespaceConfig.model_validate(
        {
            "metadata": {"name": "("},
            "spec": {"isRegex": True, "resourceAllocation": {"cpuCores": 1}},
        }
    )
    cluster = ClusterMeta("c1", "shared", "p1", "aws", quotas=(config, broken))
    warnings: list[str] = []

    limits = namespace_limits(cluster, {"team-a", "team-b", "ops", "my-team-c"}, warnings.append)

    assert sorted((limit.name, limit.resource, limit.limit_value) for limit in limits) == [
        ("team-a", "cpu", 4.0),
        ("team-a", "memory", 2.0),
        ("team-b", "cpu", 4.0),
        ("team-b", "memory", 2.0),
    ]
    assert limits[0].details["pattern"] == "team-.*"
    assert "pattern '(' is invalid" in warnings[0]


def test_snapshot_day_is_not_history(
    sqlite_store: Store, start_simulator: Callable[..., SimulatorServer]
) -> None:
    sim = start_simulator()
    later = AS_OF + timedelta(hours=1)
    ingest_palette_usage(
        sqlite_store, palette_settings(sim), QuotaSettings(), as_of=later, since=SINCE
    )

    with sqlite_store.transaction() as session:
        sources = dict(
            session.execute(
                select(UsageFact.source, func.max(UsageFact.day)).group_by(UsageFact.source)
            ).all()
        )

    assert sources["consumption"] == date(2026, 11, 14)
    assert sources["snapshot"] == date(2026, 11, 15)
    assert set(sources) == {"consumption", "derived", "snapshot"}
