"""Usage queries per container and per workload: CPU, memory, requests, OOM kills and egress.

cAdvisor and kube-state-metrics report per pod. Each query reads per-pod values and then joins
the pods of one workload (``workloads.OwnerIndex``), so a rollout that replaces every pod keeps
the workload's history whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from costwarden.domain.usage import (
    ContainerCpu,
    ContainerKey,
    ContainerMemory,
    ContainerResources,
    NetworkEgress,
    OomKills,
    UsageResult,
    WorkloadKey,
)
from costwarden.sources.prometheus import metrics, promql
from costwarden.sources.prometheus.batching import Batch
from costwarden.sources.prometheus.client import Sample
from costwarden.sources.prometheus.engine import (
    BuildExpr,
    QueryEngine,
    Scope,
    Window,
    gather,
    result,
    split_by_history,
    template,
)
from costwarden.sources.prometheus.workloads import OwnerIndex

DAY = timedelta(days=1)


@dataclass
class _Pods:
    """Per-pod values of one container (or workload), and its oldest sample time."""

    values: dict[str, float] = field(default_factory=dict)
    first_seen: float | None = None

    def see(self, seen: float) -> None:
        self.first_seen = seen if self.first_seen is None else min(self.first_seen, seen)


def _container_key(engine: QueryEngine, owners: OwnerIndex, sample: Sample) -> ContainerKey:
    cluster, namespace, pod = engine.pod_labels(sample)
    workload = owners.workload(cluster, namespace, pod)
    return ContainerKey(workload, sample.labels.get("container", ""))


def _by_container(
    engine: QueryEngine, owners: OwnerIndex, values: Iterable[Sample], seen: Iterable[Sample]
) -> dict[ContainerKey, _Pods]:
    grouped: dict[ContainerKey, _Pods] = defaultdict(_Pods)
    for sample in values:
        grouped[_container_key(engine, owners, sample)].values[sample.labels.get("pod", "")] = (
            sample.value
        )
    for sample in seen:
        key = _container_key(engine, owners, sample)
        if key in grouped:
            grouped[key].see(sample.value)
    return grouped


async def _containers_first_seen(
    engine: QueryEngine, batches: list[Batch], seen: BuildExpr, window: Window, scope: Scope
) -> list[Sample]:
    """Return when each container's cAdvisor series start, reading them once per window.

    cAdvisor writes a container's CPU and memory series in the same scrape, so the CPU and
    memory queries share the first-seen times of whichever of them runs first.
    """
    key = ("containers", window, scope)
    cached = engine.memo.get(key)
    if cached is None:
        cached = await engine.run(batches, seen, window.end)
        engine.remember(key, window, cached)
    return cached


def _first_seen(grouped: dict[ContainerKey, _Pods]) -> dict[ContainerKey, float]:
    return {key: pods.first_seen for key, pods in grouped.items() if pods.first_seen is not None}


async def cpu_usage(
    engine: QueryEngine, window: Window, scope: Scope, quantile: float, min_history: timedelta
) -> UsageResult[ContainerCpu]:
    """Return each container's CPU usage quantile (see ``AsyncPrometheusSource.cpu_usage``)."""
    metric = metrics.CONTAINER_CPU_USAGE_SECONDS
    by = f"{engine.cluster}, namespace, pod, container"
    batches = await engine.plan(metric, metrics.REAL_CONTAINERS, window, scope)

    def usage(matchers: str) -> str:
        selector = promql.selector(metric, metrics.REAL_CONTAINERS, matchers)
        inner = f"sum by ({by}) (rate({selector}[{engine.rate_window}]))"
        return f"quantile_over_time({quantile:g}, ({inner})[{window.range}:{engine.step}])"

    def seen(matchers: str) -> str:
        selector = promql.selector(metric, metrics.REAL_CONTAINERS, matchers)
        return engine.first_seen_expr(selector, by, window)

    values, first, owners = await gather(
        engine.run(batches, usage, window.end),
        _containers_first_seen(engine, batches, seen, window, scope),
        engine.owners(batches, window),
    )
    grouped = _by_container(engine, owners, values, first)
    found = {
        key: ContainerCpu(key, quantile, max(pods.values.values()), len(pods.values))
        for key, pods in grouped.items()
    }
    items, short = split_by_history(found, _first_seen(grouped), window, min_history)
    return result(items, short, window, min_history, [template(usage), template(seen)])


