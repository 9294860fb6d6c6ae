"""Channel type servicenow: an incident or change request per budget period, via the Table API.

The record's ``correlation_id`` is the ``costwarden-<hash>`` ticket key of the budget period.
A trigger queries ``correlation_id=<key>^active=true`` before it creates anything. A second
alert of the period then adds a work note to the open record instead of a duplicate, and so
does the retry of a create whose response was lost. ServiceNow does not sign outbound calls,
so the channel reads change approvals back by polling.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from costwarden.errors import PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify.http import check_response, request
from costwarden.notify.notice import Notice, Severity
from costwarden.notify.registry import (
    CHANNELS,
    ActionLinks,
    ChannelSettings,
    Delivery,
    InboundResponse,
    SendResult,
)
from costwarden.notify.secrets import Secret
from costwarden.notify.tickets import TicketChannel, plain_text, ticket_key
from costwarden.notify.trim import trim_text

logger = logging.getLogger(__name__)

MAX_SHORT_DESCRIPTION_CHARS = 160
MAX_TEXT_CHARS = 32_000
"""Cap on description and work notes.
NOTE: an estimate; the field lengths are set per instance, and most allow far more."""
CORRELATION_DISPLAY = "costwarden"
RESOLVED_STATE = "6"
"""Incident state Resolved in the base system."""

Urgency = Literal["1", "2", "3"]


class UrgencyImpact(BaseModel):
    """Urgency and impact of a record: "1" high, "2" medium, "3" low."""

    model_config = ConfigDict(extra="forbid")

    urgency: Urgency
    impact: Urgency


def _default_levels() -> dict[Severity, UrgencyImpact]:
    return {
        "critical": UrgencyImpact(urgency="1", impact="1"),
        "warning": UrgencyImpact(urgency="2", impact="2"),
        "info": UrgencyImpact(urgency="3", impact="3"),
    }


class ServiceNowSettings(ChannelSettings):
    """Settings of a ServiceNow channel."""

    instance_url: str = Field(description="Instance URL, for example https://acme.service-now.com.")
    username: str | None = Field(None, description="User for Basic auth, with the itil role.")
    password: Secret | None = Field(None, description="Password of username.")
    oauth_token: Secret | None = Field(
        None, description="OAuth bearer token; use it instead of username and password."
    )
    table: Literal["incident", "change_request"] = Field(
        "incident", description="Table of new records: incident or change_request."
    )
    assignment_group: str | None = Field(
        None, description="Assignment group of new records, by name or sys_id."
    )
    caller_id: str | None = Field(
        None, description="Caller of new incidents, by user name or sys_id."
    )
    urgency_impact: dict[Severity, UrgencyImpact] = Field(
        default_factory=_default_levels,
        description="Urgency and impact per severity; ServiceNow computes the priority.",
    )
    change_type: str = Field("normal", description="Type of new change requests.")
    resolve_incidents: bool = Field(
        False,
        description="Set an incident to Resolved, with a close note, when the risk goes away.",
    )
    close_code: str = Field(
        "Solution provided", description="Close code of incidents that the channel resolves."
    )
    digest: bool = Field(
        False,
        description="Always false: a ServiceNow channel keeps one record per budget period and "
        "takes no digests.",
    )

    @field_validator("instance_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL such as https://acme.service-now.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_credential(self) -> ServiceNowSettings:
        basic = self.username is not None and self.password is not None
        if basic == (self.oauth_token is not None):
            raise ValueError(
                "set either username and password, or oauth_token (exactly one of the two)"
            )
        if self.digest:
            raise ValueError(
                "digest: a ServiceNow channel keeps one record per budget period and takes no "
                "digests; set digest: false"
            )
        return self


@CHANNELS.register("servicenow")
class ServiceNowChannel(TicketChannel):
    """ServiceNow incidents or change requests through the Table API, with polled approvals."""

    settings_class = ServiceNowSettings
    settings: ServiceNowSettings
    service = "ServiceNow"
    no_ticket_detail = "no open record to note"

    @property
    def polls(self) -> bool:
        return self.settings.table == "change_request"

    def _follow_up(
        self,
        delivery: Delivery,
        sys_id: str,
        notice: Notice,
        links: ActionLinks | None,
        client: httpx.Client,
    ) -> SendResult:
        if delivery.event == "resolve":
            return self._resolve(sys_id, notice, client)
        self.add_work_note(sys_id, _note(notice, "Alert updated", links), client)
        return SendResult(external_ref=sys_id, detail="work note added")

    def poll(
        self, external_ref: str, alert_id: str, client: httpx.Client
    ) -> InboundResponse | None:
        """Return the approval or rejection of a change request, or None while it is pending."""
        if self.settings.table != "change_request":
            return None
        fields = "approval,state,sys_updated_by"
        response = self._call(
            client, "GET", f"/{external_ref}", params={"sysparm_fields": fields}, ok=(200, 404)
        )
        if response.status_code == 404:
            logger.warning("channel %s: change %s no longer exists", self.name, external_ref)
            return None
        record = response.json().get("result") or {}
        approval = record.get("approval")
        if approval not in ("approved", "rejected"):
            return None
        return InboundResponse(
            alert_id=alert_id,
            channel=self.name,
            action="approve" if approval == "approved" else "reject",
            actor=str(record.get("sys_updated_by") or "servicenow"),
            dedupe_key=f"servicenow:{external_ref}:{approval}",
            received_at=datetime.now(UTC),
            detail={"sys_id": external_ref, "state": record.get("state")},
        )

    def _trigger(
        self,
        delivery: Delivery,
        notice: Notice,
        links: ActionLinks | None,
        client: httpx.Client,
    ) -> SendResult:
        """Note the open record of the budget period, or create one when there is none."""
        correlation_id = ticket_key(notice)
        sys_id = self._active_ledger_id(delivery.external_ref, client)
        sys_id = sys_id or self.find_open(correlation_id, client)
        if sys_id is not None:
            self.add_work_note(sys_id, _note(notice, "Alert fired again", links), client)
            return SendResult(external_ref=sys_id, detail="work note added")

        sys_id, number = self.create(notice, correlation_id, client, links)
        logger.info("channel %s opened %s for alert %s", self.name, number, notice.alert_id)
        return SendResult(external_ref=sys_id, detail=f"opened {number}")

    def _resolve(self, sys_id: str, notice: Notice, client: httpx.Client) -> SendResult:
        note = _note(notice, "The risk went away")
        if self.settings.table == "incident" and self.settings.resolve_incidents:
            body = {
                "work_notes": note,
                "state": RESOLVED_STATE,
                "close_code": self.settings.close_code,
                "close_notes": trim_text(
                    f"costwarden: the risk went away. {notice.title}", MAX_TEXT_CHARS
                ),
            }
            self._call(client, "PATCH", f"/{sys_id}", json=body)
            return SendResult(external_ref=sys_id, detail="resolved")
        self.add_work_note(sys_id, note, client)
        return SendResult(external_ref=sys_id, detail="work note added")

    # Table API calls

    def find_open(self, correlation_id: str, client: httpx.Client) -> str | None:
        """Return the sys_id of an active record with ``correlation_id``, or None."""
        params = {
            "sysparm_query": f"correlation_id={correlation_id}^active=true",
            "sysparm_limit": "1",
            "sysparm_fields": "sys_id,number,state",
        }
        found = self._call(client, "GET", "", params=params).json().get("result") or []
        return str(found[0]["sys_id"]) if found else None

    def add_work_note(self, sys_id: str, note: str, client: httpx.Client) -> None:
        self._call(client, "PATCH", f"/{sys_id}", json={"work_notes": note})

    def create(
        self,
        notice: Notice,
        correlation_id: str,
        client: httpx.Client,
        links: ActionLinks | None = None,
    ) -> tuple[str, str]:
        """Create a record and return its sys_id and number."""
        settings = self.settings
        levels = settings.urgency_impact.get(notice.severity)
        body: dict[str, str] = {
            "short_description": trim_text(
                " ".join(notice.title.split()), MAX_SHORT_DESCRIPTION_CHARS
            ),
            "description": trim_text(
                plain_text(notice, links=links), MAX_TEXT_CHARS, notice.alert_url
            ),
            "correlation_id": correlation_id,
            "correlation_display": CORRELATION_DISPLAY,
        }
        if levels is not None:
            body.update(urgency=levels.urgency, impact=levels.impact)
        if settings.assignment_group:
            body["assignment_group"] = settings.assignment_group
        if settings.table == "incident" and settings.caller_id:
            body["caller_id"] = settings.caller_id
        if settings.table == "change_request":
            body.update(_change_fields(notice, settings.change_type))

        params = {"sysparm_input_display_value": "true"}
        record = self._call(client, "POST", "", params=params, json=body).json()["result"]
        return str(record["sys_id"]), str(record.get("number", record["sys_id"]))

    def _active_ledger_id(self, sys_id: str | None, client: httpx.Client) -> str | None:
        """Return the stored sys_id when that record exists and is still active."""
        if sys_id is None:
            return None
        params = {"sysparm_fields": "sys_id,active"}
        response = self._call(client, "GET", f"/{sys_id}", params=params, ok=(200, 404))
        if response.status_code == 404:
            return None
        active = (response.json().get("result") or {}).get("active")
        return sys_id if str(active).lower() == "true" else None

    def _call(
        self,
        client: httpx.Client,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201, 204),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one authenticated request to the channel's table and classify the response."""
        settings = self.settings
        headers = {"Accept": "application/json"}
        auth: httpx.Auth | None = None
        if settings.oauth_token is not None:
            headers["Authorization"] = f"Bearer {settings.oauth_token.get_secret_value()}"
        else:
            assert settings.username is not None and settings.password is not None
            auth = httpx.BasicAuth(settings.username, settings.password.get_secret_value())
        url = f"{settings.instance_url}/api/now/table/{settings.table}{path}"
        response = request(
            client, self.name, method, url,
            auth=auth, headers=headers, timeout=settings.timeout_seconds, **kwargs,
        )
        try:
            return check_response(response, self.name, ok=ok)
        except RetryableDeliveryError as exc:
            raise _with_reset(exc, response) from None
        except PermanentDeliveryError as exc:
            raise _with_hint(exc, response) from None


