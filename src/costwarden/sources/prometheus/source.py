"""The Prometheus source: usage queries that return domain data, async and blocking.

Every usage method reads the window ``[end - window, end]`` (``end`` defaults to now) and
returns a ``UsageResult``: the items with at least ``min_history`` of data, the ones with less
(``short_history``), the window and the PromQL sent. ``clusters`` and ``namespaces`` limit a
query, and None reads every one. Series are matched to clusters by the ``cluster_label`` setting.

The metrics come from cAdvisor, kube-state-metrics, the kubelet, node-exporter and the DCGM
exporter, and ``metrics.py`` names each one. A method whose exporter is missing returns no items.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import anyio
import httpx

from costwarden.config import PrometheusSettings
from costwarden.domain.usage import (
    ContainerCpu,
    ContainerMemory,
    ContainerResources,
    DailyUsage,
    GpuDeviceUsage,
    GpuNodeWorkloads,
    NetworkEgress,
    NodeInfo,
    NodeUsage,
    OomKills,
    UsageResult,
    VolumeUsage,
    WorkloadReplicas,
)
from costwarden.sources.blocking import BlockingFacade
from costwarden.sources.prometheus import containers, nodes
from costwarden.sources.prometheus import namespaces as namespace_queries
from costwarden.sources.prometheus import replicas as replica_queries
from costwarden.sources.prometheus import volumes as volume_queries
from costwarden.sources.prometheus.batching import Batch
from costwarden.sources.prometheus.client import (
    AsyncPrometheusClient,
    RangeSeries,
    Sample,
    Sleep,
)
from costwarden.sources.prometheus.engine import BuildExpr, QueryEngine, Scope, Window

DEFAULT_WINDOW = timedelta(days=7)
"""Window of the usage queries, as rightsizing tools commonly use."""

DEFAULT_MIN_HISTORY = timedelta(days=3)
"""History below which a workload, node or volume is reported as too new to judge."""

DEFAULT_QUANTILE = 0.95
DEFAULT_MIN_DAYS = 7
"""Days with data a namespace needs in ``daily_usage``: one of each weekday."""

Names = Sequence[str] | None
P = ParamSpec("P")
T = TypeVar("T")


def _window(end: datetime | None, span: timedelta) -> Window:
    return Window.ending(end if end is not None else datetime.now(UTC), span)


def _check_quantile(quantile: float) -> None:
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be between 0 and 1, got {quantile}")


class AsyncPrometheusSource:
    """Usage queries against one Prometheus server, built from ``PrometheusSettings``.

    ``transport`` replaces the network and ``sleep`` the backoff waits, as in
    ``AsyncPrometheusClient``. ``client`` is the underlying HTTP API client.
    """

    def __init__(
        self,
        settings: PrometheusSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.client = AsyncPrometheusClient(settings, transport=transport, sleep=sleep)
        self._engine = QueryEngine(self.client)

    @property
    def settings(self) -> PrometheusSettings:
        return self.client.settings

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def cpu_usage(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        quantile: float = DEFAULT_QUANTILE,
        min_history: timedelta = DEFAULT_MIN_HISTORY,
        clusters: Names = None,
        namespaces: Names = None,
    ) -> UsageResult[ContainerCpu]:
        """Return each container's CPU usage quantile over the window, in cores.

        The per-pod rate of ``container_cpu_usage_seconds_total`` over ``rate_window_seconds``
        is sampled every ``step_seconds``, and ``quantile`` (0.95: p95) of those samples is
        taken per pod. A container's value is the largest over its workload's pods. Needs
        ``min_history`` (3 days by default) of cAdvisor data.
        """
        _check_quantile(quantile)
        scope = Scope.of(clusters, namespaces)
        return await containers.cpu_usage(
            self._engine, _window(end, window), scope, quantile, min_history
        )

    async def memory_peak(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        min_history: timedelta = DEFAULT_MIN_HISTORY,
        clusters: Names = None,
        namespaces: Names = None,
    ) -> UsageResult[ContainerMemory]:
        """Return each container's peak ``container_memory_working_set_bytes`` in the window.

        The peak is the largest raw sample of any of the workload's pods. Needs ``min_history``
        of cAdvisor data.
        """
        scope = Scope.of(clusters, namespaces)
        return await containers.memory_peak(self._engine, _window(end, window), scope, min_history)

    async def resources(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        clusters: Names = None,
        namespaces: Names = None,
    ) -> UsageResult[ContainerResources]:
        """Return each container's CPU, memory and GPU requests and CPU and memory limits.

        Values come from ``kube_pod_container_resource_requests`` and ``_limits``: those of the
        pods running at ``end``, else the last ones in the window. Needs no history.
        """
        scope = Scope.of(clusters, namespaces)
        return await containers.resources(self._engine, _window(end, window), scope)

    async def oom_kills(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        clusters: Names = None,
        namespaces: Names = None,
    ) -> UsageResult[OomKills]:
        """Return the containers that ran out of memory in the window, with their counts.

        A container counts when cAdvisor's ``container_oom_events_total`` rose or when
        kube-state-metrics reports ``OOMKilled`` as a pod's last termination reason. Needs no
        history. The counts are ``increase()`` estimates rounded to whole events.
        """
        scope = Scope.of(clusters, namespaces)
        return await containers.oom_kills(self._engine, _window(end, window), scope)

    async def replicas(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        clusters: Names = None,
        namespaces: Names = None,
    ) -> UsageResult[WorkloadReplicas]:
        """Return each Deployment's and StatefulSet's desired replicas, and its HPA's bounds.

        ``current`` is the last desired count in the window, ``min`` and ``max`` the extremes.
        The HPA fields come from ``kube_horizontalpodautoscaler_*`` and are None without one.
        Needs no history.
        """
        scope = Scope.of(clusters, namespaces)
        return await replica_queries.replicas(self._engine, _window(end, window), scope)

    async def node_info(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        clusters: Names = None,
    ) -> UsageResult[NodeInfo]:
        """Return each node's instance type, pool, capacity type, zone, GPU model and allocatable.

        Read from ``kube_node_labels``, which carries only the labels kube-state-metrics'
        ``--metric-labels-allowlist`` names, and ``kube_node_status_allocatable``. Needs no
        history.
        """
        scope = Scope.of(clusters, None)
        return await nodes.node_info(self._engine, _window(end, window), scope)

    async def node_usage(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        quantile: float = DEFAULT_QUANTILE,
        min_history: timedelta = DEFAULT_MIN_HISTORY,
        clusters: Names = None,
    ) -> UsageResult[NodeUsage]:
        """Return each node's mean and quantile CPU use in cores and mean and peak memory use.

        CPU is the rate of non-idle ``node_cpu_seconds_total``, and memory is ``MemTotal`` minus
        ``MemAvailable``. Nodes are named by ``node_exporter_node_label`` and joined with
        ``node_info``. Needs ``min_history`` of node-exporter data.
        """
        _check_quantile(quantile)
        scope = Scope.of(clusters, None)
        return await nodes.node_usage(
            self._engine, _window(end, window), scope, quantile, min_history
        )

    async def gpu_utilisation(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        min_history: timedelta = DEFAULT_MIN_HISTORY,
        clusters: Names = None,
    ) -> UsageResult[GpuDeviceUsage]:
        """Return each GPU's mean and peak ``DCGM_FI_DEV_GPU_UTIL`` in percent.

        Nodes are named by ``dcgm_node_label``. Needs ``min_history`` of DCGM exporter data.
        """
        scope = Scope.of(clusters, None)
        return await nodes.gpu_utilisation(self._engine, _window(end, window), scope, min_history)

    async def gpu_node_workloads(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        clusters: Names = None,
    ) -> UsageResult[GpuNodeWorkloads]:
        """Return each node with allocatable GPUs and the workloads that ran on it.

        Workloads are split by whether their pods requested ``nvidia.com/gpu``, so a GPU node
        that runs only other workloads shows up with empty ``gpu_workloads``. Reads
        ``kube_pod_info`` for pod placement. Needs no history.
        """
        scope = Scope.of(clusters, None)
        return await nodes.gpu_node_workloads(self._engine, _window(end, window), scope)

    async def volumes(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        min_history: timedelta = DEFAULT_MIN_HISTORY,
        clusters: Names = None,
        namespaces: Names = None,
    ) -> UsageResult[VolumeUsage]:
        """Return each PersistentVolumeClaim's requested size, capacity and bytes used.

        Claims come from kube-state-metrics (``kube_persistentvolumeclaim_info``), so claims no
        pod mounts are listed too, with ``mounted`` false. Needs ``min_history`` of
        kube-state-metrics data for the claim.
        """
        scope = Scope.of(clusters, namespaces)
        return await volume_queries.volumes(self._engine, _window(end, window), scope, min_history)

    async def network_egress(
        self,
        *,
        end: datetime | None = None,
        window: timedelta = DEFAULT_WINDOW,
        min_history: timedelta = DEFAULT_MIN_HISTORY,
        clusters: Names = None,
        namespaces: Names = None,
    ) -> UsageResult[NetworkEgress]:
        """Return the bytes each workload's pods sent in the window, all interfaces but ``lo``.

        The total is the sum of ``increase(container_network_transmit_bytes_total)`` over the
        pods, and ``bytes_per_day`` divides it by the days of data. cAdvisor cannot tell traffic
        inside the cluster from traffic leaving it. Needs ``min_history`` of cAdvisor data.
        """
        scope = Scope.of(clusters, namespaces)
        return await containers.network_egress(
            self._engine, _window(end, window), scope, min_history
        )

    async def daily_usage(
        self,
        first_day: date,
        last_day: date,
        *,
        min_days: int = DEFAULT_MIN_DAYS,
        clusters: Names = None,
        namespaces: Names = None,
    ) -> UsageResult[DailyUsage]:
        """Return per namespace and UTC day from ``first_day`` to ``last_day``: CPU cores and
        working set bytes (mean and max of the day), and bytes sent (total).

        Needs ``min_days`` days with data in the range. Namespaces with fewer are listed in
        ``short_history``.
        """
        scope = Scope.of(clusters, namespaces)
        return await namespace_queries.daily_usage(
            self._engine, first_day, last_day, scope, min_days
        )

    async def plan(
        self,
        metric: str,
        base: str = "",
        *,
        end: datetime,
        window: timedelta,
        clusters: Sequence[str] | None = None,
        split_label: str = "namespace",
    ) -> list[Batch]:
        """Batch ``metric{base}`` by cluster and ``split_label`` as the usage queries do.

        The batches hold at most ``max_series_per_query`` series each, counted over the window.
        """
        scope = Scope.of(clusters, None)
        return await self._engine.plan(metric, base, _window(end, window), scope, split_label)

    async def run_batches(
        self, batches: list[Batch], build: BuildExpr, at: datetime
    ) -> list[Sample]:
        """Evaluate ``build(matchers)`` at ``at`` for every batch, ``concurrency`` at a time."""
        return await self._engine.run(batches, build, at)

    async def run_batches_range(
        self,
        batches: list[Batch],
        build: BuildExpr,
        start: datetime,
        end: datetime,
        step: timedelta,
    ) -> list[RangeSeries]:
        """Evaluate ``build(matchers)`` from ``start`` to ``end`` every ``step`` for every batch."""
        return await self._engine.run_range(batches, build, Window(start, end), step)

    async def query(self, expr: str, at: datetime | None = None) -> list[Sample]:
        return await self.client.query(expr, at)

    async def query_range(
        self, expr: str, start: datetime, end: datetime, step: timedelta
    ) -> list[RangeSeries]:
        return await self.client.query_range(expr, start, end, step)

    async def series(
        self, matchers: Sequence[str], start: datetime, end: datetime
    ) -> list[dict[str, str]]:
        return await self.client.series(matchers, start, end)

    async def label_values(
        self,
        label: str,
        matchers: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[str]:
        return await self.client.label_values(label, matchers, start, end)


def _blocking(
    method: Callable[Concatenate[AsyncPrometheusSource, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[PrometheusSource, P], T]:
    """Make a blocking method that runs ``method`` of the wrapped source on the portal."""

    def call(self: PrometheusSource, *args: P.args, **kwargs: P.kwargs) -> T:
        bound = getattr(self._source, method.__name__)
        return self._portal.call(partial(bound, *args, **kwargs))

    call.__name__ = method.__name__
    call.__qualname__ = f"PrometheusSource.{method.__name__}"
    call.__doc__ = method.__doc__
    return call


class PrometheusSource(BlockingFacade):
    """A blocking facade over ``AsyncPrometheusSource`` with the same methods and arguments.

    Calls run on an event loop in a background thread. Use it as a context manager, or call
    ``close()``, to stop that thread.
    """

    def __init__(
        self,
        settings: PrometheusSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._source = AsyncPrometheusSource(settings, transport=transport, sleep=sleep)
        super().__init__(self._source)

    @property
    def settings(self) -> PrometheusSettings:
        return self._source.settings

    cpu_usage = _blocking(AsyncPrometheusSource.cpu_usage)
    memory_peak = _blocking(AsyncPrometheusSource.memory_peak)
    resources = _blocking(AsyncPrometheusSource.resources)
    oom_kills = _blocking(AsyncPrometheusSource.oom_kills)
    replicas = _blocking(AsyncPrometheusSource.replicas)
    node_info = _blocking(AsyncPrometheusSource.node_info)
    node_usage = _blocking(AsyncPrometheusSource.node_usage)
    gpu_utilisation = _blocking(AsyncPrometheusSource.gpu_utilisation)
    gpu_node_workloads = _blocking(AsyncPrometheusSource.gpu_node_workloads)
    volumes = _blocking(AsyncPrometheusSource.volumes)
    network_egress = _blocking(AsyncPrometheusSource.network_egress)
    daily_usage = _blocking(AsyncPrometheusSource.daily_usage)
    plan = _blocking(AsyncPrometheusSource.plan)
    run_batches = _blocking(AsyncPrometheusSource.run_batches)
    run_batches_range = _blocking(AsyncPrometheusSource.run_batches_range)
    query = _blocking(AsyncPrometheusSource.query)
    query_range = _blocking(AsyncPrometheusSource.query_range)
    series = _blocking(AsyncPrometheusSource.series)
    label_values = _blocking(AsyncPrometheusSource.label_values)
