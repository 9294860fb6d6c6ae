"""Typed settings, built once at the entry point and passed down.

Precedence, highest first: CLI flags (passed as keyword arguments), ``COSTWARDEN_*`` environment
variables, the YAML file named by ``--config`` or ``COSTWARDEN_CONFIG``, then the defaults below.
Nested settings use one underscore after the group in the environment, for example
``COSTWARDEN_PALETTE_API_KEY`` sets ``palette.api_key``.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import os
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from costwarden.errors import ConfigError
from costwarden.forecast.options import BatchOptions

# NOTE: Palette's API documentation does not describe console URLs; this path is unverified.
DEFAULT_UI_URL_TEMPLATE = (
    "https://console.spectrocloud.com/projects/{project_uid}/clusters/{cluster_uid}/overview"
)


class PaletteSettings(BaseModel):
    """How to reach the Palette API."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        "https://api.spectrocloud.com", description="Base URL of the Palette API, without /v1."
    )
    api_key: SecretStr | None = Field(None, description="Palette API key, sent as the ApiKey header.")
    project_uid: str | None = Field(
        None, description="Project uid sent as the ProjectUid header; tenant scope when unset."
    )
    timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one HTTP request, in seconds.")
    max_retries: int = Field(5, ge=0, description="Retries after a 429, a 5xx or a transport error.")
    backoff_base_seconds: float = Field(
        0.5, ge=0, description="First retry delay in seconds; it doubles each retry, with jitter."
    )
    backoff_max_seconds: float = Field(30.0, ge=0, description="Maximum retry delay, in seconds.")
    dashboard_rate_per_second: float = Field(
        8.0,
        gt=0,
        le=10,
        description="Client-side limit on /v1/dashboard calls, in requests per second "
        "(Palette allows 10).",
    )
    dashboard_burst: int = Field(
        4,
        ge=1,
        le=5,
        description="Burst size of that limit; Palette allows 5, and one less leaves room for "
        "requests that the network delivers together.",
    )
    currency: str = Field(
        "USD", min_length=3, max_length=3, description="ISO 4217 currency of Palette's cost figures."
    )
    history_days: int = Field(180, ge=1, description="Days of cost history fetched on the first run.")
    ui_url_template: str = Field(
        DEFAULT_UI_URL_TEMPLATE,
        description="Link to a cluster in the Palette console; {project_uid} and {cluster_uid} "
        "are filled in.",
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"{value!r} is not a valid URL ({exc})") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        return value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _printable_key(cls, value: SecretStr | None) -> SecretStr | None:
        """Strip surrounding whitespace (a key read from a file often ends in a newline).

        The key goes into an HTTP header, so the rest must be printable ASCII; the error does not
        repeat the key.
        """
        if value is None:
            return None
        key = value.get_secret_value().strip()
        if not key or not all(32 < ord(char) < 127 for char in key):
            raise ValueError(
                "the API key is empty or contains spaces, control or non-ASCII characters; "
                "copy it again from Palette (Profile > My API Keys)"
            )
        return SecretStr(key)


class FocusSettings(BaseModel):
    """The mapping of FOCUS billing export columns and tags to cost records."""

    model_config = ConfigDict(extra="forbid")

    cost_column: Literal["EffectiveCost", "BilledCost", "ListCost", "ContractedCost"] = Field(
        "EffectiveCost",
        description="FOCUS cost column used as the amount. FOCUS 1.0 to 1.2 define all four, and "
        "1.2 makes each of them mandatory and not null.",
    )
    cluster_tag_keys: list[str] = Field(
        default_factory=lambda: [
            "spectrocloud.com/cluster-name",
            "kubernetes.io/cluster-name",
            "eks:cluster-name",
            "aks-managed-cluster-name",
            "goog-k8s-cluster-name",
        ],
        description="Tag keys whose value names the cluster a row belongs to, first match wins.",
    )
    namespace_tag_keys: list[str] = Field(
        default_factory=lambda: ["k8s-namespace", "kubernetes.io/namespace", "namespace"],
        description="Tag keys whose value names the Kubernetes namespace of a row.",
    )


class ForecastSettings(BaseModel):
    """Spend forecasts: horizon, sample paths, history and the batched models' options."""

    model_config = ConfigDict(extra="forbid")

    min_horizon_days: int = Field(
        30, ge=1, description="Days forecast ahead at least, beyond the end of the budget period."
    )
    sample_paths: int = Field(2000, ge=100, description="Simulated sample paths per forecast.")
    seed: int = Field(0, description="Seed of the sample-path simulation, for repeatable runs.")
    min_history_days: int = Field(
        14, ge=2, description="Below this many days of history a simpler model is used."
    )
    history_days: int = Field(
        180, ge=14, description="Days of history the weekly models fit at most."
    )
    batch: BatchOptions = Field(
        default_factory=BatchOptions,
        description="Model choice, holdout, change points, month end, yearly regression and "
        "calibration of the batched forecaster.",
    )

    backtest_adjustment: bool = Field(
        True,
        description="Scale intervals by the latest adjustment that 'costwarden backtest "
        "--save-adjustment' stored for the cost source.",
    )

    @property
    def fetch_days(self) -> int:
        """Return the days of history a forecast reads: more when the yearly regression is on."""
        if self.batch.yearly:
            return max(self.history_days, self.batch.yearly_history_days)
        return self.history_days


