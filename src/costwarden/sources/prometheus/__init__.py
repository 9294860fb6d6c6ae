"""The Prometheus source: container, node, GPU and volume usage from a Prometheus HTTP API."""

from costwarden.sources.prometheus.client import AsyncPrometheusClient, RangeSeries, Sample
from costwarden.sources.prometheus.source import AsyncPrometheusSource, PrometheusSource

__all__ = [
    "AsyncPrometheusClient",
    "AsyncPrometheusSource",
    "PrometheusSource",
    "RangeSeries",
    "Sample",
]
