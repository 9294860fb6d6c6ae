"""Time chunks, series batches, PromQL quoting and the Prometheus settings."""

from __future__ import annotations

import pytest

from costwarden.config import load_settings
from costwarden.errors import ConfigError
from costwarden.sources.prometheus import promql
from costwarden.sources.prometheus.batching import pack_batches, points_in, time_chunks


@pytest.mark.parametrize(
    ("start", "end", "step", "max_points"),
    [
        (0, 3000, 300, 11),  # exactly one chunk
        (0, 3300, 300, 11),  # one point more
        (0, 691_200, 300, 11_000),
        (0, 691_200, 60, 11_000),
        (100, 100, 60, 5),  # a single point
        (0, 1000, 300, 2),  # end off the step grid
        (0, 1000, 7, 1),
    ],
)
def test_time_chunks_cover_grid(start: float, end: float, step: float, max_points: int) -> None:
    chunks = time_chunks(start, end, step, max_points)

    evaluated = []
    for chunk_start, chunk_end in chunks:
        points = points_in(chunk_start, chunk_end, step)
        assert points <= max_points
        evaluated += [chunk_start + step * index for index in range(points)]
    whole = [start + step * index for index in range(points_in(start, end, step))]
    assert evaluated == whole
    assert len(chunks) == -(-len(whole) // max_points)


def test_time_chunks_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="step"):
        time_chunks(0, 10, 0, 5)
    with pytest.raises(ValueError, match="before start"):
        time_chunks(10, 0, 1, 5)


def test_batches_respect_series_limit() -> None:
    counts = {("a", "ns-1"): 40, ("a", "ns-2"): 30, ("a", "ns-3"): 30, ("a", "ns-4"): 5,
              ("b", "ns-1"): 10}  # fmt: skip

    batches = pack_batches(counts, cluster_label="cluster", label="namespace", max_series=70)

    assert all(batch.series <= 70 for batch in batches)
    assert {(batch.clusters[0], value) for batch in batches for value in batch.values} == set(
        counts
    )
    assert len([batch for batch in batches if batch.clusters == ("a",)]) == 2
    assert [batch.values for batch in batches if batch.clusters == ("b",)] == [("ns-1",)]
    first = batches[0]
    assert first.matchers == 'cluster="a",namespace=~"ns-1|ns-2"'
    assert batches[-1].matchers == 'cluster="b"'


def test_small_clusters_share_a_query() -> None:
    counts = {(f"c{n}", ns): 10 for n in range(5) for ns in ("web", "db")}
    counts[("big", "web")] = 150

    batches = pack_batches(counts, cluster_label="cluster", label="namespace", max_series=70)

    assert [batch.clusters for batch in batches] == [
        ("big",),
        ("c0", "c1", "c2"),
        ("c3", "c4"),
    ]
    assert [batch.series for batch in batches] == [150, 60, 40]
    assert batches[1].matchers == 'cluster=~"c0|c1|c2"'
    assert batches[1].values == ("db", "web")


def test_oversized_value_gets_own_batch(caplog: pytest.LogCaptureFixture) -> None:
    counts = {("", "huge"): 500, ("", "small"): 3}

    batches = pack_batches(counts, cluster_label="cluster", label="namespace", max_series=100)

    assert [batch.values for batch in batches] == [("huge",), ("small",)]
    assert batches[0].matchers == 'cluster="",namespace="huge"'
    assert "querying it alone" in caplog.text


def test_one_of_escapes_regex_and_quotes() -> None:
    matcher = promql.one_of("pod", ["a.b", 'c"d', "e\\f", "a.b"])

    assert matcher == 'pod=~"a\\\\.b|c\\"d|e\\\\\\\\f"'


def test_one_of_single_value_is_equality() -> None:
    assert promql.one_of("namespace", ["kube-system"]) == 'namespace="kube-system"'
    with pytest.raises(ValueError, match="no values"):
        promql.one_of("namespace", [])


def test_duration_whole_seconds() -> None:
    assert promql.duration(300) == "300s"
    assert promql.duration(0.2) == "1s"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTWARDEN_PROMETHEUS_URL", "https://prom.example.com/")
    monkeypatch.setenv("COSTWARDEN_PROMETHEUS_MAX_POINTS_PER_QUERY", "5000")
    monkeypatch.setenv("COSTWARDEN_PROMETHEUS_CLUSTER_LABEL", "k8s_cluster")

    settings = load_settings().prometheus

    assert settings.url == "https://prom.example.com"
    assert settings.max_points_per_query == 5000
    assert settings.cluster_label == "k8s_cluster"
    assert settings.step_seconds == 300
    assert settings.concurrency == 4


def test_settings_reject_over_server_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTWARDEN_PROMETHEUS_MAX_POINTS_PER_QUERY", "20000")

    with pytest.raises(ConfigError, match="COSTWARDEN_PROMETHEUS_MAX_POINTS_PER_QUERY"):
        load_settings()


def test_settings_reject_two_kinds_of_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTWARDEN_PROMETHEUS_BEARER_TOKEN", "token-value-123")
    monkeypatch.setenv("COSTWARDEN_PROMETHEUS_USERNAME", "user")
    monkeypatch.setenv("COSTWARDEN_PROMETHEUS_PASSWORD", "password-value-456")

    with pytest.raises(ConfigError) as raised:
        load_settings()

    assert "not both" in str(raised.value)
    assert "token-value-123" not in str(raised.value)
    assert "password-value-456" not in str(raised.value)


def test_settings_reject_bad_label(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTWARDEN_PROMETHEUS_CLUSTER_LABEL", "k8s-cluster")

    with pytest.raises(ConfigError, match="not a Prometheus label name"):
        load_settings()