class QuotaSettings(BaseModel):
    """Quota exhaustion forecasts: CPU, memory and GPU against Palette quotas and pool maximums."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Ingest Palette usage and quotas, and alert on projected quota breaches."
    )
    window_days: int = Field(
        5,
        ge=1,
        le=60,
        description="Alert when the median breach date falls within this many days, counting "
        "the day of the pass as day 1.",
    )
    critical_days: int = Field(
        2,
        ge=0,
        description="A projected breach within this many days, or usage already at the limit, "
        "is critical; later breaches in the window are warnings.",
    )
    usage_history_days: int = Field(
        28, ge=3, le=180, description="Days of usage history fetched on the first ingestion."
    )
    usage_period_minutes: int = Field(
        240,
        ge=60,
        le=1440,
        description="Length in minutes of the usage data points whose maximum is a day's peak; "
        "Palette requires at least 60.",
    )
    min_history_days: int = Field(
        3, ge=2, description="Minimum days of usage history needed to forecast a series."
    )


class AnomalySettings(BaseModel):
    """Cost and utilisation anomaly detection, run on every pass after ingestion."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Detect cost and utilisation anomalies on each pass.")
    lookback_days: int = Field(
        14,
        ge=1,
        le=60,
        description="Complete UTC days before the pass that are checked, the last one included.",
    )
    baseline_days: int = Field(
        28,
        ge=14,
        le=182,
        multiple_of=7,
        description="Days before each checked day whose median level and spread give the "
        "expected value; a multiple of 7.",
    )
    season_weeks: int = Field(
        8, ge=2, le=26, description="Weeks before each checked day that give the weekday pattern."
    )
    min_history_days: int = Field(
        21,
        ge=7,
        description="Days with data, within the baseline window, that a scope needs before one "
        "of its days is judged.",
    )
    z_threshold: float = Field(
        5.0,
        gt=0,
        description="Robust z-score (excess over the expected value, in units of the baseline's "
        "MAD scale) at which an anomaly opens.",
    )
    continue_z: float = Field(
        2.5,
        gt=0,
        description="Robust z-score, against the baseline frozen at the first anomalous day, "
        "above which later days still belong to the anomaly.",
    )
    min_impact_per_day: Decimal = Field(
        Decimal("50"),
        ge=0,
        description="Smallest excess over the expected daily cost that is flagged, in the Palette "
        "currency, so that small scopes do not page people.",
    )
    min_percent: float = Field(
        0.2, ge=0, description="Smallest excess flagged, as a share of the expected daily cost."
    )
    critical_impact_per_day: Decimal = Field(
        Decimal("1000"),
        ge=0,
        description="Excess per day, in the Palette currency, from which an anomaly is critical.",
    )
    level_shift_min_days: int = Field(
        3,
        ge=2,
        description="Consecutive anomalous days after which a rise is a level shift (a new "
        "normal) instead of a spike.",
    )
    scale_floor: float = Field(
        0.02,
        ge=0,
        description="Smallest noise scale, as a share of the level, so that a flat series does "
        "not turn cent-sized changes into huge scores.",
    )
    scopes: list[Literal["cluster", "namespace", "project", "profile", "label", "cloud"]] = Field(
        default_factory=lambda: ["cluster", "namespace", "project", "profile", "label", "cloud"],
        description="Kinds of scope checked. Groups (project, profile, label, cloud) are checked "
        "only when they contain at least two clusters.",
    )
    label_keys: list[str] | None = Field(
        None,
        description="Cluster label keys that form label scopes; every key when unset.",
    )
    related_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A group anomaly is listed under its clusters' anomalies, instead of "
        "alerting on its own, when they carry at least this share of its excess.",
    )
    max_contributors: int = Field(5, ge=1, description="Contributors kept per dimension.")
    utilisation: bool = Field(
        True, description="Also check CPU, memory and GPU usage series for anomalies."
    )
    cpu_saturation: float = Field(
        0.9,
        gt=0,
        le=1,
        description="CPU use that counts as near 100%: the cluster's CPU peak over its worker "
        "cores, or, when the cores are not known, the namespace's CPU over its quota.",
    )
    utilisation_score: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="Score in [0, 1] from the usage detector at which a usage rise counts.",
    )
    sustained_days: int = Field(
        3, ge=1, description="Days a usage rise must last to be reported as sustained."
    )


class SpotDiscountSettings(BaseModel):
    """A Spot discount for one provider, with where the figure comes from and its date."""

    model_config = ConfigDict(extra="forbid")

    discount: Decimal = Field(
        gt=0,
        lt=1,
        description="Fraction of the on-demand price that Spot saves; 0.7 means Spot costs 30 % "
        "of on-demand.",
    )
    source: str = Field(min_length=1, description="Origin of the figure, shown with every price.")
    published: date = Field(description="Date of the figure (ISO 8601).")


