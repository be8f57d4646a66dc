"""STARTTLS for real: a local SMTP server that requires TLS before AUTH, with its own CA."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.alerts.channels.email import EmailChannel, EmailSettings
from monitor.alerts.model import SENT
from monitor.clock import SimulatedClock
from tests.alerts.fakes import NOW, make_alerts

USER, PASSWORD = "monitor@example.com", "s3cret-pw"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and its key; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class TLSServer(Controller):
    """A Controller on a port the OS picks (it must learn the port before its first self-check)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[bool, bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append((session.ssl is not None, envelope.original_content or b""))
        return "250 OK"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[TLSServer, Inbox, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()

    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = data is not None and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
        return AuthResult(success=ok)

    server = TLSServer(
        inbox, hostname="127.0.0.1", port=0, tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_require_tls=True,
    )  # fmt: skip
    server.start()
    yield server, inbox, cert
    server.stop()


def channel(server: Controller, ca_file: Path | None) -> EmailChannel:
    raw = {"host": "127.0.0.1", "port": server.port, "username": USER, "password_env": "PW", "from_addr": USER,
           "to_addrs": ["ops@example.com"], "ca_file": str(ca_file) if ca_file else None}  # fmt: skip
    settings = EmailSettings.from_mapping(raw, {"PW": PASSWORD})
    return EmailChannel("mail", settings, SimulatedClock(NOW))


def test_starttls_then_auth_then_send(tls_server: tuple[Controller, Inbox, Path]) -> None:
    server, inbox, cert = tls_server
    assert asyncio.run(channel(server, cert).notify(make_alerts(1))) == SENT
    ((over_tls, _),) = inbox.messages
    assert over_tls


def test_untrusted_certificate_is_given_up(tls_server: tuple[Controller, Inbox, Path]) -> None:
    server, inbox, _ = tls_server
    delivery = asyncio.run(channel(server, None).notify(make_alerts(1)))
    assert not delivery.sent and not delivery.retryable
    assert inbox.messages == []
