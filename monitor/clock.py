"""Clocks: the only place the wall clock is read, so replay and tests run on simulated time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tell the current time, always timezone-aware UTC."""

    def now(self) -> datetime:
        """Return the current time."""
        ...


class SystemClock:
    """The real clock, for the daemon."""

    def now(self) -> datetime:
        """Return the wall-clock time in UTC."""
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to, for replay, the demo and tests."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        """Return the simulated time."""
        return self._now

    def set(self, moment: datetime) -> None:
        """Move to ``moment``; time never runs backwards."""
        moment = as_utc(moment)
        if moment < self._now:
            raise ValueError(f"clock cannot go back from {self._now.isoformat()} to {moment.isoformat()}")
        self._now = moment

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta``."""
        self.set(self._now + delta)


def as_utc(moment: datetime) -> datetime:
    """Convert an aware datetime to UTC; a naive one is a bug, so refuse it."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: times must carry an offset")
    return moment.astimezone(UTC)


class AcceleratedClock:
    """Simulated time that runs ``speed`` times faster than the wall clock, for the live demo.

    It reads a monotonic counter (never jumps with NTP), so the daemon's jobs and the
    monitor agree on one time line however fast it runs.
    """

    def __init__(self, start: datetime, speed: float, counter: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.start = as_utc(start)
        self.speed = speed
        self._counter = counter
        self._origin = counter()

    def now(self) -> datetime:
        """Return the accelerated time."""
        return self.start + timedelta(seconds=(self._counter() - self._origin) * self.speed)
