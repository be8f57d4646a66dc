"""A real HTTP server on 127.0.0.1 that speaks ZOP's wire format and checks requests as ZOP does.

``POST /zto.merchant.waybill.track.query`` and ``POST /thirdcenter.createIntercept``: a UTF-8 JSON body
with ``x-appKey`` and ``x-dataDigest`` headers. The server knows one application; it recomputes
Base64(MD5(body bytes as received + appSecret)) with its own code (not the adapter's) and answers a
wrong digest with S211, an unknown key with S210 and a body without ``billCode`` with S208. Answers
come from the recorded fixtures in ``tests/fixtures/zto``. An intercept whose ``requestId`` was seen
before is answered as the first time and creates nothing new (ZOP's 幂等校验 on ``requestId``).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from hashlib import md5
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parents[2] / "fixtures" / "zto"
APP_KEY = "zto-test-app-5e1f3c"
APP_SECRET = "9c4be1d07f2a4e0c8b3d6a1f5e7c2b90"
TRACK_PATH = "/zto.merchant.waybill.track.query"
INTERCEPT_PATH = "/thirdcenter.createIntercept"


def recorded(name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/zto/<name>.json``."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def zop_digest(body: bytes, secret: str) -> str:
    """Compute ``x-dataDigest`` the way ZOP verifies it: over the raw request bytes, then the secret."""
    return base64.b64encode(md5(body + secret.encode("utf-8")).digest()).decode("ascii")


def closed_port() -> int:
    """Return a port on 127.0.0.1 where nothing listens (one just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    """An answer: status, body (JSON unless a str), extra headers, seconds to wait before answering."""

    status: int
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def recorded(cls, name: str, delay: float = 0.0) -> Reply:
        data = recorded(name)
        return cls(data["status"], data["body"], delay=delay)


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))


@dataclass
class FakeZTO:
    """ZOP on 127.0.0.1: check, then answer the fixture for the number (or a scripted reply)."""

    #: waybill number -> fixture name of its trace answer (unknown numbers: ``track_empty``)
    tracks: dict[str, str] = field(default_factory=dict)
    #: fixture name answered to a new intercept
    intercept_reply: str = "intercept_accepted"
    #: answers given in turn to checked requests, before the fixtures (e.g. 503, then 429)
    script: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    #: intercepts ZTO actually created, by requestId (a repeated requestId creates none)
    created: dict[str, Reply] = field(default_factory=dict)
    #: extra seconds before answering, one per request in turn, after the request was processed
    #: (an answer that arrives too late: the work is done, the client has stopped waiting)
    late: list[float] = field(default_factory=list)

    def answer(self, seen: Seen) -> Reply:
        if seen.path not in (TRACK_PATH, INTERCEPT_PATH):
            return Reply(404, "<html><body><h1>404 Not Found</h1></body></html>")
        if not seen.headers.get("content-type", "").startswith("application/json"):
            return Reply.recorded("error_s208")
        if seen.headers.get("x-appkey") != APP_KEY:
            return Reply.recorded("error_s210")
        if seen.headers.get("x-datadigest") != zop_digest(seen.raw, APP_SECRET):
            return Reply.recorded("error_s211")
        try:
            body = seen.json()
        except ValueError:
            return Reply.recorded("error_s208")
        if not isinstance(body, dict) or not body.get("billCode"):
            return Reply.recorded("error_s208")
        if self.script:
            return self.script.pop(0)
        if seen.path == TRACK_PATH:
            return Reply.recorded(self.tracks.get(body["billCode"], "track_empty"))
        request_id = body.get("requestId")
        if not request_id or body.get("destinationType") not in (1, 2, 3, 4):
            return Reply.recorded("error_s208")
        if request_id not in self.created:
            self.created[request_id] = Reply.recorded(self.intercept_reply)
        return self.created[request_id]

    def __enter__(self) -> FakeZTO:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                fake.seen.append(seen)
                reply = fake.answer(seen)
                time.sleep(reply.delay + (fake.late.pop(0) if fake.late else 0.0))
                text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body, ensure_ascii=False)
                data = text.encode("utf-8")
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json;charset=UTF-8", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client stopped waiting (a timeout test)

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
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"
