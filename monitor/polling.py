"""Poll carriers for parcels that are due, in batches, with no transaction held across a call.

This is the simple fixed-interval poller; adaptive cadence and quotas build on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog

from carriers.errors import CarrierError, CarrierRateLimited
from monitor.clock import Clock
from monitor.service import Monitor
from monitor.store.store import Store

log = structlog.get_logger("monitor.polling")


class Poller:
    """Ask each carrier about its due parcels and feed the answers to the monitor."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        adapters: Mapping[str, Any],
        monitor: Monitor,
        interval: timedelta = timedelta(hours=2),
        limit: int = 1_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.adapters = adapters
        self.monitor = monitor
        self.interval = interval
        self.limit = limit
        self._failing: set[str] = set()

    async def poll_due(self) -> int:
        """Poll every due parcel once; return how many numbers were asked."""
        now = self.clock.now()
        with self.store.begin() as uow:
            due = uow.due_for_poll(now, self.limit)
        by_carrier: dict[str, list[Any]] = defaultdict(list)
        for row in due:
            by_carrier[row.carrier].append(row)
        asked = 0
        for carrier, rows in by_carrier.items():
            adapter = self.adapters.get(carrier)
            if adapter is None:
                with self.store.begin() as uow:
                    uow.set_next_poll([r.id for r in rows], None)
                log.warning("poll.no_adapter", carrier=carrier, parcels=len(rows))
                continue
            size = max(adapter.limits.batch_size, 1)
            for i in range(0, len(rows), size):
                batch = rows[i : i + size]
                asked += len(batch)
                await self._poll_batch(carrier, adapter, batch)
        return asked

    async def _poll_batch(self, carrier: str, adapter: Any, batch: list[Any]) -> None:
        now = self.clock.now()
        delay = self.interval
        try:
            results = await adapter.track([r.tracking_no for r in batch])
        except CarrierError as err:
            if carrier not in self._failing:
                log.warning("poll.failing", carrier=carrier, error=str(err), kind=type(err).__name__)
                self._failing.add(carrier)
            if isinstance(err, CarrierRateLimited) and err.retry_after:
                delay = timedelta(seconds=err.retry_after)
            with self.store.begin() as uow:
                uow.set_next_poll([r.id for r in batch], now + delay)
            return
        if carrier in self._failing:
            self._failing.discard(carrier)
            log.info("poll.recovered", carrier=carrier)
        events = [ev for result in results for ev in result.events]
        await self.monitor.ingest(events)
        with self.store.begin() as uow:
            uow.set_next_poll([r.id for r in batch], now + delay)
