"""The daemon's hourly ``pickup_forecast`` job: projects every shop and alerts once through its channels."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import httpx

from monitor.alerts.channels.console import ConsoleChannel
from monitor.alerts.routing import default_route
from monitor.clock import SimulatedClock
from monitor.daemon.jobs import Jobs
from monitor.intake.shipments import Shipment
from monitor.kpi.watch import ForecastWatch
from tests.daemon.test_jobs import T0, runtime


def test_the_job_alerts_once_while_the_forecast_stays_below_target(database_url: str) -> None:
    clock = SimulatedClock(T0)
    out = io.StringIO()

    async def main() -> list[int]:
        async with httpx.AsyncClient() as http:
            rt = runtime(database_url, clock, http)
            jobs = Jobs(rt)
            assert await jobs.pickup_forecast() == 0  # not wired: nothing to do
            console = {"console": ConsoleChannel(out, "console", "en")}
            jobs.forecast = ForecastWatch(rt.store, clock, rt.settings.timezone, rt.settings.kpi.pickup_target,
                                          console, default_route(["console"]), language="en")  # fmt: skip
            shipped = [Shipment(order_id=f"O{i}", carrier="sandbox", tracking_no=f"SB{i}", shipped_at=T0, shop="店")
                       for i in range(4)]  # fmt: skip
            rt.monitor.add_shipments(shipped)  # never picked up: 0 % once the deadlines pass
            clock.advance(timedelta(hours=25))
            sent = [await jobs.pickup_forecast()]
            clock.advance(timedelta(hours=1))
            sent.append(await jobs.pickup_forecast())
            rt.close()
            return sent

    assert asyncio.run(main()) == [1, 0]
    text = out.getvalue()
    assert text.count("pickup rate forecast below target") == 1 and "店" in text and "below target 95.0%" in text
