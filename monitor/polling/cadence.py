"""When to ask a carrier about a parcel next: a pure function of its state and the time.

Often while something is about to happen — a pickup deadline or a promised delivery is
near, the parcel is out for delivery or in trouble, an intercept of ours is being
followed — and otherwise backing off (3 → 6 → 12 → 24 h by default) while nothing changes,
because most parcels in transit are quiet for days and a carrier's quota is not free.
A finished parcel is never polled again. A carrier's per-number cap becomes a minimum
spacing between polls, which keeps any 24-hour window within the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.config import PollingSettings

FINISHED = frozenset({"delivered", "returned"})
BUSY_STATUSES = frozenset({"out_for_delivery", "exception", "delivery_failed", "returning"})
WATCHED_INTERCEPTS = frozenset({"requested", "pending", "accepted"})
DAY = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class NextPoll:
    """The next poll of a parcel (``at`` None: never again) and the back-off step reached."""

    at: datetime | None
    step: int


def cap_spacing(max_per_day: int | None) -> timedelta | None:
    """Return the least time between two polls of one number under a daily cap.

    ``cap`` polls spaced by more than 24 h / cap never put ``cap + 1`` polls in any 24 h.
    """
    if not max_per_day:
        return None
    return DAY / max_per_day + timedelta(seconds=1)


def next_poll(parcel: Any, now: datetime, changed: bool, settings: PollingSettings,
              spacing: timedelta | None = None) -> NextPoll:  # fmt: skip
    """Schedule the poll after one made at ``now``.

    Args:
        parcel: anything with ``status``, ``picked_up_at``, ``pickup_deadline``,
            ``promised_delivery``, ``intercept_state`` and ``poll_step``.
        changed: whether this poll brought news (the back-off starts again).
        spacing: the least time between polls of this number (see :func:`cap_spacing`).
    """
    if parcel.status in FINISHED:
        return NextPoll(None, 0)
    steps = settings.backoff_hours
    step = 0 if changed else min((parcel.poll_step or 0) + 1, len(steps) - 1)
    wait = timedelta(hours=steps[step])
    near = timedelta(minutes=settings.near_minutes)
    window = timedelta(hours=settings.near_window_hours)
    moments = []
    if parcel.picked_up_at is None and parcel.pickup_deadline is not None:
        moments.append(parcel.pickup_deadline)
    if parcel.promised_delivery is not None:
        moments.append(parcel.promised_delivery)
    for moment in moments:
        if moment - window <= now <= moment + window:
            wait = min(wait, near)
        elif now < moment - window:  # do not sleep through the approach of a deadline
            wait = min(wait, moment - window - now)
    if parcel.status in BUSY_STATUSES or (parcel.intercept_state or "") in WATCHED_INTERCEPTS:
        wait = min(wait, near)
    if spacing is not None:
        wait = max(wait, spacing)
    return NextPoll(now + wait, step)
