"""A client for the parts of the Palette API that costwarden reads.

``AsyncPaletteClient`` is the one implementation: it sends each request through the client-side
rate limiter, retries 429, 5xx and transport errors with exponential backoff and full jitter,
follows ``listmeta.continue`` pages, and parses responses into the models in ``models.py``.
``PaletteClient`` is a blocking facade that runs the async client on an event loop in a
background thread, so it can be used from plain functions and from several threads at once.

The API key is sent only in the ``ApiKey`` header. It never appears in log lines or error
messages.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from costwarden.config import PaletteSettings
from costwarden.errors import (
    ConfigError,
    PaletteApiError,
    PaletteAuthError,
    PaletteError,
    PaletteRateLimitError,
)
from costwarden.service.telemetry import PALETTE_CALLS, PALETTE_RETRIES
from costwarden.sources.blocking import BlockingFacade
from costwarden.sources.palette.models import (
    CloudConfig,
    CloudCostSummary,
    Cluster,
    ClusterRate,
    ClusterSearchPage,
    ClusterSummary,
    ComponentEvent,
    ComponentEvents,
    DashboardWorkspaces,
    ErrorBody,
    NamespaceConfig,
    NamespaceConfigs,
    ProjectMetadata,
    ProjectsMetadata,
    ResourceConsumption,
    ResourceCostSummary,
    UserInfo,
    WorkloadNamespace,
    WorkloadNamespaces,
)
from costwarden.sources.palette.ratelimit import Clock, PrefixRateLimiter, TokenBucket

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
Sleep = Callable[[float], Awaitable[None]]

DASHBOARD_PREFIX = "/v1/dashboard"
RESOURCE_PREFIXES = ("/v1/spectroclusters", "/v1/cloudconfigs")
RESOURCE_RATE_PER_SECOND = 40.0
RESOURCE_BURST = 50
"""Client-side limit per prefix in ``RESOURCE_PREFIXES``, below the 50 requests per second that
Palette's API documentation lists for them."""

RatePeriod = Literal["hourly", "monthly", "yearly"]
RATE_PERIODS: tuple[str, ...] = ("hourly", "monthly", "yearly")
PAGE_SIZE = 50
"""Palette's default and maximum ``limit`` for list calls."""

NEWEST_FIRST = "metadata.creationTimestamp=-1"

MAX_ERROR_TEXT = 500
"""Characters of a non-JSON error body kept in an error message."""

ALL_CLUSTERS_FILTER: dict[str, Any] = {"filter": {}, "sort": []}
"""Search body that lists every cluster, deleted and virtual ones included."""

ACTIVE_CLUSTERS_FILTER: dict[str, Any] = {
    "filter": {
        "conjunction": "and",
        "filterGroups": [
            {
                "conjunction": "and",
                "filters": [
                    {
                        "property": "environment",
                        "type": "string",
                        "condition": {
                            "string": {
                                "operator": "eq",
                                "negation": True,
                                "ignoreCase": False,
                                "match": {"conjunction": "or", "values": ["nested"]},
                            }
                        },
                    },
                    {
                        "property": "isDeleted",
                        "type": "bool",
                        "condition": {"bool": {"value": False}},
                    },
                ],
            }
        ],
    },
    "sort": [],
}
"""Search body of the Palette Go SDK's default filter: no nested virtual or deleted clusters."""


_UID_SEGMENT = re.compile(
    r"^(?:[0-9a-fA-F]{24}|[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12})$"
)
"""A path segment that is a Palette object id (24 hex digits) or a UUID."""


def endpoint_template(path: str) -> str:
    """Return ``path`` with each object id replaced by ``{uid}``, the label of Palette metrics."""
    return "/".join(
        "{uid}" if _UID_SEGMENT.match(segment) else segment for segment in path.split("/")
    )


