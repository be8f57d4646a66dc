"""The demo: simulated parcels through the sandbox carrier, on a fast clock, in the console.

Everything is real but the carrier and the clock: shipments go into the store, the poller
asks the sandbox world, the rules fire, tickets and intercepts go through the outbox and
alerts reach the console channel.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from carriers.sandbox import SandboxCarrier, SandboxSettings, World
from monitor.actions.intercepts import RefundRequest
from monitor.alerts.channels.console import ConsoleChannel
from monitor.clock import SimulatedClock
from monitor.config import Settings
from monitor.polling import Poller
from monitor.rules.regions import PROVINCES
from monitor.service import Monitor
from monitor.shipments import Shipment
from monitor.store.db import make_engine, upgrade
from monitor.store.store import Store

STEP = timedelta(minutes=10)
SHOPS = ("旗舰店", "专营店")
ORIGINS = ("浙江", "广东", "江苏")
DECISION_WORDS = {
    "held": "未揽收，已通知仓库暂停发货",
    "requested": "已向快递公司发起拦截",
    "accepted": "快递公司已受理拦截",
    "rejected": "快递公司拒绝拦截",
    "pending": "拦截待快递公司答复",
    "skipped": "已签收或已退回，无需拦截",
    "failed": "拦截失败",
    "succeeded": "拦截成功",
}


async def run_demo(settings: Settings, *, parcels: int, days: float, out: TextIO, seed: int = 11) -> Counter[str]:
    """Run the simulated world and print what the monitor does; return counts of activity."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 11, 8, 0, tzinfo=settings.timezone)
    clock = SimulatedClock(start)
    world = World(SandboxSettings.from_mapping(settings.carriers.get("sandbox", {})))
    sandbox = SandboxCarrier(clock, world)
    channels = {
        c.name: ConsoleChannel(out, c.name, settings.language, settings.timezone)
        for c in settings.channels
        if c.type == "console"
    }
    with tempfile.TemporaryDirectory(prefix="parcel-monitor-demo-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'demo.db'}")
        upgrade(engine)
        store = Store(engine)
        monitor = Monitor(store, settings.rules, clock, {"sandbox": sandbox}, channels)
        poller = Poller(store, clock, {"sandbox": sandbox}, monitor)
        plan = _plan(rng, parcels, start)
        refunds = {
            s.shipped_at + timedelta(hours=rng.uniform(2, 60)): s.order_id
            for s in rng.sample(plan, max(parcels // 25, 1))
        }
        print(
            f"parcel-monitor demo: {parcels} parcels over {days:g} simulated days, from {start:%Y-%m-%d %H:%M}",
            file=out,
        )
        end = start + timedelta(days=days)
        while clock.now() < end:
            now = clock.now()
            fresh = [s for s in plan if now - STEP < s.shipped_at <= now]
            if fresh:
                monitor.add_shipments(fresh)
                for s in fresh:
                    sandbox.register(s.tracking_no, s.shipped_at)
            await poller.poll_due()
            for moment in [m for m in refunds if now - STEP < m <= now]:
                order_id = refunds.pop(moment)
                decisions = await monitor.refund(RefundRequest(f"RF{order_id[-6:]}", order_id, "refund_only"))
                when = f"{now.astimezone(settings.timezone):%m-%d %H:%M}"
                for d in decisions:
                    words = DECISION_WORDS.get(d.decision, d.decision)
                    print(f"{when} [仅退款] 订单 {order_id} {d.tracking_no}: {words}", file=out)
            await monitor.tick()
            clock.advance(STEP)
        with store.begin() as uow:
            counts = Counter(row.event for row in uow.activity_after(0, limit=10_000_000))
            due, on_time = uow.pickup_counts(clock.now())
        engine.dispose()
    rate = f"{on_time / due:.1%}" if due else "n/a"
    tally = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"\nsummary: 24h pickup rate {rate} ({on_time}/{due}); {tally}", file=out)
    return counts


def _plan(rng: random.Random, parcels: int, start: datetime) -> list[Shipment]:
    """Spread ``parcels`` shipments over the first simulated day."""
    destinations = list(PROVINCES)
    plan = []
    for i in range(parcels):
        shipped = start + timedelta(minutes=rng.uniform(0, 24 * 60))
        plan.append(
            Shipment(
                order_id=f"TB2026111100{i:04d}",
                carrier="sandbox",
                tracking_no=f"SBX{seed_digits(rng)}{i:04d}",
                shipped_at=shipped.replace(microsecond=0),
                shop=rng.choice(SHOPS),
                origin_province=rng.choice(ORIGINS),
                destination_province=rng.choice(destinations),
                amount_fen=rng.randrange(2_000, 80_000),
            )
        )
    return plan


def seed_digits(rng: random.Random) -> str:
    """Return six digits that make tracking numbers look real."""
    return f"{rng.randrange(10**6):06d}"
