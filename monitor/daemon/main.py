"""``parcel-monitor run``: the scheduler and the HTTP API on one asyncio loop, until SIGTERM.

Start-up: open (and migrate) the database, build the carriers and channels, bind the API
socket, start the jobs, then run the outbox once so that work left by a crash goes on at
once. SIGTERM or SIGINT: stop taking requests and starting jobs, let uvicorn finish the
requests in flight and the running jobs finish their actions, then close the database.
Nothing lives only in memory, so a restart continues where the last process stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shlex
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TextIO

import httpx
import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url

from monitor.alerts.model import Channel
from monitor.api.app import create_app
from monitor.api.context import ApiContext
from monitor.clock import Clock, SystemClock
from monitor.config import Settings
from monitor.daemon.assembly import Runtime, build, build_channels
from monitor.daemon.demo_feed import DemoFeed, hold
from monitor.daemon.jobs import Jobs
from monitor.daemon.transport import daemon_client
from monitor.demo import DemoConsole, DemoLines
from monitor.errors import ConfigError
from monitor.kpi.watch import ForecastWatch
from monitor.store.db import CHECKPOINT_SECONDS, exclusive
from monitor.tickets.sinks import KIND as SINK_KIND
from monitor.tickets.sinks import SinkSender, build_sinks
from monitor.tickets.sla import SlaWatch

log = structlog.get_logger("monitor.daemon")

#: How long SIGTERM waits for requests and jobs in flight.
GRACE_SECONDS = 30.0
#: Carrier requests the poller keeps in flight (50 ms answers × 300/s ≈ 15 needed).
POLL_IN_FLIGHT = 32
#: How often today's KPI figures are recounted while the console's 指标 is looked at (they may be 60 s old).
KPI_TODAY_SECONDS = 15


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run: real time (speed 1) or accelerated, with the demo feed or not, for how long."""

    speed: float = 1.0
    demo: bool = False
    stop_after: float | None = None
    migrate: bool = True


