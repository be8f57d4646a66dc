"""The demo: simulated parcels through the sandbox carrier, on a fast clock, in the console.

Everything is real but the carrier and the clock: shipments go into the store, the poller
asks the sandbox world, the rules fire, tickets and intercepts go through the outbox and
alerts reach the console channel. What both demos print is built here, so ``demo`` and
``run --demo`` read alike: carriers by name, the carrier's own words for what went wrong,
refund decisions and intercepts from the activity log, every line in time order, and one
summary at the end, in ``[alerts] language``.
"""

from __future__ import annotations

import heapq
import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TextIO

from carriers import registry as carrier_registry
from carriers.model import RETURN_STATUSES
from carriers.sandbox import SandboxCarrier, SandboxSettings, World
from monitor.actions.intercepts import RefundRequest
from monitor.alerts.messages import one_line
from monitor.alerts.model import SENT, Alert, Channel, Delivery
from monitor.clock import Clock, SimulatedClock
from monitor.config import Settings
from monitor.intake.shipments import Shipment
from monitor.logging import mask_phone_numbers
from monitor.polling import Poller
from monitor.rules.engine import PROBLEM_STATUSES
from monitor.rules.regions import PROVINCES
from monitor.service import Monitor
from monitor.store.db import make_engine, upgrade
from monitor.store.store import Store
from monitor.store.views import read

STEP = timedelta(minutes=10)
SHOPS = ("旗舰店", "专营店")
ORIGINS = ("浙江", "广东", "江苏")
#: What happened to a refund-only request, by activity event, as the demo says it.
REFUND_WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "shipment_held": "未揽收，已通知仓库暂停发货",
        "intercept_requested": "已向快递公司发起拦截",
        "intercept_accepted": "快递公司已受理拦截",
        "intercept_rejected": "快递公司拒绝拦截",
        "intercept_pending": "拦截待快递公司答复",
        "intercept_skipped": "已签收或已退回，无需拦截",
        "intercept_failed": "拦截失败",
        "intercept_succeeded": "拦截成功，快件退回中",
    },
    "en": {
        "shipment_held": "not picked up yet: the warehouse is told to hold it",
        "intercept_requested": "intercept requested from the carrier",
        "intercept_accepted": "the carrier accepted the intercept",
        "intercept_rejected": "the carrier refused the intercept",
        "intercept_pending": "intercept awaiting the carrier's answer",
        "intercept_skipped": "delivered or returned already: nothing to intercept",
        "intercept_failed": "intercept failed",
        "intercept_succeeded": "intercepted: the parcel is on its way back",
    },
}
WORDS = {
    "zh": {"refund": "仅退款", "order": "订单", "reason": "原因", "summary": "汇总",
           "rate": "24小时揽收及时率", "none": "无"},
    "en": {"refund": "refund-only", "order": "order", "reason": "reason", "summary": "summary",
           "rate": "24h pickup rate", "none": "n/a"},
}  # fmt: skip
#: Rules whose line quotes the carrier's own words on what went wrong.
REASON_RULES = frozenset({"carrier_exception", "lost_suspected", "returned", "intercept_failed"})
#: Statuses whose scan says what went wrong.
PROBLEMS = frozenset({*PROBLEM_STATUSES, *(s.value for s in RETURN_STATUSES)})


def lang_of(language: str) -> str:
    """Return ``language`` if the demo speaks it, else Chinese."""
    return language if language in WORDS else "zh"


def carrier_name(label: str, language: str) -> str:
    """Return a carrier's name in ``language`` from its adapter label ("顺丰速运 SF Express").

    Built-in labels give the Chinese name, a space, then the English one; a label without
    Chinese is used whole.
    """
    head, _, tail = label.partition(" ")
    if not tail or not any("\u4e00" <= ch <= "\u9fff" for ch in head):
        return label
    return head if lang_of(language) == "zh" else tail


def carrier_names(language: str) -> dict[str, str]:
    """Return every installed carrier's name in ``language``, by code."""
    return {code: carrier_name(info.label, language) for code, info in carrier_registry.load().adapters.items()}


class DemoLines:
    """Print the demo's lines in time order, each stamped with its simulated time.

    Lines come from several places (alerts as they go out, refunds and intercepts from the
    activity log); each is held ``hold`` of simulated time, then printed sorted, so a line
    that arrives a little late still takes its place.
    """

    def __init__(self, out: TextIO, tz: tzinfo, hold: timedelta = timedelta(0)) -> None:
        self.out = out
        self.tz = tz
        self.hold = hold
        self._held: list[tuple[datetime, int, str]] = []
        self._seq = 0
        self.last: datetime | None = None

    def add(self, when: datetime, text: str) -> None:
        """Hold one line for printing."""
        self._seq += 1
        heapq.heappush(self._held, (when, self._seq, text))

    def flush(self, now: datetime | None = None) -> None:
        """Print the lines older than ``now - hold`` (all of them without ``now``)."""
        while self._held and (now is None or self._held[0][0] <= now - self.hold):
            when, _, text = heapq.heappop(self._held)
            when = max(when, self.last) if self.last is not None else when  # never print backwards
            self.last = when
            print(f"{when.astimezone(self.tz):%m-%d %H:%M} {text}", file=self.out, flush=True)


