"""A clock a test sets by hand, for adapters that take a ``carriers.adapter.Clock``."""

from __future__ import annotations

from datetime import UTC, datetime


class FixedClock:
    """A clock that says what the test sets (``clock.current = ...``)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 11, 11, 1, 30, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current
