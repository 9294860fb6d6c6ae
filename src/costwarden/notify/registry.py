"""The channel protocol and the registry that names channel types.

A channel type registers with ``@CHANNELS.register("slack")`` on a ``Channel`` subclass whose
``settings_class`` validates its entry under ``notify.channels``. The service builds one
instance per configured channel name. The delivery worker calls ``send`` with one outbox row
at a time; ``send`` raises ``RetryableDeliveryError`` or ``PermanentDeliveryError`` on failure
and never retries by itself.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from costwarden.errors import ConfigError
from costwarden.notify.notice import Notice

if TYPE_CHECKING:
    import httpx

DeliveryEvent = Literal["trigger", "update", "resolve", "digest"]
"""trigger: first notice of an alert; update: a material change; resolve: the risk went away;
digest: several low-severity notices in one message."""

ResponseAction = Literal["approve", "reject", "snooze"]


class QuietHours(BaseModel):
    """Hours in which a channel gets no messages; they wait in the outbox until the end.

    Critical alerts are sent during quiet hours unless ``hold_critical`` is set.
    """

    model_config = ConfigDict(extra="forbid")

    start: time = Field(description="Start of the quiet hours, local time, e.g. 22:00.")
    end: time = Field(description="End of the quiet hours, local time, e.g. 07:00.")
    timezone: str = Field("UTC", description="IANA time zone of start and end.")
    weekends: bool = Field(False, description="Also keep Saturday and Sunday quiet all day.")
    hold_critical: bool = Field(False, description="Hold critical alerts too.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from None
        return value


class ChannelSettings(BaseModel):
    """Settings every channel has; each channel type adds its own."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Channel type: a registry name such as slack or jira.")
    enabled: bool = Field(True, description="Send to this channel; off keeps rows pending.")
    rate_per_second: float = Field(
        1.0, gt=0, description="Messages per second the worker sends to this channel at most."
    )
    burst: int = Field(1, ge=1, description="Messages the rate limit lets through at once.")
    timeout_seconds: float = Field(15.0, gt=0, description="Timeout of one HTTP request.")
    quiet_hours: QuietHours | None = Field(None, description="Hours without messages.")
    digest: bool = Field(
        True, description="Take daily digests of alerts below notify.noise.digest_below."
    )


@dataclass(frozen=True, slots=True)
class ActionLinks:
    """Signed links that approve, reject or snooze one alert from a channel without callbacks."""

    approve: str
    reject: str
    snooze: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row as a channel sees it.

    ``id`` is stable across retries and serves as the idempotency key (``webhook-id``).
    ``external_ref`` is what an earlier delivery of the same alert to the same channel
    returned: a Slack ``channel:ts``, a Jira key, a ServiceNow ``sys_id``, a PagerDuty
    ``dedup_key``. ``links`` maps an alert id to its signed action links.
    """

    id: str
    channel: str
    event: DeliveryEvent
    notices: tuple[Notice, ...]
    created_at: datetime
    external_ref: str | None = None
    links: Mapping[str, ActionLinks] = field(default_factory=dict)

    @property
    def notice(self) -> Notice:
        """The notice of a single-alert delivery (every event except digest)."""
        return self.notices[0]


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a channel returns after a delivery it accepted."""

    external_ref: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class InboundResponse:
    """A decision that a person made in a channel: approve, reject or snooze an alert.

    ``dedupe_key`` is unique per decision (a Jira webhook identifier, a link token id, a Slack
    action timestamp), so a redelivered callback records nothing new.
    """

    alert_id: str
    channel: str
    action: ResponseAction
    actor: str
    dedupe_key: str
    received_at: datetime
    snooze_hours: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What channels share: the service's public URL and the signer of action links."""

    public_url: str | None = None
    sign_links: Callable[[str, str], ActionLinks] | None = None
    """Build the signed action links of an alert: ``sign_links(alert_id, channel)``."""

    def alert_url(self, alert_id: str) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url.rstrip('/')}/api/v1/alerts/{alert_id}"