class RecommendSettings(BaseModel):
    """The savings recommenders that run, their options, and the usage history they read."""

    model_config = ConfigDict(extra="forbid")

    enabled: list[str] | None = Field(
        None, description="Registry names of the recommenders to run; unset runs every one."
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Options per recommender name, validated by that recommender's settings.",
    )
    window_days: int = Field(7, ge=1, le=90, description="Days of usage metrics read.")
    min_history_days: int = Field(
        7,
        ge=1,
        le=90,
        description="Days of metrics a workload, node or volume needs before it gets a "
        "recommendation; at most window_days.",
    )
    spot_discounts: dict[Literal["aws", "azure", "gcp"], SpotDiscountSettings] = Field(
        default_factory=dict,
        description="Spot discount per provider. A provider not listed uses OpenCost's default "
        "Spot-to-on-demand vCPU price ratio (about 0.79 off on AWS and GCP, 0.80 on Azure), a "
        "typical figure and not a quote.",
    )
    use_palette: bool = Field(
        True,
        description="Read machine pools and rate prices from Palette when palette.api_key is "
        "set; Palette's prices then win over the packaged lists.",
    )
    in_run: bool = Field(
        True, description="Run the recommenders in every pass of costwarden run."
    )
    alert_actions: int = Field(
        5,
        ge=0,
        le=50,
        description="Recommendations attached to each budget alert as recommended_actions.",
    )

    @model_validator(mode="after")
    def _history_within_window(self) -> RecommendSettings:
        if self.min_history_days > self.window_days:
            raise ValueError(
                f"min_history_days ({self.min_history_days}) must not exceed window_days "
                f"({self.window_days})"
            )
        return self


LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
"""A Prometheus label name."""


class PrometheusSettings(BaseModel):
    """Access to the Prometheus HTTP API that stores container, node and GPU metrics."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        description="Base URL of the Prometheus HTTP API, without /api/v1, for example "
        "http://prometheus.monitoring:9090; unset leaves the source unconfigured.",
    )
    bearer_token: SecretStr | None = Field(
        None, description="Token sent as 'Authorization: Bearer'; not together with a password."
    )
    username: str | None = Field(None, description="User name for HTTP basic authentication.")
    password: SecretStr | None = Field(None, description="Password for HTTP basic authentication.")
    verify_tls: bool = Field(True, description="Check the server's TLS certificate.")
    timeout_seconds: float = Field(
        60.0, gt=0, description="Timeout of one HTTP request, in seconds."
    )
    max_retries: int = Field(
        3, ge=0, description="Retries after a 429, a 5xx, a timeout or another transport error."
    )
    backoff_base_seconds: float = Field(
        0.5, ge=0, description="First retry delay in seconds; it doubles each retry, with jitter."
    )
    backoff_max_seconds: float = Field(
        30.0, ge=0, description="Maximum retry delay in seconds, also the cap on Retry-After."
    )
    max_series_per_query: int = Field(
        2000,
        ge=1,
        description="Series one query may return; queries over more namespaces are split by "
        "namespace. 2000 series of a 7-day subquery at a 5-minute step hold about 4 million "
        "points, well below Prometheus' default --query.max-samples of 50 million.",
    )
    max_points_per_query: int = Field(
        11000,
        ge=2,
        le=11000,
        description="Points per series in one range query; longer ranges are split in time. "
        "Prometheus rejects range queries of more than 11,000 points per series.",
    )
    step_seconds: int = Field(
        300, ge=1, description="Resolution of range queries and subqueries, in seconds."
    )
    rate_window_seconds: int = Field(
        300,
        ge=1,
        description="Window of rate() and increase() over counters, in seconds; at least four "
        "times the scrape interval.",
    )
    concurrency: int = Field(4, ge=1, le=64, description="Queries sent to Prometheus at once.")
    cluster_label: str = Field(
        "cluster",
        description="Label that names the cluster of each series; series without it belong to "
        "the cluster named ''.",
    )
    node_exporter_node_label: str = Field(
        "instance",
        description="Label of node-exporter series that contains the node name (kube-prometheus "
        "relabels instance to it).",
    )
    dcgm_node_label: str = Field(
        "Hostname", description="Label of DCGM exporter series that contains the node name."
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"{value!r} is not a valid URL ({exc})") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        return value.rstrip("/")

    @field_validator("cluster_label", "node_exporter_node_label", "dcgm_node_label")
    @classmethod
    def _valid_label_name(cls, value: str) -> str:
        if not LABEL_NAME.match(value):
            raise ValueError(f"{value!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        return value

    @model_validator(mode="after")
    def _one_kind_of_auth(self) -> PrometheusSettings:
        if self.bearer_token is not None and (self.username or self.password):
            raise ValueError("set either bearer_token or username and password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic authentication needs both username and password")
        return self


class ApiKeySettings(BaseModel):
    """One API key that callers send in the ``X-API-Key`` header or as a bearer token."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Name of the key's owner, logged with each call.")
    key: SecretStr | None = Field(None, description="The key itself (prefer sha256).")
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the key."
    )
    role: Literal["read", "admin"] = Field("read", description="read: GET only; admin: all calls.")

    @model_validator(mode="after")
    def _one_form(self) -> ApiKeySettings:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("set exactly one of 'key' or 'sha256'")
        return self


