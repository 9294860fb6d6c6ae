"""The email channel end to end against an aiosmtpd server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.smtp import PASSWORD, USER, FakeSmtp

from costwarden.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError
from costwarden.notify import CHANNELS, ActionLinks, ChannelContext, Delivery, Notice
from costwarden.notify.email import EmailChannel
from costwarden.notify.notice import NoticeAction, NoticeContributor
from costwarden.simulator.server import LOOPBACK, bind_socket

PUBLIC_URL = "https://costwarden.example.com"


def make_notice(alert_id: str, severity: str = "info", **changes: Any) -> Notice:
    notice = Notice(
        alert_id=alert_id,
        kind="budget",
        severity=severity,  # type: ignore[arg-type]
        title=f"{alert_id}: forecast 5,400.00 USD for the period",
        generated_at=datetime(2026, 11, 15, 10, 0, tzinfo=UTC),
        budget=alert_id,
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        currency="USD",
        owners=("team-web@example.com", "team web"),
        facts=(("Budget", "5,000.00 USD"), ("Forecast", "5,400.00 USD")),
        contributors=(NoticeContributor("web-eu", "cluster", "310.00 USD", 0.25),),
        actions=(NoticeAction("a1", "Remove idle <load balancer>", "45.00 USD"),),
        palette_url="https://console.spectrocloud.com/projects/p1",
    )
    return replace(notice, **changes)


def make_delivery(
    event: str = "digest",
    notices: tuple[Notice, ...] | None = None,
    links: dict[str, ActionLinks] | None = None,
) -> Delivery:
    notices = notices or (make_notice("web-monthly"), make_notice("ml-monthly", "warning"))
    return Delivery(
        id="row-42",
        channel="mail",
        event=event,  # type: ignore[arg-type]
        notices=notices,
        created_at=datetime(2026, 11, 16, 7, 0, tzinfo=UTC),
        links=links or {},
    )


def make_channel(server: FakeSmtp | None = None, **options: Any) -> EmailChannel:
    settings = {
        "type": "email",
        "host": LOOPBACK,
        "port": server.port if server else 25,
        "starttls": False,
        "sender": "costwarden@example.com",
        "recipients": ["finops@example.com"],
        "timeout_seconds": 5,
        **options,
    }
    channel = CHANNELS.create("mail", settings, ChannelContext(public_url=PUBLIC_URL))
    assert isinstance(channel, EmailChannel)
    return channel


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http_client:
        yield http_client


def test_digest_mailed(smtp: FakeSmtp, client: httpx.Client) -> None:
    result = make_channel(smtp).send(make_delivery(), client)

    [mail] = smtp.messages
    assert mail.mail_from == "costwarden@example.com"
    assert mail.rcpt_tos == ["finops@example.com"]
    assert mail.message["Subject"] == "[costwarden] Digest: 2 cost alerts (highest: warning)"
    assert mail.message["Message-ID"] == "<row-42@example.com>"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.message.get_content_type() == "multipart/alternative"
    assert result.external_ref == "<row-42@example.com>"
    assert result.detail == "mailed to 1 recipients"


def test_digest_text_part(smtp: FakeSmtp, client: httpx.Client) -> None:
    make_channel(smtp).send(make_delivery(), client)

    text = smtp.messages[0].part("text/plain")
    assert text.startswith("2 cost alerts since the last digest.")
    assert text.index("[WARNING] ml-monthly") < text.index("[INFO] web-monthly")
    assert "  Forecast: 5,400.00 USD" in text
    assert "    - cluster web-eu: 310.00 USD (25%)" in text
    assert "    - Remove idle <load balancer>, saves 45.00 USD per month" in text
    assert f"  Full alert: {PUBLIC_URL}/api/v1/alerts/ml-monthly" in text


def test_digest_html_part(smtp: FakeSmtp, client: httpx.Client) -> None:
    make_channel(smtp).send(make_delivery(), client)

    html = smtp.messages[0].part("text/html")
    assert "<h2>2 cost alerts since the last digest</h2>" in html
    assert '<th align="left">Forecast</th><td>5,400.00 USD</td>' in html
    assert "Remove idle &lt;load balancer&gt;" in html
    assert "<load balancer>" not in html
    assert f'<a href="{PUBLIC_URL}/api/v1/alerts/web-monthly">Full alert</a>' in html


def test_action_links_in_both_parts(smtp: FakeSmtp, client: httpx.Client) -> None:
    links = {
        "web-monthly": ActionLinks(
            "https://c.example/a?t=1&x=2", "https://c.example/r", "https://c.example/s"
        )
    }

    make_channel(smtp).send(make_delivery(links=links), client)

    assert "  Approve: https://c.example/a?t=1&x=2" in smtp.messages[0].part("text/plain")
    assert 'href="https://c.example/a?t=1&amp;x=2"' in smtp.messages[0].part("text/html")


def test_single_alert_skipped_by_default(smtp: FakeSmtp, client: httpx.Client) -> None:
    result = make_channel(smtp).send(make_delivery("trigger"), client)

    assert result.detail == "digest_only is set; trigger not mailed"
    assert smtp.messages == []


def test_single_alert_when_allowed(smtp: FakeSmtp, client: httpx.Client) -> None:
    notice = make_notice("web-monthly", "critical", state="resolved")

    make_channel(smtp, digest_only=False).send(make_delivery("resolve", (notice,)), client)

    [mail] = smtp.messages
    # The long subject is folded after "Subject:", so the unfolded value starts with a space.
    assert mail.message["Subject"].strip() == (
        "[costwarden] Resolved: web-monthly: forecast 5,400.00 USD for the period"
    )
    assert "(resolved)" in mail.part("text/plain")


def test_update_threads_under_first(smtp: FakeSmtp, client: httpx.Client) -> None:
    channel = make_channel(smtp, digest_only=False)
    notice = make_notice("web-monthly", "warning")
    first = channel.send(make_delivery("trigger", (notice,)), client)

    update = replace(
        make_delivery("update", (notice,)), id="row-43", external_ref=first.external_ref
    )
    second = channel.send(update, client)

    assert smtp.messages[1].message["In-Reply-To"] == "<row-42@example.com>"
    assert smtp.messages[1].message["References"] == "<row-42@example.com>"
    assert second.external_ref == "<row-43@example.com>"
    assert "In-Reply-To" not in smtp.messages[0].message


def test_owner_addresses_added(smtp: FakeSmtp, client: httpx.Client) -> None:
    channel = make_channel(smtp, mail_owners=True, recipients=["FinOps@example.com"])

    channel.send(make_delivery(), client)

    assert smtp.messages[0].rcpt_tos == ["FinOps@example.com", "team-web@example.com"]


def test_auth_login(client: httpx.Client, tmp_path: Path) -> None:
    with FakeSmtp(auth=(USER, PASSWORD), tls_dir=tmp_path) as server:
        channel = make_channel(
            server, starttls=True, ca_file=str(server.ca_file), username=USER, password=PASSWORD
        )

        channel.send(make_delivery(), client)

        assert server.messages[0].authenticated


def test_wrong_password_permanent(client: httpx.Client, tmp_path: Path) -> None:
    with FakeSmtp(auth=(USER, PASSWORD), tls_dir=tmp_path) as server:
        channel = make_channel(
            server,
            starttls=True,
            ca_file=str(server.ca_file),
            username=USER,
            password="wrong-password-7",
        )

        with pytest.raises(PermanentDeliveryError) as caught:
            channel.send(make_delivery(), client)

    assert caught.value.status == 535
    assert "wrong-password-7" not in str(caught.value)


def test_untrusted_certificate_permanent(client: httpx.Client, tmp_path: Path) -> None:
    with FakeSmtp(tls_dir=tmp_path) as server:
        channel = make_channel(server, starttls=True)

        with pytest.raises(PermanentDeliveryError) as caught:
            channel.send(make_delivery(), client)

    assert "Set ca_file" in str(caught.value)


def test_no_starttls_offered_permanent(smtp: FakeSmtp, client: httpx.Client) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        make_channel(smtp, starttls=True).send(make_delivery(), client)

    assert "Turn off starttls" in str(caught.value)


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("mail", "451 4.3.0 Try again later"),
        ("rcpt", "421 4.3.2 Service shutting down"),
        ("rcpt", "450 4.2.1 Mailbox busy"),
        ("data", "452 4.3.1 Insufficient storage"),
    ],
)
def test_4xx_retryable(stage: str, reply: str, smtp: FakeSmtp, client: httpx.Client) -> None:
    smtp.fail_next(reply, stage)
    channel = make_channel(smtp)

    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(make_delivery(), client)
    channel.send(make_delivery(), client)

    assert caught.value.status == int(reply[:3])
    assert len(smtp.messages) == 1


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("mail", "553 5.1.8 Sender address rejected"),
        ("rcpt", "550 5.1.1 No such user"),
        ("data", "554 5.7.1 Message rejected as spam"),
    ],
)
def test_5xx_permanent(stage: str, reply: str, smtp: FakeSmtp, client: httpx.Client) -> None:
    smtp.fail_next(reply, stage)

    with pytest.raises(PermanentDeliveryError) as caught:
        make_channel(smtp).send(make_delivery(), client)

    assert caught.value.status == int(reply[:3])
    assert reply[4:] in str(caught.value)
    assert smtp.messages == []


def test_one_refused_recipient_reported(smtp: FakeSmtp, client: httpx.Client) -> None:
    smtp.refuse("gone@example.com", "550 5.1.1 No such user")
    channel = make_channel(smtp, recipients=["finops@example.com", "gone@example.com"])

    result = channel.send(make_delivery(), client)

    assert smtp.messages[0].rcpt_tos == ["finops@example.com"]
    assert result.detail == "mailed to 1 recipients; refused: gone@example.com"


def test_connection_refused_retryable(client: httpx.Client) -> None:
    sock = bind_socket(LOOPBACK, 0)
    port = sock.getsockname()[1]
    sock.close()

    with pytest.raises(RetryableDeliveryError) as caught:
        make_channel(port=port).send(make_delivery(), client)

    assert "ConnectionRefusedError" in str(caught.value)


def test_silent_server_times_out(client: httpx.Client) -> None:
    sock = bind_socket(LOOPBACK, 0)
    try:
        channel = make_channel(port=sock.getsockname()[1], timeout_seconds=0.3)

        with pytest.raises(RetryableDeliveryError) as caught:
            channel.send(make_delivery(), client)
    finally:
        sock.close()

    # smtplib reports a timeout while reading the greeting as a disconnect "timed out".
    assert "timed out" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sender": "costwarden"}, "is not an email address"),
        ({"recipients": ["finops at example.com"]}, "are not email addresses"),
        ({"recipients": []}, "nobody gets mail"),
        ({"ssl": True, "starttls": True}, "ssl and starttls exclude each other"),
        ({"username": "mailer"}, "username and password go together"),
        (
            {"username": "mailer", "password": "p", "starttls": False},
            "a password would cross the network unencrypted",
        ),
    ],
)
def test_invalid_settings(options: dict[str, Any], message: str) -> None:
    values = {
        "type": "email",
        "host": "smtp.example.com",
        "sender": "costwarden@example.com",
        "recipients": ["finops@example.com"],
        **options,
    }

    with pytest.raises(ConfigError) as caught:
        CHANNELS.validate("mail", values)

    assert message in str(caught.value)


def test_password_hidden_in_repr() -> None:
    settings = CHANNELS.validate(
        "mail",
        {
            "type": "email",
            "host": "smtp.example.com",
            "sender": "costwarden@example.com",
            "recipients": ["finops@example.com"],
            "username": "u",
            "password": "smtp-secret-9",
        },
    )

    assert "smtp-secret-9" not in repr(settings)
