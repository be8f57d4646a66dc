"""A real SMTP server on 127.0.0.1 that requires AUTH and records every message (needs aiosmtpd)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class MailRecorder:
    """An aiosmtpd handler that keeps every message, requires AUTH, and can refuse recipients or data."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.messages: list[tuple[Envelope, EmailMessage]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        assert isinstance(envelope.content, bytes)
        self.messages.append((envelope, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


class LocalSMTP(Controller):
    """A real SMTP server on 127.0.0.1 (a port the OS picks) that requires AUTH as one user.

    Without a certificate there is no STARTTLS, so AUTH is allowed over plain text here — on loopback only.
    """

    def __init__(self, recorder: MailRecorder, user: str, password: str) -> None:
        def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (user.encode(), password.encode())
            return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

        # auth_required=True would warn (rightly) about AUTH without TLS; the recorder asks for AUTH instead
        super().__init__(recorder, hostname="127.0.0.1", port=0, authenticator=authenticate, auth_require_tls=False)

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]  # learn the port the OS picked before the first connect
        super()._trigger_server()