class OidcSettings(BaseModel):
    """Bearer tokens (JWTs) from an OpenID Connect provider, checked against its JWKS."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(description="Expected 'iss' claim, e.g. https://login.example.com/.")
    audience: str = Field(description="Expected 'aud' claim.")
    jwks_url: str = Field(description="URL of the provider's JSON Web Key Set.")
    roles_claim: str = Field("groups", description="Claim holding the caller's groups or roles.")
    admin_values: list[str] = Field(
        default_factory=list, description="Values of that claim that grant the admin role."
    )
    read_values: list[str] = Field(
        default_factory=list,
        description="Values that grant the read role; empty: every valid token may read.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"], description="Accepted signing algorithms."
    )
    leeway_seconds: int = Field(60, ge=0, description="Clock skew allowed on exp and nbf, seconds.")
    jwks_cache_seconds: int = Field(
        300, ge=0, description="How long the key set is cached, in seconds."
    )


SCHEDULE_OFF_WORDS = frozenset({"", "off", "null", "none"})
"""Values of service.schedule, in any case, that turn the schedule off."""


class ServiceSettings(BaseModel):
    """``costwarden serve``: the HTTP service, its scheduler, callers and inbound webhooks."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 in a container.")
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    schedule: str | None = Field(
        "0 6 * * *",
        description="Cron expression (UTC) of the scheduled passes; null turns the schedule off "
        "(in the environment: off, null, none or an empty value).",
    )
    run_on_start: bool = Field(False, description="Start a pass as soon as the service is up.")
    tenant: str = Field(
        "default",
        min_length=1,
        max_length=200,
        description="Name of the tenant whose passes never overlap, across all replicas.",
    )
    lease_seconds: int = Field(
        120,
        ge=10,
        description="A replica running a pass renews its lease this often / 3; a lease not renewed "
        "for this long is taken over, in seconds.",
    )
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, wait this long for a running pass, in seconds."
    )
    migrate_on_start: bool = Field(True, description="Apply database migrations at start.")
    db_pool_size: int = Field(5, ge=1, description="PostgreSQL connections kept open.")
    db_max_overflow: int = Field(10, ge=0, description="Extra PostgreSQL connections under load.")
    db_pool_timeout_seconds: float = Field(
        30.0, gt=0, description="Wait for a free connection before failing, in seconds."
    )
    api_keys: list[ApiKeySettings] = Field(
        default_factory=list, description="API keys accepted from callers."
    )
    oidc: OidcSettings | None = Field(None, description="OIDC bearer tokens; off when unset.")
    palette_webhook_secret: SecretStr | None = Field(
        None,
        description="Shared secret that Palette alert channels send in palette_webhook_header; "
        "/webhooks/palette answers 404 when unset.",
    )
    palette_webhook_header: str = Field(
        "X-Costwarden-Token", description="Header that carries the shared secret."
    )
    webhook_dedupe_seconds: int = Field(
        600, ge=0, description="Identical Palette webhook bodies within this window count once."
    )
    refresh_days: int = Field(
        3, ge=1, le=31, description="Days of cost data a webhook-triggered refresh fetches again."
    )
    event_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Standard Webhooks secrets (whsec_...) for /webhooks/events; several allow "
        "rotation. The endpoint answers 404 when empty.",
    )
    event_tolerance_seconds: int = Field(
        300, ge=1, description="Accepted age of a signed event's webhook-timestamp, in seconds."
    )
    max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest request body accepted by webhooks and API writes, in bytes.",
    )

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_off(cls, value: Any) -> Any:
        # The environment has no null: COSTWARDEN_SERVICE_SCHEDULE=off (or null, none, empty).
        if isinstance(value, str) and value.strip().lower() in SCHEDULE_OFF_WORDS:
            return None
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a cron expression; use five fields, e.g. '0 6 * * *' for "
                "06:00 UTC daily"
            )
        return value

    @field_validator("event_secrets")
    @classmethod
    def _valid_event_secrets(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        """Check that each secret is base64 after an optional whsec_ prefix; the error hides it."""
        import binascii

        from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

        for index, secret in enumerate(secrets):
            try:
                Webhook(secret.get_secret_value())
            except (binascii.Error, EmptyWebhookSecretError) as exc:
                raise ValueError(
                    f"secret {index} is not 'whsec_' followed by base64 of random bytes; "
                    "generate one with: python -c \"import base64, os; "
                    "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
                ) from exc
        return secrets


MIN_LINK_SECRET_BYTES = 32
NOTICE_KINDS = ("budget", "anomaly", "quota", "recommendation", "rollback")
SEVERITIES = ("info", "warning", "critical")


class RouteSettings(BaseModel):
    """One routing rule: alerts that match every given condition go to its channels.

    A channel name may hold a ``{label}`` placeholder filled from the alert's scope labels, so
    ``slack-{team}`` sends a ``team=payments`` alert to the channel named ``slack-payments``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Name of the rule, shown in delivery records.")
    kinds: list[Literal["budget", "anomaly", "quota", "recommendation", "rollback"]] | None = Field(
        None, description="Alert kinds the rule takes; all when unset."
    )
    min_severity: Literal["info", "warning", "critical"] = Field(
        "info", description="Lowest severity the rule takes."
    )
    budgets: list[str] | None = Field(
        None, description="Budget name patterns (shell globs such as prod-*); all when unset."
    )
    labels: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Scope labels that must match, e.g. {env: production, team: [a, b]}; "
        "'*' means the label is present.",
    )
    channels: list[str] = Field(min_length=1, description="Channel names to send to.")
    stop: bool = Field(False, description="Skip the rules after this one when it matches.")

    @field_validator("channels")
    @classmethod
    def _balanced_braces(cls, value: list[str]) -> list[str]:
        for channel in value:
            rest = re.sub(r"\{[^{}]+\}", "", channel)
            if "{" in rest or "}" in rest:
                raise ValueError(
                    f"channel {channel!r} has an unbalanced or empty brace; a placeholder is "
                    "{label}, as in slack-{team}"
                )
        return value


class NoiseSettings(BaseModel):
    """When an alert is sent again, grouped into a digest or resolved."""

    model_config = ConfigDict(extra="forbid")

    probability_change: float = Field(
        0.10, ge=0, le=1, description="Exceedance probability change that re-notifies (absolute)."
    )
    breach_date_shift_days: int = Field(
        3, ge=0, description="Days the predicted breach date must move to re-notify."
    )
    overspend_change: float = Field(
        0.20, ge=0, description="Relative change of the expected overspend that re-notifies."
    )
    digest_below: Literal["info", "warning", "critical"] | None = Field(
        "warning",
        description="Alerts below this severity go to a daily digest instead; unset sends all.",
    )
    digest_time: str = Field("08:00", description="Local time of the daily digest, HH:MM.")
    digest_timezone: str = Field("UTC", description="IANA time zone of digest_time.")
    resolve_notices: bool = Field(
        True, description="Send a resolve notice when an alert that was sent goes away."
    )
    snooze_hours: int = Field(
        24,
        ge=1,
        le=720,
        description="Hours a snooze from an approval link (Teams, email) lasts unless the page "
        "picks another; Slack channels set their own snooze_hours.",
    )

    @field_validator("digest_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a time of day as HH:MM, e.g. 08:00")
        return value

    @field_validator("digest_timezone")
    @classmethod
    def _known_digest_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from None
        return value


class DeliverySettings(BaseModel):
    """How the delivery worker sends outbox rows and when it gives up on one."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(
        12, ge=1, description="Attempts before a row moves to the dead-letter state."
    )
    max_age_hours: float = Field(
        72.0,
        gt=0,
        description="Hours after which a row that failed at least once and is still not "
        "delivered moves to dead-letter, checked on every worker scan.",
    )
    backoff_base_seconds: float = Field(
        5.0, ge=0, description="First retry delay; it doubles per attempt, with jitter."
    )
    backoff_max_seconds: float = Field(3600.0, ge=0, description="Maximum retry delay.")
    retry_after_max_seconds: float = Field(
        3600.0,
        gt=0,
        le=86400,
        description="Maximum wait that a receiver's Retry-After header can request; a longer one, "
        "or an HTTP date further ahead, waits this long. It also bounds how long the channel "
        "pauses.",
    )
    poll_seconds: float = Field(1.0, gt=0, description="Worker wait between outbox scans.")
    batch_size: int = Field(200, ge=1, description="Rows the worker claims per scan.")
    concurrency: int = Field(
        8, ge=1, le=64, description="Channels the worker sends to at the same time."
    )
    approval_poll_minutes: float = Field(
        5.0, gt=0, description="Minutes between reads of ticket approval states (ServiceNow)."
    )


