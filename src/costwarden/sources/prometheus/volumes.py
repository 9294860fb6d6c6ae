"""Usage query per PersistentVolumeClaim: size requested, capacity and bytes used."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from costwarden.domain.usage import UsageResult, VolumeKey, VolumeUsage
from costwarden.sources.prometheus import metrics, promql
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

COLUMNS = ("requested", "capacity", "used_last", "used_min", "used_max")


async def volumes(
    engine: QueryEngine, window: Window, scope: Scope, min_history: timedelta
) -> UsageResult[VolumeUsage]:
    """Return each claim's size and use (see ``AsyncPrometheusSource.volumes``)."""
    batches = await engine.plan(metrics.KUBE_PVC_INFO, "", window, scope)
    builders = _builders(engine, window)
    found = await gather(*(engine.run(batches, build, window.end) for build in builders))

    def claim(sample: Sample) -> VolumeKey:
        cluster, namespace, _ = engine.pod_labels(sample)
        return VolumeKey(cluster, namespace, sample.labels.get("persistentvolumeclaim", ""))

    columns: dict[VolumeKey, dict[str, float]] = defaultdict(dict)
    for name, samples in zip(COLUMNS, found[: len(COLUMNS)], strict=True):
        for sample in samples:
            columns[claim(sample)][name] = sample.value
    classes = {claim(sample): sample.labels.get("storageclass") for sample in found[-2]}
    for key in classes:
        columns.setdefault(key, {})

    usage = {key: _volume(key, values, classes.get(key)) for key, values in columns.items()}
    first_seen = {claim(sample): sample.value for sample in found[-1]}
    items, short = split_by_history(usage, first_seen, window, min_history)
    queries = [template(build) for build in builders]
    return result(items, short, window, min_history, queries)


def _builders(engine: QueryEngine, window: Window) -> list[BuildExpr]:
    """Return expressions for the ``COLUMNS``, then the claim info and its first-seen time."""
    by = f"{engine.cluster}, namespace, persistentvolumeclaim"

    def statistic(metric: str, function: str, combine: str = "max") -> BuildExpr:
        def build(matchers: str) -> str:
            selector = promql.selector(metric, matchers)
            return f"{combine} by ({by}) ({function}({selector}[{window.range}]))"

        return build

    def info(matchers: str) -> str:
        return f"last_over_time({promql.selector(metrics.KUBE_PVC_INFO, matchers)}[{window.range}])"

    def seen(matchers: str) -> str:
        return engine.first_seen_expr(promql.selector(metrics.KUBE_PVC_INFO, matchers), by, window)

    return [
        statistic(metrics.KUBE_PVC_REQUESTED_BYTES, "last_over_time"),
        statistic(metrics.KUBELET_VOLUME_STATS_CAPACITY_BYTES, "last_over_time"),
        statistic(metrics.KUBELET_VOLUME_STATS_USED_BYTES, "last_over_time"),
        statistic(metrics.KUBELET_VOLUME_STATS_USED_BYTES, "min_over_time", "min"),
        statistic(metrics.KUBELET_VOLUME_STATS_USED_BYTES, "max_over_time"),
        info,
        seen,
    ]


def _volume(key: VolumeKey, values: dict[str, float], storage_class: str | None) -> VolumeUsage:
    return VolumeUsage(
        key,
        storage_class=storage_class or None,
        requested_bytes=values.get("requested"),
        capacity_bytes=values.get("capacity"),
        used_last_bytes=values.get("used_last"),
        used_min_bytes=values.get("used_min"),
        used_max_bytes=values.get("used_max"),
        mounted="used_last" in values,
    )
