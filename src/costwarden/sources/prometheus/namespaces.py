"""Daily usage series per namespace, the input of utilisation anomaly detection."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from costwarden.domain.usage import DailyUsage, NamespaceKey, ShortHistory, UsageResult
from costwarden.sources.prometheus import metrics, promql
from costwarden.sources.prometheus.client import RangeSeries
from costwarden.sources.prometheus.engine import (
    BuildExpr,
    QueryEngine,
    Scope,
    Window,
    gather,
    result,
    template,
)

DAY = timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _specs(engine: QueryEngine) -> list[tuple[str, str, str, BuildExpr]]:
    """Return (resource, statistic, unit, expression builder) for each daily series."""
    by = f"{engine.cluster}, namespace"
    day = promql.duration(DAY)
    # Evaluated at midnight T, a range of one day less a second contains the subquery steps in
    # (T - 1 day, T] on Prometheus 2 (closed ranges) and 3 (left-open ranges) alike.
    day_steps = promql.duration(DAY - timedelta(seconds=1))

    def cpu(matchers: str) -> str:
        selector = promql.selector(
            metrics.CONTAINER_CPU_USAGE_SECONDS, metrics.REAL_CONTAINERS, matchers
        )
        return f"sum by ({by}) (rate({selector}[{engine.rate_window}]))"

    def memory(matchers: str) -> str:
        selector = promql.selector(
            metrics.CONTAINER_MEMORY_WORKING_SET_BYTES, metrics.REAL_CONTAINERS, matchers
        )
        return f"sum by ({by}) ({selector})"

    def over_day(function: str, inner: BuildExpr) -> BuildExpr:
        return lambda matchers: f"{function}(({inner(matchers)})[{day_steps}:{engine.step}])"

    def egress(matchers: str) -> str:
        selector = promql.selector(
            metrics.CONTAINER_NETWORK_TRANSMIT_BYTES, 'interface!="lo"', matchers
        )
        per_interface = f"max by ({by}, pod, interface) (increase({selector}[{day}]))"
        return f"sum by ({by}) ({per_interface})"

    return [
        ("cpu", "mean", "cores", over_day("avg_over_time", cpu)),
        ("cpu", "max", "cores", over_day("max_over_time", cpu)),
        ("memory", "mean", "bytes", over_day("avg_over_time", memory)),
        ("memory", "max", "bytes", over_day("max_over_time", memory)),
        ("egress", "total", "bytes", egress),
    ]


async def daily_usage(
    engine: QueryEngine, first_day: date, last_day: date, scope: Scope, min_days: int
) -> UsageResult[DailyUsage]:
    """Return daily series per namespace (see ``AsyncPrometheusSource.daily_usage``)."""
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    window = Window(_midnight(first_day), _midnight(last_day + DAY))
    batches = await engine.plan(
        metrics.CONTAINER_CPU_USAGE_SECONDS, metrics.REAL_CONTAINERS, window, scope
    )

    # The value at midnight T covers the day before T, so day D is evaluated at D + 1 day.
    evaluations = Window(window.start + DAY, window.end)
    specs = _specs(engine)
    found = await gather(
        *(engine.run_range(batches, build, evaluations, DAY) for *_, build in specs)
    )

    days = tuple(first_day + DAY * offset for offset in range((last_day - first_day).days + 1))
    rows: dict[NamespaceKey, dict[tuple[str, str], np.ndarray]] = defaultdict(dict)
    for (resource, statistic, _, _), series_list in zip(specs, found, strict=True):
        for series in series_list:
            rows[_namespace(engine, series)][(resource, statistic)] = _by_day(
                series, first_day, days
            )

    units = {(resource, statistic): unit for resource, statistic, unit, _ in specs}
    items: list[DailyUsage] = []
    short: list[ShortHistory] = []
    for key in sorted(rows):
        columns = rows[key]
        days_with_data = _days_with_data(columns)
        if len(days_with_data) < min_days:
            short.append(_short(key, days, days_with_data, last_day, min_days))
            continue
        for (resource, statistic), values in sorted(columns.items()):
            unit = units[(resource, statistic)]
            items.append(DailyUsage(key, resource, statistic, unit, days, tuple(values.tolist())))
    queries = [template(build) for *_, build in specs]
    return result(items, short, window, DAY * min_days, queries)


def _namespace(engine: QueryEngine, series: RangeSeries) -> NamespaceKey:
    return NamespaceKey(series.labels.get(engine.cluster, ""), series.labels.get("namespace", ""))


def _by_day(series: RangeSeries, first_day: date, days: tuple[date, ...]) -> np.ndarray:
    values = np.full(len(days), np.nan)
    first = _midnight(first_day).timestamp()
    for moment, value in zip(series.timestamps, series.values, strict=True):
        index = round((moment - first) / DAY.total_seconds()) - 1
        if 0 <= index < len(days):
            values[index] = value
    return values


def _days_with_data(columns: dict[tuple[str, str], np.ndarray]) -> list[int]:
    present = np.zeros(len(next(iter(columns.values()))), dtype=bool)
    for values in columns.values():
        present |= ~np.isnan(values)
    return [int(index) for index in np.flatnonzero(present)]


def _short(
    key: NamespaceKey,
    days: tuple[date, ...],
    days_with_data: list[int],
    last_day: date,
    min_days: int,
) -> ShortHistory:
    first = days[days_with_data[0]] if days_with_data else last_day + DAY
    return ShortHistory(
        key,
        first_seen=_midnight(first),
        history=DAY * len(days_with_data),
        required=DAY * min_days,
    )
