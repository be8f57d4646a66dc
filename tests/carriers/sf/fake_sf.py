"""A real local 丰桥 endpoint for the SF tests: it checks the form and the signature as SF does.

The server has its own check word and its own Java ``URLEncoder`` (written out character by character,
not shared with the adapter), recomputes ``msgDigest`` and answers a wrong one with SF's A1006.
``script`` queues answers (status, body, headers, delay) given, one per request, to requests that
passed the checks, before the usual ones: e.g. 503, then 429, then the recorded route answer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sf"
PARTNER = "QIAO_TEST_0001"
CHECK_WORD = "Yk3vQ9pLm2ZxR7wT4nB8cD1fG6hJ0sAe"
PATH = "/std/service"
FIELDS = ("partnerID", "requestID", "serviceCode", "timestamp", "msgData", "msgDigest")
NOW = datetime(2026, 11, 11, 1, 30, tzinfo=UTC)
DEFAULT_REPLIES = {"EXP_RECE_SEARCH_ROUTES": "route_delivered", "EXP_RECE_WANTED_INTERCEPT": "intercept_accepted"}
FORM = "application/x-www-form-urlencoded"


class FixedClock:
    """A clock that says what the test sets."""

    def __init__(self, now: datetime = NOW) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


def recorded(name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/sf/<name>.json``."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def closed_port() -> int:
    """Return a port on 127.0.0.1 where nothing listens (one just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def java_encode(text: str) -> str:
    """Java ``URLEncoder.encode(text, "UTF-8")``: keep a-z A-Z 0-9 . - * _, space → +, else %XX of UTF-8."""
    out = []
    for char in text:
        if char.isascii() and (char.isalnum() or char in ".-*_"):
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def sf_digest(msg_data: str, timestamp: str, check_word: str) -> str:
    """Compute ``msgDigest`` the way 丰桥 verifies it."""
    return base64.b64encode(hashlib.md5(java_encode(msg_data + timestamp + check_word).encode()).digest()).decode()


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    content_type: str
    form: dict[str, str]

    def msg(self) -> Any:
        return json.loads(self.form["msgData"])


@dataclass
class Scripted:
    """One queued answer: HTTP status, raw body, extra headers, seconds to wait before answering."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class FakeSF:
    """丰桥 on 127.0.0.1: check, then answer the fixture named for the service (or a forced reply)."""

    check_word: str = CHECK_WORD
    replies: dict[str, str] = field(
        default_factory=lambda: {
            "EXP_RECE_SEARCH_ROUTES": "route_delivered",
            "EXP_RECE_WANTED_INTERCEPT": "intercept_accepted",
        }
    )
    #: (status, raw body) answered to every request that passed the checks.
    force: tuple[int, str] | None = None
    delay: float = 0.0
    #: Answer A1007 to a requestID seen before, as a deduplicating platform would.
    dedupe: bool = False
    seen: list[Seen] = field(default_factory=list)
    #: Answers given in turn to checked requests before ``force`` and the fixtures.
    script: list[Scripted] = field(default_factory=list)

    def answer(self, seen: Seen) -> tuple[int, str] | Scripted:
        if seen.path != PATH:
            return 404, "<html><body>404 Not Found</body></html>"
        form = seen.form
        if not seen.content_type.startswith("application/x-www-form-urlencoded") or any(
            not form.get(f) for f in FIELDS
        ):
            return self.fixture("error_a1001")
        if form["partnerID"] != PARTNER:
            return self.fixture("error_a1004")
        if form["msgDigest"] != sf_digest(form["msgData"], form["timestamp"], self.check_word):
            return self.fixture("error_a1006")
        if self.script:
            return self.script.pop(0)
        if self.dedupe and any(s.form.get("requestID") == form["requestID"] for s in self.seen[:-1]):
            return self.fixture("intercept_duplicate")
        if self.force is not None:
            return self.force
        return self.fixture(self.replies[form["serviceCode"]])

    @staticmethod
    def fixture(name: str) -> tuple[int, str]:
        data = recorded(name)
        return data["status"], json.dumps(data["body"], ensure_ascii=False)

    def __enter__(self) -> FakeSF:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK wait

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
                seen = Seen(self.path, self.headers.get("Content-Type", ""), form)
                fake.seen.append(seen)
                time.sleep(fake.delay)
                reply = fake.answer(seen)
                if not isinstance(reply, Scripted):
                    reply = Scripted(*reply)
                time.sleep(reply.delay)
                data = reply.body.encode("utf-8")
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json;charset=UTF-8", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up waiting (a timeout test): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH}"
