"""A worker process for tests/faults/test_ingest_batches.py: ingest overlapping batches of one shared stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from carriers.model import Status, TrackingEvent
from monitor.clock import SimulatedClock
from monitor.intake.ingest import Ingestor
from monitor.rules.ruleset import build_ruleset
from monitor.store.db import make_engine
from monitor.store.store import Store

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
PARCELS = 300
CARRIERS = ("sf", "zto")
#: Scans of every parcel, oldest first: (hours after T0, status, code, text, location).
SCANS = (
    (1, Status.PICKED_UP, "50", "顺丰速运 已收取快件", "杭州"),
    (5, Status.IN_TRANSIT, "30", "快件已到达【杭州转运中心】", "杭州转运中心"),
    (11, Status.IN_TRANSIT, "30", "快件已到达【上海转运中心】", "上海转运中心"),
    (20, Status.OUT_FOR_DELIVERY, "44", "快递员正在派件", "上海"),
)


def number(i: int) -> tuple[str, str]:
    """Return parcel ``i``'s (carrier, tracking number)."""
    carrier = CARRIERS[i % len(CARRIERS)]
    return carrier, f"{carrier.upper()}{i:06d}"


def event(i: int, scan: int) -> TrackingEvent:
    """Return scan ``scan`` (an index into SCANS) of parcel ``i``."""
    hours, status, code, text, location = SCANS[scan]
    carrier, tracking_no = number(i)
    return TrackingEvent(carrier, tracking_no, T0 + timedelta(hours=hours, minutes=i), status, code, text, location)


def batches(scans: tuple[int, ...], size: int = 30) -> list[list[TrackingEvent]]:
    """Every parcel's ``scans``, ``size`` parcels a batch (so each batch has ≥ COPY_ROWS events)."""
    return [[event(i, s) for i in range(lo, min(lo + size, PARCELS)) for s in scans] for lo in range(0, PARCELS, size)]


def ingest_all(url: str, scans: tuple[int, ...], rounds: int, start: Any, out: Any) -> None:
    """Wait for ``start``, then ingest ``batches(scans)`` ``rounds`` times over; report the changes seen."""
    engine = make_engine(url)
    store = Store(engine)
    ingestor = Ingestor(build_ruleset({}), SimulatedClock(NOW))
    with store.begin() as uow:  # connect before the race starts
        uow.parcels_by_keys([number(0)])
    out.put("ready")
    start.wait()
    changes = 0
    for _ in range(rounds):
        for batch in batches(scans):
            with store.begin() as uow:
                changes += len(ingestor.apply(uow, batch).changes)
    engine.dispose()
    out.put(changes)
