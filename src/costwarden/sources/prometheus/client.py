"""An async client for the Prometheus HTTP API (``/api/v1``).

``AsyncPrometheusClient`` sends instant queries, range queries, series and label value look-ups.
It sends at most ``concurrency`` requests at once. It retries 429, 5xx and transport errors
(timeouts included) with exponential backoff and full jitter, or after the delay ``Retry-After``
requests. It splits range queries in time so that no series exceeds ``max_points_per_query``
points.
Requests whose form body is long (a selector over many namespaces) go as POST, others as GET.

Errors become ``PrometheusError`` subclasses that name the endpoint, the query and Prometheus'
own ``errorType`` and message. The bearer token and the password never appear in log lines or
error messages.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import anyio
import httpx
import numpy as np
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from costwarden.config import PrometheusSettings
from costwarden.errors import (
    ConfigError,
    PrometheusApiError,
    PrometheusAuthError,
    PrometheusError,
    PrometheusQueryError,
    PrometheusRateLimitError,
    PrometheusTimeoutError,
)
from costwarden.sources.palette.client import is_retryable_status, parse_retry_after
from costwarden.sources.prometheus import promql
from costwarden.sources.prometheus.batching import points_in, time_chunks

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Params = list[tuple[str, str]]

API = "/api/v1"
MAX_GET_BODY_BYTES = 2048
"""Longest encoded query string sent as GET. Longer ones go as a POST form body."""

MAX_ERROR_TEXT = 500
"""Characters of a non-JSON error body kept in an error message."""

MAX_QUERY_TEXT = 400
"""Characters of a query kept in an error message. The error's ``query`` attribute is whole."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant vector: a label set, its value and the evaluation time."""

    labels: dict[str, str]
    value: float
    time: float


