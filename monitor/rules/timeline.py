"""Fold carrier events into a parcel's state and compute its rule deadlines — pure functions.

Folding is idempotent and order-free (max/min over event times), so a repeated or late
event can never move a parcel backwards. Deadlines are written to the ``*_due`` columns
so that time-driven rules are an indexed query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from carriers.model import RETURN_STATUSES, TERMINAL_STATUSES, Status, TrackingEvent
from monitor.rules.ruleset import Thresholds

#: Tie-break when two events share a time: the later stage of a parcel's life wins.
STAGE = {
    Status.PENDING: 0,
    Status.PICKED_UP: 1,
    Status.IN_TRANSIT: 2,
    Status.OUT_FOR_DELIVERY: 3,
    Status.AVAILABLE_FOR_PICKUP: 4,
    Status.DELIVERY_FAILED: 5,
    Status.EXCEPTION: 5,
    Status.RETURNING: 6,
    Status.DELIVERED: 7,
    Status.RETURNED: 8,
}
DEADLINE_COLUMNS = ("pickup_risk_due", "pickup_due", "stall_due", "lost_due", "delivery_due", "slow_due")
#: The phase of a parcel's journey whose learned gap (``monitor.norms``) bounds its silence in each status.
SILENCE_PHASE = {
    Status.PENDING: "ship_to_pickup",
    Status.PICKED_UP: "pickup_to_first_transit",
    Status.IN_TRANSIT: "transit_gap",
    Status.OUT_FOR_DELIVERY: "ofd_to_delivered",
}


@dataclass(frozen=True, slots=True)
class ParcelState:
    """What the carrier has told us about a parcel so far."""

    status: str = Status.PENDING.value
    status_code: str = ""
    exception_reason: str | None = None
    last_event_at: datetime | None = None
    picked_up_at: datetime | None = None
    delivered_at: datetime | None = None


def fold(state: ParcelState, events: Iterable[TrackingEvent]) -> ParcelState:
    """Return the state after ``events``; the newest event sets the status.

    Kept in locals and built once at the end (not one ``replace`` per event): this runs for
    every parcel of every ingest batch.
    """
    status, code, reason = state.status, state.status_code, state.exception_reason
    last, picked, delivered = state.last_event_at, state.picked_up_at, state.delivered_at
    moved = False
    for ev in events:
        s, t = ev.status, ev.time
        if s is not None and s is not Status.PENDING and (picked is None or t < picked):
            picked, moved = t, True
        if s is Status.DELIVERED and (delivered is None or t < delivered):
            delivered, moved = t, True
        if last is None or t > last:
            last, moved = t, True
            if s is not None:
                status, code, reason = s.value, ev.raw_code, ev.reason.value if ev.reason else None
        elif t == last and s is not None and STAGE[s] > STAGE[Status(status)]:
            status, code, reason, moved = s.value, ev.raw_code, ev.reason.value if ev.reason else None, True
    return ParcelState(status, code, reason, last, picked, delivered) if moved else state


@dataclass(frozen=True, slots=True)
class Schedule:
    """The facts about a shipment that, with its state, decide when rules fire."""

    shipped_at: datetime
    pickup_deadline: datetime
    promised_delivery: datetime | None
    region_class: str
    held: bool


def deadlines(
    state: ParcelState, schedule: Schedule, t: Thresholds, gaps: Mapping[str, float] | None = None
) -> dict[str, datetime | None]:
    """Return the moment each time-driven rule fires for this parcel, None when not armed.

    ``gaps``: the route's learned silence per phase, in seconds (``monitor.norms``). It arms
    ``slow_due`` only when it comes before the fixed line (pickup deadline, stall or lost), so
    the learned rule can only warn earlier than the platform's, never later nor twice.
    """
    due: dict[str, datetime | None] = dict.fromkeys(DEADLINE_COLUMNS)
    status = Status(state.status)
    if schedule.held or status in TERMINAL_STATUSES:
        return due
    if state.picked_up_at is None:
        risk = schedule.pickup_deadline - timedelta(hours=t.pickup_risk_hours)
        due["pickup_risk_due"] = max(risk, schedule.shipped_at)
        due["pickup_due"] = schedule.pickup_deadline
    if schedule.promised_delivery is not None and status not in RETURN_STATUSES:
        due["delivery_due"] = schedule.promised_delivery
    last = state.last_event_at
    if gaps and status is Status.PENDING:  # a label printed is no scan: the silence runs from shipping
        due["slow_due"] = _slow(schedule.shipped_at, gaps.get(SILENCE_PHASE[status]), due["pickup_risk_due"])
    if last is None:
        return due
    region = schedule.region_class
    stall = {
        Status.PICKED_UP: t.after_pickup_hours,
        Status.IN_TRANSIT: t.transit_hours[region],
        Status.OUT_FOR_DELIVERY: t.out_for_delivery_hours,
        Status.AVAILABLE_FOR_PICKUP: t.available_for_pickup_hours,
    }.get(status)
    lost = {
        Status.PICKED_UP: t.lost_after_pickup_hours,
        Status.IN_TRANSIT: t.lost_transit_hours[region],
    }.get(status)
    if stall is not None:
        due["stall_due"] = last + timedelta(hours=stall)
    if lost is not None:
        due["lost_due"] = last + timedelta(hours=lost)
    phase = SILENCE_PHASE.get(status)
    if gaps and phase is not None and status is not Status.PENDING:
        due["slow_due"] = _slow(last, gaps.get(phase), due["stall_due"] or due["lost_due"])
    return due


def _slow(since: datetime, gap: float | None, fixed: datetime | None) -> datetime | None:
    """Return ``since`` + the learned gap when that comes before the ``fixed`` deadline, else None."""
    if gap is None or fixed is None:
        return None
    slow = since + timedelta(seconds=gap)
    return slow if slow < fixed else None
