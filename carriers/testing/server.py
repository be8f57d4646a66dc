"""One threaded HTTP server for every local fake, with fault modes a test switches on.

A fake subclasses :class:`FakeServer` and answers checked requests in :meth:`FakeServer.answer`.
Every request is recorded (``received``) before anything else, faulted or not. A fault is
switched on for the next ``times`` requests, or until :meth:`FakeServer.clear`::

    with FakeSF() as sf:
        sf.fail("html", times=3)            # a gateway page with status 200, three times
        sf.fail("429", retry_after=7)       # then 429 + Retry-After: 7, until cleared
        sf.fail("hang", seconds=30)         # hold each request 30 s (or until sf.release())
        sf.clear()

Faults, in the order they were switched on (the first one still live answers):

=========== =========================================================================
``5xx``     an HTML error page with ``status`` (default 503)
``429``     ``429 Too Many Requests`` with ``Retry-After: <retry_after>``
``garbage`` status 200, ``Content-Type: application/json``, bytes that are not JSON
``gzip``    status 200, ``Content-Encoding: gzip`` on a body that is not gzip (a broken proxy)
``html``    status 200, an HTML gateway page (``text/html``)
``hang``    hold the request ``seconds`` (or until :meth:`release`), then answer as usual
``drop``    close the connection without an answer
``auth``    the carrier's documented auth-error answer (:meth:`auth_reply`)
``repeated`` the carrier's repeated-request answer (:meth:`repeated_reply`)
=========== =========================================================================
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

FAULTS = ("5xx", "429", "garbage", "gzip", "html", "hang", "drop", "auth", "repeated")
GARBAGE = b'\x00\xff{"apiResultCode": A1000 <<truncated \x8f\x9e'
GATEWAY_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


def closed_port() -> int:
    """Return a port on 127.0.0.1 where nothing listens (one just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_answer(directory: Path, name: str) -> dict[str, Any]:
    """Load ``<directory>/<name>.json``: a recorded answer with ``status`` and ``body`` (``headers`` optional)."""
    return json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Request:
    """One request as the server received it: the exact bytes, so a signature over them can be checked."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    at: float = 0.0  # time.monotonic() on arrival

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.raw.decode("utf-8"))

    @property
    def body(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.raw)
        except ValueError:
            return None

    def form(self) -> dict[str, str]:
        """Return the body parsed as an ``application/x-www-form-urlencoded`` form (first value of each field)."""
        return {k: v[0] for k, v in parse_qs(self.raw.decode("utf-8"), keep_blank_values=True).items()}


@dataclass
class Reply:
    """An answer: status, body (bytes and str as they are, anything else as JSON), headers, seconds to wait."""

    status: int
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def from_recorded(cls, data: dict[str, Any], delay: float = 0.0) -> Reply:
        """Build the reply a recorded answer (``status``, ``body``, optional ``headers``) describes."""
        return cls(data["status"], data["body"], dict(data.get("headers", {})), delay)

    def data(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


@dataclass
class Fault:
    """A fault switched on: its kind, how many requests it still takes (None: until cleared), its knobs."""

    kind: str
    times: int | None = None
    status: int = 503
    retry_after: int = 1
    seconds: float = 30.0
    when: Callable[[Request], bool] | None = None


class FakeServer:
    """Serve HTTP on 127.0.0.1 (a port the OS picks) from threads; subclasses answer in :meth:`answer`."""

    content_type = "application/json;charset=UTF-8"

    def __init__(self, delay: float = 0.0, nodelay: bool = True, keep_alive: bool = False) -> None:
        self.delay = delay  # seconds before every answer
        self.nodelay = nodelay  # TCP_NODELAY: headers and body go in two writes, no 40 ms delayed-ACK wait
        #: HTTP/1.1 persistent connections; off: HTTP/1.0, one connection per request (a client pooled on a
        #: closed event loop then never reuses a dead connection)
        self.keep_alive = keep_alive
        self.received: list[Request] = []
        self.faulted: list[tuple[str, Request]] = []  # (fault kind, request) for every faulted answer
        self.on_request: Callable[[Request], None] | None = None
        self.connections = 0  # TCP connections accepted
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what a subclass decides ---------------------------------------------------------

    def answer(self, request: Request) -> Reply:
        """Return the reply to a request no fault took."""
        return Reply(404, "404 Not Found", {"Content-Type": "text/plain"})

    def auth_reply(self, request: Request) -> Reply:
        """Return the carrier's documented auth-error answer (fault ``auth``)."""
        return Reply(401, {"error": "unauthorized"})

    def repeated_reply(self, request: Request) -> Reply:
        """Return the carrier's repeated-request answer (fault ``repeated``)."""
        return Reply(409, {"error": "duplicate request"})

    # -- faults ------------------------------------------------------------------------------

    def fail(
        self,
        kind: str,
        times: int | None = None,
        *,
        status: int = 503,
        retry_after: int = 1,
        seconds: float = 30.0,
        when: Callable[[Request], bool] | None = None,
    ) -> Fault:
        """Switch on fault ``kind`` for the next ``times`` requests (None: until cleared) that ``when`` accepts."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}: one of {', '.join(FAULTS)}")
        fault = Fault(kind, times, status, retry_after, seconds, when)
        with self._lock:
            self._faults.append(fault)
            self._released.clear()
        return fault

    def clear(self) -> None:
        """Switch every fault off and let held (``hang``) requests go."""
        with self._lock:
            self._faults.clear()
        self._released.set()

    def release(self) -> None:
        """Let requests held by ``hang`` go now (they are then answered as usual)."""
        self._released.set()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.when is not None and not fault.when(request):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _fault_reply(self, fault: Fault, request: Request) -> Reply | None:
        """Return the faulted reply; None: answer as usual (after a hang), or nothing at all (``drop``)."""
        self.faulted.append((fault.kind, request))
        if fault.kind == "5xx":
            page = f"<html><body><h1>{fault.status} Service Unavailable</h1></body></html>"
            return Reply(fault.status, page, {"Content-Type": "text/html"})
        if fault.kind == "429":
            headers = {"Retry-After": str(fault.retry_after), "Content-Type": "text/plain"}
            return Reply(429, "Too Many Requests", headers)
        if fault.kind == "garbage":
            return Reply(200, GARBAGE)
        if fault.kind == "gzip":
            return Reply(200, b'{"not": "gzip"}', {"Content-Encoding": "gzip"})
        if fault.kind == "html":
            return Reply(200, GATEWAY_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        if fault.kind == "auth":
            return self.auth_reply(request)
        if fault.kind == "repeated":
            return self.repeated_reply(request)
        if fault.kind == "hang":
            self._released.wait(fault.seconds)
        return None

    # -- serving -----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        raw = handler.rfile.read(int(handler.headers.get("Content-Length", "0") or 0))
        request = Request(
            handler.command,
            parts.path,
            {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            {k.lower(): v for k, v in handler.headers.items()},
            raw,
            time.monotonic(),
        )
        with self._lock:
            self.received.append(request)
        if self.on_request is not None:
            self.on_request(request)
        fault = self._take_fault(request)
        reply = self._fault_reply(fault, request) if fault is not None else None
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            return
        if reply is None:
            reply = self.answer(request)
        time.sleep(self.delay + reply.delay)
        data = reply.data()
        try:
            handler.send_response(reply.status)
            for name, value in {"Content-Type": self.content_type, **reply.headers}.items():
                handler.send_header(name, value)
            if reply.status not in (204, 304):
                handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if reply.status not in (204, 304):
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client stopped waiting (a timeout test): nothing to answer

    def start(self) -> Self:
        """Start serving (what ``with`` does)."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if owner.keep_alive else "HTTP/1.0"
            disable_nagle_algorithm = owner.nodelay

            def setup(self) -> None:
                with owner._lock:
                    owner.connections += 1
                super().setup()

            def do_POST(self) -> None:
                owner._handle(self)

            def do_GET(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.request_queue_size = 256  # a deep accept backlog, for bursts after a stall
        self._server.server_bind()
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests held by ``hang`` are let go."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first (use it as a context manager)"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The server's root, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The URL to configure in the client under test (a fake with one endpoint adds its path)."""
        return self.base_url

    def url_for(self, path: str) -> str:
        """Return the URL of ``path`` (with its query, if any) on this server."""
        return self.base_url + path
