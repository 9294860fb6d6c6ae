"""Services of type LoadBalancer with their ready endpoints and the traffic their pods received.

kube-state-metrics describes Services, Endpoints and pod IPs, and cAdvisor counts the bytes each
pod received. A Service's selector is not exported to Prometheus, so the pods behind a Service
are found through its Endpoints object instead. A pod backs the Service when its IP was a ready
address of the Endpoints of the same name and namespace during the window.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from costwarden.recommend.queries import BatchedQueries, BuildExpr, template
from costwarden.sources.prometheus import PrometheusSource, promql
from costwarden.sources.prometheus.client import Sample

logger = logging.getLogger(__name__)

SERVICE_TYPE = "kube_service_spec_type"
SERVICE_INGRESS = "kube_service_status_load_balancer_ingress"
ENDPOINT_INFO = "kube_endpoint_info"
ENDPOINT_ADDRESS = "kube_endpoint_address"
ENDPOINT_ADDRESS_AVAILABLE = "kube_endpoint_address_available"
"""Ready address count of kube-state-metrics before 2.6, removed in later releases."""
ENDPOINT_METRICS = (ENDPOINT_INFO, ENDPOINT_ADDRESS, ENDPOINT_ADDRESS_AVAILABLE)
POD_INFO = "kube_pod_info"
POD_IPS = "kube_pod_ips"
RECEIVE_BYTES = "container_network_receive_bytes_total"

LOAD_BALANCER = 'type="LoadBalancer"'


@dataclass(frozen=True, slots=True)
class LoadBalancerService:
    """A Service of type LoadBalancer that existed at the window's end, and its traffic.

    ``endpoints_known`` is false when kube-state-metrics exported no Endpoints object of that
    name, so readiness cannot be judged. ``ready_ips`` are the ready addresses seen in the
    window, and ``ready_count_max`` is the largest ready address count of the older
    ``kube_endpoint_address_available`` metric (None without it). ``received_bytes`` is the
    sum over the backing pods of the bytes received on every interface but ``lo``, None when no
    backing pod has cAdvisor network data.
    """

    cluster: str
    namespace: str
    name: str
    first_seen: datetime
    ingress: tuple[str, ...]
    endpoints_known: bool
    ready_ips: tuple[str, ...]
    ready_count_max: float | None
    backing_pods: tuple[str, ...]
    received_bytes: float | None

    @property
    def resource(self) -> str:
        return f"service:{self.cluster}/{self.namespace}/{self.name}"

    @property
    def has_ready_endpoint(self) -> bool:
        return bool(self.ready_ips) or bool(self.ready_count_max)


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """The LoadBalancer Services of a window and the PromQL that found them."""

    items: tuple[LoadBalancerService, ...] = ()
    queries: tuple[str, ...] = ()


def load_load_balancers(
    source: PrometheusSource,
    end: datetime,
    window: timedelta,
    clusters: Sequence[str] | None = None,
) -> ServiceReport:
    """Read the LoadBalancer Services that exist at ``end`` and their traffic in the window."""
    queries = BatchedQueries(source, end, window, clusters)
    builders = _builders(queries)
    found = _run(queries, builders)
    if found is None:
        return ServiceReport()

    services = _services(queries, found["service:first_seen"], found["service:last_seen"])
    ingress = _group(queries, found["service:ingress"], "service", ("ip", "hostname"))
    ready = _group(queries, found["endpoint:ready"], "endpoint", ("ip",))
    known = {_key(queries, sample, "endpoint") for sample in found["endpoint:info"]}
    available = {_key(queries, s, "endpoint"): s.value for s in found["endpoint:available"]}
    known |= set(available)
    pods_by_ip = _pods_by_ip(queries, found["pod:info"], found["pod:ips"])
    received = {_key(queries, s, "pod"): s.value for s in found["pod:received"]}

    items = []
    for key, first_seen in sorted(services.items()):
        cluster, namespace, name = key
        ips = ready.get(key, ())
        pods = sorted({pod for ip in ips for pod in pods_by_ip.get((cluster, namespace, ip), ())})
        measured = [
            received[(cluster, namespace, pod)]
            for pod in pods
            if (cluster, namespace, pod) in received
        ]
        items.append(
            LoadBalancerService(
                cluster=cluster, namespace=namespace, name=name, first_seen=first_seen,
                ingress=ingress.get(key, ()), endpoints_known=key in known, ready_ips=ips,
                ready_count_max=available.get(key), backing_pods=tuple(pods),
                received_bytes=sum(measured) if measured else None,
            )
        )  # fmt: skip
    logger.info("read %d LoadBalancer services", len(items))
    return ServiceReport(tuple(items), tuple(template(build) for build in builders.values()))


def _run(queries: BatchedQueries, builders: dict[str, BuildExpr]) -> dict[str, list[Sample]] | None:
    """Run every builder on its batches, or return None when the window has no LoadBalancer."""
    service_batches = queries.plan(SERVICE_TYPE, base=LOAD_BALANCER)
    if not service_batches:
        return None

    # Endpoints and pods are read only in the namespaces that have a LoadBalancer Service, and
    # batched by their own series counts.
    namespaces = promql.one_of("namespace", {v for b in service_batches for v in b.values})
    endpoint_names = promql.one_of("__name__", ENDPOINT_METRICS)
    endpoint_batches = queries.plan("", base=promql.join(endpoint_names, namespaces))
    pod_names = promql.one_of("__name__", (POD_INFO, POD_IPS))
    pod_batches = queries.plan("", base=promql.join(pod_names, namespaces))

    batches = {"service": service_batches, "endpoint": endpoint_batches, "pod": pod_batches}
    return {
        name: queries.run(batches[name.split(":")[0]], build) for name, build in builders.items()
    }


def _builders(queries: BatchedQueries) -> dict[str, BuildExpr]:
    cluster = queries.cluster
    span = queries.range
    step = queries.step
    service_by = f"{cluster}, namespace, service"

    def service_time(function: str) -> BuildExpr:
        def build(matchers: str) -> str:
            selector = promql.selector(SERVICE_TYPE, LOAD_BALANCER, matchers)
            inner = f"{function}_over_time(timestamp({selector})[{span}:{step}])"
            return f"{function} by ({service_by}) ({inner})"

        return build

    def grouped(metric: str, by: str, base: str = "") -> BuildExpr:
        def build(matchers: str) -> str:
            selector = promql.selector(metric, base, matchers)
            return f"max by ({cluster}, namespace, {by}) (max_over_time({selector}[{span}]))"

        return build

    def received(matchers: str) -> str:
        # cAdvisor may repeat a pod's network counters on several container label values.
        selector = promql.selector(RECEIVE_BYTES, 'interface!="lo"', matchers)
        per_interface = (
            f"max by ({cluster}, namespace, pod, interface) (increase({selector}[{span}]))"
        )
        return f"sum by ({cluster}, namespace, pod) ({per_interface})"

    return {
        "service:first_seen": service_time("min"),
        "service:last_seen": service_time("max"),
        "service:ingress": grouped(SERVICE_INGRESS, "service, ip, hostname"),
        "endpoint:info": grouped(ENDPOINT_INFO, "endpoint"),
        "endpoint:ready": grouped(ENDPOINT_ADDRESS, "endpoint, ip", 'ready="true"'),
        "endpoint:available": grouped(ENDPOINT_ADDRESS_AVAILABLE, "endpoint"),
        "pod:info": grouped(POD_INFO, "pod, pod_ip", 'pod_ip!=""'),
        "pod:ips": grouped(POD_IPS, "pod, ip"),
        "pod:received": received,
    }


Key = tuple[str, str, str]


def _key(queries: BatchedQueries, sample: Sample, name_label: str) -> Key:
    labels = sample.labels
    return labels.get(queries.cluster, ""), labels.get("namespace", ""), labels.get(name_label, "")


def _services(
    queries: BatchedQueries, first: list[Sample], last: list[Sample]
) -> dict[Key, datetime]:
    """Return the first-seen time of every Service whose last sample is within a step of ``end``."""
    step = queries.source.settings.step_seconds
    current = {
        _key(queries, sample, "service")
        for sample in last
        if sample.value >= queries.end.timestamp() - 2 * step
    }
    return {
        key: promql.from_timestamp(sample.value)
        for sample in first
        if (key := _key(queries, sample, "service")) in current
    }


def _group(
    queries: BatchedQueries, samples: list[Sample], name_label: str, value_labels: tuple[str, ...]
) -> dict[Key, tuple[str, ...]]:
    grouped: dict[Key, set[str]] = defaultdict(set)
    for sample in samples:
        for label in value_labels:
            if sample.labels.get(label):
                grouped[_key(queries, sample, name_label)].add(sample.labels[label])
    return {key: tuple(sorted(values)) for key, values in grouped.items()}


def _pods_by_ip(
    queries: BatchedQueries, pod_info: list[Sample], pod_ips: list[Sample]
) -> dict[Key, set[str]]:
    """Map (cluster, namespace, IP) to the pods that had that IP in the window.

    An IP reused by several pods in the window maps to all of them.
    """
    found: dict[Key, set[str]] = defaultdict(set)
    for samples, label in ((pod_info, "pod_ip"), (pod_ips, "ip")):
        for sample in samples:
            cluster, namespace, pod = _key(queries, sample, "pod")
            found[(cluster, namespace, sample.labels.get(label, ""))].add(pod)
    return found
