"""The real API on a real uvicorn server on 127.0.0.1, with a real Monitor behind it.

The server runs in a background thread on its own event loop, as the daemon runs it on
its; every piece of Monitor work a test needs besides HTTP requests (a tick, an ingest)
is sent to that loop with :meth:`ApiServer.call`, never run on the test's thread.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from sqlalchemy import func, select
from sqlmodel import SQLModel

from carriers.kuaidi100 import Kuaidi100Carrier
from carriers.model import Status, TrackingEvent
from carriers.sandbox import SandboxCarrier
from carriers.testing.kuaidi100 import make_settings
from monitor.alerts.channels.console import ConsoleChannel
from monitor.api import ApiContext, create_app
from monitor.clock import SimulatedClock
from monitor.config import ApiSettings
from monitor.metrics import Metrics
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store
from tests.carriers.payloads import kuaidi100_recorded as fixture

TOKEN = "test-token-5f2c9a"
SECRET = "refund-secret-8d1e"
SALT = fixture("push_callback")["salt"]
CST = timezone(timedelta(hours=8))
START = datetime(2026, 11, 11, 10, 0, tzinfo=CST)
DOCS = Path(__file__).parents[2] / "docs" / "api.md"
T = TypeVar("T")


def signing_snippet() -> dict[str, Any]:
    """Run the Python signing snippet of docs/api.md and return what it defines."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```python\n", text.index("<!-- signing-snippet -->")) + len("```python\n")
    code = text[start : text.index("```", start)]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # our own documentation, run as a reader would
    return namespace


SNIPPET = signing_snippet()


@dataclass
class ApiServer:
    """One running API and everything behind it."""

    url: str
    ctx: ApiContext
    store: Store
    clock: SimulatedClock
    sandbox: SandboxCarrier
    kuaidi100: Kuaidi100Carrier
    alerts: io.StringIO
    loop: asyncio.AbstractEventLoop
    ready: list[bool] = field(default_factory=lambda: [True])

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        """Return an HTTP client on the server, with the bearer token unless ``token`` is None."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (where all Monitor work happens) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def scan(self, tracking_no: str, status: Status, at: datetime, carrier: str = "sandbox", **extra: Any) -> None:
        """Feed one carrier event through the Monitor, on the server's loop."""
        event = TrackingEvent(carrier, tracking_no, at, status, raw_code=extra.pop("raw_code", status.value), **extra)
        self.call(self.ctx.monitor.ingest([event]))

    def tick(self) -> int:
        """Fire due time-driven rules, on the server's loop."""
        return self.call(self.ctx.monitor.tick())

    def signed_refund(self, body: bytes, secret: str = SECRET, at: datetime | None = None) -> httpx.Response:
        """POST a refund body signed with docs/api.md's own ``sign``."""
        moment = at or self.clock.now()
        headers = SNIPPET["sign"](secret, body, int(moment.timestamp()))
        with self.client(token=None) as http:
            return http.post("/api/v1/refunds", content=body, headers=headers)


def _serve(server: uvicorn.Server, box: dict[str, Any]) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    box["loop"] = loop
    try:
        loop.run_until_complete(server.serve())
    finally:
        loop.close()


def stored(store: Store) -> dict[str, int]:
    """Count the rows of every table, to show that a refused request left nothing behind."""
    with store.engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


@contextmanager
def running_api(
    store: Store, settings: ApiSettings | None = None, extra_adapters: dict[str, Any] | None = None
) -> Iterator[ApiServer]:
    """Build the Monitor as the demo does, serve its API on a free port, and stop it afterwards."""
    clock = SimulatedClock(START)
    sandbox = SandboxCarrier(clock)
    http = httpx.AsyncClient()
    kuaidi100 = Kuaidi100Carrier(make_settings(salt=SALT), http)
    adapters: dict[str, Any] = {"sandbox": sandbox, "kuaidi100": kuaidi100, **(extra_adapters or {})}
    alerts = io.StringIO()
    monitor = Monitor(store, build_ruleset(None), clock, adapters, {"console": ConsoleChannel(alerts, "console", "en")})
    ready = [True]
    ctx = ApiContext(
        monitor=monitor,
        store=store,
        clock=clock,
        settings=settings or ApiSettings(token=TOKEN, refund_secret=SECRET),
        adapters=adapters,
        metrics=Metrics(store),
        ready=lambda: ready[0],
    )
    config = uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    box: dict[str, Any] = {}
    thread = threading.Thread(target=_serve, args=(server, box), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    api = ApiServer(f"http://127.0.0.1:{port}", ctx, store, clock, sandbox, kuaidi100, alerts, box["loop"], ready)
    try:
        yield api
    finally:
        api.call(http.aclose())
        server.should_exit = True
        thread.join(timeout=15)
