"""Poll carriers for the parcels that are due, within each carrier's rate, quota and caps.

One round per carrier: claim the due parcels the quota allows (those at risk first),
ask the carrier in batches — concurrently, paced to its request rate — and write what
came back in batches through the monitor. No transaction is open during an HTTP call:
the claim is a lease (``next_poll_at`` moved forward by the round's expected length plus a
margin, a few minutes at most), so a poller killed mid-round leaves its parcels to be
polled again soon after, and replicas never share a parcel. Every database call runs on
the store's threads (``Store.transact``), never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from carriers.errors import CarrierAuthError, CarrierError, CarrierRateLimited
from carriers.model import TrackingResult
from monitor.clock import Clock
from monitor.config import PollingSettings
from monitor.polling.cadence import cap_spacing, next_poll
from monitor.polling.health import HealthBook
from monitor.polling.pacing import Pacer, Sleep, quota_day
from monitor.service import Monitor
from monitor.store.store import Store, UnitOfWork

log = structlog.get_logger("monitor.polling")

#: A poll lease lasts twice the round's paced length plus this margin (slow answers, the writes) …
LEASE_MARGIN = timedelta(seconds=60)
#: … and never longer than this: a kill -9 mid-round hides its parcels at most this long.
MAX_LEASE = timedelta(minutes=3)
#: Share of ``rate × tick_seconds`` one round asks for.
ROUND_SHARE = 0.85
#: Results written per ingest batch: big enough to amortize a transaction, small enough
#: that the parcels of a long round do not wait for the round's end.
WRITE_BATCH = 500


@dataclass
class RoundStats:
    """What one carrier's round did."""

    carrier: str
    claimed: int = 0
    requests: int = 0
    failed_requests: int = 0
    events: int = 0
    skipped: str = ""
    errors: list[str] = field(default_factory=list)


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def round_lease(requests: int, rate: float) -> timedelta:
    """Return how long a round of ``requests`` paced at ``rate``/s keeps its parcels."""
    return min(timedelta(seconds=2 * requests / rate) + LEASE_MARGIN, MAX_LEASE)