@dataclass(frozen=True, slots=True, eq=False)
class RangeSeries:
    """One series of a range query: Unix times in seconds and the values at those times."""

    labels: dict[str, str]
    timestamps: np.ndarray
    values: np.ndarray


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class AsyncPrometheusClient:
    """An asyncio client for one Prometheus server, built from ``PrometheusSettings``.

    ``transport`` replaces the network (tests pass one) and ``sleep`` replaces ``anyio.sleep``
    for backoff waits.
    """

    def __init__(
        self,
        settings: PrometheusSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if settings.url is None:
            raise ConfigError(
                "no Prometheus URL configured; set COSTWARDEN_PROMETHEUS_URL or prometheus.url "
                "in the config file"
            )
        self.settings = settings
        self._sleep = sleep
        self._secrets = [
            secret.get_secret_value()
            for secret in (settings.bearer_token, settings.password)
            if secret is not None and secret.get_secret_value()
        ]
        self._limiter = anyio.CapacityLimiter(settings.concurrency)
        self._http = httpx.AsyncClient(
            base_url=settings.url,
            headers=self._headers(),
            auth=self._basic_auth(),
            timeout=httpx.Timeout(settings.timeout_seconds),
            verify=settings.verify_tls,
            limits=httpx.Limits(max_connections=settings.concurrency),
            transport=transport,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.settings.bearer_token.get_secret_value()}"
        return headers

    def _basic_auth(self) -> httpx.BasicAuth | None:
        if self.settings.username is None or self.settings.password is None:
            return None
        return httpx.BasicAuth(self.settings.username, self.settings.password.get_secret_value())

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
        await self._http.aclose()

    async def query(self, expr: str, at: datetime | None = None) -> list[Sample]:
        """Evaluate ``expr`` at ``at`` (now when None) and return its instant vector.

        A scalar result comes back as one sample without labels.
        """
        params: Params = [("query", expr)]
        if at is not None:
            params.append(("time", promql.timestamp(at)))
        data = await self._api("/query", params, expr)
        return _parse_instant(data, expr)

    async def query_range(
        self, expr: str, start: datetime, end: datetime, step: timedelta
    ) -> list[RangeSeries]:
        """Evaluate ``expr`` every ``step`` from ``start`` to ``end`` and return each series.

        The range is split into chunks of at most ``max_points_per_query`` points, sent
        concurrently, and the chunks of each series are joined in time order.
        """
        step_seconds = step.total_seconds()
        chunks = time_chunks(
            start.timestamp(), end.timestamp(), step_seconds, self.settings.max_points_per_query
        )
        results: list[list[RangeSeries]] = [[] for _ in chunks]

        async def fetch(index: int, chunk_start: float, chunk_end: float) -> None:
            params: Params = [
                ("query", expr),
                ("start", f"{chunk_start:.3f}"),
                ("end", f"{chunk_end:.3f}"),
                ("step", f"{step_seconds:g}"),
            ]
            data = await self._api("/query_range", params, expr)
            results[index] = _parse_matrix(data, expr)

        async with anyio.create_task_group() as group:
            for index, (chunk_start, chunk_end) in enumerate(chunks):
                group.start_soon(fetch, index, chunk_start, chunk_end)
        if len(chunks) > 1:
            logger.debug(
                "split a range query of %d points per series into %d chunks",
                points_in(start.timestamp(), end.timestamp(), step_seconds),
                len(chunks),
            )
        return _join_chunks(results)

    async def series(
        self, matchers: Sequence[str], start: datetime, end: datetime
    ) -> list[dict[str, str]]:
        """Return the label sets of every series that any of ``matchers`` selects in the range."""
        params: Params = [("match[]", matcher) for matcher in matchers]
        params += [("start", promql.timestamp(start)), ("end", promql.timestamp(end))]
        data = await self._api("/series", params, " or ".join(matchers))
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise self._invalid(
                API + "/series", " or ".join(matchers), "data is not a list of label sets"
            )
        return [{str(key): str(value) for key, value in item.items()} for item in data]

    async def label_values(
        self,
        label: str,
        matchers: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[str]:
        """Return the values of ``label`` on the series ``matchers`` select, sorted."""
        params: Params = [("match[]", matcher) for matcher in matchers]
        if start is not None:
            params.append(("start", promql.timestamp(start)))
        if end is not None:
            params.append(("end", promql.timestamp(end)))
        path = f"/label/{label}/values"
        data = await self._api(path, params, " or ".join(matchers) or label)
        if not isinstance(data, list):
            raise self._invalid(API + path, label, "data is not a list of values")
        return sorted(str(value) for value in data)

    async def _api(self, path: str, params: Params, query: str) -> Any:
        """Call one API endpoint and return the ``data`` of its success envelope."""
        full_path = API + path
        async with self._limiter:
            response = await self._send(full_path, params, query)
        return self._success_data(response, full_path, query)

    async def _send(self, path: str, params: Params, query: str) -> httpx.Response:
        """Send one request, retrying 429, 5xx and transport errors, and raise on any error."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=self._retry_delay,
            retry=retry_if_exception_type((_RetryableStatus, httpx.TransportError)),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(path, state),
            reraise=True,
        )
        attempts = self.settings.max_retries + 1
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._attempt(path, params, query)
        except _RetryableStatus as exc:
            raise self._error(path, query, exc.response, attempts) from None
        except httpx.TimeoutException as exc:
            raise PrometheusTimeoutError(
                f"Prometheus {path} timed out after {attempts} attempts of "
                f"{self.settings.timeout_seconds:g} s each ({type(exc).__name__}); raise "
                f"COSTWARDEN_PROMETHEUS_TIMEOUT_SECONDS or lower "
                f"COSTWARDEN_PROMETHEUS_MAX_SERIES_PER_QUERY; query: {_shorten(query)}",
                path=path,
                query=query,
                error_type=type(exc).__name__,
            ) from exc
        except httpx.TransportError as exc:
            raise PrometheusApiError(
                f"cannot reach Prometheus at {self.settings.url} for {path} after {attempts} "
                f"attempts: {type(exc).__name__}: {self._redact(str(exc))}; check "
                "COSTWARDEN_PROMETHEUS_URL and the network",
                path=path,
                query=query,
                error_type=type(exc).__name__,
            ) from exc
        return response

    async def _attempt(self, path: str, params: Params, query: str) -> httpx.Response:
        """Send the request once, as GET or as a POST form, and classify the response."""
        if len(urlencode(params)) > MAX_GET_BODY_BYTES:
            response = await self._http.post(path, data=_form(params))
        else:
            response = await self._http.get(path, params=params)

        if response.is_success:
            return response
        if is_retryable_status(response.status_code):
            raise _RetryableStatus(response)
        raise self._error(path, query, response, attempts=1)

    def _retry_delay(self, state: RetryCallState) -> float:
        """Return the delay ``Retry-After`` requests, else exponential backoff with full jitter.

        ``Retry-After`` is capped at ``backoff_max_seconds`` so that one response cannot stall a
        pass for hours.
        """
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _RetryableStatus):
            header = failure.response.headers.get("Retry-After")
            requested = parse_retry_after(header, datetime.now(UTC))
            if requested is not None:
                return min(requested, self.settings.backoff_max_seconds)

        backoff = wait_random_exponential(
            multiplier=self.settings.backoff_base_seconds, max=self.settings.backoff_max_seconds
        )
        return float(backoff(state))

    def _log_retry(self, path: str, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _RetryableStatus):
            reason = f"HTTP {failure.response.status_code}"
        else:
            reason = type(failure).__name__
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "Prometheus %s failed with %s; retry %d of %d in %.2f s",
            path,
            reason,
            state.attempt_number,
            self.settings.max_retries,
            delay,
        )

    def _success_data(self, response: httpx.Response, path: str, query: str) -> Any:
        try:
            body = response.json()
        except ValueError as exc:
            raise self._invalid(path, query, "the body is not JSON") from exc
        if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
            raise self._invalid(path, query, "the body is not a success envelope with data")

        for warning in body.get("warnings") or []:
            logger.warning(
                "Prometheus warned on %s: %s (query: %s)", path, warning, _shorten(query)
            )
        return body["data"]

    def _error(
        self, path: str, query: str, response: httpx.Response, attempts: int
    ) -> PrometheusError:
        """Build the error for a failed response from Prometheus' ``{errorType, error}`` body."""
        status = response.status_code
        error_type, message = _error_body(response)
        detail = self._redact(f"{error_type}: {message}" if message else error_type)
        error_class, advice = _classify(status, error_type, message, attempts)
        return error_class(
            f"Prometheus {path} failed with HTTP {status} ({detail}){advice}; "
            f"query: {_shorten(query)}",
            path=path,
            query=query,
            status=status,
            error_type=error_type,
        )

    def _invalid(self, path: str, query: str, problem: str) -> PrometheusApiError:
        return PrometheusApiError(
            f"Prometheus returned an invalid response for {path}: {problem}; check that "
            f"COSTWARDEN_PROMETHEUS_URL points at a Prometheus-compatible API; query: "
            f"{_shorten(query)}",
            path=path,
            query=query,
            error_type="InvalidResponse",
        )

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _form(params: Params) -> dict[str, str | list[str]]:
    """Turn repeated keys (``match[]``) into lists, the shape httpx sends as repeated fields."""
    form: dict[str, str | list[str]] = {}
    for key, value in params:
        if key in form:
            existing = form[key]
            form[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            form[key] = value
    return form


def _shorten(query: str) -> str:
    if len(query) <= MAX_QUERY_TEXT:
        return query
    return query[:MAX_QUERY_TEXT] + f"... ({len(query)} characters)"


def _error_body(response: httpx.Response) -> tuple[str, str]:
    """Return ``errorType`` and ``error`` of the body, or the status text and the raw body."""
    fallback = response.reason_phrase or str(response.status_code)
    try:
        body = response.json()
    except ValueError:
        return fallback, response.text.strip()[:MAX_ERROR_TEXT]
    if not isinstance(body, dict):
        return fallback, response.text.strip()[:MAX_ERROR_TEXT]
    return str(body.get("errorType") or fallback), str(body.get("error") or "")


def _classify(
    status: int, error_type: str, message: str, attempts: int
) -> tuple[type[PrometheusError], str]:
    """Return the error class and the advice for a final error status."""
    if status in (401, 403):
        return PrometheusAuthError, (
            "; check COSTWARDEN_PROMETHEUS_BEARER_TOKEN, or COSTWARDEN_PROMETHEUS_USERNAME and "
            "COSTWARDEN_PROMETHEUS_PASSWORD"
        )
    if status == 404:
        return PrometheusApiError, (
            "; check that COSTWARDEN_PROMETHEUS_URL is the server's base URL, without /api/v1"
        )
    if status == 429:
        return PrometheusRateLimitError, (
            f" after {attempts} attempts; lower COSTWARDEN_PROMETHEUS_CONCURRENCY or raise "
            "COSTWARDEN_PROMETHEUS_MAX_RETRIES"
        )
    if status in (400, 422):
        return PrometheusQueryError, _query_advice(message)
    retried = f" after {attempts} attempts" if attempts > 1 else ""
    if error_type == "timeout":
        return PrometheusTimeoutError, (
            f"{retried}; lower COSTWARDEN_PROMETHEUS_MAX_SERIES_PER_QUERY or raise the server's "
            "--query.timeout"
        )
    return PrometheusApiError, retried


def _query_advice(message: str) -> str:
    lowered = message.lower()
    if "too many samples" in lowered:
        return "; lower COSTWARDEN_PROMETHEUS_MAX_SERIES_PER_QUERY"
    if "maximum resolution" in lowered:
        return "; lower COSTWARDEN_PROMETHEUS_MAX_POINTS_PER_QUERY"
    return ""


def _parse_instant(data: Any, query: str) -> list[Sample]:
    """Parse the ``data`` of an instant query: a vector, or a scalar as one unlabelled sample."""
    try:
        result_type = data["resultType"]
        result = data["result"]
        if result_type == "scalar":
            return [Sample({}, float(result[1]), float(result[0]))]
        if result_type != "vector":
            raise ValueError(f"resultType {result_type!r} where a vector or scalar was expected")
        # NOTE: native histogram samples carry "histogram" instead of "value"; none is read here.
        return [
            Sample(dict(item["metric"]), float(item["value"][1]), float(item["value"][0]))
            for item in result
            if "value" in item
        ]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise _invalid_result(API + "/query", query, exc) from exc


def _parse_matrix(data: Any, query: str) -> list[RangeSeries]:
    try:
        if data["resultType"] != "matrix":
            raise ValueError(f"resultType {data['resultType']!r} where a matrix was expected")
        found = []
        for item in data["result"]:
            points = item.get("values") or []
            times = np.array([float(point[0]) for point in points], dtype=float)
            values = np.array([float(point[1]) for point in points], dtype=float)
            found.append(RangeSeries(dict(item["metric"]), times, values))
        return found
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise _invalid_result(API + "/query_range", query, exc) from exc


def _invalid_result(path: str, query: str, exc: Exception) -> PrometheusApiError:
    return PrometheusApiError(
        f"Prometheus returned a result for {path} that cannot be read "
        f"({type(exc).__name__}: {exc}); query: {_shorten(query)}",
        path=path,
        query=query,
        error_type="InvalidResponse",
    )


def _join_chunks(chunks: list[list[RangeSeries]]) -> list[RangeSeries]:
    """Join the per-chunk pieces of each series, keyed by label set, in time order."""
    pieces: dict[tuple[tuple[str, str], ...], list[RangeSeries]] = {}
    for chunk in chunks:
        for series in chunk:
            pieces.setdefault(tuple(sorted(series.labels.items())), []).append(series)

    joined = []
    for parts in pieces.values():
        if len(parts) == 1:
            joined.append(parts[0])
            continue
        times = np.concatenate([part.timestamps for part in parts])
        values = np.concatenate([part.values for part in parts])
        joined.append(RangeSeries(parts[0].labels, times, values))
    return joined
