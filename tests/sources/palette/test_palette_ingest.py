import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from palette_helpers import AS_OF, palette_settings
from sqlalchemy import func, select

from costwarden.errors import PaletteApiError
from costwarden.sources.palette.ingest import ingest_palette
from costwarden.store.tables import Cluster, CostFact, IngestBatch, Namespace, Project

END = AS_OF.date()
TOLERANCE = Decimal("0.00001")


def _fast_sim(start_simulator, **overrides):
    """A simulator without its rate limit, for clients whose fake sleep does not wait."""
    return start_simulator(rate_limit_enabled=False, **overrides)


def _ingest(store, sim, make_client, **options):
    settings = palette_settings(sim)
    client, transport = make_client(settings)
    report = ingest_palette(store, settings, as_of=AS_OF, client=client, **options)
    return report, transport


def _expected_days(sim, cluster):
    fleet = sim.state.fleet
    first = fleet.start.date() + timedelta(days=cluster.first_day)
    return {first + timedelta(days=offset) for offset in range((END - first).days)}


def _count(session, table):
    return session.scalar(select(func.count()).select_from(table))


def test_ingest_stores_every_cluster_day(store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)

    report, _ = _ingest(store, sim, make_client)

    fleet = sim.state.fleet
    with store.transaction() as session:
        facts = session.scalars(select(CostFact).where(CostFact.grain == "cluster")).all()
    by_cluster: dict[str, dict[date, CostFact]] = {}
    for fact in facts:
        by_cluster.setdefault(fact.cluster_uid, {})[fact.day] = fact

    assert set(by_cluster) == {cluster.uid for cluster in fleet.clusters}
    for cluster in fleet.clusters:
        days = by_cluster[cluster.uid]
        assert set(days) == _expected_days(sim, cluster), cluster.name
        index = (END - timedelta(days=1) - fleet.start.date()).days
        last = days[END - timedelta(days=1)]
        expected = Decimal(str(cluster.compute[index] + cluster.storage[index]))
        assert abs(last.amount - expected) < TOLERANCE
        assert set(last.breakdown) == {"compute", "storage"}
        assert last.currency == "USD"
        assert last.source == "palette"
        assert last.project_uid == cluster.project.uid
        assert last.cloud == cluster.cloud_type
    assert report.inserted == len(facts) + _namespace_fact_count(store)
    assert report.window_end == END - timedelta(days=1)


def _namespace_fact_count(store):
    with store.transaction() as session:
        return session.scalar(
            select(func.count()).select_from(CostFact).where(CostFact.grain == "namespace")
        )


def test_ingest_stores_every_namespace_day(store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)

    _ingest(store, sim, make_client)

    with store.transaction() as session:
        rows = session.execute(
            select(
                CostFact.cluster_uid, CostFact.namespace, CostFact.day, CostFact.breakdown
            ).where(CostFact.grain == "namespace")
        ).all()
    stored = {(uid, namespace, day) for uid, namespace, day, _ in rows}
    expected = {
        (cluster.uid, namespace.name, day)
        for cluster in sim.state.fleet.clusters
        for namespace in cluster.namespaces
        for day in _expected_days(sim, cluster)
    }
    assert stored == expected
    assert all(set(breakdown) == {"cpu", "memory", "storage"} for *_, breakdown in rows)


def test_ingest_stores_fleet_metadata(store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)

    _ingest(store, sim, make_client)

    fleet = sim.state.fleet
    with store.transaction() as session:
        clusters = {row.uid: row for row in session.scalars(select(Cluster))}
        namespaces = {
            (row.cluster_uid, row.name): row for row in session.scalars(select(Namespace))
        }
        projects = {row.uid: row.name for row in session.scalars(select(Project))}

    assert projects == {project.uid: project.name for project in fleet.projects}
    assert set(clusters) == {cluster.uid for cluster in fleet.clusters}
    for cluster in fleet.clusters:
        row = clusters[cluster.uid]
        assert row.name == cluster.name
        assert row.labels == dict(cluster.labels)
        assert row.cloud == cluster.cloud_type
        assert row.cloud_config_uid == cluster.cloud_config_uid
        assert row.profiles == [profile.name for profile in cluster.profiles]
        assert row.project_name == cluster.project.name
        assert row.created_at == cluster.created_at
        for namespace in cluster.namespaces:
            labels = namespaces[(cluster.uid, namespace.name)].labels
            assert dict(namespace.labels).items() <= labels.items()


def test_reingest_changes_nothing(store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)
    first, _ = _ingest(store, sim, make_client)

    second, _ = _ingest(store, sim, make_client, since=first.window_start)

    assert first.inserted > 0
    assert second.inserted == 0
    assert second.updated == 0
    assert second.unchanged == first.inserted
    with store.transaction() as session:
        assert _count(session, CostFact) == first.inserted
        assert _count(session, IngestBatch) == 2


def test_next_run_overlaps_two_days(store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)
    first, _ = _ingest(store, sim, make_client)

    second, _ = _ingest(store, sim, make_client)

    assert first.window_start == END - timedelta(days=180)
    assert second.window_start == END - timedelta(days=2)
    assert second.inserted == 0
    assert second.updated == 0
    facts_per_day = len(sim.state.fleet.clusters) + sum(
        len(cluster.namespaces) for cluster in sim.state.fleet.clusters
    )
    assert second.unchanged == 2 * facts_per_day