class Poller:
    """Ask each carrier about its due parcels and feed the answers to the monitor."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        adapters: Mapping[str, Any],
        monitor: Monitor,
        settings: PollingSettings | None = None,
        *,
        timezone: ZoneInfo | None = None,
        sleep: Sleep = _asyncio_sleep,
        health: HealthBook | None = None,
        max_in_flight: int = 64,
        metrics: Any = None,
        act_after_write: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        self.adapters = adapters
        self.monitor = monitor
        self.settings = settings or PollingSettings()
        self.timezone = timezone or ZoneInfo("Asia/Shanghai")
        self.sleep = sleep
        self.health = health or HealthBook(store, clock, {}, None)
        self.max_in_flight = max_in_flight
        self.metrics = metrics
        #: Run the outbox after each write (the offline demo); the daemon's dispatcher job does it instead.
        self.act_after_write = act_after_write
        self._pacers: dict[str, Pacer] = {}
        self._write_lock = asyncio.Lock()
        self._exhausted_logged: set[tuple[str, str]] = set()

    # -- public ---------------------------------------------------------------------------

    async def poll_due(self) -> int:
        """Run one round for every carrier with due parcels; return how many numbers were asked."""
        rounds = await self.poll_round()
        return sum(r.claimed for r in rounds if not r.skipped)

    async def poll_round(self) -> list[RoundStats]:
        """Run one round for every carrier with due parcels, carriers side by side."""
        now = self.clock.now()
        carriers = await self.store.transact(lambda uow: uow.pollable_carriers(now))
        for code in [c for c in carriers if c not in self.adapters]:
            await self._drop_unknown(code, now)
        tasks = [self.poll_carrier(code) for code in carriers if code in self.adapters]
        return list(await asyncio.gather(*tasks))

    async def poll_carrier(self, code: str) -> RoundStats:
        """Poll one carrier's due parcels within its rate, daily quota and per-number cap."""
        stats = RoundStats(code)
        adapter = self.adapters[code]
        now = self.clock.now()
        if await self.store.offload(self.health.resting, code, now):
            stats.skipped = "carrier failing: resting"
            await self.health.announce(code)
            return stats
        limits = adapter.limits
        quota = self.settings.quotas.get(code)
        rate = (quota.requests_per_second if quota else None) or limits.requests_per_second
        per_day = (quota.requests_per_day if quota else None) or limits.extra.get("requests_per_day")
        batch = max(limits.batch_size, 1)
        # a round a little shorter than a tick, so the next tick finds it done rather than skipped
        wanted = max(int(rate * self.settings.tick_seconds * ROUND_SHARE), 1)
        wanted = min(wanted, max(self.settings.round_limit // batch, 1))
        spacing = cap_spacing(limits.max_queries_per_number_per_day)
        day = quota_day(now, self.timezone)

        def claim(uow: UnitOfWork) -> list[Any] | None:
            asked = wanted
            if per_day is not None:
                left = per_day - uow.usage(code, day)
                if left <= 0:
                    return None
                asked = min(asked, left)
            rows = uow.claim_for_poll(
                code, now, asked * batch, now + round_lease(asked, rate),
                risk_until=now + timedelta(hours=self.settings.near_window_hours),
                polled_before=now - spacing if spacing else None,
            )  # fmt: skip
            uow.add_usage(code, day, -(-len(rows) // batch))  # reserved before asking: a crash cannot overshoot
            return rows

        rows = await self.store.transact(claim)
        if rows is None:
            self._log_exhausted(code, day, per_day or 0)
            stats.skipped = "daily quota used up"
            return stats
        batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]
        stats.claimed = len(rows)
        if not rows:
            return stats
        pacer = self._pacers.get(code)
        if pacer is None or pacer.interval != timedelta(seconds=1 / rate):
            pacer = self._pacers[code] = Pacer(rate, self.clock, self.sleep)
        pending: list[tuple[Any, TrackingResult | None]] = []
        stop = asyncio.Event()
        gate = asyncio.Semaphore(self.max_in_flight)

        async def ask(group: Sequence[Any]) -> None:
            async with gate:
                if stop.is_set():
                    await self._reschedule_failed(group, None)
                    return
                await pacer.wait()
                if stop.is_set():
                    await self._reschedule_failed(group, None)
                    return
                stats.requests += 1
                try:
                    results = await adapter.track([r.tracking_no for r in group])
                except CarrierError as err:
                    stats.failed_requests += 1
                    stats.errors.append(f"{type(err).__name__}: {err}")
                    self._count(code, type(err).__name__)
                    if isinstance(err, CarrierAuthError | CarrierRateLimited):
                        stop.set()  # the rest of the round would fail the same way
                    await self._reschedule_failed(group, err)
                    return
                self._count(code, "ok")
                by_no = {r.tracking_no: r for r in results}
                pending.extend((row, by_no.get(row.tracking_no)) for row in group)
                if len(pending) >= WRITE_BATCH:
                    chunk = pending[:]
                    pending.clear()
                    stats.events += await self._write(code, chunk)

        await asyncio.gather(*(ask(g) for g in batches))
        if pending:
            stats.events += await self._write(code, pending)
        unused = len(batches) - stats.requests
        if unused:
            await self.store.transact(lambda uow: uow.add_usage(code, day, -unused))
        await self._settle_health(code, stats)
        if self.metrics is not None:
            failed = stats.failed_requests
            outcome = "ok" if not failed else "failed" if failed == stats.requests else "partial"
            self.metrics.polls.labels(carrier=code, outcome=outcome).inc()
        log.info("poll.round", carrier=code, parcels=stats.claimed, requests=stats.requests,
                 failed=stats.failed_requests, events=stats.events)  # fmt: skip
        return stats

    # -- internals ------------------------------------------------------------------------

    async def _write(self, code: str, answered: list[tuple[Any, TrackingResult | None]]) -> int:
        """Ingest one batch of answers and schedule each parcel's next poll."""
        async with self._write_lock:
            events = [ev for _, result in answered if result is not None for ev in result.events]
            result = await self.monitor.ingest(events, act=self.act_after_write)
            changed = {c.parcel.id for c in result.changes}
            now = self.clock.now()
            spacing = cap_spacing(self.adapters[code].limits.max_queries_per_number_per_day)

            def schedule(uow: UnitOfWork) -> None:
                view = uow.poll_view([row.id for row, _ in answered])
                updates = []
                for pid, parcel in view.items():
                    nxt = next_poll(parcel, now, pid in changed, self.settings, spacing)
                    updates.append({"id": pid, "next_poll_at": nxt.at, "poll_step": nxt.step, "last_polled_at": now})
                uow.update_parcels(updates)

            await self.store.transact(schedule)
            if self.metrics is not None and events:
                self.metrics.events_ingested.labels(carrier=code).inc(len(events))
            return len(events)

    async def _reschedule_failed(self, group: Sequence[Any], err: CarrierError | None) -> None:
        """Put parcels of a failed request back: soon, or after the carrier's Retry-After."""
        now = self.clock.now()
        delay = timedelta(minutes=1)
        if isinstance(err, CarrierRateLimited) and err.retry_after:
            delay = timedelta(seconds=err.retry_after)
        elif err is not None:
            delay = timedelta(minutes=5)
        ids = [r.id for r in group]
        await self.store.transact(lambda uow: uow.set_next_poll(ids, now + delay))

    async def _settle_health(self, code: str, stats: RoundStats) -> None:
        if stats.requests and stats.failed_requests == stats.requests:
            await self.store.offload(self.health.failed, code, stats.errors[-1] if stats.errors else "failed")
        elif stats.requests > stats.failed_requests:
            await self.store.offload(self.health.succeeded, code)
        await self.health.announce(code)

    async def _drop_unknown(self, code: str, now: datetime) -> None:
        def drop(uow: UnitOfWork) -> int:
            rows = uow.claim_for_poll(code, now, 100_000, now, risk_until=now)
            uow.set_next_poll([r.id for r in rows], None)
            return len(rows)

        log.warning("poll.no_adapter", carrier=code, parcels=await self.store.transact(drop))

    def _log_exhausted(self, code: str, day: str, per_day: int) -> None:
        if (code, day) not in self._exhausted_logged:
            self._exhausted_logged.add((code, day))
            log.warning("poll.quota_exhausted", carrier=code, day=day, requests_per_day=per_day)

    def _count(self, code: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.carrier_requests.labels(carrier=code, outcome=outcome).inc()
