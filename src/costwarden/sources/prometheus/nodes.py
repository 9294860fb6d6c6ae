"""Usage queries per node: shape and labels, CPU and memory use, GPU use and GPU node tenants."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from costwarden.domain.usage import (
    GpuDeviceUsage,
    GpuKey,
    GpuNodeWorkloads,
    NodeInfo,
    NodeKey,
    NodeUsage,
    UsageResult,
    WorkloadKey,
)
from costwarden.sources.prometheus import metrics, promql
from costwarden.sources.prometheus.batching import Batch, pack_batches
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

PODS_PER_NODE = 110
"""The kubelet's default --max-pods, the estimate of pods a node ran in a window."""

ALLOCATABLE = promql.one_of(
    "resource", [metrics.RESOURCE_CPU, metrics.RESOURCE_MEMORY, metrics.RESOURCE_GPU]
)


async def node_info(engine: QueryEngine, window: Window, scope: Scope) -> UsageResult[NodeInfo]:
    """Return each node's labels and allocatable (see ``AsyncPrometheusSource.node_info``)."""
    batches = await engine.plan(metrics.KUBE_NODE_LABELS, "", window, scope, split_label="node")
    by = f"{engine.cluster}, node, resource"

    def labels(matchers: str) -> str:
        selector = promql.selector(metrics.KUBE_NODE_LABELS, matchers)
        return f"last_over_time({selector}[{window.range}])"

    def allocatable(matchers: str) -> str:
        selector = promql.selector(metrics.KUBE_NODE_STATUS_ALLOCATABLE, ALLOCATABLE, matchers)
        return f"max by ({by}) (last_over_time({selector}[{window.range}]))"

    label_sets, capacities = await gather(
        engine.run(batches, labels, window.end), engine.run(batches, allocatable, window.end)
    )
    items = _node_infos(engine, label_sets, capacities)
    return result(
        sorted(items.values(), key=lambda info: info.node),
        [],
        window,
        timedelta(0),
        [template(labels), template(allocatable)],
    )


def _node_infos(
    engine: QueryEngine, label_sets: list[Sample], capacities: list[Sample]
) -> dict[NodeKey, NodeInfo]:
    allocatable: dict[NodeKey, dict[str, float]] = defaultdict(dict)
    for sample in capacities:
        key = NodeKey(sample.labels.get(engine.cluster, ""), sample.labels.get("node", ""))
        allocatable[key][sample.labels.get("resource", "")] = sample.value

    infos = {}
    for sample in label_sets:
        labels = sample.labels
        key = NodeKey(labels.get(engine.cluster, ""), labels.get("node", ""))
        capacity = allocatable.get(key, {})
        infos[key] = NodeInfo(
            key,
            instance_type=_first_label(labels, metrics.INSTANCE_TYPE_LABELS),
            node_pool=_first_label(labels, metrics.NODE_POOL_LABELS),
            capacity_type=capacity_type(labels),
            zone=_first_label(labels, metrics.ZONE_LABELS),
            gpu_model=_first_label(labels, metrics.GPU_MODEL_LABELS),
            cpu_allocatable_cores=capacity.get(metrics.RESOURCE_CPU),
            memory_allocatable_bytes=capacity.get(metrics.RESOURCE_MEMORY),
            gpu_allocatable=capacity.get(metrics.RESOURCE_GPU),
        )
    return infos