async def memory_peak(
    engine: QueryEngine, window: Window, scope: Scope, min_history: timedelta
) -> UsageResult[ContainerMemory]:
    """Return each container's peak working set (see ``AsyncPrometheusSource.memory_peak``)."""
    metric = metrics.CONTAINER_MEMORY_WORKING_SET_BYTES
    by = f"{engine.cluster}, namespace, pod, container"
    batches = await engine.plan(metric, metrics.REAL_CONTAINERS, window, scope)

    def peak(matchers: str) -> str:
        selector = promql.selector(metric, metrics.REAL_CONTAINERS, matchers)
        return f"max by ({by}) (max_over_time({selector}[{window.range}]))"

    def seen(matchers: str) -> str:
        selector = promql.selector(metric, metrics.REAL_CONTAINERS, matchers)
        return engine.first_seen_expr(selector, by, window)

    values, first, owners = await gather(
        engine.run(batches, peak, window.end),
        _containers_first_seen(engine, batches, seen, window, scope),
        engine.owners(batches, window),
    )
    grouped = _by_container(engine, owners, values, first)
    found = {
        key: ContainerMemory(key, max(pods.values.values()), len(pods.values))
        for key, pods in grouped.items()
    }
    items, short = split_by_history(found, _first_seen(grouped), window, min_history)
    return result(items, short, window, min_history, [template(peak), template(seen)])


async def resources(
    engine: QueryEngine, window: Window, scope: Scope
) -> UsageResult[ContainerResources]:
    """Return each container's requests and limits (see ``AsyncPrometheusSource.resources``)."""
    by = f"{engine.cluster}, namespace, pod, container, resource"
    resource_matcher = promql.one_of(
        "resource", [metrics.RESOURCE_CPU, metrics.RESOURCE_MEMORY, metrics.RESOURCE_GPU]
    )
    batches = await engine.plan(
        metrics.KUBE_POD_CONTAINER_RESOURCE_REQUESTS, resource_matcher, window, scope
    )

    def builders(metric: str) -> tuple[BuildExpr, BuildExpr]:
        def now(matchers: str) -> str:
            return f"max by ({by}) ({promql.selector(metric, resource_matcher, matchers)})"

        def last(matchers: str) -> str:
            selector = promql.selector(metric, resource_matcher, matchers)
            return f"max by ({by}) (last_over_time({selector}[{window.range}]))"

        return now, last

    request_now, request_last = builders(metrics.KUBE_POD_CONTAINER_RESOURCE_REQUESTS)
    limit_now, limit_last = builders(metrics.KUBE_POD_CONTAINER_RESOURCE_LIMITS)
    found = await gather(
        *(
            engine.run(batches, build, window.end)
            for build in (request_now, request_last, limit_now, limit_last)
        ),
        engine.owners(batches, window),
    )
    owners: OwnerIndex = found[-1]
    requests = _current_or_last(engine, owners, found[0], found[1])
    limits = _current_or_last(engine, owners, found[2], found[3])

    items = [
        _container_resources(key, requests.get(key, {}), limits.get(key, {}))
        for key in sorted(set(requests) | set(limits))
    ]
    queries = [template(build) for build in (request_now, request_last, limit_now, limit_last)]
    return result(items, [], window, timedelta(0), queries)


def _container_resources(
    key: ContainerKey, request: dict[str, float], limit: dict[str, float]
) -> ContainerResources:
    pods = request.get("pods", 0.0) or limit.get("pods", 0.0)
    return ContainerResources(
        key,
        cpu_request_cores=request.get(metrics.RESOURCE_CPU),
        cpu_limit_cores=limit.get(metrics.RESOURCE_CPU),
        memory_request_bytes=request.get(metrics.RESOURCE_MEMORY),
        memory_limit_bytes=limit.get(metrics.RESOURCE_MEMORY),
        gpu_request=request.get(metrics.RESOURCE_GPU),
        pods=int(pods),
    )


def _current_or_last(
    engine: QueryEngine, owners: OwnerIndex, now: list[Sample], last: list[Sample]
) -> dict[ContainerKey, dict[str, float]]:
    """Per container and resource: the largest value of the running pods, else of any pod.

    The ``pods`` entry counts the pods the chosen values come from.
    """
    current = _max_by_resource(engine, owners, now)
    for key, values in _max_by_resource(engine, owners, last).items():
        current.setdefault(key, values)
    return current


