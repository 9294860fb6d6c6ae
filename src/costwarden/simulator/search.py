"""Cluster search: filter groups, sorting and Palette's continue-token pagination.

The filter properties the simulator evaluates are ``clusterName``, ``environment`` (the cloud
type; Palette's SDK excludes ``nested`` virtual clusters with it), ``clusterState``,
``healthState`` and ``isDeleted``. Filters on other properties are ignored, as if absent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from costwarden.simulator.model import Cluster
from costwarden.simulator.requests import FilterGroup, FilterItem, SearchSpec, StringCondition

PAGE_SIZE = 50
CLUSTER_STATE = "Running"
HEALTH_STATE = "Healthy"

STRING_PROPERTIES: dict[str, Callable[[Cluster], str]] = {
    "clusterName": lambda cluster: cluster.name,
    "environment": lambda cluster: cluster.cloud_type,
    "clusterState": lambda cluster: CLUSTER_STATE,
    "healthState": lambda cluster: HEALTH_STATE,
}
BOOL_PROPERTIES: dict[str, Callable[[Cluster], bool]] = {
    "isDeleted": lambda cluster: False,
}
SORT_KEYS: dict[str, Callable[[Cluster], str]] = {
    "environment": lambda cluster: cluster.cloud_type,
    "clusterName": lambda cluster: cluster.name,
    "clusterState": lambda cluster: CLUSTER_STATE,
    "healthState": lambda cluster: HEALTH_STATE,
    "creationTimestamp": lambda cluster: cluster.created_at.isoformat(),
    "lastModifiedTimestamp": lambda cluster: cluster.created_at.isoformat(),
}


class SearchError(ValueError):
    """A search request with an invalid sort field, operator or continue token."""


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Cluster]
    continue_token: str
    count: int
    limit: int
    next_offset: int


def search(
    clusters: Sequence[Cluster],
    spec: SearchSpec,
    *,
    limit: int | None,
    offset: int | None,
    continue_token: str | None,
) -> Page:
    """Filter, sort and return one page of ``clusters``."""
    matched = [cluster for cluster in clusters if _matches(cluster, spec)]
    ordered = _sorted(matched, spec)

    page_size = PAGE_SIZE if not limit or limit <= 0 else min(limit, PAGE_SIZE)
    start = max(0, offset or 0)
    if continue_token:
        start = decode_continue(continue_token)

    items = ordered[start : start + page_size]
    next_offset = start + len(items)
    token = encode_continue(next_offset, len(ordered)) if next_offset < len(ordered) else ""
    return Page(items, token, len(ordered), page_size, next_offset)


def encode_continue(offset: int, count: int) -> str:
    """Mint a continue token the way Palette's docs show: base64 of offset, count and token."""
    payload = json.dumps({"offset": offset, "count": count, "token": ""}, separators=(",", ":"))
    return base64.b64encode(payload.encode()).decode()


def decode_continue(token: str) -> int:
    """Return the offset inside a continue token; raise SearchError for a malformed one."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.b64decode(padded, altchars=b"-_", validate=False))
        offset = payload["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise SearchError(
            f"invalid continue token {token!r}; pass listmeta.continue as is"
        ) from exc
    if not isinstance(offset, int) or offset < 0:
        raise SearchError(f"invalid continue token {token!r}: offset {offset!r} is not valid")
    return offset


def _matches(cluster: Cluster, spec: SearchSpec) -> bool:
    results = [
        result
        for group in spec.filter.filter_groups
        if (result := _group_matches(cluster, group)) is not None
    ]
    if not results:
        return True
    return _combine(spec.filter.conjunction, results)


def _group_matches(cluster: Cluster, group: FilterGroup) -> bool | None:
    """Return whether the cluster passes the group, or None when no filter in it applies."""
    results = [
        result for item in group.filters if (result := _item_matches(cluster, item)) is not None
    ]
    if not results:
        return None
    return _combine(group.conjunction, results)


def _item_matches(cluster: Cluster, item: FilterItem) -> bool | None:
    condition = item.condition
    if item.property in STRING_PROPERTIES and condition.string is not None:
        return _string_matches(STRING_PROPERTIES[item.property](cluster), condition.string)
    if item.property in BOOL_PROPERTIES and condition.boolean is not None:
        return BOOL_PROPERTIES[item.property](cluster) == condition.boolean.value
    return None


def _string_matches(value: str, condition: StringCondition) -> bool:
    values = condition.match.values
    if not values:
        return True
    if condition.ignore_case:
        value = value.lower()
        values = [candidate.lower() for candidate in values]

    compare = _STRING_OPERATORS.get(condition.operator)
    if compare is None:
        raise SearchError(
            f"string operator {condition.operator!r} is not valid; use eq, contains or beginsWith"
        )
    matched = _combine(condition.match.conjunction, [compare(value, c) for c in values])
    return not matched if condition.negation else matched


_STRING_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda value, candidate: value == candidate,
    "contains": lambda value, candidate: candidate in value,
    "beginsWith": lambda value, candidate: value.startswith(candidate),
}


def _combine(conjunction: str, results: list[bool]) -> bool:
    if conjunction == "or":
        return any(results)
    if conjunction in ("and", ""):
        return all(results)
    raise SearchError(f"conjunction {conjunction!r} is not valid; use and or or")


def _sorted(clusters: list[Cluster], spec: SearchSpec) -> list[Cluster]:
    """Sort by the requested fields in order; ties, and no sort at all, fall back to name."""
    ordered = sorted(clusters, key=lambda cluster: (cluster.name, cluster.uid))
    for sort in reversed(spec.sort):
        key = SORT_KEYS.get(sort.field)
        if key is None:
            valid = ", ".join(SORT_KEYS)
            raise SearchError(f"sort field {sort.field!r} is not valid; use one of {valid}")
        if sort.order not in ("asc", "desc"):
            raise SearchError(f"sort order {sort.order!r} is not valid; use asc or desc")
        ordered.sort(key=key, reverse=sort.order == "desc")
    return ordered
