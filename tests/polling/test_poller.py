"""The poller against a local Kuaidi100 endpoint: cadence, quotas, caps, failures, leases.

Each test runs the real Kuaidi100 adapter over HTTP on loopback against ``carriers.testing.kuaidi100.Fleet``,
which checks signatures and records, on the simulated clock, when each number was asked.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from carriers.kuaidi100 import Kuaidi100Carrier, Kuaidi100Settings
from carriers.testing.kuaidi100 import COMPANY, CUSTOMER, KEY, Fleet, Scan, quiet_in_transit
from monitor.alerts.channels.console import ConsoleChannel
from monitor.alerts.routing import default_route
from monitor.clock import SimulatedClock
from monitor.config import CarrierQuota, PollingSettings
from monitor.intake.shipments import Shipment
from monitor.polling import Poller
from monitor.polling.health import HealthBook
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store

BACKENDS = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
H = timedelta(hours=1)


async def no_wait(_seconds: float) -> None:
    """Retry back-off inside the adapter: instant, the simulated clock is ours to move."""


class World:
    """A monitor, a poller and a console on one store and one simulated clock."""

    def __init__(self, engine: Engine, fleet: Fleet, clock: SimulatedClock, http: httpx.AsyncClient,
                 polling: PollingSettings) -> None:  # fmt: skip
        self.clock = clock
        self.store = Store(engine)
        self.out = io.StringIO()
        settings = Kuaidi100Settings(customer=CUSTOMER, key=KEY, company=COMPANY, base_url=fleet.base_url)
        self.adapter = Kuaidi100Carrier(settings, http, sleep=no_wait)
        console = ConsoleChannel(self.out, "console", "en")
        adapters = {"kuaidi100": self.adapter}
        self.monitor = Monitor(self.store, build_ruleset({}), clock, adapters, {"console": console})
        self.health = HealthBook(self.store, clock, {"console": console}, default_route(["console"]))

        async def sleep(seconds: float) -> None:  # the pacer waits on simulated time
            clock.advance(timedelta(seconds=seconds))

        self.poller = Poller(self.store, clock, adapters, self.monitor, polling, sleep=sleep, health=self.health)

    def ship(self, numbers: list[str], shipped_at: datetime | None = None) -> None:
        at = shipped_at or self.clock.now() - 2 * H
        self.monitor.add_shipments(
            [Shipment(order_id=f"O{n}", carrier="kuaidi100", tracking_no=n, shipped_at=at) for n in numbers]
        )

    async def rounds(self, until: datetime, every: timedelta) -> None:
        while self.clock.now() < until:
            await self.poller.poll_due()
            self.clock.set(max(self.clock.now(), self._next_tick(every)))

    def _next_tick(self, every: timedelta) -> datetime:
        now = self.clock.now()
        return T0 + every * ((now - T0) // every + 1)


Body = Callable[[World, Fleet], Awaitable[Any]]


def run(engine: Engine, script: Callable[[str, datetime], list[Scan] | None], body: Body,
        polling: PollingSettings | None = None, **fleet_options: Any) -> Any:  # fmt: skip
    clock = SimulatedClock(T0)

    async def main() -> Any:
        with Fleet(script, clock, **fleet_options) as fleet:
            async with httpx.AsyncClient() as http:
                return await body(World(engine, fleet, clock, http, polling or PollingSettings()), fleet)

    return asyncio.run(main())


def hours_between(times: list[datetime]) -> list[float]:
    return [round((b - a) / H, 1) for a, b in itertools.pairwise(times)]


@BACKENDS
def test_cadence_backs_off_3_6_12_24_and_stops_when_delivered(engine: Engine) -> None:
    delivered_at = T0 + 60 * H

    def script(_no: str, now: datetime) -> list[Scan]:
        scans = [(T0 - H, "103", "已揽收")]
        return [*scans, (delivered_at, "3", "已签收")] if now >= delivered_at else scans

    async def body(w: World, fleet: Fleet) -> list[datetime]:
        w.ship(["ZT1"])
        await w.rounds(T0 + 100 * H, timedelta(minutes=10))
        with w.store.begin() as uow:
            parcel = uow.parcel(uow.parcels_by_keys([("kuaidi100", "ZT1")])[("kuaidi100", "ZT1")].id)
        assert parcel.status == "delivered" and parcel.next_poll_at is None
        return fleet.asked["ZT1"]

    asked = run(engine, script, body)
    # news at T0 (the pickup), then nothing new: 3, 6, 12, 24 h; the poll at T0+45 h is quiet,
    # the one at T0+69 h finds the delivery, and the parcel is never asked again
    assert hours_between(asked) == [3, 6, 12, 24, 24]
    assert asked[-1] == T0 + 69 * H


@BACKENDS
def test_daily_quota_is_kept_across_restarts_and_resets_at_local_midnight(engine: Engine) -> None:
    quotas = {"kuaidi100": CarrierQuota(requests_per_second=10, requests_per_day=50)}
    polling = PollingSettings(quotas=quotas)
    numbers = [f"ZT{i:03d}" for i in range(120)]

    async def body(w: World, fleet: Fleet) -> tuple[int, int, int]:
        w.ship(numbers)
        await w.rounds(T0 + 2 * H, timedelta(minutes=10))
        first_day = fleet.requests
        # a restart: a new poller with no memory of what was used today
        fresh = Poller(w.store, w.clock, {"kuaidi100": w.adapter}, w.monitor, polling, sleep=w.poller.sleep)
        await fresh.poll_due()
        after_restart = fleet.requests
        w.clock.set(datetime(2026, 11, 11, 16, 5, tzinfo=UTC))  # 00:05 on the 12th in Shanghai
        await fresh.poll_due()
        return first_day, after_restart, fleet.requests

    first_day, after_restart, next_day = run(engine, quiet_in_transit(T0 - H), body, polling)
    assert (first_day, after_restart, next_day) == (50, 50, 100)


@BACKENDS
def test_parcels_at_risk_are_polled_first_when_the_quota_is_short(engine: Engine) -> None:
    # one round may ask 0.85 × 1 request/s × 12 s = 10 numbers, of 30 due
    polling = PollingSettings(quotas={"kuaidi100": CarrierQuota(requests_per_second=1)}, tick_seconds=12)

    async def body(w: World, fleet: Fleet) -> set[str]:
        w.ship([f"CALM{i}" for i in range(20)])
        w.clock.advance(timedelta(minutes=1))
        w.ship([f"RISK{i}" for i in range(10)], shipped_at=w.clock.now() - 22 * H)  # deadline in 2 h
        await w.poller.poll_due()
        return set(fleet.asked)

    asked = run(engine, lambda _n, _t: None, body, polling)
    assert asked == {f"RISK{i}" for i in range(10)}


@BACKENDS
def test_kuaidi100_per_number_cap_is_never_breached(engine: Engine) -> None:
    polling = PollingSettings(near_minutes=5)

    def script(_no: str, _now: datetime) -> list[Scan]:
        return [(T0 - 3 * H, "103", "已揽收"), (T0 - H, "5", "派件中")]  # out for delivery: poll often

    async def body(w: World, fleet: Fleet) -> int:
        assert w.adapter.limits.max_queries_per_number_per_day == 48
        w.ship(["ZT1", "ZT2"])
        await w.rounds(T0 + 50 * H, timedelta(minutes=1))
        return fleet.most_in_24h()

    worst = run(engine, script, body, polling)
    assert 45 <= worst <= 48  # about as often as allowed (a poll lands on the round after the spacing), never more


@BACKENDS
def test_a_failing_carrier_rests_alerts_once_and_recovers(engine: Engine) -> None:
    async def body(w: World, fleet: Fleet) -> dict[str, Any]:
        w.ship(["ZT1", "ZT2"])
        fleet.status = 503
        seen: list[int] = []
        for _ in range(12):  # a round a minute; the carrier rests 30 s, 1 min, 2 min, 4 min…
            await w.poller.poll_due()
            seen.append(fleet.requests)
            w.clock.advance(timedelta(minutes=1))
        down = w.health.get("kuaidi100")
        alerts_while_down = w.out.getvalue()
        fleet.status = 200
        w.clock.advance(timedelta(hours=1))
        await w.poller.poll_due()
        up = w.health.get("kuaidi100")
        # a restart does not tell anyone again
        again = HealthBook(w.store, w.clock, w.health.channels, w.health.route)
        await again.announce("kuaidi100")
        return {"down": down, "up": up, "alerts_down": alerts_while_down, "all": w.out.getvalue(), "seen": seen,
                "requests": fleet.requests, "asked": dict(fleet.asked)}  # fmt: skip

    r = run(engine, quiet_in_transit(T0 - H), body)
    assert r["down"].state == "down" and r["down"].failures >= 3
    assert r["alerts_down"].count("carrier_unavailable") == 1 or r["alerts_down"].count("carrier API unavailable") == 1
    assert r["up"].state == "up" and r["up"].alerted == "up"
    assert r["all"].count("resolved") == 1
    # while resting, rounds made no requests: far fewer than 12 rounds × 2 parcels
    assert r["seen"][-1] < 12
    assert set(r["asked"]) == {"ZT1", "ZT2"}  # nothing was dropped: both asked after recovery


def test_no_write_transaction_is_held_during_a_carrier_call(tmp_path: Any) -> None:
    from monitor.store.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    upgrade(engine)
    writes: list[str] = []

    def write_meanwhile(_request: object) -> None:  # runs inside the carrier's request handler
        # A transaction held across the call would wait for this handler, which waits for it: the
        # write fails after any timeout. The generous one only absorbs other carriers' short writes
        # on a loaded machine (0.2 s failed once in CI).
        conn = sqlite3.connect(tmp_path / "m.db", timeout=5)
        try:
            conn.execute("INSERT INTO carrier_usage (carrier, day, requests) VALUES ('probe', ?, 1)",
                         (str(len(writes)),))  # fmt: skip
            conn.commit()
            writes.append("ok")
        except sqlite3.OperationalError as err:
            writes.append(str(err))
        finally:
            conn.close()

    async def body(w: World, fleet: Fleet) -> None:
        fleet.on_request = write_meanwhile
        w.ship(["ZT1", "ZT2", "ZT3"])
        await w.poller.poll_due()

    run(engine, quiet_in_transit(T0 - H), body)
    engine.dispose()
    assert writes == ["ok", "ok", "ok"]


@BACKENDS
def test_a_poller_that_dies_leaves_its_parcels_to_be_polled_after_the_lease(engine: Engine) -> None:
    async def body(w: World, fleet: Fleet) -> tuple[int, int, int]:
        w.ship(["ZT1", "ZT2"])
        with w.store.begin() as uow:  # claimed, then the process died before asking
            claimed = uow.claim_for_poll("kuaidi100", w.clock.now(), 10, w.clock.now() + timedelta(minutes=10),
                                         risk_until=w.clock.now())  # fmt: skip
        await w.poller.poll_due()
        during_lease = fleet.requests
        w.clock.advance(timedelta(minutes=11))
        await w.poller.poll_due()
        return len(claimed), during_lease, fleet.requests

    assert run(engine, quiet_in_transit(T0 - H), body) == (2, 0, 2)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_replicas_claim_disjoint_parcels(engine: Engine) -> None:
    store = Store(engine)
    clock = SimulatedClock(T0)
    monitor = Monitor(store, build_ruleset({}), clock, {}, {})
    monitor.add_shipments([Shipment(order_id=f"O{i}", carrier="kuaidi100", tracking_no=f"ZT{i}",
                                    shipped_at=T0 - H) for i in range(10)])  # fmt: skip
    lease = T0 + timedelta(minutes=10)
    with store.begin() as first:
        mine = first.claim_for_poll("kuaidi100", T0, 6, lease, risk_until=T0)
        with store.begin() as second:  # another replica, while the first has not committed
            theirs = second.claim_for_poll("kuaidi100", T0, 6, lease, risk_until=T0)
    assert len(mine) == 6 and len(theirs) == 4
    assert not {r.id for r in mine} & {r.id for r in theirs}


def test_a_round_asks_a_little_less_than_rate_times_tick() -> None:
    from monitor.polling.poller import ROUND_SHARE

    polling = replace(PollingSettings(), tick_seconds=10)
    assert int(2.5 * polling.tick_seconds * ROUND_SHARE) == 21  # so the round ends before the next tick
