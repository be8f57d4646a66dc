"""STARTTLS for real: a local SMTP server that requires TLS before AUTH, with its own CA."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from monitor.alerts.channels.email import EmailChannel, EmailSettings
from monitor.alerts.model import SENT
from monitor.clock import SimulatedClock
from tests.alerts.fakes import NOW, make_alerts
from tests.helpers import self_signed

USER, PASSWORD = "monitor@example.com", "s3cret-pw"


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