class DemoConsole:
    """The demo's console channel: each alert a line at the time it went out, carriers by name, reasons quoted."""

    def __init__(self, lines: DemoLines, clock: Clock, store: Callable[[], Store], language: str = "zh",
                 name: str = "console") -> None:  # fmt: skip
        self.name = name
        self.lines = lines
        self.clock = clock
        self.store = store
        self.language = lang_of(language)
        self.names = carrier_names(language)

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        """Hold one line per alert for :class:`DemoLines`."""
        now = self.clock.now()
        for alert in alerts:
            text = one_line(replace(alert, carrier=self.names.get(alert.carrier, alert.carrier)), self.language)
            if alert.rule in REASON_RULES and alert.state != "resolved" and alert.tracking_no:
                reason = await self.store().offload(_reason, self.store(), alert.carrier, alert.tracking_no)
                if reason:
                    text += f" · {WORDS[self.language]['reason']}: {reason}"
            self.lines.add(now, text)
        return SENT


def _reason(store: Store, carrier: str, tracking_no: str) -> str:
    """Return the carrier's text of the parcel's newest problem scan, mobile numbers masked (a courier's, say)."""
    with read(store) as views:
        parcel = views.parcel(carrier, tracking_no)
        events = views.events_of(parcel.id) if parcel is not None else []
    problems = [e for e in events if e.status in PROBLEMS]
    if not problems:
        return ""
    newest = max(problems, key=lambda e: e.time)
    return mask_phone_numbers(newest.raw_text or "")


class RefundLines:
    """Follow the activity log and hold a line for every refund decision and intercept outcome."""

    def __init__(self, lines: DemoLines, language: str = "zh") -> None:
        self.lines = lines
        self.language = lang_of(language)
        self.names = carrier_names(language)
        self.last_id = 0

    def follow(self, store: Store) -> None:
        """Read the activity since the last call (blocking: run it off the loop)."""
        with store.begin() as uow:
            rows = uow.activity_after(self.last_id)
        words, refund = REFUND_WORDS[self.language], WORDS[self.language]
        for row in rows:
            self.last_id = row.id
            if row.event not in words:
                continue
            data = json.loads(row.data or "{}")
            carrier = self.names.get(data.get("carrier", ""), data.get("carrier", ""))
            parcel = f"{refund['order']} {data.get('order_id', '')} {carrier} {data.get('tracking_no', '')}"
            text = f"[{refund['refund']}] {parcel}: {words[row.event]}"
            if row.event == "intercept_rejected" and data.get("reason"):  # the carrier's own words
                text += f" · {refund['reason']}: {mask_phone_numbers(str(data['reason']))}"
            self.lines.add(row.at, text)


def summary(store: Store, now: datetime, language: str = "zh") -> str:
    """Return the closing line both demos print: the 24-hour pickup rate and what the monitor did."""
    with store.begin() as uow:
        counts = Counter(row.event for row in uow.activity_after(0, limit=10_000_000))
        due, on_time = uow.pickup_counts(now)
    words = WORDS[lang_of(language)]
    rate = f"{on_time / due:.1%}" if due else words["none"]
    tally = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return f"{words['summary']}: {words['rate']} {rate} ({on_time}/{due}); {tally}"


async def run_demo(settings: Settings, *, parcels: int, days: float, out: TextIO, seed: int = 11) -> Counter[str]:
    """Run the simulated world and print what the monitor does; return counts of activity."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 11, 8, 0, tzinfo=settings.timezone)
    clock = SimulatedClock(start)
    world = World(SandboxSettings.from_mapping(settings.carriers.get("sandbox", {})))
    sandbox = SandboxCarrier(clock, world)
    lines = DemoLines(out, settings.timezone)
    refunds_seen = RefundLines(lines, settings.language)
    with tempfile.TemporaryDirectory(prefix="parcel-monitor-demo-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'demo.db'}")
        upgrade(engine)
        store = Store(engine)
        channels: dict[str, Channel] = {
            c.name: DemoConsole(lines, clock, lambda: store, settings.language, c.name)
            for c in settings.channels
            if c.type == "console"
        }
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
                await monitor.refund(RefundRequest(f"RF{order_id[-6:]}", order_id, "refund_only"))
            await monitor.tick()
            refunds_seen.follow(store)
            lines.flush(now)
            clock.advance(STEP)
        lines.flush()
        with store.begin() as uow:
            counts = Counter(row.event for row in uow.activity_after(0, limit=10_000_000))
        closing = summary(store, clock.now(), settings.language)
        engine.dispose()
    print(f"\n{closing}", file=out)
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