class NotifySettings(BaseModel):
    """Notification channels, routing rules, noise control and delivery."""

    model_config = ConfigDict(extra="forbid")

    public_url: str | None = Field(
        None,
        description="Base URL of the service as people reach it; messages link the full alert "
        "and signed approval links here.",
    )
    link_secret: SecretStr | None = Field(
        None,
        description="Key that signs approval links (Teams, email); a literal, {env: NAME} or "
        "{file: PATH}. Links are off when unset.",
    )
    link_ttl_hours: int = Field(24, ge=1, le=168, description="Hours an approval link is valid.")
    owner_labels: list[str] = Field(
        default_factory=lambda: ["owner", "team"],
        description="Scope labels whose values name the owners shown in messages.",
    )
    channels: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Channels by name; each has a type and that type's settings "
        "(see the channel sections below).",
    )
    routes: list[RouteSettings] = Field(
        default_factory=list, description="Routing rules, tried in order."
    )
    recommendation_severity: Literal["info", "warning", "critical"] = Field(
        "info", description="Severity of recommendation notices."
    )
    recommendation_min_savings_per_month: Decimal = Field(
        Decimal("0"),
        ge=0,
        description="Savings per month, in the report's currency, below which a recommendation "
        "gets no notice.",
    )
    noise: NoiseSettings = Field(
        default_factory=NoiseSettings, description="Deduplication, digests and resolve notices."
    )
    delivery: DeliverySettings = Field(
        default_factory=DeliverySettings, description="Retries, dead letters and worker pacing."
    )

    @field_validator("link_secret", mode="before")
    @classmethod
    def _secret_reference(cls, value: Any) -> Any:
        from costwarden.notify.secrets import _resolve

        value = _resolve(value)
        if isinstance(value, str):
            size = len(value.strip().encode())
            if size == 0:
                raise ValueError(
                    "is empty; remove it to turn approval links off, or set at least "
                    f"{MIN_LINK_SECRET_BYTES} random bytes"
                )
            if size < MIN_LINK_SECRET_BYTES:
                raise ValueError(
                    f"is {size} bytes long; it signs approval links, so use at least "
                    f"{MIN_LINK_SECRET_BYTES} random bytes, e.g. the output of "
                    "'openssl rand -hex 32'"
                )
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "is not an http(s) URL; give the base URL people reach the service at, "
                "e.g. https://costwarden.example.com"
            )
        return value

    @model_validator(mode="after")
    def _known_channels(self) -> NotifySettings:
        from costwarden.notify import CHANNELS

        if self.link_secret is not None and not self.public_url:
            logging.getLogger("costwarden.notify").warning(
                "notify.link_secret is set but notify.public_url is not: Teams cards and "
                "emails carry no approval links; Slack buttons still work. Set "
                "notify.public_url to turn links on"
            )

        for name, options in self.channels.items():
            try:
                CHANNELS.validate(name, options)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        for route in self.routes:
            for channel in route.channels:
                if "{" not in channel and channel not in self.channels:
                    raise ValueError(
                        f"route {route.name!r} sends to channel {channel!r}, which "
                        f"notify.channels does not define"
                    )
        return self


