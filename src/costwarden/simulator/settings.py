"""Settings of the Palette API simulator."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from costwarden.simulator.planted import PLANTED_CLUSTER_COUNT

DEFAULT_API_KEY = "sim-demo-key"
DEFAULT_KUBERNETES_TOKEN = "sim-kube-token"
FAULT_STATUSES = frozenset({429, 500, 502, 503, 504})


class RateLimitRule(BaseModel):
    """A token bucket for every client address and path prefix: ``burst`` tokens refilled at
    ``rate_per_second``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(description="Path prefix the rule covers, such as /v1/dashboard.")
    rate_per_second: float = Field(gt=0, description="Requests per second allowed on average.")
    burst: int = Field(ge=1, description="Requests allowed at once after an idle period.")


def _default_rate_limits() -> list[RateLimitRule]:
    # Palette's API docs list /v1/dashboard at 10 requests per second, and /v1/spectroclusters,
    # /v1/cloudconfigs and /v1/events/components at 50 requests per second with a maximum of 250.
    return [
        RateLimitRule(prefix="/v1/dashboard", rate_per_second=10, burst=5),
        RateLimitRule(prefix="/v1/spectroclusters", rate_per_second=50, burst=250),
        RateLimitRule(prefix="/v1/cloudconfigs", rate_per_second=50, burst=250),
        RateLimitRule(prefix="/v1/events/components", rate_per_second=50, burst=250),
    ]


class SimulatorSettings(BaseModel):
    """Behaviour of the simulated Palette tenant: its fleet, clock, keys, limits and faults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_keys: tuple[str, ...] = Field(
        (DEFAULT_API_KEY,), min_length=1, description="API keys accepted in the ApiKey header."
    )
    seed: int = Field(
        0, ge=0, description="Seed of the generated fleet and of the fault injection."
    )
    as_of: datetime | None = Field(
        None,
        description="The simulated current time (UTC); cost data ends here. Default: the time "
        "the app is created, truncated to the minute.",
    )
    history_days: int = Field(
        180, ge=1, le=3650, description="Full days of cost history before the day of as_of."
    )
    cluster_count: int = Field(
        54,
        ge=PLANTED_CLUSTER_COUNT,
        le=5000,
        description=f"Clusters in the fleet, the {PLANTED_CLUSTER_COUNT} planted ones included.",
    )
    waste_clusters: bool = Field(
        False,
        description="Add the clusters of the planted waste project (finops-lab) on top of "
        "cluster_count; their Kubernetes metrics come from palette-sim-metrics.",
    )
    org_name: str = Field(
        "Costwarden Simulated Org", description="Organisation name of the tenant."
    )
    timestamp_unit: Literal["seconds", "milliseconds"] = Field(
        "seconds", description="Unit of the epoch timestamps in cost data points."
    )
    rate_limit_enabled: bool = Field(True, description="Return 429 above the rate limits.")
    rate_limits: tuple[RateLimitRule, ...] = Field(
        default_factory=lambda: tuple(_default_rate_limits()),
        description="Per-prefix limits; the longest matching prefix applies.",
    )
    default_rate_per_second: float = Field(
        10, gt=0, description="Limit of prefixes without a rule, in requests per second."
    )
    default_burst: int = Field(5, ge=1, description="Burst of prefixes without a rule.")
    retry_after_seconds: int | None = Field(
        None,
        ge=0,
        description="Send this Retry-After value with every 429; Palette documents none, so the "
        "default sends no header.",
    )
    fault_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Fraction of authenticated calls that get a fault."
    )
    fault_statuses: tuple[int, ...] = Field(
        (429, 500, 502, 503),
        min_length=1,
        description="HTTP statuses injected as faults, chosen uniformly.",
    )

    kubernetes_api_url: str | None = Field(
        None,
        description="Kubernetes API server URL written into every cluster's kubeconfig; unset "
        "makes GET .../assets/kubeconfig return 404.",
    )
    kubernetes_token: str = Field(
        DEFAULT_KUBERNETES_TOKEN,
        min_length=1,
        description="Bearer token of the user in the served kubeconfigs.",
    )
    kubernetes_ca_data: str | None = Field(
        None,
        description="Base64 PEM bundle written as certificate-authority-data, for an https "
        "Kubernetes API URL.",
    )

    @field_validator("as_of", mode="before")
    @classmethod
    def _date_to_midnight(cls, value: object) -> object:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime.combine(value, time(0), tzinfo=UTC)
        return value

    @field_validator("as_of")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_validator("fault_statuses")
    @classmethod
    def _known_statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        unknown = sorted(set(value) - FAULT_STATUSES)
        if unknown:
            allowed = ", ".join(str(status) for status in sorted(FAULT_STATUSES))
            raise ValueError(f"fault statuses {unknown} are not supported; use {allowed}")
        return value

    def resolved_as_of(self) -> datetime:
        """Return ``as_of``, or the current UTC time truncated to the minute when it is unset."""
        if self.as_of is not None:
            return self.as_of
        return datetime.now(UTC).replace(second=0, microsecond=0)