def bind(host: str, port: int) -> socket.socket:
    """Bind the API socket ourselves, so a port in use is a clear error naming the setting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"api.listen: cannot listen on {host}:{port}: {err.strerror} "
                          "(set api.listen or PARCEL_MONITOR_LISTEN)") from None  # fmt: skip
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class Daemon:
    """One running parcel-monitor: runtime, jobs, scheduler and API server."""

    def __init__(self, settings: Settings, clock: Clock, environ: Mapping[str, str], options: RunOptions,
                 out: TextIO, wall: Clock | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.clock = clock
        self.wall = wall or SystemClock()  # what remote parties check: signatures, webhook timestamps
        self.feed: DemoFeed | None = None
        self.lines = DemoLines(out, settings.timezone, hold(options.speed)) if options.demo else None
        self.environ = environ
        self.options = options
        self.out = out
        self.ready = False
        self.port: int | None = None
        self.runtime: Runtime | None = None
        self._http: httpx.AsyncClient | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask the daemon to shut down gracefully (what SIGTERM does)."""
        self._stop.set()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.options.speed)

    def _every(self, seconds: float, floor: float = 0.2) -> IntervalTrigger:
        """An interval of ``seconds`` on the monitor's clock, in wall-clock seconds for the scheduler."""
        return IntervalTrigger(seconds=max(seconds / self.options.speed, floor))

    def _daily(self, hour: int, minute: int) -> Any:
        if self.options.speed == 1:
            return CronTrigger(hour=hour, minute=minute, timezone=self.settings.timezone)
        return self._every(24 * 3600)

    async def run(self) -> int:
        """Run until stopped; return the process exit status."""
        # one daemon per SQLite file: a second is refused with one line; PostgreSQL replicas hold nothing
        with exclusive(self.settings.database_url):
            return await self._run()

    async def _run(self) -> int:
        api = self.settings.api
        sock = bind(api.host, api.port)
        self.port = sock.getsockname()[1]
        # one kept-alive connection per request the poller may have in flight: a smaller pool
        # closes and reopens connections all the time (httpx keeps 20 by default); the transport
        # is ours for the CPU a request costs (monitor/daemon/transport.py)
        http = daemon_client(max_connections=POLL_IN_FLIGHT + 16, max_keepalive_connections=POLL_IN_FLIGHT,
                             timeout=httpx.Timeout(10.0), follow_redirects=False)  # fmt: skip
        async with http:
            rt = self.runtime = build(self.settings, self.clock, http, self.environ, sleep=self._sleep,
                                      migrate=self.options.migrate, wall=self.wall,
                                      channels=self._demo_channels(http))  # fmt: skip
            self._http = http
            try:
                return await self._serve(rt, sock)
            finally:
                rt.close()
                sock.close()

    def _tickets(self, rt: Runtime, jobs: Jobs) -> None:
        """Wire the ticket deadline watch and the external ticket sinks (``[tickets.sla]``, ``[[tickets.sinks]]``)."""
        tickets = self.settings.tickets
        jobs.sla = SlaWatch(rt.store, self.clock, tickets.sla_settings(), rt.channels, self.settings.route,
                            self.settings.quiet_hours, tickets.leads())  # fmt: skip
        if tickets.sinks:
            sinks = build_sinks(tickets.sinks, self.environ)
            sender = SinkSender(rt.store, self.clock, self._http, sinks, wall=self.wall)
            rt.monitor.dispatcher.handlers[SINK_KIND] = sender

    def _demo_channels(self, http: httpx.AsyncClient) -> dict[str, Channel] | None:
        """In the demo, console channels print through the demo's time-ordered lines; others stay as configured."""
        if self.lines is None:
            return None
        channels = build_channels(self.settings, self.wall, http)
        for c in self.settings.channels:
            if c.type == "console":
                channels[c.name] = DemoConsole(self.lines, self.clock, self._store, self.settings.language, c.name)
        return channels

    def _store(self) -> Any:
        assert self.runtime is not None  # the demo console prints only once the runtime runs
        return self.runtime.store

    async def _serve(self, rt: Runtime, sock: socket.socket) -> int:
        ctx = ApiContext(rt.monitor, rt.store, self.clock, self.settings.api, rt.adapters, rt.metrics,
                         ready=lambda: self.ready, timezone=self.settings.timezone, wall=self.wall,
                         kpi=self.settings.kpi, config=self.settings)  # fmt: skip
        app = create_app(ctx)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", server_header=False,
                                timeout_graceful_shutdown=int(GRACE_SECONDS))  # fmt: skip
        server = uvicorn.Server(config)
        jobs = Jobs(rt)
        scheduler = AsyncIOScheduler(timezone=self.settings.timezone)
        scheduler.add_job(jobs.guarded("poll", jobs.poll), self._every(self.settings.polling.tick_seconds))
        scheduler.add_job(jobs.guarded("sweep", jobs.sweep), self._every(60))
        scheduler.add_job(jobs.guarded("dispatch", jobs.dispatch), self._every(5))
        scheduler.add_job(jobs.guarded("watchdog", jobs.watchdog), self._every(60))
        self._tickets(rt, jobs)
        scheduler.add_job(jobs.guarded("ticket_deadlines", jobs.ticket_deadlines), self._every(60))
        scheduler.add_job(jobs.guarded("rollup", jobs.rollup), self._daily(0, 10))
        scheduler.add_job(jobs.guarded("kpi_today", jobs.kpi_today), self._every(KPI_TODAY_SECONDS))
        jobs.forecast = ForecastWatch(rt.store, self.clock, self.settings.timezone, self.settings.kpi.pickup_target,
                                      rt.channels, self.settings.route, self.settings.quiet_hours,
                                      self.settings.language)  # fmt: skip
        scheduler.add_job(jobs.guarded("pickup_forecast", jobs.pickup_forecast), self._every(3600))
        scheduler.add_job(jobs.guarded("retention", jobs.retention), self._daily(3, 30))
        if rt.store.engine.dialect.name == "sqlite":
            # wall seconds at any speed: it follows the writes, not the monitor's clock
            scheduler.add_job(jobs.guarded("checkpoint", jobs.checkpoint), IntervalTrigger(seconds=CHECKPOINT_SECONDS))
        feed = None
        if self.lines is not None:
            feed = self.feed = DemoFeed(rt.monitor, rt.adapters["sandbox"], self.lines, self.settings.language)
            scheduler.add_job(jobs.guarded("demo", feed.step), self._every(600))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)
        server_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not server_task.done():
            await asyncio.sleep(0.01)
        if server_task.done():
            server_task.result()
            return 1
        scheduler.start()
        # work a crash left behind (leased actions, due polls) goes on at once
        if feed is not None:
            await jobs.guarded("demo", feed.step)()
        await jobs.guarded("dispatch", jobs.dispatch)()
        self._first_poll = asyncio.create_task(jobs.guarded("poll", jobs.poll)())  # drained like any job
        # a daemon that was down at 00:10 catches the last days' rollup up now, not the next night
        self._first_rollup = asyncio.create_task(jobs.guarded("rollup", jobs.rollup)())
        self.ready = True
        log.info("daemon.started", listen=f"{self.settings.api.host}:{self.port}", speed=self.options.speed,
                 carriers=sorted(rt.adapters), channels=sorted(rt.channels))  # fmt: skip
        if self.options.stop_after:
            loop.call_later(self.options.stop_after, self.stop)
        stop_wait = asyncio.create_task(self._stop.wait())
        await asyncio.wait([stop_wait, server_task], return_when=asyncio.FIRST_COMPLETED)
        log.info("daemon.stopping")
        self.ready = False
        scheduler.pause()  # no new runs; APScheduler would cancel running jobs on shutdown, so drain first
        server.should_exit = True
        drained = await jobs.drain(GRACE_SECONDS)
        with contextlib.suppress(asyncio.CancelledError):
            await server_task
        stop_wait.cancel()
        scheduler.shutdown(wait=False)
        if feed is not None:
            await feed.finish()  # the lines still held, then the same summary as `parcel-monitor demo`
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
        log.info("daemon.stopped", clean=drained)
        return 0 if drained else 1