class PolicySettings(BaseModel):
    """Policy files, the tenant-wide mode and what marks a scope as production."""

    model_config = ConfigDict(extra="forbid")

    paths: list[Path] = Field(
        default_factory=list,
        description="Policy files, or directories whose *.yaml and *.yml files are policy files.",
    )
    mode: Literal["monitor", "approve", "auto"] = Field(
        "monitor",
        description="Tenant-wide mode that caps every policy (the rollout phase): monitor, "
        "approve or auto.",
    )
    production_selectors: list[str] = Field(
        default_factory=lambda: ["env=production", "env=prod"],
        description="Label selectors that mark a scope as production; a production scope never "
        "runs an action without an approval.",
    )
    production_min_approvals: int = Field(
        1, ge=1, le=5, description="Approvals, from different people, a production change needs."
    )


class ApprovalSettings(BaseModel):
    """Approval requests: how long they stay open and who belongs to which approver group."""

    model_config = ConfigDict(extra="forbid")

    ttl_hours: int = Field(
        72, ge=1, le=720, description="Hours an approval request and its tokens stay valid."
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Approver groups by name; members are the identities channels report "
        "(email, Slack user id, Jira account id) or API key names.",
    )
    people: dict[str, list[str]] = Field(
        default_factory=dict,
        description="People by name, each with the identities they use on the channels (Slack "
        "user id, email, Jira account id, API key name); approvals from identities of one "
        "person count once.",
    )
    links_count_for_production: bool = Field(
        False,
        description="Whether approvals from signed links (a bearer token and a typed name) count "
        "toward the approvals a production scope needs.",
    )

    @model_validator(mode="after")
    def _one_person_per_identity(self) -> ApprovalSettings:
        owners: dict[str, str] = {}
        for person, identities in self.people.items():
            for identity in [person, *identities]:
                folded = identity.strip().casefold()
                owner = owners.setdefault(folded, person)
                if owner != person:
                    raise ValueError(
                        f"approvals.people: identity {identity!r} is listed under both "
                        f"{owner!r} and {person!r}; list each identity under one person"
                    )
        return self


class AuditSettings(BaseModel):
    """The hash-chained audit trail."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int | None = Field(
        None, ge=1, description="Days entries are kept; unset keeps every entry."
    )


class GitOpsFileSettings(BaseModel):
    """A file in a GitOps repository that holds cluster settings, and how to find a value in it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        description="Path from the repository root, a template with {cluster}, {cluster_uid}, "
        "{project}, {cloud} and {namespace}, e.g. clusters/{cluster}/profile.yaml or "
        "terraform/{cluster}.tfvars."
    )
    format: Literal["auto", "yaml", "hcl"] = Field(
        "auto",
        description="File format; auto picks hcl for .tf and .tfvars and yaml for .yaml and .yml.",
    )
    pool_key: str | None = Field(
        None,
        description="Key path of a machine pool field, a template with {pool} and {field}, e.g. "
        "machinePools[name={pool}].{field} or machine_pool[name={pool}].{field}. Needed for "
        "changes that name a pool instead of key paths.",
    )
    pool_fields: dict[Literal["size", "instance_type", "capacity_type"], str] = Field(
        default_factory=lambda: {
            "size": "size",
            "instance_type": "instanceType",
            "capacity_type": "capacityType",
        },
        description="Key that holds each machine pool field in this file, inserted as {field}.",
    )