class _RetryableStatus(Exception):
    """An HTTP response with a status worth retrying (429 or 5xx)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the delay a ``Retry-After`` header requests, in seconds, or None when absent.

    The header contains either a number of seconds or an HTTP date. A date in the past gives 0,
    and a value in neither form is ignored.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)

    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        logger.warning("ignoring Retry-After header %r: neither seconds nor an HTTP date", text)
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def format_time(moment: datetime | date) -> str:
    """Format a UTC moment as RFC 3339. A date is read as its midnight UTC."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware UTC datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AsyncPaletteClient:
    """An asyncio client for the Palette API, built from ``PaletteSettings``.

    ``transport`` replaces the network (tests pass one), ``sleep`` replaces ``anyio.sleep`` for
    backoff and rate-limit waits, and ``clock`` is the monotonic clock of the rate limiter.
    """

    def __init__(
        self,
        settings: PaletteSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if settings.api_key is None or not settings.api_key.get_secret_value():
            raise ConfigError(
                "no Palette API key configured; set COSTWARDEN_PALETTE_API_KEY or palette.api_key "
                "in the config file"
            )
        self.settings = settings
        self._api_key = settings.api_key.get_secret_value()
        self._sleep = sleep
        buckets = {
            prefix: TokenBucket(RESOURCE_RATE_PER_SECOND, RESOURCE_BURST, clock)
            for prefix in RESOURCE_PREFIXES
        }
        buckets[DASHBOARD_PREFIX] = TokenBucket(
            settings.dashboard_rate_per_second, settings.dashboard_burst, clock
        )
        self._limiter = PrefixRateLimiter(buckets)
        self._http = httpx.AsyncClient(
            base_url=settings.url,
            headers=self._headers(),
            timeout=httpx.Timeout(settings.timeout_seconds),
            transport=transport,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"ApiKey": self._api_key, "Accept": "application/json"}
        if self.settings.project_uid:
            headers["ProjectUid"] = self.settings.project_uid
        return headers

    @property
    def currency(self) -> str:
        """ISO 4217 currency of every amount this client returns."""
        return self.settings.currency

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

    async def users_info(self) -> UserInfo:
        """Return the caller's organisation, tenant and user uids (``GET /v1/users/info``)."""
        return await self._call(UserInfo, "GET", "/v1/users/info")

    async def projects(self) -> list[ProjectMetadata]:
        """Return the uid and name of every project visible in the current scope."""
        found = await self._call(ProjectsMetadata, "GET", "/v1/dashboard/projects/metadata")
        return list(found.items)

    async def search_clusters(self, *, active_only: bool = False) -> list[ClusterSummary]:
        """Return cluster summaries from every page of the cluster search.

        By default every cluster is listed, deleted ones included, because their cost history
        still counts. ``active_only`` sends the Palette SDK's default filter instead, which leaves
        out deleted clusters and nested virtual clusters.
        """
        body = ACTIVE_CLUSTERS_FILTER if active_only else ALL_CLUSTERS_FILTER
        path = "/v1/dashboard/spectroclusters/search"
        clusters: list[ClusterSummary] = []
        seen_tokens: set[str] = set()
        token = ""
        while True:
            params: dict[str, str | int] = {"limit": PAGE_SIZE}
            if token:
                params["continue"] = token
            page = await self._call(ClusterSearchPage, "POST", path, json=body, params=params)
            clusters.extend(page.items)

            token = page.listmeta.continue_token
            if not token:
                return clusters
            if token in seen_tokens:
                raise PaletteApiError(
                    f"Palette returned the continue token {token!r} twice for POST {path}; "
                    "stopping to avoid an endless pagination loop",
                    method="POST",
                    url=path,
                    code="PaginationLoop",
                )
            seen_tokens.add(token)

    async def get_cluster(self, uid: str) -> Cluster:
        """Return one cluster with its spec (``GET /v1/spectroclusters/{uid}``)."""
        return await self._call(Cluster, "GET", f"/v1/spectroclusters/{uid}")

    async def cluster_costs(
        self,
        start: datetime | date,
        end: datetime | date,
        period_minutes: int = 1440,
        projects: list[str] | None = None,
    ) -> CloudCostSummary:
        """Return the cloud cost (compute and storage) of each cluster over ``[start, end)``.

        ``period_minutes`` is the length of one data point. ``projects`` limits the result to
        those project uids.
        """
        cost_filter: dict[str, Any] = {"startTime": format_time(start), "endTime": format_time(end)}
        if projects is not None:
            cost_filter["projects"] = list(projects)
        body = {"filter": cost_filter, "options": {"groupBy": "cluster", "period": period_minutes}}
        path = "/v1/dashboard/spectroclusters/cost"
        return await self._call(CloudCostSummary, "POST", path, json=body)

    async def namespace_costs(
        self,
        start: datetime | date,
        end: datetime | date,
        clusters: list[str] | None = None,
        period_minutes: int = 1440,
    ) -> ResourceCostSummary:
        """Return the usage-based cost (cpu, memory, storage) per namespace over ``[start, end)``.

        ``clusters`` limits the result to those cluster uids.
        """
        cost_filter: dict[str, Any] = {"startTime": format_time(start), "endTime": format_time(end)}
        if clusters is not None:
            cost_filter["clusters"] = list(clusters)
        body = {
            "filter": cost_filter,
            "options": {"groupBy": "namespace", "period": period_minutes},
        }
        path = "/v1/dashboard/spectroclusters/resources/cost"
        return await self._call(ResourceCostSummary, "POST", path, json=body)

    async def namespace_labels(
        self, cluster_uid: str, namespaces: list[str] | None = None
    ) -> list[WorkloadNamespace]:
        """Return the live namespaces of a cluster with their labels, all or only ``namespaces``."""
        workload_filter: dict[str, Any] = {}
        if namespaces is not None:
            workload_filter["namespaces"] = list(namespaces)
        path = f"/v1/dashboard/spectroclusters/{cluster_uid}/workloads/namespace"
        found = await self._call(WorkloadNamespaces, "POST", path, json={"filter": workload_filter})
        return list(found.namespaces)

    async def resource_consumption(
        self,
        start: datetime | date,
        end: datetime | date,
        *,
        group_by: str = "namespace",
        clusters: list[str] | None = None,
        period_minutes: int = 60,
    ) -> ResourceConsumption:
        """Return CPU and memory used versus allotted over ``[start, end)``, per ``group_by``.

        ``group_by`` is one of Palette's groupings: tenant, project, workspace, cluster,
        namespace or cloud. ``clusters`` limits the result to those cluster uids, and
        ``period_minutes`` (60 or more) is the length of one data point.
        """
        consumption_filter: dict[str, Any] = {
            "startTime": format_time(start),
            "endTime": format_time(end),
        }
        if clusters is not None:
            consumption_filter["clusters"] = list(clusters)
        body = {
            "filter": consumption_filter,
            "options": {"groupBy": group_by, "period": period_minutes},
        }
        path = "/v1/dashboard/spectroclusters/resources/consumption"
        return await self._call(ResourceConsumption, "POST", path, json=body)

    async def namespace_quotas(self, cluster_uid: str) -> list[NamespaceConfig]:
        """Return the namespaces of a cluster that Palette manages, with their quotas."""
        path = f"/v1/spectroclusters/{cluster_uid}/config/namespaces"
        found = await self._call(NamespaceConfigs, "GET", path)
        return list(found.items)

    async def cloud_config(self, cloud_type: str, config_uid: str) -> CloudConfig:
        """Return a cluster's cloud config, with its machine pools and their size limits."""
        return await self._call(CloudConfig, "GET", f"/v1/cloudconfigs/{cloud_type}/{config_uid}")

    async def cluster_rate(self, uid: str, period: RatePeriod = "hourly") -> ClusterRate:
        """Return Palette's estimated rate of a cluster's pools over one ``period``."""
        path = f"/v1/spectroclusters/{uid}/rate"
        return await self._call(ClusterRate, "GET", path, params={"periodType": _period(period)})

    async def what_if_rate(
        self, cloud: str, body: dict[str, Any], period: RatePeriod = "hourly"
    ) -> ClusterRate:
        """Return Palette's estimated rate of the pools in ``body`` without changing anything.

        ``body`` is a ``v1Spectro<Cloud>ClusterRateEntity``: ``cloudConfig`` with the region
        (``location`` on Azure) and ``machinepoolconfig``, a list of machine pool entities.
        """
        path = f"/v1/spectroclusters/{cloud}/rate"
        params: dict[str, str | int] = {"periodType": _period(period)}
        return await self._call(ClusterRate, "POST", path, json=body, params=params)

    async def workspaces(self) -> DashboardWorkspaces:
        """Return the workspaces visible in the current scope, with their quotas."""
        return await self._call(DashboardWorkspaces, "GET", "/v1/dashboard/workspaces")

    async def component_events(
        self, cluster_uid: str, *, since: datetime | date | None = None
    ) -> list[ComponentEvent]:
        """Return a cluster's events created at or after ``since`` (all when None), oldest first.

        Palette documents no time filter for events, so the pages are read newest first
        (``orderBy=metadata.creationTimestamp=-1``) until an event older than ``since`` shows up.
        """
        threshold = _as_moment(since) if since is not None else None
        path = f"/v1/events/components/spectrocluster/{cluster_uid}"
        found: list[ComponentEvent] = []
        seen_tokens: set[str] = set()
        token = ""
        while True:
            params: dict[str, str | int] = {"limit": PAGE_SIZE, "orderBy": NEWEST_FIRST}
            if token:
                params["continue"] = token
            page = await self._call(ComponentEvents, "GET", path, params=params)
            fresh = [event for event in page.items if _created_since(event, threshold)]
            found.extend(fresh)

            token = page.listmeta.continue_token
            if not token or len(fresh) < len(page.items):
                break
            _check_new_token(token, seen_tokens, "GET", path)
        return sorted(found, key=_event_order)

    async def _call(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str | int] | None = None,
    ) -> ModelT:
        response = await self._send(method, path, json=json, params=params)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
                for error in exc.errors()[:5]
            )
            raise PaletteApiError(
                f"Palette returned a {model.__name__} response for {method} {path} that does not "
                f"match the expected schema: {problems}",
                method=method,
                url=path,
                status=response.status_code,
                code="InvalidResponse",
            ) from exc

    async def _send(
        self, method: str, path: str, *, json: Any, params: dict[str, str | int] | None
    ) -> httpx.Response:
        """Send one request, retrying 429, 5xx and transport errors, and raise on any error."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=self._retry_delay,
            retry=retry_if_exception_type((_RetryableStatus, httpx.TransportError)),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        attempts = self.settings.max_retries + 1
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._attempt(method, path, json=json, params=params)
        except _RetryableStatus as exc:
            raise self._error(method, path, exc.response, attempts) from None
        except httpx.TransportError as exc:
            raise PaletteApiError(
                f"cannot reach Palette at {self.settings.url} for {method} {path} after "
                f"{attempts} attempts: {type(exc).__name__}: {self._redact(str(exc))}; check "
                "COSTWARDEN_PALETTE_URL and the network",
                method=method,
                url=path,
                code=type(exc).__name__,
            ) from exc
        return response

    async def _attempt(
        self, method: str, path: str, *, json: Any, params: dict[str, str | int] | None
    ) -> httpx.Response:
        """Wait for the rate limiter, send the request once, and classify the response."""
        delay = self._limiter.reserve(path)
        if delay > 0:
            await self._sleep(delay)

        endpoint = endpoint_template(path)
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.TransportError:
            PALETTE_CALLS.labels(endpoint=endpoint, status="0").inc()
            raise
        PALETTE_CALLS.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        if response.is_success:
            return response
        if is_retryable_status(response.status_code):
            raise _RetryableStatus(response)
        raise self._error(method, path, response, attempts=1)

    def _retry_delay(self, state: RetryCallState) -> float:
        """Return the delay ``Retry-After`` requests, else exponential backoff with full jitter.

        A ``Retry-After`` longer than ``backoff_max_seconds`` is cut to it, so that one response
        cannot stall a run for hours. The retry may then meet another 429.
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

    def _log_retry(self, method: str, path: str, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _RetryableStatus):
            status = failure.response.status_code
            reason = f"HTTP {status}"
            label = "429" if status == 429 else "5xx"
        else:
            reason = type(failure).__name__
            label = "transport"
        PALETTE_RETRIES.labels(endpoint=endpoint_template(path), reason=label).inc()
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "Palette %s %s failed with %s; retry %d of %d in %.2f s",
            method,
            path,
            reason,
            state.attempt_number,
            self.settings.max_retries,
            delay,
        )

    def _error(
        self, method: str, path: str, response: httpx.Response, attempts: int
    ) -> PaletteError:
        """Build the error for a failed response from Palette's ``{code, message, ref}`` body."""
        status = response.status_code
        body = _error_body(response)
        label = body.code or response.reason_phrase or "error"
        detail = self._redact(f"{label}: {body.message}" if body.message else label)
        if body.ref:
            detail += f" (ref {body.ref})"

        error_class, code, advice = _classify(status, body.code, attempts)
        return error_class(
            f"Palette {method} {path} failed with HTTP {status} ({detail}){advice}",
            method=method,
            url=path,
            status=status,
            code=code,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***")


def _period(period: str) -> str:
    if period not in RATE_PERIODS:
        choices = ", ".join(RATE_PERIODS)
        raise ValueError(f"rate period {period!r} is not valid; use one of {choices}")
    return period


def _as_moment(moment: datetime | date) -> datetime:
    """Return a UTC datetime. A date is read as its midnight UTC."""
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware UTC datetime")
    return moment.astimezone(UTC)


def _created_since(event: ComponentEvent, threshold: datetime | None) -> bool:
    """Return whether an event is at or after ``threshold``. An event without a time is kept."""
    created = event.metadata.creation_timestamp
    return threshold is None or created is None or created >= threshold


def _event_order(event: ComponentEvent) -> tuple[datetime, str]:
    created = event.metadata.creation_timestamp or datetime.min.replace(tzinfo=UTC)
    return created, event.metadata.uid


def _check_new_token(token: str, seen_tokens: set[str], method: str, path: str) -> None:
    """Raise when Palette repeats a continue token, which would page forever."""
    if token in seen_tokens:
        raise PaletteApiError(
            f"Palette returned the continue token {token!r} twice for {method} {path}; "
            "stopping to avoid an endless pagination loop",
            method=method,
            url=path,
            code="PaginationLoop",
        )
    seen_tokens.add(token)


def _classify(status: int, code: str, attempts: int) -> tuple[type[PaletteError], str, str]:
    """Return the error class, the error code and the advice for a final error status."""
    if status in (401, 403):
        advice = (
            "; check COSTWARDEN_PALETTE_API_KEY, and COSTWARDEN_PALETTE_PROJECT_UID when a "
            "project is set"
        )
        return PaletteAuthError, code, advice
    if status == 404:
        return PaletteApiError, "ResourceNotFound", "; it does not exist or is not in this scope"
    if status == 429:
        advice = (
            f" after {attempts} attempts; raise COSTWARDEN_PALETTE_MAX_RETRIES, and for "
            "/v1/dashboard calls lower COSTWARDEN_PALETTE_DASHBOARD_RATE_PER_SECOND"
        )
        return PaletteRateLimitError, code or "TooManyRequests", advice
    retried = f" after {attempts} attempts" if attempts > 1 else ""
    return PaletteApiError, code, retried


def _error_body(response: httpx.Response) -> ErrorBody:
    """Parse Palette's error body, falling back to the status text and the raw body."""
    try:
        return ErrorBody.model_validate_json(response.content)
    except ValidationError:
        text = response.text.strip()[:MAX_ERROR_TEXT]
        return ErrorBody(code=response.reason_phrase or str(response.status_code), message=text)


class PaletteClient(BlockingFacade):
    """A blocking facade over ``AsyncPaletteClient`` with the same methods and arguments.

    Calls run on an event loop in a background thread, so several threads may share one client.
    Use it as a context manager, or call ``close()``, to stop that thread.
    """

    def __init__(
        self,
        settings: PaletteSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self._client = AsyncPaletteClient(settings, transport=transport, sleep=sleep, clock=clock)
        super().__init__(self._client)

    @property
    def settings(self) -> PaletteSettings:
        return self._client.settings

    @property
    def currency(self) -> str:
        return self._client.currency

    def users_info(self) -> UserInfo:
        return self._portal.call(self._client.users_info)

    def projects(self) -> list[ProjectMetadata]:
        return self._portal.call(self._client.projects)

    def search_clusters(self, *, active_only: bool = False) -> list[ClusterSummary]:
        return self._portal.call(partial(self._client.search_clusters, active_only=active_only))

    def get_cluster(self, uid: str) -> Cluster:
        return self._portal.call(self._client.get_cluster, uid)

    def cluster_costs(
        self,
        start: datetime | date,
        end: datetime | date,
        period_minutes: int = 1440,
        projects: list[str] | None = None,
    ) -> CloudCostSummary:
        call = partial(self._client.cluster_costs, start, end, period_minutes, projects)
        return self._portal.call(call)

    def namespace_costs(
        self,
        start: datetime | date,
        end: datetime | date,
        clusters: list[str] | None = None,
        period_minutes: int = 1440,
    ) -> ResourceCostSummary:
        call = partial(self._client.namespace_costs, start, end, clusters, period_minutes)
        return self._portal.call(call)

    def namespace_labels(
        self, cluster_uid: str, namespaces: list[str] | None = None
    ) -> list[WorkloadNamespace]:
        return self._portal.call(self._client.namespace_labels, cluster_uid, namespaces)

    def resource_consumption(
        self,
        start: datetime | date,
        end: datetime | date,
        *,
        group_by: str = "namespace",
        clusters: list[str] | None = None,
        period_minutes: int = 60,
    ) -> ResourceConsumption:
        call = partial(
            self._client.resource_consumption,
            start,
            end,
            group_by=group_by,
            clusters=clusters,
            period_minutes=period_minutes,
        )
        return self._portal.call(call)

    def namespace_quotas(self, cluster_uid: str) -> list[NamespaceConfig]:
        return self._portal.call(self._client.namespace_quotas, cluster_uid)

    def cloud_config(self, cloud_type: str, config_uid: str) -> CloudConfig:
        return self._portal.call(self._client.cloud_config, cloud_type, config_uid)

    def cluster_rate(self, uid: str, period: RatePeriod = "hourly") -> ClusterRate:
        return self._portal.call(self._client.cluster_rate, uid, period)

    def what_if_rate(
        self, cloud: str, body: dict[str, Any], period: RatePeriod = "hourly"
    ) -> ClusterRate:
        return self._portal.call(self._client.what_if_rate, cloud, body, period)

    def workspaces(self) -> DashboardWorkspaces:
        return self._portal.call(self._client.workspaces)

    def component_events(
        self, cluster_uid: str, *, since: datetime | date | None = None
    ) -> list[ComponentEvent]:
        call = partial(self._client.component_events, cluster_uid, since=since)
        return self._portal.call(call)
