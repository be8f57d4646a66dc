"""The scheduler's jobs: poll, sweep, dispatch, KPI rollup, retention.

Each job is guarded: a run that is still going when the next one is due is not doubled,
an exception is logged and the next run tries again (the scheduler never dies), and the
tasks in flight are known so that SIGTERM can let them finish. Jobs that must run once
per cluster (sweep, rollup, retention) take a PostgreSQL advisory lock; polling and the
outbox are shared between replicas through leases instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog

from monitor.daemon.assembly import Runtime

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

    def guarded(self, name: str, job: Job) -> Callable[[], Awaitable[None]]:
        """Wrap ``job`` so it never overlaps itself, never raises, and can be waited for."""

        async def run() -> None:
            if self.stopping or name in self._running:
                return
            task = asyncio.current_task()
            assert task is not None
            self._running[name] = task
            started = time.perf_counter()
            try:
                result = await job()
                log.debug("job.done", job=name, result=result, ms=round((time.perf_counter() - started) * 1000))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job.failed", job=name)
            finally:
                self._running.pop(name, None)

        run.__name__ = name
        return run

    async def drain(self, timeout: float) -> bool:
        """Wait for the jobs in flight to finish; False if some were still running after ``timeout``."""
        self.stopping = True
        self.rt.monitor.dispatcher.stopping = True  # a backlog of thousands of alerts is not "in flight"
        tasks = list(self._running.values())
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

    async def sweep(self) -> int:
        """Fire the time-driven rules that are due, then act on them."""
        with self.rt.store.singleton("sweep") as mine:
            if not mine:
                return 0
            return await self.rt.monitor.tick(act=False)

    async def dispatch(self) -> None:
        """Run the outbox (tickets, intercepts, alerts) and send alert groups that are due."""
        await self.rt.monitor.act()

    async def rollup(self) -> list[Any]:
        """Roll the last few (local) days into the daily KPI table.

        Not just yesterday: a night the daemon was down is caught up the next night, and a
        late scan that changed a day's figures is counted. Rollups are idempotent.
        """
        from monitor.maintenance import rollup_kpis

        with self.rt.store.singleton("rollup") as mine:
            if not mine:
                return []
            tz = self.rt.settings.timezone
            today = self.rt.clock.now().astimezone(tz).date()
            return [rollup_kpis(self.rt.store, self.rt.clock, today - timedelta(days=n), tz) for n in ROLLUP_DAYS]

    async def retention(self) -> Any:
        """Delete finished parcels past the retention period (their KPIs stay)."""
        from monitor.maintenance import purge_finished

        days = self.rt.settings.retention.finished_days
        if not days:
            return None
        with self.rt.store.singleton("retention") as mine:
            if not mine:
                return None
            return purge_finished(self.rt.store, self.rt.clock, days, self.rt.settings.timezone)