def prepare(settings: Settings, environ: Mapping[str, str], demo: bool, out: TextIO) -> Settings:
    """Check the API secrets; the demo makes up the ones that are missing and shows them."""
    api = settings.api
    if api.token is None:
        if not demo:
            raise ConfigError(f"api: no bearer token: set the environment variable {api.token_env} "
                              "(the HTTP API refuses to run unauthenticated)")  # fmt: skip
        api = replace(api, token=secrets.token_urlsafe(18))
    if api.refund_secret is None:
        if demo:
            api = replace(api, refund_secret=secrets.token_urlsafe(18))
        else:
            log.warning("api.refunds_disabled", reason=f"{api.refund_secret_env} is not set")
    return replace(settings, api=api)


def banner(settings: Settings, port: int, options: RunOptions, out: TextIO, order_id: str = "") -> None:
    """Tell a new user where to look; the demo shows its secrets and a refund recipe that works as printed."""
    base = f"http://{settings.api.host}:{port}"
    speed = f", clock ×{options.speed:g}" if options.speed != 1 else ""
    print(f"parcel-monitor is running{speed}: API docs {base}/docs", file=out)
    if not options.demo:
        database = make_url(settings.database_url).render_as_string(hide_password=True)
        print(f"  database: {database}", file=out)
    if options.demo:
        print(f"  demo bearer token: {settings.api.token}", file=out)
        print(f"  demo refund secret: {settings.api.refund_secret}", file=out)
        print(f"  try: curl -H 'Authorization: Bearer {settings.api.token}' {base}/api/v1/anomalies", file=out)
        print("  a refund-only request, signed with the wall clock as docs/api.md says (paste into a shell):", file=out)
        for line in refund_recipe(base, settings.api.refund_secret or "", order_id):
            print(f"    {line}", file=out)
        print("  simulated parcels stream in; alerts, tickets and interceptions follow below (Ctrl-C stops)",
              file=out, flush=True)  # fmt: skip


def refund_recipe(base: str, secret: str, order_id: str) -> list[str]:
    """Return the shell lines of docs/api.md's refund recipe, filled in for this demo."""
    body = json.dumps({"refund_id": f"RF-TRY-{order_id[-6:]}", "order_id": order_id, "type": "refund_only"})
    return [
        f"BODY={shlex.quote(body)}",
        "TS=$(date +%s)",
        f"""SIG=$(printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac {shlex.quote(secret)} -r """
        """| cut -d' ' -f1)""",
        f'curl -s -X POST {base}/api/v1/refunds -H "Content-Type: application/json" '
        '-H "X-Parcel-Monitor-Timestamp: $TS" -H "X-Parcel-Monitor-Signature: sha256=$SIG" -d "$BODY"',
    ]


async def run(settings: Settings, clock: Clock, environ: Mapping[str, str], options: RunOptions,
              out: TextIO) -> int:  # fmt: skip
    """Run the daemon until SIGTERM/SIGINT (or ``options.stop_after`` seconds)."""
    settings = prepare(settings, environ, options.demo, out)
    daemon = Daemon(settings, clock, environ, options, out)
    task = asyncio.create_task(daemon.run())
    while daemon.port is None or not daemon.ready:
        if task.done():
            return task.result()
        await asyncio.sleep(0.02)
    banner(settings, daemon.port, options, out, daemon.feed.example_order if daemon.feed else "")
    return await task
