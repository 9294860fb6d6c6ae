"""Replica counts of Deployments and StatefulSets, and the bounds of the autoscalers on them."""

from __future__ import annotations

from datetime import timedelta

from costwarden.domain.usage import UsageResult, WorkloadKey, WorkloadReplicas
from costwarden.sources.prometheus import metrics, promql
from costwarden.sources.prometheus.client import Sample
from costwarden.sources.prometheus.engine import (
    BuildExpr,
    QueryEngine,
    Scope,
    Window,
    gather,
    result,
    template,
)

WORKLOAD_REPLICAS = (
    ("Deployment", metrics.KUBE_DEPLOYMENT_SPEC_REPLICAS, "deployment"),
    ("StatefulSet", metrics.KUBE_STATEFULSET_REPLICAS, "statefulset"),
)
"""Workload kind, the kube-state-metrics series of its desired replicas, and its name label."""

STATISTICS = ("last_over_time", "min_over_time", "max_over_time")


async def replicas(
    engine: QueryEngine, window: Window, scope: Scope
) -> UsageResult[WorkloadReplicas]:
    """Return desired replicas and HPA bounds (see ``AsyncPrometheusSource.replicas``)."""
    names = [metric for _, metric, _ in WORKLOAD_REPLICAS]
    batches = await engine.plan("", promql.one_of("__name__", names), window, scope)
    builders = [
        _statistic(engine, window, function, metric, label)
        for _, metric, label in WORKLOAD_REPLICAS
        for function in STATISTICS
    ]
    hpa_builders = [
        _last(engine, window, metric)
        for metric in (
            metrics.KUBE_HPA_INFO,
            metrics.KUBE_HPA_SPEC_MIN_REPLICAS,
            metrics.KUBE_HPA_SPEC_MAX_REPLICAS,
        )
    ]
    found = await gather(
        *(engine.run(batches, build, window.end) for build in builders + hpa_builders)
    )

    counts: dict[WorkloadKey, list[int]] = {}
    for position, (kind, _, label) in enumerate(WORKLOAD_REPLICAS):
        for offset in range(len(STATISTICS)):
            for sample in found[position * len(STATISTICS) + offset]:
                key = _workload(engine, sample, kind, sample.labels.get(label, ""))
                counts.setdefault(key, [0, 0, 0])[offset] = round(sample.value)

    autoscalers = _autoscalers(engine, *found[len(builders) :])
    items = []
    for key in sorted(counts):
        current, low, high = counts[key]
        name, hpa_min, hpa_max = autoscalers.get(key, (None, None, None))
        items.append(WorkloadReplicas(key, current, low, high, name, hpa_min, hpa_max))
    queries = [template(build) for build in builders + hpa_builders]
    return result(items, [], window, timedelta(0), queries)


def _statistic(
    engine: QueryEngine, window: Window, function: str, metric: str, label: str
) -> BuildExpr:
    by = f"{engine.cluster}, namespace, {label}"

    def build(matchers: str) -> str:
        return f"max by ({by}) ({function}({promql.selector(metric, matchers)}[{window.range}]))"

    return build


def _last(engine: QueryEngine, window: Window, metric: str) -> BuildExpr:
    def build(matchers: str) -> str:
        return f"last_over_time({promql.selector(metric, matchers)}[{window.range}])"

    return build


def _workload(engine: QueryEngine, sample: Sample, kind: str, name: str) -> WorkloadKey:
    labels = sample.labels
    return WorkloadKey(labels.get(engine.cluster, ""), labels.get("namespace", ""), kind, name)


def _autoscalers(
    engine: QueryEngine, info: list[Sample], minimums: list[Sample], maximums: list[Sample]
) -> dict[WorkloadKey, tuple[str, int | None, int | None]]:
    """Map each HPA's scale target to the HPA's name and its minimum and maximum replicas."""

    def hpa_key(sample: Sample) -> tuple[str, str, str]:
        cluster, namespace, _ = engine.pod_labels(sample)
        return cluster, namespace, sample.labels.get("horizontalpodautoscaler", "")

    low = {hpa_key(sample): round(sample.value) for sample in minimums}
    high = {hpa_key(sample): round(sample.value) for sample in maximums}
    targets = {}
    for sample in info:
        key = hpa_key(sample)
        kind = sample.labels.get("scaletargetref_kind", "")
        name = sample.labels.get("scaletargetref_name", "")
        target = _workload(engine, sample, kind, name)
        targets[target] = (key[2], low.get(key), high.get(key))
    return targets
