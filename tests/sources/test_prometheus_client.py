"""The Prometheus client against a real server: chunking, batching, POST bodies and errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import httpx
import prometheus_data as fleet
import pytest
from prometheus_fixtures import PrometheusServer
from prometheus_helpers import RecordingTransport, prometheus_settings

from costwarden.errors import PrometheusQueryError
from costwarden.sources.prometheus import PrometheusSource, promql
from costwarden.sources.prometheus.batching import points_in

MakeSource = Callable[..., tuple[PrometheusSource, RecordingTransport]]
MEMORY_TOTAL = 'sum(node_memory_MemTotal_bytes{cluster="prod-eks"})'


@pytest.fixture
def make_source(prometheus_server: PrometheusServer) -> Iterator[MakeSource]:
    """Build sources on the session's server whose requests a transport records."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> tuple[PrometheusSource, RecordingTransport]:
            transport = RecordingTransport()
            settings = prometheus_settings(prometheus_server.url, **overrides)
            source = stack.enter_context(PrometheusSource(settings, transport=transport))
            return source, transport

        yield make


def test_range_query_split_in_time(make_source: MakeSource) -> None:
    source, transport = make_source(max_points_per_query=500)
    step = timedelta(minutes=5)

    series = source.query_range(MEMORY_TOTAL, fleet.START, fleet.END, step)

    total_points = points_in(fleet.START.timestamp(), fleet.END.timestamp(), 300)
    requests = transport.to("/api/v1/query_range")
    assert len(requests) == math.ceil(total_points / 500)
    for request in requests:
        start, end = float(request.param("start")), float(request.param("end"))
        assert points_in(start, end, float(request.param("step"))) <= 500
    assert len(series) == 1
    assert len(series[0].timestamps) == total_points
    assert set(series[0].timestamps[1:] - series[0].timestamps[:-1]) == {300.0}


def test_range_chunks_equal_one_query(make_source: MakeSource) -> None:
    chunked, _ = make_source(max_points_per_query=333)
    whole, transport = make_source()
    step = timedelta(minutes=5)
    expr = 'sum by (node) (kube_node_status_allocatable{resource="cpu"})'

    pieces = chunked.query_range(expr, fleet.START, fleet.END, step)
    single = whole.query_range(expr, fleet.START, fleet.END, step)

    assert len(transport.to("/api/v1/query_range")) == 1
    assert len(pieces) == len(single) == len(fleet.NODES)
    by_node = {series.labels["node"]: series for series in single}
    for series in pieces:
        assert list(series.timestamps) == list(by_node[series.labels["node"]].timestamps)
        assert list(series.values) == list(by_node[series.labels["node"]].values)


def test_server_limit_never_reached(
    make_source: MakeSource, prometheus_server: PrometheusServer
) -> None:
    source, transport = make_source()
    step = timedelta(minutes=1)
    points = points_in(fleet.START.timestamp(), fleet.END.timestamp(), 60)
    assert points > 11_000

    direct = httpx.get(
        f"{prometheus_server.url}/api/v1/query_range",
        params={"query": MEMORY_TOTAL, "start": fleet.START.timestamp(),
                "end": fleet.END.timestamp(), "step": 60},
    )  # fmt: skip
    series = source.query_range(MEMORY_TOTAL, fleet.START, fleet.END, step)

    assert direct.status_code == 400
    assert "11,000 points" in direct.json()["error"]
    assert len(transport.to("/api/v1/query_range")) == 2
    assert len(series[0].timestamps) == points


def test_namespaces_batched_by_series(make_source: MakeSource) -> None:
    batched, transport = make_source(max_series_per_query=5)
    whole, _ = make_source()

    found = batched.cpu_usage(end=fleet.END)
    expected = whole.cpu_usage(end=fleet.END)

    quantile_requests = [
        request for request in transport.to("/api/v1/query")
        if request.param("query").startswith("quantile_over_time")
    ]  # fmt: skip
    # prod-eks: checkout (5 series) alone, then web, batch and data; dev-aks in one batch.
    assert len(quantile_requests) == 3
    for request in quantile_requests:
        assert request.results is not None
        assert request.results <= 5
    assert found.items == expected.items
    assert found.short_history == expected.short_history


