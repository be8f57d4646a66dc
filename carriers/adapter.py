"""The adapter protocol: what a carrier plugin implements and how it describes itself.

A plugin package exposes one :class:`AdapterInfo` through the ``parcel_monitor.carriers``
entry-point group (see ``docs/plugins.md``). The service only ever sees normalized
results and the typed errors of :mod:`carriers.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from carriers.model import InterceptResult, Limits, ParcelRef, TrackingResult

TRACK = "track"
PUSH = "push"
INTERCEPT = "intercept"


@runtime_checkable
class CarrierAdapter(Protocol):
    """A carrier, as the service sees it."""

    code: str
    limits: Limits

    async def track(self, numbers: Sequence[str]) -> list[TrackingResult]:
        """Fetch the tracking history of up to ``limits.batch_size`` numbers.

        Returns:
            One result per number asked, in any order; unknown numbers carry a ``problem``.

        Raises:
            CarrierError: a subclass saying why the whole call failed.
        """
        ...


@runtime_checkable
class SupportsPush(Protocol):
    """An adapter that can read the carrier's subscription callbacks."""

    def parse_push(self, body: bytes, headers: dict[str, str]) -> list[TrackingResult]:
        """Turn one callback request into results (raises CarrierResponseError if unreadable)."""
        ...


@runtime_checkable
class SupportsIntercept(Protocol):
    """An adapter that can ask the carrier to stop a parcel and send it back."""

    async def intercept(self, parcel: ParcelRef, reason: str, idempotency_key: str) -> InterceptResult:
        """Request an intercept; the same ``idempotency_key`` must never intercept twice.

        Returns:
            ``accepted=False`` only for the carrier's explicit refusal; ``accepted=None`` (with
            ``repeated=True`` for a key seen before) when the verdict is not in the answer.

        Raises:
            CarrierAuthError: credentials rejected (the carrier is paused, the intercept waits).
            CarrierResponseError: the answer could not be read: an unknown outcome, retried
                with the same key (never recorded as a rejection).
            CarrierError: the request could not be made (the outbox retries it).
        """
        ...


@runtime_checkable
class SupportsInterceptStatus(Protocol):
    """An adapter whose carrier can say how an earlier intercept request ended.

    Neither 丰桥 nor ZOP documents such a query publicly, so no built-in adapter has it; the
    service then follows the parcel's scans (a return scan or a delivery decides).
    """

    async def intercept_status(self, parcel: ParcelRef, idempotency_key: str) -> InterceptResult:
        """Return the verdict on the request made with ``idempotency_key`` (``accepted=None``: not decided)."""
        ...


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    """One plugin's metadata: what it is called, what it can do and how to build it.

    ``factory(settings, context)`` returns the adapter; ``context`` carries what the service
    passes in (``clock``, ``http`` client), so adapters read no globals.
    """

    code: str
    label: str
    factory: Callable[[dict[str, Any], dict[str, Any]], CarrierAdapter]
    capabilities: frozenset[str] = frozenset({TRACK})
    settings_type: type | None = None
    timezone: str = "Asia/Shanghai"


class Clock(Protocol):
    """Anything that tells the time; adapters never read the wall clock themselves."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...
