"""Generated delivery history with known per-route distributions, for the norms' tests and benchmark B11.

Each route draws every phase from a log-normal distribution with a given median and spread,
so the true quantiles are known in closed form (:meth:`Pace.truth`). Parcels are written
straight through the store's bulk statements — delivered, with their scans — as months of
real traffic would leave them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from monitor.store.models import Parcel
from monitor.store.store import UnitOfWork

#: z-scores of the quantiles the norms keep.
Z = {"p50": 0.0, "p90": 1.2815515655446004, "p95": 1.6448536269514722, "p99": 2.3263478740408408}
PHASES = ("ship_to_pickup", "pickup_to_first_transit", "transit_gap", "ofd_to_delivered")


@dataclass(frozen=True, slots=True)
class Pace:
    """A route and how long each phase takes on it: (median hours, log-normal sigma) per phase."""

    carrier: str
    origin: str | None
    dest: str | None
    region: str
    phases: dict[str, tuple[float, float]]
    #: Transit scans after the first one (each gap drawn from ``transit_gap``).
    transit_scans: int = 2

    def truth(self, phase: str, quantile: str = "p95") -> float:
        """Return the true quantile of a phase, in seconds."""
        median, sigma = self.phases[phase]
        return median * 3600 * math.exp(Z[quantile] * sigma)

    def draw(self, rng: random.Random, phase: str) -> timedelta:
        """Draw one duration of a phase."""
        median, sigma = self.phases[phase]
        return timedelta(hours=median * math.exp(rng.gauss(0.0, sigma)))


def journey(pace: Pace, shipped_at: datetime, rng: random.Random) -> list[tuple[datetime, str]]:
    """Return the scans (time, status) of one delivered parcel on ``pace``'s route."""
    at = shipped_at + pace.draw(rng, "ship_to_pickup")
    scans = [(at, "picked_up")]
    at += pace.draw(rng, "pickup_to_first_transit")
    scans.append((at, "in_transit"))
    for _ in range(pace.transit_scans):
        at += pace.draw(rng, "transit_gap")
        scans.append((at, "in_transit"))
    at += pace.draw(rng, "transit_gap")
    scans.append((at, "out_for_delivery"))
    at += pace.draw(rng, "ofd_to_delivered")
    scans.append((at, "delivered"))
    return scans


@dataclass(frozen=True, slots=True)
class Journey:
    """One delivered parcel: its route, when it shipped, and its scans (time, status) in order."""

    carrier: str
    origin: str | None
    dest: str | None
    region: str
    shipped_at: datetime
    scans: list[tuple[datetime, str]]


def journeys(
    paces: Sequence[Pace], per_route: int, first_shipped: datetime, span: timedelta, seed: int = 11
) -> Iterator[Journey]:
    """Yield ``per_route`` journeys per route, shipped evenly over ``span`` (routes interleaved)."""
    rng = random.Random(seed)
    step = span / max(per_route, 1)
    for i in range(per_route):
        for pace in paces:
            shipped = first_shipped + step * i
            yield Journey(pace.carrier, pace.origin, pace.dest, pace.region, shipped, journey(pace, shipped, rng))


def write_history(
    uow: UnitOfWork,
    paces: Sequence[Pace],
    per_route: int,
    first_shipped: datetime,
    span: timedelta,
    *,
    seed: int = 11,
    chunk: int = 5_000,
) -> int:
    """Write ``per_route`` delivered parcels per route, shipped evenly over ``span``; return parcels written."""
    return write_journeys(uow, journeys(paces, per_route, first_shipped, span, seed), chunk=chunk)


def write_journeys(uow: UnitOfWork, items: Iterable[Journey], *, chunk: int = 5_000) -> int:
    """Write delivered parcels with their scans through the store's bulk statements; return parcels written."""
    next_id = (uow.conn.execute(select(func.max(Parcel.__table__.c.id))).scalar() or 0) + 1
    written = 0
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for j in items:
        pid = next_id + written
        written += 1
        end = j.scans[-1][0]
        rows.append(
            {
                "id": pid, "carrier": j.carrier, "tracking_no": f"H{pid:09d}", "order_id": f"HO{pid:09d}",
                "shop": "", "shipped_at": j.shipped_at, "pickup_deadline": j.shipped_at + timedelta(hours=24),
                "promised_delivery": None, "presale": False, "origin_province": j.origin,
                "destination_province": j.dest, "region_class": j.region, "amount_fen": None,
                "status": j.scans[-1][1], "status_code": "", "exception_reason": None,
                "last_event_at": end, "picked_up_at": j.scans[0][0], "delivered_at": end, "held": False,
                "intercept_state": None, "poll_step": 0, "created_at": j.shipped_at, "updated_at": end,
            }
        )  # fmt: skip
        for n, (at, status) in enumerate(j.scans):
            events.append(
                {"parcel_id": pid, "fingerprint": f"h{n}", "time": at, "status": status, "reason": None,
                 "raw_code": "", "raw_text": "", "location": "", "received_at": at}
            )  # fmt: skip
        if len(rows) >= chunk:
            _flush(uow, rows, events)
            rows, events = [], []
    _flush(uow, rows, events)
    if uow.dialect == "postgresql":  # explicit ids: move the sequence past them for parcels added later
        uow.conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('parcel', 'id'), (SELECT MAX(id) FROM parcel))")
    return written


def _flush(uow: UnitOfWork, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    if rows:
        uow.conn.execute(Parcel.__table__.insert(), rows)
        uow.insert_events(events)