def test_oversized_namespace_queried_alone(
    make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    source, transport = make_source(max_series_per_query=2)

    found = source.memory_peak(end=fleet.END, clusters=[fleet.PROD], namespaces=["checkout"])

    assert {item.container.workload.name for item in found.items} == {"api", "redis"}
    assert "querying it alone" in caplog.text
    peaks = [request for request in transport.to("/api/v1/query")
             if request.param("query").startswith("max by")]  # fmt: skip
    assert len(peaks) == 1


def test_long_selector_sent_as_post(make_source: MakeSource) -> None:
    source, transport = make_source()
    namespaces = [f"team-{index:03d}-sandbox" for index in range(300)] + ["checkout"]

    found = source.cpu_usage(end=fleet.END, namespaces=namespaces)

    methods = {request.method for request in transport.to("/api/v1/query")}
    assert "POST" in methods
    assert {item.container.workload.namespace for item in found.items} == {"checkout"}


def test_series_and_label_values(make_source: MakeSource) -> None:
    source, _ = make_source()

    namespaces = source.label_values(
        "namespace", ['kube_pod_info{cluster="prod-eks"}'], fleet.START, fleet.END
    )
    owners = source.series(['kube_replicaset_owner{owner_name="api"}'], fleet.START, fleet.END)

    assert namespaces == ["batch", "checkout", "data", "web"]
    assert {labels["replicaset"] for labels in owners} == {
        "api-6c8d7f9b4",
        "api-7d9f8b6c5",
        "api-55d4c3b2a1",
    }


def test_scalar_result_as_sample(make_source: MakeSource) -> None:
    source, _ = make_source()

    samples = source.query("scalar(count(kube_node_labels))", fleet.END)

    assert len(samples) == 1
    assert samples[0].labels == {}
    assert samples[0].value == len(fleet.NODES)
    assert samples[0].time == fleet.END.timestamp()


def test_parse_error_names_query(make_source: MakeSource) -> None:
    source, transport = make_source(max_retries=3)

    with pytest.raises(PrometheusQueryError) as raised:
        source.query("sum(rate(container_cpu_usage_seconds_total[5m]", fleet.END)

    error = raised.value
    assert error.status == 400
    assert error.error_type == "bad_data"
    assert error.query == "sum(rate(container_cpu_usage_seconds_total[5m]"
    assert "parse error" in str(error)
    assert "container_cpu_usage_seconds_total[5m]" in str(error)
    assert len(transport.exchanges) == 1, "a rejected query is not retried"


def test_execution_error_is_query_error(make_source: MakeSource) -> None:
    source, _ = make_source()

    with pytest.raises(PrometheusQueryError) as raised:
        source.query("kube_pod_info * on (cluster) kube_node_labels", fleet.END)

    assert raised.value.status == 422
    assert raised.value.error_type == "execution"
    assert "many-to-many" in str(raised.value)


def test_regex_values_matched_literally(make_source: MakeSource) -> None:
    source, _ = make_source()
    label = "label_node_kubernetes_io_instance_type"
    # Unescaped, the dots would match the underscores of Standard_D4s_v5.
    literal = promql.one_of(label, ["Standard.D4s.v5", "m5.xlarge"])
    wildcard = f'{label}=~"Standard.D4s.v5|m5.xlarge"'

    escaped = source.query(f"count(kube_node_labels{{{literal}}})", fleet.END)
    unescaped = source.query(f"count(kube_node_labels{{{wildcard}}})", fleet.END)

    assert escaped[0].value == 2
    assert unescaped[0].value == 4