def test_partial_current_day_not_stored(sqlite_store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)

    report, _ = _ingest(sqlite_store, sim, make_client, since=END - timedelta(days=3))

    with sqlite_store.transaction() as session:
        days = set(session.scalars(select(CostFact.day).distinct()))
    assert days == {END - timedelta(days=offset) for offset in (1, 2, 3)}
    assert report.window_start == END - timedelta(days=3)


def test_fault_mid_ingest_writes_nothing(store, start_simulator, make_client):
    sim = _fast_sim(start_simulator, fault_rate=0.2, fault_statuses=(500,), seed=3)
    settings = palette_settings(sim, max_retries=0)
    client, transport = make_client(settings)

    with pytest.raises(PaletteApiError):
        ingest_palette(store, settings, as_of=AS_OF, client=client)

    assert transport.statuses().count(200) >= 3, "the fault came too early to be mid-ingest"
    with store.transaction() as session:
        assert _count(session, CostFact) == 0
        assert _count(session, Cluster) == 0
        assert _count(session, Namespace) == 0
        assert _count(session, IngestBatch) == 0


def test_server_stop_writes_nothing(sqlite_store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)
    settings = palette_settings(sim, max_retries=2)
    client, transport = make_client(settings)
    server_url = sim.url

    def stop_after_first_cluster(description, completed, total):
        if description.startswith("Fetched cluster"):
            sim.stop()

    with pytest.raises(PaletteApiError) as raised:
        ingest_palette(
            sqlite_store, settings, as_of=AS_OF, client=client, progress=stop_after_first_cluster
        )

    assert server_url in str(raised.value)
    # Projects, cluster search, cluster costs and the first cluster's namespaces were read.
    assert transport.statuses().count(200) >= 4
    with sqlite_store.transaction() as session:
        assert _count(session, CostFact) == 0
        assert _count(session, Cluster) == 0
        assert _count(session, IngestBatch) == 0


def test_progress_counts_to_total(sqlite_store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)
    calls = []

    _ingest(sqlite_store, sim, make_client, progress=lambda *call: calls.append(call))

    completed = [call[1] for call in calls]
    assert completed == list(range(1, len(calls) + 1))
    assert calls[-1][1] == calls[-1][2]
    cluster_steps = [call for call in calls if call[0].startswith("Fetched cluster")]
    assert len(cluster_steps) == len(sim.state.fleet.clusters)


def test_ingest_with_default_client(sqlite_store, start_simulator):
    sim = start_simulator(cluster_count=9, history_days=5)
    settings = palette_settings(sim, max_retries=0)

    report = ingest_palette(sqlite_store, settings, as_of=AS_OF)

    assert report.inserted > 0
    assert report.warnings == ()
    with sqlite_store.transaction() as session:
        batch = session.get(IngestBatch, report.batch_id)
    assert batch is not None
    assert batch.facts_inserted == report.inserted
    assert batch.rows_read == report.rows_read
    assert batch.origin == sim.url


def test_empty_window_refreshes_metadata_only(sqlite_store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)

    report, transport = _ingest(sqlite_store, sim, make_client, since=END)

    assert report.inserted == 0
    assert report.window_start is None
    assert report.window_end is None
    assert not any(item.path.endswith("/cost") for item in transport.exchanges)
    with sqlite_store.transaction() as session:
        assert _count(session, CostFact) == 0
        assert _count(session, Cluster) == len(sim.state.fleet.clusters)
        assert _count(session, IngestBatch) == 1


def test_namespace_of_other_cluster_skipped(sqlite_store, start_simulator, make_client):
    sim = _fast_sim(start_simulator)
    target: list[tuple[str, str]] = []
    rewritten: list[int] = []

    def claim_other_cluster(request, response, content):
        if not request.url.path.endswith("/resources/cost"):
            return content
        body = json.loads(content)
        if not target:
            first = body["resources"][0]
            owner = next(r["uid"] for r in first["associatedResources"] if r["kind"] == "spectrocluster")
            target.append((owner, first["entity"]["name"]))
        for series in body["resources"]:
            owners = {r["uid"] for r in series["associatedResources"]}
            if (next(iter(owners), None), series["entity"]["name"]) == target[0]:
                series["associatedResources"] = [{"kind": "spectrocluster", "uid": "elsewhere"}]
                rewritten.append(len(json.loads(request.content)["filter"]["clusters"]))
        return json.dumps(body).encode()

    settings = palette_settings(sim)
    client, _ = make_client(settings, rewrite=claim_other_cluster)
    report = ingest_palette(sqlite_store, settings, as_of=AS_OF, client=client)

    # The batched call cannot attribute the series, so that batch is fetched one cluster a call.
    assert rewritten[0] > 1
    assert rewritten[-1] == 1
    assert any("belongs to elsewhere" in warning for warning in report.warnings)
    cluster_uid, namespace = target[0]
    with sqlite_store.transaction() as session:
        namespaces = set(
            session.scalars(
                select(CostFact.namespace).where(
                    CostFact.grain == "namespace", CostFact.cluster_uid == cluster_uid
                )
            )
        )
    assert namespace not in namespaces
    assert namespaces, "the other namespaces of that cluster are still stored"