def _first_label(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if labels.get(name):
            return labels[name]
    return None


def capacity_type(labels: dict[str, str]) -> str | None:
    """Return ``spot`` or ``on-demand`` from the first capacity label with a known value."""
    for name, meanings in metrics.CAPACITY_TYPE_LABELS.items():
        meaning = meanings.get(labels.get(name, ""))
        if meaning is not None:
            return meaning
    return None


async def node_usage(
    engine: QueryEngine, window: Window, scope: Scope, quantile: float, min_history: timedelta
) -> UsageResult[NodeUsage]:
    """Return each node's CPU and memory use (see ``AsyncPrometheusSource.node_usage``)."""
    node_label = engine.settings.node_exporter_node_label
    batches = await engine.plan(
        metrics.NODE_MEMORY_TOTAL_BYTES, "", window, scope, split_label=node_label
    )
    builders = _node_usage_builders(engine, window, quantile)
    found = await gather(
        *(engine.run(batches, build, window.end) for build in builders),
        node_info(engine, window, scope),
    )
    infos = {info.node: info for info in found[-1].items}

    def node_key(sample: Sample) -> NodeKey:
        return NodeKey(sample.labels.get(engine.cluster, ""), sample.labels.get(node_label, ""))

    columns = [{node_key(sample): sample.value for sample in found[index]} for index in range(5)]
    nan = float("nan")
    usage = {
        key: NodeUsage(
            key,
            infos.get(key),
            cpu_mean_cores=cpu_mean,
            cpu_quantile_cores=columns[1].get(key, nan),
            quantile=quantile,
            memory_mean_bytes=columns[2].get(key, nan),
            memory_max_bytes=columns[3].get(key, nan),
        )
        for key, cpu_mean in columns[0].items()
    }
    items, short = split_by_history(usage, columns[4], window, min_history)
    return result(items, short, window, min_history, [template(build) for build in builders])


def _node_usage_builders(engine: QueryEngine, window: Window, quantile: float) -> list[BuildExpr]:
    """Return the CPU mean and quantile, memory mean and peak, and first-seen expressions."""
    by = f"{engine.cluster}, {engine.settings.node_exporter_node_label}"

    def cpu_busy(matchers: str) -> str:
        selector = promql.selector(metrics.NODE_CPU_SECONDS, 'mode!="idle"', matchers)
        return f"sum by ({by}) (rate({selector}[{engine.rate_window}]))"

    def memory_used(matchers: str) -> str:
        total = promql.selector(metrics.NODE_MEMORY_TOTAL_BYTES, matchers)
        available = promql.selector(metrics.NODE_MEMORY_AVAILABLE_BYTES, matchers)
        return f"max by ({by}) ({total}) - max by ({by}) ({available})"

    def over_window(function: str, inner: BuildExpr, *arguments: str) -> BuildExpr:
        prefix = "".join(f"{argument}, " for argument in arguments)
        return lambda matchers: (
            f"{function}({prefix}({inner(matchers)})[{window.range}:{engine.step}])"
        )

    def seen(matchers: str) -> str:
        selector = promql.selector(metrics.NODE_MEMORY_TOTAL_BYTES, matchers)
        return engine.first_seen_expr(selector, by, window)

    return [
        over_window("avg_over_time", cpu_busy),
        over_window("quantile_over_time", cpu_busy, f"{quantile:g}"),
        over_window("avg_over_time", memory_used),
        over_window("max_over_time", memory_used),
        seen,
    ]


async def gpu_utilisation(
    engine: QueryEngine, window: Window, scope: Scope, min_history: timedelta
) -> UsageResult[GpuDeviceUsage]:
    """Return each GPU's utilisation (see ``AsyncPrometheusSource.gpu_utilisation``)."""
    node_label = engine.settings.dcgm_node_label
    by = f"{engine.cluster}, {node_label}, gpu, UUID, modelName"
    batches = await engine.plan(metrics.DCGM_GPU_UTIL, "", window, scope, split_label=node_label)

    # The DCGM exporter starts a new series when a GPU moves to another pod, so the series of
    # one GPU are merged at each step before the window statistic.
    def merged(matchers: str) -> str:
        return f"max by ({by}) ({promql.selector(metrics.DCGM_GPU_UTIL, matchers)})"

    def mean(matchers: str) -> str:
        return f"avg_over_time(({merged(matchers)})[{window.range}:{engine.step}])"

    def peak(matchers: str) -> str:
        return f"max_over_time(({merged(matchers)})[{window.range}:{engine.step}])"

    def seen(matchers: str) -> str:
        selector = promql.selector(metrics.DCGM_GPU_UTIL, matchers)
        return engine.first_seen_expr(selector, by, window)

    means, peaks, first = await gather(
        *(engine.run(batches, build, window.end) for build in (mean, peak, seen))
    )

    def device(sample: Sample) -> GpuKey:
        labels = sample.labels
        node = NodeKey(labels.get(engine.cluster, ""), labels.get(node_label, ""))
        return GpuKey(node, labels.get("gpu", ""), labels.get("UUID", ""))

    peak_of = {device(sample): sample.value for sample in peaks}
    found = {
        device(sample): GpuDeviceUsage(
            device(sample),
            model=sample.labels.get("modelName", ""),
            mean_percent=sample.value,
            max_percent=peak_of.get(device(sample), sample.value),
        )
        for sample in means
    }
    first_seen = {device(sample): sample.value for sample in first}
    items, short = split_by_history(found, first_seen, window, min_history)
    return result(items, short, window, min_history, [template(mean), template(peak)])


async def gpu_node_workloads(
    engine: QueryEngine, window: Window, scope: Scope
) -> UsageResult[GpuNodeWorkloads]:
    """Return GPU nodes and the workloads on them (see ``AsyncPrometheusSource``)."""
    gpu = promql.equals("resource", metrics.RESOURCE_GPU)
    batches = await engine.plan(
        metrics.KUBE_NODE_STATUS_ALLOCATABLE, gpu, window, scope, split_label="node"
    )

    def gpus(matchers: str) -> str:
        selector = promql.selector(metrics.KUBE_NODE_STATUS_ALLOCATABLE, gpu, matchers)
        return f"max by ({engine.cluster}, node) (last_over_time({selector}[{window.range}])) > 0"

    def requests(matchers: str) -> str:
        selector = promql.selector(metrics.KUBE_POD_CONTAINER_RESOURCE_REQUESTS, gpu, matchers)
        by = f"{engine.cluster}, namespace, pod"
        return f"sum by ({by}) (max_over_time({selector}[{window.range}])) > 0"

    nodes = await engine.run(batches, gpus, window.end)
    if not nodes:
        return result([], [], window, timedelta(0), [template(gpus)])

    node_batches = _node_batches(engine, nodes)
    pod_sets, requesting = await gather(
        engine.series(node_batches, [metrics.KUBE_POD_INFO], window),
        engine.run(node_batches, requests, window.end),
    )
    owners = await engine.owners(_namespace_batches(engine, pod_sets), window)
    with_gpu = {engine.pod_labels(sample) for sample in requesting}
    tenants = _tenants(engine, owners, pod_sets, with_gpu)

    items = []
    for sample in nodes:
        key = NodeKey(sample.labels.get(engine.cluster, ""), sample.labels.get("node", ""))
        gpu_workloads, other_workloads = tenants.get(key, (set(), set()))
        items.append(
            GpuNodeWorkloads(
                key, sample.value, tuple(sorted(gpu_workloads)), tuple(sorted(other_workloads))
            )
        )
    items.sort(key=lambda item: item.node)
    return result(items, [], window, timedelta(0), [template(gpus), template(requests)])


def _node_batches(engine: QueryEngine, nodes: list[Sample]) -> list[Batch]:
    """Batch GPU nodes by name, counting ``PODS_PER_NODE`` ``kube_pod_info`` series on each."""
    counts = {
        (sample.labels.get(engine.cluster, ""), sample.labels.get("node", "")): PODS_PER_NODE
        for sample in nodes
    }
    return pack_batches(
        counts,
        cluster_label=engine.cluster,
        label="node",
        max_series=engine.settings.max_series_per_query,
        whole_clusters=False,
    )


def _namespace_batches(engine: QueryEngine, pod_sets: list[dict[str, str]]) -> list[Batch]:
    """Batch the namespaces of the pods found, counting one owner series per pod.

    The counts cover only these namespaces, so every batch names its namespaces.
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for labels in pod_sets:
        counts[(labels.get(engine.cluster, ""), labels.get("namespace", ""))] += 1
    return pack_batches(
        counts,
        cluster_label=engine.cluster,
        label="namespace",
        max_series=engine.settings.max_series_per_query,
        whole_clusters=False,
    )


def _tenants(
    engine: QueryEngine,
    owners: OwnerIndex,
    pod_sets: list[dict[str, str]],
    with_gpu: set[tuple[str, str, str]],
) -> dict[NodeKey, tuple[set[WorkloadKey], set[WorkloadKey]]]:
    """Map each node to the workloads of its pods that requested GPUs, and to the others."""
    tenants: dict[NodeKey, tuple[set[WorkloadKey], set[WorkloadKey]]] = defaultdict(
        lambda: (set(), set())
    )
    for labels in pod_sets:
        pod = (labels.get(engine.cluster, ""), labels.get("namespace", ""), labels.get("pod", ""))
        node = NodeKey(pod[0], labels.get("node", ""))
        tenants[node][0 if pod in with_gpu else 1].add(owners.workload(*pod))
    return tenants
