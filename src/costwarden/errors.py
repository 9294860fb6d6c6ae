"""The costwarden exception tree.

Every error raised on purpose derives from ``CostwardenError``. Each class carries the CLI exit
code and the HTTP status it maps to, as the ``exit_code`` and ``http_status`` attributes.

    CostwardenError
    ├── ConfigError               invalid settings or budget file              exit 2
    │   ├── BudgetFileError
    │   └── PolicyFileError       a policy file that does not parse or validate
    ├── InputError                a data file that cannot be ingested          exit 3
    │   ├── FocusFormatError
    │   ├── PriceNotFoundError    no list price for a cloud, region or instance type
    │   ├── CalendarFileError     a calendar of scheduled jobs that does not parse or validate
    │   └── WebhookPayloadError   a signed webhook event with an invalid type or data
    ├── SourceError               an upstream API failed                       exit 4
    │   ├── PaletteError
    │   │   ├── PaletteAuthError      401 or 403
    │   │   ├── PaletteRateLimitError 429 after every retry
    │   │   └── PaletteApiError       any other error status or transport failure
    │   └── PrometheusError
    │       ├── PrometheusAuthError      401 or 403
    │       ├── PrometheusRateLimitError 429 after every retry
    │       ├── PrometheusQueryError     the server rejected or could not run a query (400, 422)
    │       └── PrometheusApiError       any other error status, transport failure or bad response
    │           └── PrometheusTimeoutError  the request timed out on every attempt
    ├── StoreError                the database could not be opened or migrated exit 5
    ├── ForecastError             a forecast could not be computed            exit 6
    ├── DeliveryError             a notification channel refused or failed    exit 7
    │   ├── RetryableDeliveryError    429, 5xx or a transport failure: try again later
    │   └── PermanentDeliveryError    any other refusal: retrying cannot help
    ├── CallbackError             an inbound approval callback that fails its checks HTTP 401
    ├── GovernanceError           policy or approvals do not allow a change    exit 8, HTTP 403
    │   ├── ActionNotAllowedError     the production guard refused the run
    │   └── ApprovalError             a forged, expired, reused or mismatched approval
    │       └── ApprovalTokenReusedError  a token used a second time              HTTP 409
    ├── ActionError               an action failed while reading or changing  exit 9, HTTP 502
    │   ├── StaleStateError           the resource changed since the recommendation HTTP 409
    │   ├── KubernetesError           a Kubernetes API call failed, or a kubeconfig is invalid
    │   ├── RepositoryError           a Git hosting API or git command failed
    │   └── FileEditError             a repository file has no literal value at a key path
    ├── AuditIntegrityError       the audit trail does not verify             exit 11
    └── ApiError                  a REST API request that cannot be served    HTTP 400
        ├── AuthenticationError       missing or invalid credentials          HTTP 401
        ├── PermissionDeniedError     the caller's role is too low            HTTP 403
        ├── NotFoundError                                                     HTTP 404
        ├── ConflictError                                                     HTTP 409
        ├── PreconditionFailedError   If-Match does not match the version     HTTP 412
        ├── PayloadTooLargeError      body larger than service.max_body_bytes HTTP 413
        ├── UnsupportedMediaTypeError                                         HTTP 415
        ├── ImportRowsError           budget import rows that do not validate HTTP 422
        └── UnavailableError          the OIDC key set cannot be fetched      HTTP 503
"""

from __future__ import annotations

from pathlib import Path


class CostwardenError(Exception):
    """Base class of every error costwarden raises on purpose."""

    exit_code = 1
    http_status = 500


class ConfigError(CostwardenError):
    """Invalid configuration: a setting, flag or environment variable."""

    exit_code = 2
    http_status = 400


class BudgetFileError(ConfigError):
    """A budget file that does not parse or validate.

    ``problems`` lists every validation problem (``budget``, ``field``, ``value``, ``message``)
    when the file's schema validation found them; otherwise it is None.
    """

    problems: list[dict[str, object]] | None = None

    def __init__(
        self,
        path: Path | str,
        message: str,
        budget: str | None = None,
        *,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.path = str(path)
        self.budget = budget
        self.field = field
        self.value = value
        where = f"{self.path}, budget {budget!r}" if budget else self.path
        super().__init__(f"{where}: {message}")


class InputError(CostwardenError):
    """A data file that cannot be ingested; nothing from it was committed."""

    exit_code = 3
    http_status = 422


class FocusFormatError(InputError):
    """A FOCUS export that breaks the specification in a way that stops ingestion.

    ``line`` is a CSV line number (the header is line 1); ``row`` is a Parquet row number.
    """

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        value: object = None,
        row: int | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.row = row
        self.column = column
        self.value = value
        parts = [self.path]
        if line is not None:
            parts.append(f"line {line}")
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column}")
        if value is not None:
            parts.append(f"value {value!r}")
        super().__init__(f"{', '.join(parts)}: {message}")


