"""A real HTTP server on 127.0.0.1 that speaks Kuaidi100's wire format and checks requests as Kuaidi100 does.

``POST /poll/query.do``: a form of ``customer``, ``sign`` and ``param``; the customer must be known and
``sign`` must equal MD5(param + key + customer) in upper-case hex, computed here over the ``param``
string exactly as received. ``POST /poll``: ``schema=json`` and a ``param`` holding the key and
``parameters.callbackurl``. Answers come from the recorded fixtures in ``tests/fixtures/kuaidi100``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx

from carriers.kuaidi100 import Kuaidi100Carrier, Kuaidi100Settings

FIXTURES = Path(__file__).parents[2] / "fixtures" / "kuaidi100"
CUSTOMER = "8A2C1F3B9E7D4C6A0B5E3D2F1A9C8B7E"
KEY = "kQ3xR7vT2mW9pL5n"
FORM = "application/x-www-form-urlencoded"
T = TypeVar("T")


def fixture(name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/kuaidi100/<name>.json``."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def make_settings(base_url: str = "https://poll.kuaidi100.com", **changes: Any) -> Kuaidi100Settings:
    """Return settings for the account the fake server knows (company ``zhongtong``)."""
    values: dict[str, Any] = {"customer": CUSTOMER, "key": KEY, "company": "zhongtong", "base_url": base_url}
    return Kuaidi100Settings(**(values | changes))


async def no_wait(delay: float) -> None:
    """Stand in for asyncio.sleep so retried queries do not wait."""


def with_carrier(settings: Kuaidi100Settings, action: Callable[[Kuaidi100Carrier], Awaitable[T]]) -> T:
    """Run ``action`` on a carrier holding a real ``httpx.AsyncClient``, on a fresh event loop."""

    async def main() -> T:
        async with httpx.AsyncClient() as http:
            return await action(Kuaidi100Carrier(settings, http, sleep=no_wait))

    return asyncio.run(main())


def closed_port() -> int:
    """Return a port on 127.0.0.1 where nothing listens (one just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    """An answer: status, body (JSON unless a str), headers, and a delay before answering."""

    status: int
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def recorded(cls, name: str) -> Reply:
        data = fixture(name)
        return cls(data["status"], data["body"])


class FakeKuaidi100:
    """Kuaidi100's query and subscription endpoints, answered from fixtures; ``force`` overrides checked answers."""

    def __init__(self, tracks: dict[str, str] | None = None, force: Reply | None = None) -> None:
        self.tracks = tracks or {}  # tracking number -> fixture name of its answer
        self.force = force
        self.script: list[Reply] = []  # answered in turn to signed queries, before force and the fixtures
        self.received: list[tuple[str, dict[str, str], dict[str, str]]] = []  # (path, headers, form)
        self.subscribed: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first (use it as a context manager)"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, path: str, headers: dict[str, str], form: dict[str, str]) -> Reply:
        if path == "/poll/query.do":
            return self.query(headers, form)
        if path == "/poll":
            return self.subscribe(headers, form)
        return Reply(404, "404 Not Found")

    def query(self, headers: dict[str, str], form: dict[str, str]) -> Reply:
        if not headers.get("content-type", "").startswith(FORM) or form.get("customer") != CUSTOMER:
            return Reply.recorded("error_no_company")
        param = form.get("param", "")
        if form.get("sign") != hashlib.md5((param + KEY + CUSTOMER).encode()).hexdigest().upper():
            return Reply.recorded("error_bad_sign")
        if self.script:
            return self.script.pop(0)
        if self.force is not None:
            return self.force
        query = json.loads(param)
        name = self.tracks.get(query.get("num", ""))
        if name is None or fixture(name)["body"]["com"] != query.get("com"):
            return Reply.recorded("error_no_result")
        return Reply.recorded(name)

    def subscribe(self, headers: dict[str, str], form: dict[str, str]) -> Reply:
        if not headers.get("content-type", "").startswith(FORM) or form.get("schema") != "json":
            return Reply.recorded("subscribe_server_error")
        param = json.loads(form.get("param", "{}"))
        if param.get("key") != KEY:
            return Reply.recorded("subscribe_bad_key")
        if self.force is not None:
            return self.force
        if any(s["number"] == param.get("number") for s in self.subscribed):
            return Reply.recorded("subscribe_duplicate")
        self.subscribed.append(param)
        return Reply.recorded("subscribe_ok")

    def __enter__(self) -> FakeKuaidi100:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
                owner.received.append((self.path, headers, form))
                reply = owner.answer(self.path, headers, form)
                time.sleep(reply.delay)
                data = (
                    reply.body if isinstance(reply.body, str) else json.dumps(reply.body, ensure_ascii=False)
                ).encode()
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json;charset=UTF-8", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
