"""The pickup-rate forecast's SQL: what each day of the window already holds, and its alert state.

Two sources, as for the reports (:mod:`monitor.store.kpi`): ``kpi_daily`` for the days up
to the last one rolled up (a past day's pickup figures are final once it ends), and one live
query for the days after it — today and the days ahead included — that buckets parcels by the
local day of their pickup deadline. The live query is a range scan on
``ix_parcel_day_pickup`` (``parcel_day``, kept from ``parcel`` by triggers): it reads the
parcels due from the first day not rolled up on, never every parcel. The day boundaries
come from the caller (local days are the caller's business), so the bucketing is one
portable ``CASE`` on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.store.models import KpiDaily, ParcelDay, PickupForecast
from monitor.store.store import Store

KD = KpiDaily.__table__
PF = PickupForecast.__table__
#: Parcels' pickup days, kept from ``parcel`` by triggers and indexed for this range read (migration 0019).
PD = ParcelDay.__table__


@dataclass
class DayCounts:
    """One shop's pickups of one local day, as far as they are known now.

    ``due``/``in_time``: deadlines that have passed (final). ``early``: deadline ahead, already
    picked up (sure to count in time). ``pending``: deadline ahead, not picked up yet (undecided).
    """

    due: int = 0
    in_time: int = 0
    early: int = 0
    pending: int = 0

    @property
    def known(self) -> int:
        """Return every parcel known to fall due on this day."""
        return self.due + self.early + self.pending


class ForecastStore:
    """One transaction's worth of forecast queries."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def last_rolled_up(self, before: date) -> date | None:
        """Return the latest day before ``before`` that kpi_daily holds rows of."""
        return self.conn.execute(select(func.max(KD.c.day)).where(KD.c.day < before)).scalar()

    def rolled_up(self, first: date, last: date, shop: str | None = None) -> dict[tuple[str, date], DayCounts]:
        """Return the rolled-up pickup figures of days in [first, last], per shop and day (carriers added up)."""
        stmt = (
            select(KD.c.shop, KD.c.day, func.sum(KD.c.pickup_due).label("due"),
                   func.sum(KD.c.picked_up_in_time).label("in_time"))
            .where(KD.c.day >= first, KD.c.day <= last)
            .group_by(KD.c.shop, KD.c.day)
        )  # fmt: skip
        if shop is not None:
            stmt = stmt.where(KD.c.shop == shop)
        return {(r.shop, r.day): DayCounts(int(r.due), int(r.in_time)) for r in self.conn.execute(stmt)}

    def live(
        self, bounds: Sequence[tuple[date, datetime]], end: datetime, now: datetime, shop: str | None = None
    ) -> dict[tuple[str, date], DayCounts]:
        """Count parcels by the local day of their pickup deadline, from ``bounds[0]`` to ``end``.

        ``bounds`` lists each day with its start, in order; the last day ends at ``end``. Held
        parcels (refund-only before pickup) are never due and are left out, as in the reports.
        """
        if not bounds:
            return {}
        deadline = PD.c.pickup_deadline
        bucket = case(*((deadline < start, i - 1) for i, (_, start) in enumerate(bounds) if i), else_=len(bounds) - 1)
        passed = deadline <= now
        picked = and_(PD.c.picked_up_at.is_not(None), PD.c.picked_up_at <= deadline)

        def count(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        stmt = (
            select(
                PD.c.shop,
                bucket.label("bucket"),
                count(passed).label("due"),
                count(and_(passed, picked)).label("in_time"),
                count(and_(~passed, picked)).label("early"),
                count(and_(~passed, PD.c.picked_up_at.is_(None))).label("pending"),
            )
            .where(deadline >= bounds[0][1], deadline < end, PD.c.held.is_(False))
            .group_by(PD.c.shop, bucket)
        )
        if shop is not None:
            stmt = stmt.where(PD.c.shop == shop)
        found: dict[tuple[str, date], DayCounts] = {}
        for r in self.conn.execute(stmt):
            day = bounds[int(r.bucket)][0]
            found[(r.shop, day)] = DayCounts(int(r.due), int(r.in_time), int(r.early), int(r.pending))
        return found

    # -- the alert state ---------------------------------------------------------------------

    def states(self) -> dict[str, Any]:
        """Return every shop's forecast row, by shop."""
        return {r.shop: r for r in self.conn.execute(select(PF))}

    def save(self, shop: str, **values: Any) -> None:
        """Write a shop's latest forecast (never ``alerted``: only :meth:`claim` moves that)."""
        insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(PF)
        stmt = insert.values(shop=shop, alerted="ok", **values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["shop"], set_=values))

    def claim(self, shop: str, told: str, telling: str, at: datetime) -> bool:
        """Move ``alerted`` from ``told`` to ``telling``, no receiver told yet; False if another sender did it first."""
        stmt = update(PF).where(PF.c.shop == shop, PF.c.alerted == told)
        return bool(self.conn.execute(stmt.values(alerted=telling, told="", updated_at=at)).rowcount)

    def mark_all_told(self, shop: str, alerted: str) -> None:
        """Note that every receiver took the message ``alerted`` names (nothing if the shop moved on since)."""
        self.conn.execute(update(PF).where(PF.c.shop == shop, PF.c.alerted == alerted).values(told="*"))

    def mark_told(self, shop: str, alerted: str, receiver: str) -> None:
        """Note that ``receiver`` took the message ``alerted`` names (nothing if the shop moved on since)."""
        row = self.conn.execute(select(PF.c.told).where(PF.c.shop == shop, PF.c.alerted == alerted)).first()
        if row is None or row.told == "*":
            return
        names = sorted({n for n in row.told.split(",") if n} | {receiver})
        stmt = update(PF).where(PF.c.shop == shop, PF.c.alerted == alerted, PF.c.told == row.told)
        self.conn.execute(stmt.values(told=",".join(names)))


@contextmanager
def open_forecast(store: Store) -> Iterator[ForecastStore]:
    """Open a transaction for forecast queries; it commits when the block ends, rolls back on error."""
    with store.engine.begin() as conn:
        yield ForecastStore(conn, store.dialect)