def _with_reset(exc: RetryableDeliveryError, response: httpx.Response) -> RetryableDeliveryError:
    """Take the wait from ``X-RateLimit-Reset`` (Unix seconds) when Retry-After is absent."""
    if exc.retry_after is not None:
        return exc
    try:
        reset = float(response.headers.get("X-RateLimit-Reset", ""))
    except ValueError:
        return exc
    wait = max(reset - datetime.now(UTC).timestamp(), 0.0)
    return RetryableDeliveryError(
        str(exc), channel=exc.channel, status=exc.status, retry_after=wait
    )


def _with_hint(exc: PermanentDeliveryError, response: httpx.Response) -> PermanentDeliveryError:
    """Add what to check to a 401 or 403, the failures a configuration change fixes."""
    hints = {
        401: "check username and password, or oauth_token",
        403: "the user lacks a role such as itil, or an ACL blocks the table",
    }
    hint = hints.get(response.status_code)
    if hint is None:
        return exc
    return PermanentDeliveryError(f"{exc}; {hint}", channel=exc.channel, status=exc.status)


def _note(notice: Notice, heading: str, links: ActionLinks | None = None) -> str:
    text = plain_text(notice, f"{heading}: {notice.title}", links)
    return trim_text(text, MAX_TEXT_CHARS, notice.alert_url)


def _change_fields(notice: Notice, change_type: str) -> dict[str, str]:
    """Return the change request fields: type, justification and an implementation plan."""
    justification = "; ".join(f"{label}: {value}" for label, value in notice.facts)
    plan = "\n".join(
        f"- {action.title}" + (f" ({action.link})" if action.link else "")
        for action in notice.actions
    )
    return {
        "type": change_type,
        "justification": trim_text(justification or notice.title, MAX_TEXT_CHARS),
        "implementation_plan": trim_text(
            plan or "Apply the recommended actions of the alert.", MAX_TEXT_CHARS
        ),
    }
