"""Channel type email: alert digests, and optionally single alerts, over SMTP.

Each message is multipart/alternative with a plain-text and an HTML part. A 4xx SMTP reply, a
refused connection or a timeout is worth a retry, but a 5xx reply is not. The ``Message-ID`` is
derived from the outbox row id, so a message that a retry sends twice has the same id both
times.
"""

from __future__ import annotations

import html
import logging
import re
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from costwarden.errors import PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify.notice import SEVERITY_RANK, Notice
from costwarden.notify.registry import (
    CHANNELS,
    ActionLinks,
    Channel,
    ChannelSettings,
    Delivery,
    SendResult,
)
from costwarden.notify.secrets import Secret

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
"""A bare address such as finops@example.com, without a display name."""
SUBJECT_LIMIT = 200
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

AlertUrl = Callable[[str], str | None] | None
"""Maps an alert id to its URL in the costwarden API (``ChannelContext.alert_url``)."""

EVENT_WORDS = {
    "trigger": "Alert",
    "update": "Alert updated",
    "resolve": "Resolved",
}


class EmailSettings(ChannelSettings):
    """Settings of an SMTP server and the recipients of alert mail."""

    host: str = Field(min_length=1, description="SMTP server host name or address.")
    port: int = Field(587, ge=1, le=65535, description="SMTP server port (587, 465 with ssl, 25).")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS.")
    ssl: bool = Field(False, description="Connect with implicit TLS (SMTPS, usually port 465).")
    ca_file: Path | None = Field(
        None,
        description="PEM file of the CA that signed the server certificate. Without it, the "
        "system CAs are trusted.",
    )
    username: str | None = Field(None, description="SMTP AUTH user. Without it, no login.")
    password: Secret | None = Field(
        None, description="SMTP AUTH password: a literal, {env: NAME} or {file: PATH}."
    )
    sender: str = Field(description="From address, for example costwarden@example.com.")
    recipients: list[str] = Field(
        default_factory=list, description="Addresses that get every message of this channel."
    )
    mail_owners: bool = Field(
        False, description="Also mail the alert owners whose names are email addresses."
    )
    subject_prefix: str = Field("[costwarden]", description="Text put before every subject.")
    digest: bool = Field(True, description="Take daily digests of low-severity alerts.")
    digest_only: bool = Field(
        True, description="Send digests only and skip single alerts, updates and resolutions."
    )

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        if not ADDRESS.match(value):
            raise ValueError(f"{value!r} is not an email address such as alerts@example.com")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipient_addresses(cls, value: list[str]) -> list[str]:
        invalid = [address for address in value if not ADDRESS.match(address)]
        if invalid:
            raise ValueError(
                f"{', '.join(repr(a) for a in invalid)} are not email addresses such as "
                "finops@example.com"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _ssl_without_starttls(cls, data: Any) -> Any:
        """``ssl: true`` alone turns STARTTLS off; both set true stays an error."""
        if isinstance(data, dict) and data.get("ssl") is True and "starttls" not in data:
            return {**data, "starttls": False}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> EmailSettings:
        if self.ssl and self.starttls:
            raise ValueError("ssl and starttls exclude each other, so set starttls: false with ssl")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together, so set both or neither")
        if self.username and not (self.ssl or self.starttls) and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                "a password would cross the network unencrypted, so set starttls or ssl"
            )
        if not self.recipients and not self.mail_owners:
            raise ValueError("recipients is empty and mail_owners is off, so nobody gets mail")
        return self


