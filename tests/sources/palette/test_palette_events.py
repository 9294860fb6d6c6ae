"""Palette component events: the client over real HTTP, and their idempotent ingestion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from palette_helpers import AS_OF, palette_settings
from sqlalchemy import func, select

from costwarden.config import Settings
from costwarden.domain.event import SPOT_FALLBACK
from costwarden.errors import PaletteApiError, PaletteRateLimitError
from costwarden.pipeline import run_pass
from costwarden.simulator.anomalies import SPOT_CLUSTER
from costwarden.simulator.settings import RateLimitRule
from costwarden.sources.palette.events import SOURCE, ingest_palette_events
from costwarden.store.events import events_between
from costwarden.store.tables import ClusterEventRecord, IngestBatch

EVENTS_PREFIX = "/v1/events/components"


def _count(session, table) -> int:
    return session.scalar(select(func.count()).select_from(table))


def _fleet_events(sim, since=None, cluster_uid=None):
    return [
        event
        for event in sim.state.fleet.events
        if (since is None or event.created_at >= since)
        and (cluster_uid is None or event.cluster_uid == cluster_uid)
    ]


def test_client_reads_every_page_oldest_first(start_simulator, make_client):
    sim = start_simulator(history_days=900, cluster_count=8)
    cluster = sim.state.fleet.cluster_named("payments-prod")
    expected = _fleet_events(sim, cluster_uid=cluster.uid)
    client, transport = make_client(palette_settings(sim))

    events = client.component_events(cluster.uid)

    assert len(expected) > 100
    assert [event.metadata.uid for event in events] == [event.uid for event in expected]
    pages = transport.statuses(EVENTS_PREFIX)
    assert pages == [200] * ((len(expected) + 49) // 50)
    assert {event.related_object.uid for event in events} == {cluster.uid}


def test_client_stops_at_since(start_simulator, make_client):
    sim = start_simulator(history_days=900, cluster_count=8)
    cluster = sim.state.fleet.cluster_named("payments-prod")
    since = AS_OF - timedelta(days=60)
    client, transport = make_client(palette_settings(sim))

    events = client.component_events(cluster.uid, since=since)

    expected = _fleet_events(sim, since=since, cluster_uid=cluster.uid)
    assert 0 < len(expected) < 50
    assert [event.metadata.uid for event in events] == [event.uid for event in expected]
    assert transport.statuses(EVENTS_PREFIX) == [200]
    sent = transport.exchanges[0].params
    assert sent["orderBy"] == "metadata.creationTimestamp=-1"
    assert sent["limit"] == "50"


def test_client_accepts_a_date(start_simulator, make_client):
    sim = start_simulator()
    cluster = sim.state.fleet.cluster_named(SPOT_CLUSTER)
    client, _ = make_client(palette_settings(sim))

    events = client.component_events(cluster.uid, since=AS_OF.date() - timedelta(days=10))

    assert SPOT_FALLBACK in {event.reason for event in events}
    assert min(event.metadata.creation_timestamp for event in events).date() >= (
        AS_OF.date() - timedelta(days=10)
    )


def test_client_unknown_cluster_is_404(start_simulator, make_client):
    sim = start_simulator()
    client, _ = make_client(palette_settings(sim))

    with pytest.raises(PaletteApiError) as raised:
        client.component_events("0" * 24)

    assert raised.value.status == 404


def test_client_honours_events_rate_limit(start_simulator, make_client, fake_time):
    rule = RateLimitRule(prefix=EVENTS_PREFIX, rate_per_second=0.001, burst=1)
    sim = start_simulator(rate_limits=(rule,), retry_after_seconds=3)
    cluster = sim.state.fleet.clusters[0]
    client, transport = make_client(palette_settings(sim, max_retries=2))

    client.component_events(cluster.uid)
    with pytest.raises(PaletteRateLimitError):
        client.component_events(cluster.uid)

    assert transport.statuses(EVENTS_PREFIX) == [200, 429, 429, 429]
    assert fake_time.sleeps == [3.0, 3.0]


def test_ingest_twice_changes_nothing(store, start_simulator, make_client):
    sim = start_simulator()
    settings = palette_settings(sim)
    client, _ = make_client(settings)
    since = AS_OF - timedelta(days=15)
    expected = _fleet_events(sim, since=since)

    first = ingest_palette_events(store, settings, as_of=AS_OF, since=since, client=client)
    second = ingest_palette_events(store, settings, as_of=AS_OF, since=since, client=client)

    assert first.source == SOURCE
    assert (first.inserted, first.unchanged) == (len(expected), 0)
    assert (second.inserted, second.unchanged) == (0, len(expected))
    assert first.warnings == ()
    with store.transaction() as session:
        assert _count(session, ClusterEventRecord) == len(expected)
        batches = session.scalars(select(IngestBatch).where(IngestBatch.source == SOURCE)).all()
        stored = events_between(session, start=since, end=AS_OF + timedelta(seconds=1))
    assert len(batches) == 2
    assert {batch.facts_inserted for batch in batches} == {0, len(expected)}
    assert stored == expected


def test_next_ingest_starts_a_day_before_newest(sqlite_store, start_simulator, make_client):
    sim = start_simulator()
    settings = palette_settings(sim, history_days=20)
    client, _ = make_client(settings)

    earlier = AS_OF - timedelta(days=5)
    first = ingest_palette_events(sqlite_store, settings, as_of=earlier, client=client)
    with sqlite_store.transaction() as session:
        newest = session.scalar(select(func.max(ClusterEventRecord.created_at)))
    second = ingest_palette_events(sqlite_store, settings, as_of=AS_OF, client=client)

    assert first.window_start == (earlier - timedelta(days=20)).date()
    assert first.inserted == len(_fleet_events(sim, since=earlier - timedelta(days=20))) - len(
        _fleet_events(sim, since=earlier + timedelta(microseconds=1))
    )
    assert second.window_start == (newest - timedelta(days=1)).date()
    assert second.unchanged == len(_fleet_events(sim, since=newest - timedelta(days=1))) - (
        second.inserted
    )
    assert second.inserted == len(_fleet_events(sim, since=earlier + timedelta(microseconds=1)))


def test_fault_mid_ingest_writes_nothing(store, start_simulator, make_client):
    sim = start_simulator(fault_rate=0.15, fault_statuses=(500,), seed=3)
    settings = palette_settings(sim, max_retries=0)
    client, transport = make_client(settings)

    with pytest.raises(PaletteApiError):
        ingest_palette_events(store, settings, as_of=AS_OF, client=client)

    assert transport.statuses().count(200) >= 2, "the fault came too early to be mid-ingest"
    with store.transaction() as session:
        assert _count(session, ClusterEventRecord) == 0
        assert _count(session, IngestBatch) == 0


def test_retried_faults_store_every_event(sqlite_store, start_simulator, make_client):
    sim = start_simulator(fault_rate=0.3, fault_statuses=(500, 502, 429), seed=5)
    settings = palette_settings(sim, max_retries=8)
    client, transport = make_client(settings)
    since = AS_OF - timedelta(days=10)

    report = ingest_palette_events(sqlite_store, settings, as_of=AS_OF, since=since, client=client)

    assert {429, 500, 502} & set(transport.statuses())
    assert report.inserted == len(_fleet_events(sim, since=since))


def test_run_pass_stores_events(sqlite_store, start_simulator):
    sim = start_simulator()
    settings = Settings(palette=palette_settings(sim, history_days=20))

    result = run_pass(sqlite_store, settings, [], AS_OF)

    sources = [report.source for report in result.ingest]
    assert SOURCE in sources
    with sqlite_store.transaction() as session:
        stored = _count(session, ClusterEventRecord)
    assert stored == len(_fleet_events(sim, since=AS_OF - timedelta(days=20)))
