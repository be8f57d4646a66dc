"""The live demo's merchant: ships simulated parcels and sends refund-only requests.

It drives the daemon the way a shop's order system would — new shipments every few
simulated minutes, now and then a buyer asking for a refund-only — while the sandbox
carrier's simulated world moves the parcels. A backlog shipped over the previous day
makes the first pickup alerts appear within seconds rather than after 24 simulated hours.
What the monitor does is printed as the offline demo prints it (monitor/demo.py): alerts
through the demo console, refund decisions and intercepts read from the activity log —
those sent to the HTTP API too — all in time order, and the same summary at the end.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from monitor.actions.intercepts import RefundRequest
from monitor.demo import ORIGINS, SHOPS, DemoLines, RefundLines, summary
from monitor.intake.shipments import Shipment
from monitor.rules.regions import PROVINCES
from monitor.service import Monitor

BACKLOG = 120
PER_SIMULATED_HOUR = 4
REFUND_EVERY = timedelta(hours=8)
#: Wall-clock seconds a line waits for late ones before printing (an hour and a half of demo time at 3600×).
HOLD_SECONDS = 1.5


def hold(speed: float) -> timedelta:
    """Return :data:`HOLD_SECONDS` of wall time as business time at ``speed``."""
    return timedelta(seconds=HOLD_SECONDS * speed)


class DemoFeed:
    """A deterministic stream of shipments and refunds into a monitor with the sandbox carrier."""

    def __init__(self, monitor: Monitor, sandbox: Any, lines: DemoLines, language: str = "zh",
                 seed: int = 11) -> None:  # fmt: skip
        self.monitor = monitor
        self.sandbox = sandbox
        self.lines = lines
        self.language = language
        self.refund_lines = RefundLines(lines, language)
        self.rng = random.Random(seed)
        self.shipped: list[Shipment] = []
        self.count = 0
        self._last: datetime | None = None
        self._next_refund: datetime | None = None

    def _shipment(self, at: datetime) -> Shipment:
        self.count += 1
        n = self.count
        return Shipment(
            order_id=f"TB2026{n:08d}",
            carrier="sandbox",
            tracking_no=f"SBX{self.rng.randrange(10**6):06d}{n:04d}",
            shipped_at=at.replace(microsecond=0),
            shop=self.rng.choice(SHOPS),
            origin_province=self.rng.choice(ORIGINS),
            destination_province=self.rng.choice(list(PROVINCES)),
            amount_fen=self.rng.randrange(2_000, 80_000),
        )

    def _ship(self, batch: list[Shipment]) -> None:
        for s in batch:
            self.sandbox.register(s.tracking_no, s.shipped_at)
        self.monitor.add_shipments(batch)
        self.shipped.extend(batch)

    async def step(self) -> None:
        """Ship what the time since the last step calls for, and send a refund when one is due."""
        now = self.monitor.clock.now()
        if self._last is None:
            backlog = [self._shipment(now - timedelta(hours=self.rng.uniform(0, 30))) for _ in range(BACKLOG)]
            self._ship(sorted(backlog, key=lambda s: s.shipped_at))
            self._last, self._next_refund = now, now + timedelta(hours=1)
            return
        await self._print(now)
        hours = (now - self._last).total_seconds() / 3600
        due = int(hours * PER_SIMULATED_HOUR)
        if due:
            span = now - self._last
            self._ship([self._shipment(self._last + span * (i + 1) / due) for i in range(due)])
            self._last = now
        if self._next_refund is not None and now >= self._next_refund:
            self._next_refund = now + REFUND_EVERY
            await self._refund(now)

    @property
    def example_order(self) -> str:
        """Return an order the demo shipped, for the banner's refund recipe."""
        return self.shipped[0].order_id if self.shipped else "TB202600000001"

    async def _print(self, now: datetime | None = None) -> None:
        store = self.monitor.store
        await store.offload(self.refund_lines.follow, store)
        self.lines.flush(now)

    async def finish(self) -> None:
        """Print every line still held, then the summary (in the configured language)."""
        await self._print()
        store = self.monitor.store
        closing = await store.offload(summary, store, self.monitor.clock.now(), self.language)
        print(f"\n{closing}", file=self.lines.out, flush=True)

    async def _refund(self, now: datetime) -> None:
        candidates = [s for s in self.shipped if timedelta(hours=2) < now - s.shipped_at < timedelta(hours=60)]
        if not candidates:
            return
        s = self.rng.choice(candidates)
        await self.monitor.refund(RefundRequest(f"RF{s.order_id[-8:]}", s.order_id, "refund_only"))