@CHANNELS.register("email")
class EmailChannel(Channel):
    """Email over SMTP: daily digests and, when asked, single alerts."""

    settings_class = EmailSettings
    settings: EmailSettings

    def send(self, delivery: Delivery, client: httpx.Client) -> SendResult:
        """Send one message over SMTP. ``client`` is unused."""
        if delivery.event != "digest" and self.settings.digest_only:
            return SendResult(detail=f"digest_only is set; {delivery.event} not mailed")
        recipients = self.recipients(delivery.notices)
        if not recipients:
            return SendResult(detail="no recipient: no address in recipients or owners")

        message = self.compose(delivery, recipients)
        refused = self._transmit(message, recipients)
        accepted = len(recipients) - len(refused)
        if refused:
            logger.warning(
                "email channel %s: %d recipients refused for %s: %s",
                self.name,
                len(refused),
                delivery.id,
                ", ".join(sorted(refused)),
            )
        logger.info(
            "email channel %s mailed %s %s to %d recipients",
            self.name,
            delivery.event,
            delivery.id,
            accepted,
        )
        detail = f"mailed to {accepted} recipients"
        if refused:
            detail += f"; refused: {', '.join(sorted(refused))}"
        return SendResult(external_ref=message["Message-ID"], detail=detail)

    def recipients(self, notices: tuple[Notice, ...]) -> list[str]:
        """Return the addresses of a message: ``recipients``, then owners that are addresses."""
        addresses = list(self.settings.recipients)
        if self.settings.mail_owners:
            for notice in notices:
                addresses.extend(owner for owner in notice.owners if ADDRESS.match(owner))
        unique: dict[str, str] = {}
        for address in addresses:
            unique.setdefault(address.lower(), address)
        return list(unique.values())

    def compose(self, delivery: Delivery, recipients: list[str]) -> EmailMessage:
        """Return the message of a delivery: subject, headers, a text and an HTML part."""
        message = EmailMessage()
        message["Subject"] = self._subject(delivery)
        message["From"] = self.settings.sender
        message["To"] = ", ".join(recipients)
        message["Date"] = format_datetime(delivery.created_at.astimezone(UTC))
        domain = self.settings.sender.rsplit("@", 1)[1]
        message["Message-ID"] = f"<{delivery.id}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"
        if delivery.external_ref and delivery.event != "digest":
            # The Message-ID of the alert's earlier mail: mail clients thread the update under it.
            message["In-Reply-To"] = delivery.external_ref
            message["References"] = delivery.external_ref

        notices = _ordered(delivery)
        message.set_content(render_text(delivery, notices, self.context.alert_url))
        message.add_alternative(
            render_html(delivery, notices, self.context.alert_url), subtype="html"
        )
        return message

    def _subject(self, delivery: Delivery) -> str:
        if delivery.event == "digest":
            count = len(delivery.notices)
            worst = max((n.severity for n in delivery.notices), key=SEVERITY_RANK.__getitem__)
            text = f"Digest: {count} cost alert{'s' if count != 1 else ''} (highest: {worst})"
        else:
            text = f"{EVENT_WORDS[delivery.event]}: {delivery.notice.title}"
        subject = f"{self.settings.subject_prefix} {text}".strip()
        return subject if len(subject) <= SUBJECT_LIMIT else subject[: SUBJECT_LIMIT - 1] + "…"

    def _transmit(self, message: EmailMessage, recipients: list[str]) -> dict[str, Any]:
        """Send the message and return the refused recipients, when others were accepted."""
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            with self._connect() as smtp:
                self._login(smtp)
                return smtp.send_message(message, self.settings.sender, recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise self._refused(where, exc.recipients) from None
        except smtplib.SMTPResponseException as exc:
            raise self._reply_error(where, exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(
                f"channel {self.name!r}: SMTP server {where}: {exc}. Turn off starttls or "
                "username for this server",
                channel=self.name,
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentDeliveryError(
                f"channel {self.name!r}: the certificate of SMTP server {where} is not trusted: "
                f"{exc.verify_message}. Set ca_file to the CA that signed it",
                channel=self.name,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableDeliveryError(
                f"channel {self.name!r}: SMTP server {where} failed: "
                f"{exc.__class__.__name__}: {exc}",
                channel=self.name,
            ) from None

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        timeout = settings.timeout_seconds
        if settings.ssl:
            return smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=timeout, context=self._tls_context()
            )
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
        if settings.starttls:
            try:
                smtp.starttls(context=self._tls_context())
            except Exception:
                smtp.close()
                raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        if self.settings.username is None or self.settings.password is None:
            return
        smtp.login(self.settings.username, self.settings.password.get_secret_value())

    def _tls_context(self) -> ssl.SSLContext:
        ca_file = self.settings.ca_file
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def _reply_error(self, where: str, code: int, text: bytes | str) -> Exception:
        reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        message = f"channel {self.name!r}: SMTP server {where} replied {code} {reply}"
        if 400 <= code < 500:
            return RetryableDeliveryError(message, channel=self.name, status=code)
        return PermanentDeliveryError(message, channel=self.name, status=code)

    def _refused(self, where: str, refused: dict[str, tuple[int, bytes]]) -> Exception:
        """Return the error when every recipient was refused, retryable if any reply was 4xx."""
        codes = [code for code, _ in refused.values()]
        replies = "; ".join(
            f"{address}: {code} {text.decode(errors='replace')}"
            for address, (code, text) in sorted(refused.items())
        )
        message = f"channel {self.name!r}: SMTP server {where} refused every recipient: {replies}"
        status = min(codes) if codes else None
        if any(400 <= code < 500 for code in codes):
            return RetryableDeliveryError(message, channel=self.name, status=status)
        return PermanentDeliveryError(message, channel=self.name, status=status)


def _ordered(delivery: Delivery) -> list[Notice]:
    """Return the notices with the most severe first, the order of a digest."""
    return sorted(delivery.notices, key=lambda n: -SEVERITY_RANK[n.severity])


def render_text(delivery: Delivery, notices: list[Notice], alert_url: AlertUrl = None) -> str:
    """Return the plain-text body of a message."""
    lines: list[str] = []
    if delivery.event == "digest":
        lines += [f"{len(notices)} cost alerts since the last digest.", ""]
    for notice in notices:
        lines += _notice_text(notice, delivery.links.get(notice.alert_id), alert_url)
    lines.append("-- ")
    lines.append("Sent by costwarden.")
    return "\n".join(lines) + "\n"


def _notice_text(notice: Notice, links: ActionLinks | None, alert_url: AlertUrl) -> list[str]:
    state = " (resolved)" if notice.state == "resolved" else ""
    lines = [f"[{notice.severity.upper()}] {notice.title}{state}"]
    lines += [f"  {label}: {value}" for label, value in notice.facts]
    if notice.owners:
        lines.append(f"  Owners: {', '.join(notice.owners)}")
    if notice.contributors:
        lines.append("  Top contributors:")
        lines += [f"    - {_contributor(item)}" for item in notice.contributors]
    if notice.actions:
        lines.append("  Recommended actions:")
        lines += [f"    - {_action(item)}" for item in notice.actions]
    lines += [f"  {text}: {href}" for text, href in _links(notice, links, alert_url)]
    lines.append("")
    return lines


def render_html(delivery: Delivery, notices: list[Notice], alert_url: AlertUrl = None) -> str:
    """Return the HTML body of a message, with every value from a notice escaped."""
    parts = ["<!DOCTYPE html>", '<html><body style="font-family: sans-serif">']
    if delivery.event == "digest":
        parts.append(f"<h2>{len(notices)} cost alerts since the last digest</h2>")
    for notice in notices:
        parts.append(_notice_html(notice, delivery.links.get(notice.alert_id), alert_url))
    parts.append('<p style="color: #666">Sent by costwarden.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _notice_html(notice: Notice, links: ActionLinks | None, alert_url: AlertUrl) -> str:
    esc = html.escape
    state = " (resolved)" if notice.state == "resolved" else ""
    parts = [f"<h3>[{esc(notice.severity.upper())}] {esc(notice.title)}{state}</h3>"]
    if notice.facts:
        rows = "".join(
            f'<tr><th align="left">{esc(label)}</th><td>{esc(value)}</td></tr>'
            for label, value in notice.facts
        )
        parts.append(f"<table>{rows}</table>")
    if notice.owners:
        parts.append(f"<p>Owners: {esc(', '.join(notice.owners))}</p>")
    if notice.contributors:
        items = "".join(f"<li>{esc(_contributor(item))}</li>" for item in notice.contributors)
        parts.append(f"<p>Top contributors:</p><ul>{items}</ul>")
    if notice.actions:
        items = "".join(f"<li>{esc(_action(item))}</li>" for item in notice.actions)
        parts.append(f"<p>Recommended actions:</p><ul>{items}</ul>")
    anchors = " | ".join(
        f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in _links(notice, links, alert_url)
    )
    if anchors:
        parts.append(f"<p>{anchors}</p>")
    return "\n".join(parts)


def _links(notice: Notice, links: ActionLinks | None, alert_url: AlertUrl) -> list[tuple[str, str]]:
    found = []
    full = notice.alert_url or (alert_url(notice.alert_id) if alert_url else None)
    if full:
        found.append(("Full alert", full))
    if notice.palette_url:
        found.append(("Open in Palette", notice.palette_url))
    if links is not None:
        found += [("Approve", links.approve), ("Reject", links.reject), ("Snooze", links.snooze)]
    return found


def _contributor(item: Any) -> str:
    amount = f": {item.amount}" if item.amount else ""
    share = f" ({item.share:.0%})" if item.share is not None else ""
    return f"{item.kind} {item.name}{amount}{share}"


def _action(item: Any) -> str:
    savings = f", saves {item.savings_per_month} per month" if item.savings_per_month else ""
    return f"{item.title}{savings}"