class PriceNotFoundError(InputError):
    """No list price for a cloud, region, instance type or capacity type in the price catalogue."""

    def __init__(
        self,
        message: str,
        *,
        cloud: str,
        region: str | None = None,
        instance_type: str | None = None,
        capacity_type: str | None = None,
    ) -> None:
        self.cloud = cloud
        self.region = region
        self.instance_type = instance_type
        self.capacity_type = capacity_type
        super().__init__(message)


class CalendarFileError(InputError):
    """A calendar of scheduled jobs (iCalendar or CSV) that does not parse or validate.

    ``line`` is a CSV line number (the header is line 1). ``event`` names an iCalendar VEVENT by
    its UID and SUMMARY. ``field`` is the CSV column or the iCalendar property.
    """

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        line: int | None = None,
        event: str | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.event = event
        self.field = field
        self.value = value
        parts = [self.path]
        if line is not None:
            parts.append(f"line {line}")
        if event is not None:
            parts.append(f"event {event}")
        if field is not None:
            parts.append(f"field {field}")
        if value is not None:
            parts.append(f"value {value!r}")
        super().__init__(f"{', '.join(parts)}: {message}")


class SourceError(CostwardenError):
    """An upstream API failed."""

    exit_code = 4
    http_status = 502


class PaletteError(SourceError):
    """A call to the Palette API failed."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.code = code
        super().__init__(message)


class PaletteAuthError(PaletteError):
    """Palette rejected the API key (401) or its scope (403)."""


class PaletteRateLimitError(PaletteError):
    """Palette returned 429 on every retry."""


class PaletteApiError(PaletteError):
    """Palette returned another error status, or the connection failed."""


class PrometheusError(SourceError):
    """A call to the Prometheus HTTP API failed.

    ``query`` is the PromQL expression or series selector sent, ``status`` the HTTP status, and
    ``error_type`` the ``errorType`` of Prometheus' error body (``bad_data``, ``execution``,
    ``timeout``, ...) or the name of the transport error.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        query: str | None = None,
        status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        self.path = path
        self.query = query
        self.status = status
        self.error_type = error_type
        super().__init__(message)


class PrometheusAuthError(PrometheusError):
    """Prometheus, or the proxy in front of it, rejected the credentials (401) or access (403)."""


class PrometheusRateLimitError(PrometheusError):
    """Prometheus, or the proxy in front of it, returned 429 on every retry."""


class PrometheusQueryError(PrometheusError):
    """Prometheus rejected a query as invalid (400 ``bad_data``) or failed to run it (422)."""


class PrometheusApiError(PrometheusError):
    """Prometheus returned another error status or an unreadable body, or the connection failed."""


class PrometheusTimeoutError(PrometheusApiError):
    """A request to Prometheus timed out on every attempt."""


