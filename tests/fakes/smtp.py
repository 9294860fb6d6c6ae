"""A fake SMTP server on 127.0.0.1: aiosmtpd's Controller with a capturing handler.

``FakeSmtp()`` accepts every message and keeps it in ``messages``. Options:

- ``auth=(user, password)``: MAIL FROM gets 530 until the client logged in with those
  credentials (AUTH PLAIN or LOGIN); wrong ones get aiosmtpd's 535.
- ``tls_dir=path``: write a self-signed certificate for 127.0.0.1 there (``ca_file``), offer
  STARTTLS and require it before MAIL FROM.
- ``fail_next(reply, stage)`` replies to the next MAIL, RCPT or DATA command with ``reply``, for
  example ``"451 4.3.0 Try again later"`` or ``"550 5.1.1 No such user"``.
- ``refuse(address, reply)`` replies to every RCPT TO of one address with ``reply``.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from costwarden.simulator.server import LOOPBACK, bind_socket

USER, PASSWORD = "costwarden-mailer", "fake-smtp-password-41c7"


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated: bool

    def part(self, content_type: str) -> str:
        """Return the decoded text of the body part of ``content_type`` (text/plain, text/html)."""
        body = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        if body is None or body.get_content_type() != content_type:
            raise AssertionError(f"the message has no {content_type} part")
        return str(body.get_content())


class _Handler:
    def __init__(self, fake: FakeSmtp) -> None:
        self.fake = fake

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.fake.require_tls and session.ssl is None:
            return "530 5.7.0 Must issue a STARTTLS command first"
        if self.fake.auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        scripted = self.fake.scripted("mail")
        if scripted:
            return scripted
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        scripted = self.fake.scripted("rcpt") or self.fake.refused.get(address)
        if scripted:
            return scripted
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        scripted = self.fake.scripted("data")
        if scripted:
            return scripted
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        mail = ReceivedMail(
            envelope.mail_from, list(envelope.rcpt_tos), message, bool(session.authenticated)
        )
        with self.fake.lock:
            self.fake.messages.append(mail)
        return "250 Message accepted for delivery"


class FakeSmtp:
    """The fake server on a free port of 127.0.0.1, as a context manager."""

    def __init__(self, *, auth: tuple[str, str] | None = None, tls_dir: Path | None = None) -> None:
        self.auth = auth
        self.require_tls = tls_dir is not None
        self.ca_file: Path | None = None
        self.messages: list[ReceivedMail] = []
        self.refused: dict[str, str] = {}
        self.lock = threading.Lock()
        self._script: dict[str, deque[str]] = {"mail": deque(), "rcpt": deque(), "data": deque()}
        self.port = _free_port()
        options: dict[str, Any] = {"authenticator": self._authenticate, "auth_required": False}
        if tls_dir is not None:
            self.ca_file, key_file = _self_signed(tls_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.ca_file, key_file)
            options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
        else:
            options["auth_require_tls"] = False
        self.controller = Controller(_Handler(self), hostname=LOOPBACK, port=self.port, **options)

    @property
    def host(self) -> str:
        return LOOPBACK

    def fail_next(self, reply: str, stage: str = "data", count: int = 1) -> None:
        """Reply to the next ``count`` commands of ``stage`` (mail, rcpt or data) with ``reply``."""
        with self.lock:
            self._script[stage].extend([reply] * count)

    def refuse(self, address: str, reply: str) -> None:
        self.refused[address] = reply

    def scripted(self, stage: str) -> str | None:
        with self.lock:
            queue = self._script[stage]
            return queue.popleft() if queue else None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.auth is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self.auth
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.controller.stop()


def _free_port() -> int:
    # NOTE: the port is free when picked, but another process could take it before aiosmtpd binds.
    sock = bind_socket(LOOPBACK, 0)
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate and key for 127.0.0.1 and return both paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-smtp.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
