"""The scheduler's jobs: poll, sweep, dispatch, KPI rollup and today's count, retention.

Each job is guarded: a run that is still going when the next one is due is not doubled,
an exception is logged and the next run tries again (the scheduler never dies), and the
tasks in flight are known so that SIGTERM can let them finish. Jobs that must run once
per cluster (sweep, rollup, retention) take a PostgreSQL advisory lock; polling and the
outbox are shared between replicas through leases instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog

from monitor.daemon.assembly import Runtime
from monitor.kpi.watch import ForecastWatch
from monitor.kpi.window import WINDOW
from monitor.store.db import Checkpointed, checkpoint
from monitor.store.store import BACKGROUND
from monitor.tickets.sla import SlaWatch

log = structlog.get_logger("monitor.daemon")

Job = Callable[[], Awaitable[Any]]
#: Days back (from yesterday) the nightly rollup recounts.
ROLLUP_DAYS = (1, 2, 3)


class Jobs:
    """The daemon's periodic work, with what is running now."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._running: dict[str, asyncio.Task[Any]] = {}
        self.stopping = False
        #: The ticket deadline watch (``monitor.tickets.sla``), set by the daemon.
        self.sla: SlaWatch | None = None
        #: The pickup-rate forecast and its alert (``monitor.kpi.watch``), set by the daemon.
        self.forecast: ForecastWatch | None = None

    def guarded(self, name: str, job: Job) -> Callable[[], Awaitable[None]]:
        """Wrap ``job`` so it never overlaps itself, never raises, and can be waited for."""

        async def run() -> None:
            if self.stopping or name in self._running:
                return
            task = asyncio.current_task()
            assert task is not None
            self._running[name] = task
            started = time.perf_counter()
            background = BACKGROUND.set(True)  # the job's transactions give way to requests' (refunds first)
            try:
                result = await job()
                log.debug("job.done", job=name, result=result, ms=round((time.perf_counter() - started) * 1000))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job.failed", job=name)
            finally:
                BACKGROUND.reset(background)
                self._running.pop(name, None)

        run.__name__ = name
        return run

    async def drain(self, timeout: float) -> bool:
        """Wait for the jobs in flight to finish; False if some were still running after ``timeout``."""
        self.stopping = True
        self.rt.monitor.dispatcher.stopping = True  # a backlog of thousands of alerts is not "in flight"
        tasks = list(self._running.values()) + list(self.rt.monitor.background)  # refunds' carrier calls too
        if not tasks:
            return True
        log.info("daemon.draining", jobs=sorted(self._running))
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        return not pending

    # -- the jobs -----------------------------------------------------------------------

    async def poll(self) -> int:
        """Ask carriers about the parcels that are due."""
        return await self.rt.poller.poll_due()

    @contextlib.asynccontextmanager
    async def singleton(self, name: str) -> AsyncIterator[bool]:
        """Hold the cluster-wide lock ``name`` like ``Store.singleton``, taking and giving it back off the loop."""
        held = self.rt.store.singleton(name)
        mine = await self.rt.store.offload(held.__enter__)
        try:
            yield mine
        finally:
            await self.rt.store.offload(held.__exit__, None, None, None)

    async def sweep(self) -> int:
        """Fire the time-driven rules that are due, then act on them."""
        async with self.singleton("sweep") as mine:
            if not mine:
                return 0
            return await self.rt.monitor.tick(act=False)

    async def dispatch(self) -> None:
        """Run the outbox (tickets, intercepts, alerts) and send alert groups that are due.

        The only sender of alerts in the daemon: requests queue, this job (claiming what it
        sends) flushes.
        """
        await self.rt.monitor.run_actions()

    async def rollup(self) -> list[Any]:
        """Roll the last few (local) days into the daily KPI table, then learn the route norms again.

        Not just yesterday: a night the daemon was down is caught up the next night, and a
        late scan that changed a day's figures is counted. Rollups are idempotent. Learning
        replaces the ``route_norm`` table (``monitor.norms``) and this process's copy of it.
        """
        from monitor.kpi.rollup import rollup_kpis
        from monitor.norms.learn import learn

        store, clock, norms = self.rt.store, self.rt.clock, self.rt.monitor.norms
        async with self.singleton("rollup") as mine:
            if not mine:
                await store.offload(norms.refresh, store)  # another replica learns: take what it learned last
                return []
            tz = self.rt.settings.timezone
            today = clock.now().astimezone(tz).date()
            days = [today - timedelta(days=n) for n in ROLLUP_DAYS]
            rolled = [await store.offload(rollup_kpis, store, clock, day, tz) for day in days]
            await store.offload(learn, store, clock.now(), self.rt.settings.norms)
            await store.offload(norms.refresh, store)
            return rolled

    async def watchdog(self) -> int:
        """Alert once about every intercept stuck in requested or pending (``[intercepts] stuck_after_minutes``)."""
        with self.rt.store.singleton("intercept_watchdog") as mine:
            if not mine:
                return 0
            return await self.rt.monitor.watchdog.run()

    async def ticket_deadlines(self) -> int:
        """Alert once about every ticket past its deadline, and escalate once a period later (``[tickets.sla]``)."""
        if self.sla is None:
            return 0
        async with self.singleton("ticket_deadlines") as mine:
            if not mine:
                return 0
            return await self.sla.run()

    async def pickup_forecast(self) -> int:
        """Project every shop's 30-day pickup rate for the week ahead; alert once when it crosses the target."""
        if self.forecast is None:
            return 0
        async with self.singleton("pickup_forecast") as mine:
            if not mine:
                return 0
            return await self.forecast.run()

    async def kpi_today(self) -> bool:
        """Recount today's KPI figures in the background while someone looks at 指标 (``monitor.kpi.window``).

        Every replica counts for its own console, so its views find today fresh and count nothing
        under a request; nobody looking (``WINDOW.wanted`` false) costs nothing.
        """
        store, now = self.rt.store, self.rt.clock.now()
        if not WINDOW.wanted(store, now):
            return False

        await store.offload(WINDOW.recount, store, now, self.rt.settings.timezone)
        return True

    async def checkpoint(self) -> Checkpointed | None:
        """Write SQLite's WAL back into the database file on a store thread, so that no commit has to.

        A commit that finds the WAL past its threshold checkpoints by itself, and the request or
        sweep batch behind it waits; this job keeps the WAL short enough that none does.
        """
        done = await self.rt.store.offload(checkpoint, self.rt.store.engine)
        if done is not None and done.busy:
            log.debug("store.checkpoint_busy", log_pages=done.log_pages, written=done.written)
        return done

    async def retention(self) -> Any:
        """Delete finished parcels past the retention period (their KPIs stay), and console sessions that ended."""
        from monitor.console.sessions import purge_sessions
        from monitor.kpi.rollup import purge_finished

        days = self.rt.settings.retention.finished_days
        async with self.singleton("retention") as mine:
            if not mine:
                return None
            rt = self.rt
            await rt.store.offload(purge_sessions, rt.store, rt.wall.now())
            if not days:
                return None
            return await rt.store.offload(purge_finished, rt.store, rt.clock, days, rt.settings.timezone)