def _max_by_resource(
    engine: QueryEngine, owners: OwnerIndex, samples: list[Sample]
) -> dict[ContainerKey, dict[str, float]]:
    values: dict[ContainerKey, dict[str, float]] = defaultdict(dict)
    pods: dict[ContainerKey, set[str]] = defaultdict(set)
    for sample in samples:
        key = _container_key(engine, owners, sample)
        resource = sample.labels.get("resource", "")
        values[key][resource] = max(values[key].get(resource, sample.value), sample.value)
        pods[key].add(sample.labels.get("pod", ""))
    for key, names in pods.items():
        values[key]["pods"] = float(len(names))
    return values


async def oom_kills(engine: QueryEngine, window: Window, scope: Scope) -> UsageResult[OomKills]:
    """Return the containers OOM-killed in the window (see ``AsyncPrometheusSource.oom_kills``)."""
    by = f"{engine.cluster}, namespace, pod, container"
    batches = await engine.plan(metrics.KUBE_POD_CONTAINER_RESTARTS, "", window, scope)

    def events(matchers: str) -> str:
        selector = promql.selector(metrics.CONTAINER_OOM_EVENTS, metrics.REAL_CONTAINERS, matchers)
        return f"sum by ({by}) (increase({selector}[{window.range}]))"

    def restarts(matchers: str) -> str:
        selector = promql.selector(metrics.KUBE_POD_CONTAINER_RESTARTS, matchers)
        return f"max by ({by}) (increase({selector}[{window.range}]))"

    def last_oom(matchers: str) -> str:
        selector = promql.selector(
            metrics.KUBE_POD_CONTAINER_LAST_TERMINATED_REASON, 'reason="OOMKilled"', matchers
        )
        return f"max by ({by}) (max_over_time({selector}[{window.range}]))"

    found = await gather(
        *(engine.run(batches, build, window.end) for build in (events, restarts, last_oom)),
        engine.owners(batches, window),
    )
    owners: OwnerIndex = found[-1]
    totals: dict[ContainerKey, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for position in range(3):
        for sample in found[position]:
            key = _container_key(engine, owners, sample)
            totals[key][position] += sample.value

    items = [
        OomKills(key, round(event_count), round(restart_count), oom_flag > 0)
        for key, (event_count, restart_count, oom_flag) in sorted(totals.items())
        if round(event_count) > 0 or oom_flag > 0
    ]
    queries = [template(build) for build in (events, restarts, last_oom)]
    return result(items, [], window, timedelta(0), queries)


async def network_egress(
    engine: QueryEngine, window: Window, scope: Scope, min_history: timedelta
) -> UsageResult[NetworkEgress]:
    """Return each workload's bytes sent (see ``AsyncPrometheusSource.network_egress``)."""
    metric = metrics.CONTAINER_NETWORK_TRANSMIT_BYTES
    base = 'interface!="lo"'
    pod_by = f"{engine.cluster}, namespace, pod"
    batches = await engine.plan(metric, base, window, scope)

    def sent(matchers: str) -> str:
        # cAdvisor may repeat a pod's network counters on several container label values.
        selector = promql.selector(metric, base, matchers)
        per_interface = f"max by ({pod_by}, interface) (increase({selector}[{window.range}]))"
        return f"sum by ({pod_by}) ({per_interface})"

    def seen(matchers: str) -> str:
        return engine.first_seen_expr(promql.selector(metric, base, matchers), pod_by, window)

    values, first, owners = await gather(
        engine.run(batches, sent, window.end),
        engine.run(batches, seen, window.end),
        engine.owners(batches, window),
    )
    grouped: dict[WorkloadKey, _Pods] = defaultdict(_Pods)
    for sample in values:
        grouped[owners.workload(*engine.pod_labels(sample))].values[sample.labels["pod"]] = (
            sample.value
        )
    for sample in first:
        key = owners.workload(*engine.pod_labels(sample))
        if key in grouped:
            grouped[key].see(sample.value)

    found = {key: _egress(key, pods, window) for key, pods in grouped.items()}
    first_seen = {key: pods.first_seen for key, pods in grouped.items() if pods.first_seen}
    items, short = split_by_history(found, first_seen, window, min_history)
    return result(items, short, window, min_history, [template(sent), template(seen)])


def _egress(key: WorkloadKey, pods: _Pods, window: Window) -> NetworkEgress:
    """Sum the pods' bytes, and divide by the days from the oldest sample to the window's end."""
    start = promql.from_timestamp(pods.first_seen) if pods.first_seen else window.start
    covered = window.end - max(start, window.start)
    total = sum(pods.values.values())
    per_day = total / (covered / DAY) if covered > timedelta(0) else 0.0
    return NetworkEgress(key, total, per_day, len(pods.values))