class WebhookPayloadError(InputError):
    """A verified webhook event whose type or data is invalid; none of its data was ingested.

    ``record`` is the index of the invalid entry in ``data.records``, ``field`` the path of the
    invalid field inside the event's ``data`` and ``value`` the value received.
    """

    def __init__(
        self,
        message: str,
        *,
        record: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.record = record
        self.field = field
        self.value = value
        super().__init__(message)


class StoreError(CostwardenError):
    """The database could not be opened, migrated or written."""

    exit_code = 5
    http_status = 503


class ForecastError(CostwardenError):
    """A forecast could not be computed for a scope."""

    exit_code = 6
    http_status = 500


class DeliveryError(CostwardenError):
    """A notification channel did not take a message.

    ``channel`` is the configured channel name and ``status`` the HTTP status, when there was one.
    Messages never include the channel's secrets: URLs are reduced to their host.
    """

    exit_code = 7
    http_status = 502

    def __init__(self, message: str, *, channel: str, status: int | None = None) -> None:
        self.channel = channel
        self.status = status
        super().__init__(message)


class RetryableDeliveryError(DeliveryError):
    """A failure worth retrying: 429, a 5xx or a transport error.

    ``retry_after`` is the wait in seconds the service asked for, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        channel: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, channel=channel, status=status)


class PermanentDeliveryError(DeliveryError):
    """A refusal that a retry cannot fix: bad credentials, a deleted channel, an invalid body."""


class CallbackError(CostwardenError):
    """An inbound callback (Slack button, Teams link, Jira webhook) that fails verification."""

    exit_code = 3
    http_status = 401


class PolicyFileError(ConfigError):
    """A policy file that does not parse or validate; the message names file, policy and field."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        policy: str | None = None,
        *,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.path = str(path)
        self.policy = policy
        self.field = field
        self.value = value
        where = f"{self.path}, policy {policy!r}" if policy else self.path
        if field:
            where += f", field {field}"
        super().__init__(f"{where}: {message}")


class GovernanceError(CostwardenError):
    """Policies or approvals do not allow a change; nothing was changed."""

    exit_code = 8
    http_status = 403


class ActionNotAllowedError(GovernanceError):
    """The production guard refused to run an action; the message says which rule."""


class ApprovalError(GovernanceError):
    """An approval that cannot count: forged, expired, already used, for another change, or by
    someone outside the approver groups."""


class ApprovalTokenReusedError(ApprovalError):
    """An approval token that was already used once; each token works once."""

    http_status = 409


class ActionError(CostwardenError):
    """An action failed while reading the current state or applying a change."""

    exit_code = 9
    http_status = 502


class StaleStateError(ActionError):
    """The resource changed since the recommendation was made, so the action did not run."""

    http_status = 409


class KubernetesError(ActionError):
    """A call to a cluster's Kubernetes API failed, or its kubeconfig cannot be used.

    ``status`` is the HTTP status and ``reason`` the ``reason`` of Kubernetes' ``Status`` body
    (``NotFound``, ``Conflict``, ...), when there was a response.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        super().__init__(message)


class RepositoryError(ActionError):
    """A GitHub or GitLab API call, or a git command on a local repository, failed.

    ``repository`` is the name under ``actions.gitops.repositories`` and ``status`` the HTTP
    status, when there was one.
    """

    def __init__(self, message: str, *, repository: str, status: int | None = None) -> None:
        self.repository = repository
        self.status = status
        super().__init__(message)


class FileEditError(ActionError):
    """A repository file that does not parse, or has no single literal value at a key path."""


class AuditIntegrityError(CostwardenError):
    """The audit trail does not verify: an entry was edited, deleted or reordered."""

    exit_code = 11
    http_status = 500


class ApiError(CostwardenError):
    """A REST API request that cannot be served as sent; ``http_status`` is the response status.

    ``error_code`` is the stable code in the JSON error body.
    """

    http_status = 400
    error_code = "bad_request"


class AuthenticationError(ApiError):
    """The caller sent no credentials, or ones that are invalid or expired."""

    http_status = 401
    error_code = "unauthorized"


class PermissionDeniedError(ApiError):
    """The caller is known but its role does not allow the request."""

    http_status = 403
    error_code = "forbidden"


class NotFoundError(ApiError):
    """The requested budget, alert, anomaly or run does not exist."""

    http_status = 404
    error_code = "not_found"


class ConflictError(ApiError):
    """The request conflicts with stored state, such as a budget that already exists."""

    http_status = 409
    error_code = "conflict"


class PreconditionFailedError(ApiError):
    """An ``If-Match`` version no longer matches the stored one."""

    http_status = 412
    error_code = "precondition_failed"


class PayloadTooLargeError(ApiError):
    """A request body larger than ``service.max_body_bytes``."""

    http_status = 413
    error_code = "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    """A request body in a format the endpoint does not read."""

    http_status = 415
    error_code = "unsupported_media_type"


class ImportRowsError(ApiError):
    """Rows of a budget import that do not validate; nothing was imported.

    ``problems`` lists each one as a dict with ``row``, ``budget``, ``field``, ``value`` and
    ``message``.
    """

    http_status = 422
    error_code = "invalid_budget"

    def __init__(self, problems: list[dict[str, object]]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]['message']}{more}; nothing was imported")


class UnavailableError(ApiError):
    """A dependency of the request, such as the OIDC key set, could not be reached."""

    http_status = 503
    error_code = "unavailable"


ALERTS_FIRED_EXIT_CODE = 10
"""Exit code of ``costwarden run --fail-on-alert`` when at least one alert fired."""
