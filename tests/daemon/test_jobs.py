"""The daemon's jobs in-process: guarded (no overlap, never raise), drained on stop, and the nightly ones."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from monitor.alerts.channels.console import ConsoleChannel
from monitor.clock import SimulatedClock
from monitor.config import RetentionSettings, load
from monitor.daemon.assembly import Runtime, build
from monitor.daemon.jobs import Jobs
from monitor.intake.shipments import Shipment

BACKENDS = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


async def instant(_seconds: float) -> None:
    """The pacer's sleep: the test moves the simulated clock itself."""


def runtime(database_url: str, clock: SimulatedClock, http: httpx.AsyncClient, **changes: Any) -> Runtime:
    settings = replace(load(None, {}), database_url=database_url, carriers={"sandbox": {}}, **changes)
    console = {"console": ConsoleChannel(io.StringIO(), "console", "en")}
    return build(settings, clock, http, {}, sleep=instant, channels=console)


def test_a_guarded_job_never_overlaps_itself_and_never_raises(tmp_path: Any) -> None:
    async def main() -> tuple[int, list[str]]:
        async with httpx.AsyncClient() as http:
            rt = runtime(f"sqlite:///{tmp_path / 'm.db'}", SimulatedClock(T0), http)
            jobs = Jobs(rt)
            runs: list[str] = []
            gate = asyncio.Event()

            async def slow() -> None:
                runs.append("start")
                await gate.wait()
                runs.append("end")

            async def broken() -> None:
                raise RuntimeError("boom")

            first = asyncio.create_task(jobs.guarded("slow", slow)())
            await asyncio.sleep(0)
            await jobs.guarded("slow", slow)()  # still running: skipped, not doubled
            await jobs.guarded("broken", broken)()  # logged, not raised
            gate.set()
            await first
            rt.close()
            return len(runs), runs

    count, runs = asyncio.run(main())
    assert count == 2 and runs == ["start", "end"]


def test_drain_lets_a_job_in_flight_finish_and_refuses_new_ones(tmp_path: Any) -> None:
    async def main() -> tuple[bool, list[str]]:
        async with httpx.AsyncClient() as http:
            rt = runtime(f"sqlite:///{tmp_path / 'm.db'}", SimulatedClock(T0), http)
            jobs = Jobs(rt)
            done: list[str] = []

            async def work() -> None:
                await asyncio.sleep(0.2)
                done.append("finished")

            task = asyncio.create_task(jobs.guarded("work", work)())
            await asyncio.sleep(0.01)
            clean = await jobs.drain(timeout=5)
            await jobs.guarded("work", work)()  # after drain: not started
            await task
            rt.close()
            return clean, done

    clean, done = asyncio.run(main())
    assert clean and done == ["finished"]


@BACKENDS
def test_nightly_rollup_counts_the_last_days_and_retention_purges_old_finished_parcels(database_url: str) -> None:
    clock = SimulatedClock(T0)

    async def main() -> tuple[int, int, int, int]:
        async with httpx.AsyncClient() as http:
            rt = runtime(database_url, clock, http, retention=RetentionSettings(finished_days=30))
            jobs = Jobs(rt)
            sandbox = rt.adapters["sandbox"]
            shipped = [Shipment(order_id=f"O{i}", carrier="sandbox", tracking_no=f"SB{i}", shipped_at=T0)
                       for i in range(20)]  # fmt: skip
            for s in shipped:
                sandbox.register(s.tracking_no, s.shipped_at)
            rt.monitor.add_shipments(shipped)
            for _ in range(24 * 10):  # ten simulated days of polling and sweeping, every hour
                await jobs.poll()
                await jobs.sweep()
                clock.advance(timedelta(hours=1))
            await jobs.rollup()  # the last three days: quiet ones, the action was a week before
            with rt.engine.connect() as conn:
                recent = conn.execute(text("SELECT count(*) FROM kpi_daily")).scalar()
            clock.advance(timedelta(days=40))
            purged = (await jobs.retention()).parcels  # rolls up the days they count on, then purges
            with rt.engine.connect() as conn:
                left = conn.execute(text("SELECT count(*) FROM parcel")).scalar()
                shipped_kpi = conn.execute(text("SELECT sum(shipped) FROM kpi_daily")).scalar()
            rt.close()
            return int(recent or 0), purged, int(left or 0), int(shipped_kpi or 0)

    recent, purged, left, shipped_kpi = asyncio.run(main())
    assert recent == 0 and purged >= 15  # most of the 20 were delivered or returned; an open anomaly keeps one
    assert left == 20 - purged
    assert shipped_kpi == 20  # the shipping day (all 20) was rolled up before any went
