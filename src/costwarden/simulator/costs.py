"""Cost queries over the simulated fleet: time buckets, grouping, and usage-based splits.

Each cluster's daily series contains full-day amounts. Cost accrues evenly within a day and stops
at ``as_of``, so a bucket's value is the integral of that step function over the part of the
bucket inside the requested window and inside the data (from the first day of history to
``as_of``). Buckets lie on a grid of ``period`` minutes anchored at UTC midnight of the
requested start. Hourly buckets therefore spread each day evenly over its hours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import numpy as np

from costwarden.simulator.model import SECONDS_PER_DAY, Cluster, Fleet, Namespace

MINUTES_PER_DAY = 1440
MAX_BUCKETS = 50_000

CLOUD_COST_GROUPS = ("tenant", "project", "cloud", "cluster")
RESOURCE_COST_GROUPS = ("tenant", "project", "cloud", "cluster", "namespace")
"""Groupings the simulator models; Palette also offers ``workspace`` and ``deployment``."""


class CostQueryError(ValueError):
    """A cost query with an invalid window or period."""


@dataclass(frozen=True, slots=True)
class EntityRef:
    """A ``v1ResourceReference``."""

    kind: str
    name: str
    uid: str

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "uid": self.uid}


@dataclass(frozen=True, slots=True)
class CostSeries:
    """The cost of one entity per bucket; ``columns`` maps a field name to one value a bucket."""

    entity: EntityRef
    associated: tuple[EntityRef, ...]
    starts: np.ndarray
    columns: dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class Window:
    """The buckets of a query: their starts and the clipped interval each one integrates."""

    starts: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def build(
        cls, fleet: Fleet, start: datetime | None, end: datetime | None, period: int
    ) -> Window:
        """Validate the request window and lay the buckets on the grid of ``period`` minutes.

        A missing ``end`` is ``as_of``, and a missing ``start`` is the first day of the month
        of ``end``.
        """
        _check_period(period)
        end = end or fleet.as_of
        if start is None:
            last = end - timedelta(microseconds=1)
            start = datetime(last.year, last.month, 1, tzinfo=UTC)
        if start >= end:
            raise CostQueryError(
                f"startTime {start.isoformat()} must be before endTime {end.isoformat()}"
            )

        anchor = datetime.combine(start.date(), time(0), tzinfo=UTC).timestamp()
        low = max(start, fleet.start).timestamp()
        high = min(end, fleet.as_of).timestamp()
        step = period * 60
        if low >= high:
            empty = np.zeros(0)
            return cls(empty.astype(np.int64), empty, empty)

        first = int(np.floor((low - anchor) / step))
        last = int(np.ceil((high - anchor) / step))
        if last - first > MAX_BUCKETS:
            raise CostQueryError(
                f"the window contains {last - first} periods of {period} minutes; ask for at most "
                f"{MAX_BUCKETS} by narrowing startTime/endTime or raising the period"
            )

        starts = anchor + step * np.arange(first, last, dtype=np.float64)
        lower = np.clip(starts, low, high)
        upper = np.clip(starts + step, low, high)
        return cls(starts.astype(np.int64), lower, upper)


@dataclass(slots=True)
class _Group:
    entity: EntityRef
    associated: tuple[EntityRef, ...]
    active_from: float
    sums: dict[str, np.ndarray] = field(default_factory=dict)


def _check_period(period: int) -> None:
    divides_day = period < MINUTES_PER_DAY and MINUTES_PER_DAY % period == 0
    if period >= 60 and (divides_day or period % MINUTES_PER_DAY == 0):
        return
    raise CostQueryError(
        f"period {period} is not supported; use minutes that divide a day, at least 60 "
        "(60, 120, ... 720), or a multiple of 1440"
    )


def integrate(fleet: Fleet, daily: np.ndarray, window: Window) -> np.ndarray:
    """Integrate full-day amounts ``daily[k, d]`` over each bucket of ``window``."""
    cumulative = np.concatenate([np.zeros((daily.shape[0], 1)), np.cumsum(daily, axis=1)], axis=1)
    origin = fleet.start.timestamp()
    latest = (fleet.as_of.timestamp() - origin) / SECONDS_PER_DAY

    def accrued(moments: np.ndarray) -> np.ndarray:
        position = np.clip((moments - origin) / SECONDS_PER_DAY, 0.0, latest)
        day = np.minimum(np.floor(position).astype(np.int64), fleet.days - 1)
        fraction = position - day
        return cumulative[:, day] + fraction * daily[:, day]

    return accrued(window.upper) - accrued(window.lower)


def _series(fleet: Fleet, groups: Iterable[_Group], window: Window) -> list[CostSeries]:
    result = []
    for group in groups:
        names = list(group.sums)
        stacked = np.stack([group.sums[name] for name in names])
        values = integrate(fleet, stacked, window)
        emitted = window.upper > np.maximum(window.lower, group.active_from)
        if not emitted.any():
            continue
        columns = {name: values[index][emitted] for index, name in enumerate(names)}
        result.append(CostSeries(group.entity, group.associated, window.starts[emitted], columns))
    return sorted(result, key=lambda series: (series.entity.name, series.entity.uid))


def _add(
    groups: dict[object, _Group],
    key: object,
    make: Callable[[], _Group],
    active_from: float,
    arrays: dict[str, np.ndarray],
) -> None:
    group = groups.get(key)
    if group is None:
        group = groups[key] = make()
    group.active_from = min(group.active_from, active_from)
    for name, array in arrays.items():
        if name in group.sums:
            group.sums[name] = group.sums[name] + array
        else:
            group.sums[name] = np.array(array, dtype=np.float64)


def _cluster_group(
    fleet: Fleet, org_name: str, cluster: Cluster, group_by: str
) -> tuple[object, Callable[[], _Group]]:
    """Return the grouping key of a cluster and a factory for its group."""
    project = EntityRef("project", cluster.project.name, cluster.project.uid)
    entities: dict[str, tuple[object, EntityRef, tuple[EntityRef, ...]]] = {
        "tenant": ("tenant", EntityRef("tenant", org_name, fleet.tenant_uid), ()),
        "project": (cluster.project.uid, project, ()),
        "cloud": (
            cluster.cloud_type,
            EntityRef("cloud", cluster.cloud_type, cluster.cloud_type),
            (),
        ),
        "cluster": (cluster.uid, _cluster_ref(cluster), (project,)),
    }
    key, entity, associated = entities[group_by]
    return key, lambda: _Group(entity, associated, np.inf)


def _cluster_ref(cluster: Cluster) -> EntityRef:
    return EntityRef("spectrocluster", cluster.name, cluster.uid)


def _active_from(fleet: Fleet, cluster: Cluster) -> float:
    return fleet.day_start(cluster.first_day).timestamp()


def cloud_cost(
    fleet: Fleet,
    clusters: Sequence[Cluster],
    window: Window,
    group_by: str,
    org_name: str,
) -> list[CostSeries]:
    """Return the cloud cost (compute, storage, total) of ``clusters`` grouped by ``group_by``."""
    groups: dict[object, _Group] = {}
    for cluster in clusters:
        key, make = _cluster_group(fleet, org_name, cluster, group_by)
        arrays = {"compute": cluster.compute, "storage": cluster.storage}
        _add(groups, key, make, _active_from(fleet, cluster), arrays)

    series = _series(fleet, groups.values(), window)
    for item in series:
        item.columns["total"] = item.columns["compute"] + item.columns["storage"]
    return series


def resource_cost(
    fleet: Fleet,
    clusters: Sequence[Cluster],
    window: Window,
    group_by: str,
    org_name: str,
    *,
    namespaces: Sequence[str] = (),
    include_control_plane: bool = False,
) -> list[CostSeries]:
    """Return the usage-based cost (cpu, memory, storage, total) of the clusters' namespaces.

    ``namespaces`` keeps only namespaces with those names; empty keeps all of them.
    """
    wanted = set(namespaces)
    groups: dict[object, _Group] = {}
    for cluster in clusters:
        for index, namespace in enumerate(cluster.namespaces):
            if wanted and namespace.name not in wanted:
                continue
            arrays = _namespace_arrays(cluster, index, include_control_plane)
            if group_by == "namespace":
                key, make = _namespace_group(cluster, namespace)
            else:
                key, make = _cluster_group(fleet, org_name, cluster, group_by)
            _add(groups, key, make, _active_from(fleet, cluster), arrays)

    series = _series(fleet, groups.values(), window)
    for item in series:
        columns = item.columns
        columns["total"] = columns["cpu"] + columns["memory"] + columns["storage"]
    return series


def _namespace_arrays(
    cluster: Cluster, index: int, include_control_plane: bool
) -> dict[str, np.ndarray]:
    compute = cluster.namespace_compute[index]
    if include_control_plane:
        compute = compute + cluster.namespace_control_plane[index]
    return {
        "cpu": compute * cluster.cpu_share,
        "memory": compute * (1.0 - cluster.cpu_share),
        "storage": cluster.namespace_storage[index],
    }


def _namespace_group(cluster: Cluster, namespace: Namespace) -> tuple[object, Callable[[], _Group]]:
    entity = EntityRef("namespace", namespace.name, namespace.uid)
    return namespace.uid, lambda: _Group(entity, (_cluster_ref(cluster),), np.inf)


def month_to_date(fleet: Fleet, cluster: Cluster) -> tuple[float, float]:
    """Return the cluster's compute and storage cost from the start of the month of ``as_of``."""
    month_start = datetime(fleet.as_of.year, fleet.as_of.month, 1, tzinfo=UTC)
    if month_start >= fleet.as_of:
        return 0.0, 0.0
    window = Window(
        np.array([0], dtype=np.int64),
        np.array([max(month_start, fleet.start).timestamp()]),
        np.array([fleet.as_of.timestamp()]),
    )
    values = integrate(fleet, np.stack([cluster.compute, cluster.storage]), window)
    return float(values[0, 0]), float(values[1, 0])
