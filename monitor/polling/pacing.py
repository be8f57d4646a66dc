"""Keep to a carrier's request rate and daily quota.

The pacer hands out request slots ``1 / rate`` apart on the injected clock, so concurrent
requests never burst above the rate whatever their latency. The daily quota is counted in
the store (``carrier_usage``) before the requests are made: a crash or a restart can only
under-use a quota, never exceed it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.clock import Clock

Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """Space requests at most ``rate`` a second."""

    def __init__(self, rate: float, clock: Clock, sleep: Sleep) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        self.interval = timedelta(seconds=1 / rate)
        self.clock = clock
        self.sleep = sleep
        self._next: datetime | None = None

    async def wait(self) -> None:
        """Return when the next request may start."""
        now = self.clock.now()
        slot = now if self._next is None or self._next < now else self._next
        self._next = slot + self.interval
        delay = (slot - now).total_seconds()
        if delay > 0:
            await self.sleep(delay)


def quota_day(moment: datetime, tz: ZoneInfo) -> str:
    """Return the local date a request counts against (carriers reset quotas at local midnight)."""
    return moment.astimezone(tz).date().isoformat()