class Channel:
    """Base class of channel types. Subclasses set ``settings_class`` and implement ``send``."""

    type: ClassVar[str] = ""
    settings_class: ClassVar[type[ChannelSettings]] = ChannelSettings

    def __init__(self, name: str, settings: ChannelSettings, context: ChannelContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context

    def send(self, delivery: Delivery, client: httpx.Client) -> SendResult:
        raise NotImplementedError

    def poll(
        self, external_ref: str, alert_id: str, client: httpx.Client
    ) -> InboundResponse | None:
        """Read a decision back from the service (ServiceNow approvals); most channels have none."""
        return None

    @property
    def polls(self) -> bool:
        return type(self).poll is not Channel.poll


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    settings_class: type[ChannelSettings]
    factory: type[Channel]

    @property
    def description(self) -> str:
        doc = (self.factory.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


class ChannelRegistry:
    """Channel types by registry name."""

    def __init__(self) -> None:
        self._specs: dict[str, ChannelSpec] = {}

    def register(self, name: str) -> Callable[[type[Channel]], type[Channel]]:
        def decorate(cls: type[Channel]) -> type[Channel]:
            if name in self._specs:
                raise ValueError(f"channel type {name!r} is already registered")
            cls.type = name
            self._specs[name] = ChannelSpec(name, cls.settings_class, cls)
            return cls

        return decorate

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str, channel: str | None = None) -> ChannelSpec:
        try:
            return self._specs[name]
        except KeyError:
            valid = ", ".join(self.names())
            where = f"notify.channels.{channel}.type: " if channel else ""
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"{where}unknown channel type {name!r}; {hint}valid types: {valid}"
            ) from None

    def validate(self, channel: str, options: Mapping[str, Any]) -> ChannelSettings:
        """Validate one entry of ``notify.channels``; errors name the channel, the field and,
        unless it is a secret, the value received."""
        kind = options.get("type")
        if not kind:
            raise ConfigError(
                f"notify.channels.{channel}.type is missing; use one of "
                f"{', '.join(self.names())}"
            )
        spec = self.spec(str(kind), channel)
        try:
            return spec.settings_class.model_validate(dict(options))
        except ValidationError as exc:
            problems = "; ".join(
                _problem(channel, spec.settings_class, error) for error in exc.errors()
            )
            raise ConfigError(problems) from None

    def create(
        self, channel: str, options: Mapping[str, Any], context: ChannelContext
    ) -> Channel:
        settings = self.validate(channel, options)
        return self.spec(settings.type).factory(channel, settings, context)


CHANNELS = ChannelRegistry()


def _problem(channel: str, settings_class: type[BaseModel], error: Any) -> str:
    """Describe one validation error of a channel entry in the words of the config file."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join([f"notify.channels.{channel}", *loc])
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], _field_names(settings_class, loc[:-1]), n=1)
        hint = (f"did you mean {close[0]!r}?" if close
                else "'costwarden config reference' lists the valid ones")
        return f"{key}: unknown setting; {hint}"
    received = ""
    if not isinstance(value, dict | list) and not _is_secret(loc):
        received = f" (got {value!r})"
    return f"{key}: {message}{received}"


def _field_names(model: type[BaseModel], path: list[str]) -> list[str]:
    """Return the setting names valid at ``path`` below ``model``."""
    for part in path:
        field_info = model.model_fields.get(part)
        annotation = getattr(field_info, "annotation", None)
        inner = [arg for arg in getattr(annotation, "__args__", ()) if isinstance(arg, type)]
        found = next((arg for arg in [annotation, *inner]
                      if isinstance(arg, type) and issubclass(arg, BaseModel)), None)
        if found is None:
            return []
        model = found
    return sorted(model.model_fields)


def _is_secret(loc: list[str]) -> bool:
    words = ("secret", "token", "password", "webhook_url", "workflow_url", "routing_key",
             "headers", "api_key")
    return any(word in part for part in loc for word in words)