class GitOpsRepositorySettings(BaseModel):
    """A repository that the gitops.pull_request action opens pull or merge requests in."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["github", "gitlab", "local"] = Field(
        description="github (REST API), gitlab (REST API v4) or local (a git repository on disk, "
        "where the branch stands in for the pull request)."
    )
    api_url: str | None = Field(
        None,
        description="API base URL; default https://api.github.com for github and "
        "https://gitlab.com/api/v4 for gitlab. Set it for GitHub Enterprise or self-managed "
        "GitLab.",
    )
    repository: str = Field(
        description="owner/name on GitHub; the numeric project id or group/project path on "
        "GitLab; the directory of the repository for local."
    )
    token: SecretStr | None = Field(
        None,
        description="API token (GitHub: contents and pull requests write; GitLab: api scope); "
        "a literal, {env: NAME} or {file: PATH}. Not used by local.",
    )
    base_branch: str | None = Field(
        None, description="Branch that pull requests target; default the repository's default."
    )
    branch_prefix: str = Field(
        "costwarden/", description="Prefix of the branch created for each recommendation."
    )
    files: dict[str, GitOpsFileSettings] = Field(
        default_factory=dict,
        description="Files by name, e.g. profile or terraform; an action names one, or uses the "
        "only one.",
    )
    labels: list[str] = Field(
        default_factory=lambda: ["costwarden"], description="Labels of new pull requests."
    )
    clusters: list[str] = Field(
        default_factory=list,
        description="Cluster name patterns (shell globs such as prod-*) whose machine pools this "
        "repository defines. A pass proposes their pool changes as gitops.pull_request here "
        "instead of Palette API calls, which the next GitOps sync would revert. Needs exactly "
        "one file with a pool_key.",
    )
    author_name: str = Field("costwarden", description="Author and committer name of commits.")
    author_email: str = Field(
        "costwarden@localhost", description="Author and committer email of commits."
    )
    timeout_seconds: float = Field(15.0, gt=0, description="Timeout of one API request.")
    max_retries: int = Field(
        3, ge=0, le=10, description="Retries of a request after 429, a rate-limit 403 or a 5xx."
    )
    max_retry_wait_seconds: float = Field(
        60.0,
        ge=0,
        description="Maximum wait before a retry; a longer Retry-After or rate-limit reset fails "
        "the action instead of blocking it.",
    )

    @field_validator("token", mode="before")
    @classmethod
    def _secret_reference(cls, value: Any) -> Any:
        from costwarden.notify.secrets import _resolve

        return _resolve(value)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL such as https://api.github.com")
        return value.rstrip("/") if value else value

    @property
    def pool_file(self) -> str | None:
        """Name of the file that contains machine pool values: the only one with a pool_key."""
        names = [name for name, file in self.files.items() if file.pool_key is not None]
        return names[0] if len(names) == 1 else None

    @model_validator(mode="after")
    def _token_for_apis(self) -> GitOpsRepositorySettings:
        if self.provider != "local" and self.token is None:
            raise ValueError(f"provider {self.provider} needs a token")
        if self.clusters and self.pool_file is None:
            raise ValueError(
                "clusters is set, so exactly one file needs a pool_key to receive the pool "
                "changes; set pool_key on one file"
            )
        if self.provider == "github" and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.repository):
            raise ValueError(f"{self.repository!r} is not a GitHub repository as owner/name")
        return self


class GitOpsSettings(BaseModel):
    """Repositories of the gitops.pull_request action."""

    model_config = ConfigDict(extra="forbid")

    repositories: dict[str, GitOpsRepositorySettings] = Field(
        default_factory=dict, description="Repositories by name; actions name one."
    )

    def repository_for(self, cluster: str | None) -> str | None:
        """Return the name of the first repository whose ``clusters`` match ``cluster``."""
        if not cluster:
            return None
        for name, repository in self.repositories.items():
            if any(fnmatch.fnmatchcase(cluster, pattern) for pattern in repository.clusters):
                return name
        return None


class KubernetesActionSettings(BaseModel):
    """The Kubernetes actions: which namespaces they never touch, and how they call the API."""

    model_config = ConfigDict(extra="forbid")

    protected_namespaces: list[str] = Field(
        default_factory=lambda: [
            "kube-*",
            "default",
            "cluster-*",
            "capi-*",
            "cert-manager",
            "spectro-*",
            "palette-*",
            "calico-system",
            "tigera-operator",
        ],
        description="Namespaces (shell-style patterns) that are never paused: Kubernetes' and "
        "Palette's system namespaces.",
    )
    critical_selectors: list[str] = Field(
        default_factory=lambda: ["costwarden.io/critical=true"],
        description="Label selectors (key=value) that mark a namespace as critical, so it is "
        "never paused; matched against the namespace's live labels and the scope's labels.",
    )
    timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of one Kubernetes API request, in seconds."
    )
    max_retries: int = Field(
        3, ge=0, le=10, description="Retries after a 429, a 5xx or a transport error."
    )
    backoff_max_seconds: float = Field(
        30.0, ge=0, description="Maximum wait before a retry, Retry-After included, in seconds."
    )


class ActionsSettings(BaseModel):
    """Executors that apply approved changes: Palette, Kubernetes and GitOps."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Run approved actions; off records approvals but changes nothing."
    )
    kubernetes: KubernetesActionSettings = Field(
        default_factory=KubernetesActionSettings,
        description="Namespace pause: protected namespaces and Kubernetes API calls.",
    )
    gitops: GitOpsSettings = Field(
        default_factory=GitOpsSettings, description="Repositories of GitOps pull requests."
    )
    ticket_channel: str | None = Field(
        None,
        description="A jira or servicenow channel of notify.channels. When set, a pass proposes "
        "the ticket action for every recommendation, and the policies decide whether it opens "
        "the ticket; unset proposes none.",
    )


