"""Real local servers for the Slack, webhook and email channel tests: HTTP keeping raw bytes and headers, and SMTP."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

FIXTURES = Path(__file__).parents[1] / "fixtures"


def closed_port() -> int:
    """Return a port on 127.0.0.1 where nothing listens (one just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recorded(provider: str, name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/<provider>/<name>.json``: ``source``, ``body``; replies add ``status``, ``headers``."""
    return json.loads((FIXTURES / provider / f"{name}.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Exchange:
    """One request as the server saw it: the exact bytes, so a signature over them can be checked."""

    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.raw)


@dataclass
class Reply:
    """What the server answers: a status, a body (text, or JSON when not a str) and headers."""

    status: int
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def recorded(cls, provider: str, name: str) -> Reply:
        """Answer with a recorded reply fixture."""
        data = recorded(provider, name)
        return cls(data["status"], data["body"], data.get("headers", {}))


class WebServer:
    """Serve HTTP on 127.0.0.1 (a port the OS picks) from a thread; subclasses decide each answer.

    ``force`` names a reply fixture to answer once a request has passed the checks; ``problems``
    collects what the server found wrong with a request.
    """

    provider = ""

    def __init__(self, force: str | None = None) -> None:
        self.force = force
        self.received: list[Exchange] = []
        self.problems: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, request: Exchange) -> Reply:
        """Return the reply to ``request``."""
        raise NotImplementedError

    def checked(self) -> Reply:
        """Answer a request that passed every check: the forced reply, or success."""
        return Reply.recorded(self.provider, self.force or "response_ok")

    def url(self, path: str) -> str:
        """Return the URL of ``path`` on this server."""
        assert self._server is not None, "start the server first (use it as a context manager)"
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> WebServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = Exchange(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                owner.received.append(request)
                reply = owner.answer(request)
                body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                data = body.encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.status not in (204, 304):
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if reply.status not in (204, 304):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


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
