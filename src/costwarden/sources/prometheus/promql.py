"""Small builders for PromQL text: string literals, label matchers, durations and times."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")
"""Characters with a meaning in an RE2 regular expression, escaped in alternations."""


def quote(value: str) -> str:
    """Return ``value`` as a PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def equals(label: str, value: str) -> str:
    """Return the matcher ``label="value"``. An empty value matches series without the label."""
    return f"{label}={quote(value)}"


def one_of(label: str, values: Iterable[str]) -> str:
    """Return a matcher for any of ``values``: ``label="a"`` for one, ``label=~"a|b"`` for more.

    Values are matched literally. Prometheus anchors the regular expression at both ends.
    """
    distinct = sorted(set(values))
    if not distinct:
        raise ValueError(f"no values to match for label {label!r}")
    if len(distinct) == 1:
        return equals(label, distinct[0])
    alternation = "|".join(_escape_regex(value) for value in distinct)
    return f"{label}=~{quote(alternation)}"


def _escape_regex(value: str) -> str:
    return "".join("\\" + char if char in RE2_SPECIAL else char for char in value)


def selector(metric: str, *matchers: str) -> str:
    """Return ``metric{m1,m2}``, leaving out empty matchers."""
    kept = [matcher for matcher in matchers if matcher]
    return f"{metric}{{{','.join(kept)}}}"


def join(*matchers: str) -> str:
    """Join matcher lists with commas, leaving out empty ones."""
    return ",".join(matcher for matcher in matchers if matcher)


def duration(span: timedelta | int | float) -> str:
    """Return a PromQL duration in whole seconds, such as ``604800s``, and at least ``1s``."""
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    return f"{max(1, round(seconds))}s"


def timestamp(moment: datetime) -> str:
    """Return a UTC moment as the Unix time in seconds that the HTTP API accepts."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware UTC datetime")
    return f"{moment.timestamp():.3f}"


def from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
