"""Estimated delivery: a window (p50–p90) of the route's remaining time from the parcel's current state.

Out for delivery, the window is the learned out-for-delivery → delivered time from the
courier's scan; before that, the learned total (shipped → delivered) from the shipping
time. A window that has already begun starts now: a late parcel is expected from now on,
not in the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carriers.model import RETURN_STATUSES, TERMINAL_STATUSES, Status
from monitor.norms.model import NormBook


@dataclass(frozen=True, slots=True)
class Estimate:
    """When a parcel in flight should arrive, and what the guess rests on."""

    earliest: datetime
    latest: datetime
    #: The norm behind it: its level (route, region, carrier), phase and sample count.
    level: str
    phase: str
    samples: int


def estimate(book: NormBook, parcel: Any, now: datetime) -> Estimate | None:
    """Return the delivery window of a parcel in flight, or None (finished, or nothing learned for it)."""
    status = Status(parcel.status)
    if status in TERMINAL_STATUSES or status in RETURN_STATUSES:
        return None
    route = (parcel.carrier, parcel.origin_province, parcel.destination_province, parcel.region_class)
    phase, since = "total", parcel.shipped_at
    if status is Status.OUT_FOR_DELIVERY and parcel.last_event_at is not None:
        phase, since = "ofd_to_delivered", parcel.last_event_at
    norm = book.find(*route, phase)
    if norm is None:
        return None
    earliest = max(since + timedelta(seconds=norm.p50), now)
    latest = max(since + timedelta(seconds=norm.p90), earliest)
    return Estimate(earliest, latest, norm.level, phase, norm.samples)


def promised_by_norm(
    book: NormBook, shipped_at: datetime, carrier: str, origin: str | None, dest: str | None, region: str
) -> datetime | None:
    """Return shipped_at + the route's p90 total, when ``estimate_delivery_overdue`` is on (opt-in), else None."""
    if not book.settings.estimate_delivery_overdue:
        return None
    norm = book.find(carrier, origin, dest, region, "total")
    return None if norm is None else shipped_at + timedelta(seconds=norm.p90)
