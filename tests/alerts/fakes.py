"""A real local HTTP server to stand in for a chat provider, and the builders the channel tests share."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from monitor.alerts.model import Alert, Channel, Delivery

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = datetime(2026, 11, 11, 2, 30, tzinfo=UTC)  # 10:30 on Singles' Day in Shanghai
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
RULES = ("pickup_overdue", "stalled", "carrier_exception", "lost_suspected")


def fixture(provider: str, name: str) -> dict[str, Any]:
    """Load ``tests/fixtures/<provider>/<name>.json``: ``source``, ``body`` and, for replies, ``status``."""
    return json.loads((FIXTURES / provider / f"{name}.json").read_text(encoding="utf-8"))


def make_alerts(count: int) -> list[Alert]:
    """Return ``count`` firing alerts with distinct tracking numbers that cannot be mistaken for phones."""
    return [
        Alert(
            anomaly_id=i + 1,
            rule=RULES[i % len(RULES)],
            severity="critical" if i % 3 == 0 else "warning",
            state="firing",
            carrier="SF",
            tracking_no=f"SF{100000000000 + i}",
            order_id=f"TB{900000 + i}",
            shop="旗舰店",
            opened_at=NOW - timedelta(hours=30, minutes=i),
            compensation_fen=500 + i,
        )
        for i in range(count)
    ]


def deliver(build: Callable[[httpx.AsyncClient], Channel], alerts: Sequence[Alert]) -> Delivery:
    """Build a channel on a fresh client and run one ``notify``."""

    async def run() -> Delivery:
        async with httpx.AsyncClient(timeout=5) as http:
            return await build(http).notify(alerts)

    return asyncio.run(run())


def closed_port_url(path: str) -> str:
    """Return a URL on 127.0.0.1 where nothing listens (a port just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def shape_problems(example: Any, actual: Any, optional: frozenset[str] = frozenset(), path: str = "$") -> list[str]:
    """Compare ``actual`` with a recorded example: same keys (bar ``optional`` ones), same JSON types."""
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems = [f"{path}.{k}: missing" for k in example if k not in actual and k not in optional]
        problems += [f"{path}.{k}: not in the provider's format" for k in actual if k not in example]
        for key in example.keys() & actual.keys():
            problems += shape_problems(example[key], actual[key], optional, f"{path}.{key}")
        return problems
    if isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        return (
            [p for item in actual for p in shape_problems(example[0], item, optional, f"{path}[]")] if example else []
        )
    if type(example) is not type(actual):
        return [f"{path}: expected {type(example).__name__}, got {type(actual).__name__}"]
    return []


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    path: str
    query: dict[str, str]
    body: Any


class ProviderServer:
    """Serve a provider's webhook on 127.0.0.1 from a background thread; subclasses decide each answer.

    ``force`` names a reply fixture to answer once the request has passed the provider's checks
    (rate limit, server error); ``problems`` collects what the server found wrong with a request.
    """

    provider = ""

    def __init__(self, force: str | None = None) -> None:
        self.force = force
        self.received: list[Received] = []
        self.problems: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, request: Received) -> tuple[int, Any]:
        """Return (HTTP status, body) for ``request``."""
        raise NotImplementedError

    def reply(self, name: str) -> tuple[int, Any]:
        """Answer with a recorded reply fixture."""
        recorded = fixture(self.provider, name)
        return recorded["status"], recorded["body"]

    def checked(self, name: str = "response_ok") -> tuple[int, Any]:
        """Answer a request that passed every check: the forced reply, or ``name``."""
        return self.reply(self.force or name)

    def url(self, path: str) -> str:
        """Return the URL of ``path`` on this server."""
        assert self._server is not None, "start the server first (use it as a context manager)"
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> ProviderServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                    owner.problems.append(f"body is not JSON: {raw[:80]!r}")
                if not self.headers.get("Content-Type", "").startswith("application/json"):
                    owner.problems.append(f"Content-Type {self.headers.get('Content-Type')!r}")
                query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                request = Received(parts.path, query, body)
                owner.received.append(request)
                status, answer = owner.answer(request)
                data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if isinstance(answer, str) else "application/json")
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
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