class Settings(BaseSettings):
    """All costwarden settings."""

    model_config = SettingsConfigDict(
        env_prefix="COSTWARDEN_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
    )

    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default a SQLite file in the user data directory."
    )
    budgets_file: Path | None = Field(None, description="YAML file of budgets.")
    calendar_file: Path | None = Field(
        None,
        description="Calendar of scheduled jobs (iCalendar .ics or CSV) whose cost is added to "
        "the forecasts of the budgets they run in.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", description="Lowest level of the log records written to stderr."
    )
    log_format: Literal["console", "json"] = Field(
        "console", description="console: readable lines; json: one JSON object per line."
    )
    palette: PaletteSettings = Field(default_factory=PaletteSettings)
    focus: FocusSettings = Field(default_factory=FocusSettings)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    anomaly: AnomalySettings = Field(default_factory=AnomalySettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    actions: ActionsSettings = Field(default_factory=ActionsSettings)

    @model_validator(mode="after")
    def _ticket_channel_exists(self) -> Settings:
        name = self.actions.ticket_channel
        if name is None:
            return self
        kind = (self.notify.channels.get(name) or {}).get("type")
        if kind not in ("jira", "servicenow"):
            ticket_channels = sorted(
                channel for channel, options in self.notify.channels.items()
                if options.get("type") in ("jira", "servicenow")
            )
            found = "not defined in notify.channels" if kind is None else f"of type {kind}"
            raise ValueError(
                f"actions.ticket_channel {name!r} is {found}; name a jira or servicenow channel "
                f"({', '.join(ticket_channels) or 'none is defined'})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    """Settings from the YAML file named by ``COSTWARDEN_CONFIG`` (``--config`` sets it)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("COSTWARDEN_CONFIG")
        if not path:
            return {}
        return read_yaml_config(Path(path))


def read_yaml_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found; check --config or COSTWARDEN_CONFIG") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from flags, environment, the YAML file and defaults.

    ``overrides`` are CLI flag values; ``None`` values are ignored so that unset flags do not hide
    the environment. Nested keys use double underscores (``palette__url``).
    """
    init: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        group, _, name = key.partition("__")
        if name:
            init.setdefault(group, {})[name] = value
        else:
            init[key] = value

    _check_variable_names(os.environ)
    previous = os.environ.get("COSTWARDEN_CONFIG")
    if config_file is not None:
        os.environ["COSTWARDEN_CONFIG"] = str(config_file)
    try:
        settings = Settings(**init)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from exc
    except SettingsError as exc:
        # Raised for an environment variable that does not parse, e.g. a list that is not JSON.
        raise ConfigError(f"invalid configuration: {_describe_unparsed(exc)}") from exc
    finally:
        # The file is named for this call only, so a later call without one does not read it.
        if config_file is not None:
            _restore("COSTWARDEN_CONFIG", previous)
    return settings


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


OTHER_VARIABLES = frozenset(
    {"COSTWARDEN_CONFIG", "COSTWARDEN_SHARED", "COSTWARDEN_TEST_POSTGRES_URL"}
)
"""Names of ``COSTWARDEN_`` variables read outside the settings: the config file, the
benchmarks' reference data directory and the tests' PostgreSQL server."""


def _check_variable_names(environ: Mapping[str, str]) -> None:
    """Reject a ``COSTWARDEN_`` variable that names no setting, with the closest valid name.

    Misspelled settings of a group are caught by the group's model; a misspelled top-level
    setting would otherwise be ignored without a word.
    """
    valid = set(OTHER_VARIABLES)
    groups = []
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            groups.append(f"COSTWARDEN_{name.upper()}_")
            valid.update(f"COSTWARDEN_{name}_{field}".upper() for field in annotation.model_fields)
        else:
            valid.add(f"COSTWARDEN_{name.upper()}")
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith("COSTWARDEN_") or upper in valid or upper.startswith(tuple(groups)):
            continue
        close = difflib.get_close_matches(upper, sorted(valid), n=1)
        hint = f"did you mean {close[0]}?" if close else "see 'costwarden config reference'"
        raise ConfigError(
            f"environment variable {variable} names no costwarden setting; {hint} Rename or "
            "unset it"
        )


def _variable(path: list[str]) -> str:
    """Return the environment variable of a setting: a group and one field, deeper keys in JSON.

    ``forecast.batch.holdout_days`` is set through ``COSTWARDEN_FORECAST_BATCH`` as a JSON
    object, because nested settings split the variable name once after the group.
    """
    return "COSTWARDEN_" + "_".join(part.upper() for part in path[:2])


def _describe_unparsed(exc: SettingsError) -> str:
    """Name the environment variable whose value is not valid JSON, when it can be found."""
    match = re.search(r'field "(\w+)"', str(exc))
    group = match.group(1) if match else None
    names = sorted(
        name
        for name in os.environ
        if group and name.upper().startswith(f"COSTWARDEN_{group.upper()}_")
    )
    where = f" in {', '.join(names)}" if names else ""
    return (
        f"a value{where} is not valid JSON ({exc}); list and object settings in the environment "
        'are JSON, e.g. COSTWARDEN_FOCUS_CLUSTER_TAG_KEYS=\'["cluster"]\' or '
        "COSTWARDEN_FORECAST_BATCH='{\"yearly\": false}'"
    )


def _is_secret(key: str) -> bool:
    """Return whether a setting is a credential, whose value an error must not repeat."""
    words = ("api_key", "token", "password", "secret")
    return key.endswith(".key") or ".key." in key or any(word in key for word in words)


def _describe(exc: ValidationError) -> str:
    """Name each invalid setting with its environment variable and the value received."""
    problems = []
    for error in exc.errors():
        path = [str(part) for part in error["loc"]]
        key = ".".join(path)
        variable = _variable(path)
        value = error.get("input")
        received = ""
        if not isinstance(value, dict | list) and not _is_secret(key):
            received = f" (got {value!r})"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{key} (env {variable} or key {key} in the config file): {message}{received}")
    return "; ".join(problems)
