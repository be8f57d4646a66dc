"""KPI queries: live figures over a span of time, the ``kpi_daily`` rollup, and the purge.

Every figure is counted on the day its event happened: a shipment on the day it shipped, a
pickup on the day its pickup deadline fell (the day it became due), a delivery on the day
it was signed for, an anomaly on the day it opened, an intercept on the day it was
requested. So the same question — "what happened between ``start`` and ``end``?" — gives
both the live figures of the reports and the rows of ``kpi_daily``, and a past day's row
keeps answering it after the parcels behind it are purged.

Like :class:`~monitor.store.store.UnitOfWork`, :class:`KpiStore` is one transaction's worth
of queries over a :class:`~sqlalchemy.Connection`; it is the only place these tables meet SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, case, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.store.durations import Durations
from monitor.store.models import KpiDaily, ParcelDay
from monitor.store.store import (
    ACT,
    AN,
    CLOSED_TICKET_STATES,
    FINISHED,
    TE,
    WATCHED_INTERCEPTS,
    WORKING_TICKET_STATES,
    A,
    E,
    I,
    N,
    P,
    R,
    Store,
    T,
    _chunks,
)

KD = KpiDaily.__table__
#: The shipped and pickup days, read by range off their own covering indexes (migration 0019).
PD = ParcelDay.__table__
ANOMALY_STATES = ("open", "acknowledged", "resolved")
#: Intercepts that went to the carrier (held and skipped ones never did).
CARRIER_INTERCEPT_STATES = ("requested", "pending", "accepted", "rejected", "succeeded", "failed")
FAILED_INTERCEPT_STATES = ("rejected", "failed")
#: Intercepts still waiting for the carrier's answer or the parcel's return.
OPEN_INTERCEPT_STATES = WATCHED_INTERCEPTS
FINISHED_STATUSES = FINISHED
COUNT_COLUMNS = (
    "shipped", "pickup_due", "picked_up_in_time", "delivered", "intercepts_requested", "intercepts_succeeded",
    "intercepts_failed", "intercepts_held", "intercepts_skipped",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Keys:
    shop: str
    carrier: str


@dataclass
class KpiSlice:
    """The figures of one shop and carrier over some span of time (one day, or several added up)."""

    shop: str
    carrier: str
    shipped: int = 0
    pickup_due: int = 0
    picked_up_in_time: int = 0
    delivered: int = 0
    #: rule → {"opened", "open", "acknowledged", "resolved", "compensation_fen"}
    anomalies: dict[str, dict[str, int]] = field(default_factory=dict)
    intercepts_requested: int = 0
    intercepts_succeeded: int = 0
    intercepts_failed: int = 0
    intercepts_held: int = 0
    intercepts_skipped: int = 0
    #: Seconds from each refund request to the carrier's answer (exact while few, else a histogram).
    intercept_latencies: Durations = field(default_factory=Durations)
    #: rule → {"opened", "closed", "went_overdue", "close_seconds": Durations, "outcomes": {outcome: n}} (tickets).
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, other: KpiSlice) -> None:
        """Add ``other``'s figures to these."""
        for name in COUNT_COLUMNS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for rule, figures in other.anomalies.items():
            mine = self.anomalies.setdefault(rule, _no_anomalies())
            for key, value in figures.items():
                mine[key] = mine.get(key, 0) + value
        self.intercept_latencies.merge(other.intercept_latencies)
        add_ticket_figures(self.tickets, other.tickets)

    def is_empty(self) -> bool:
        """Tell whether nothing at all was counted."""
        return not any(getattr(self, name) for name in COUNT_COLUMNS) and not self.anomalies and not self.tickets


def no_ticket_figures() -> dict[str, Any]:
    """Return the ticket figures of a rule before anything was counted."""
    return {"opened": 0, "closed": 0, "went_overdue": 0, "close_seconds": Durations(), "outcomes": {}}


def add_ticket_figures(into: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]]) -> None:
    """Add ``other``'s ticket figures (by rule) to ``into``."""
    for rule, figures in other.items():
        mine = into.get(rule)
        if mine is None:  # not setdefault: a cold KPI view adds thousands of these
            mine = into[rule] = no_ticket_figures()
        for key in ("opened", "closed", "went_overdue"):
            mine[key] += figures.get(key, 0)
        if (seconds := figures.get("close_seconds")) is not None:
            mine["close_seconds"].merge(seconds)
        for outcome, n in figures.get("outcomes", {}).items():
            mine["outcomes"][outcome] = mine["outcomes"].get(outcome, 0) + n


def tickets_to_json(tickets: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return ticket figures (by rule) as ``kpi_daily.ticket_figures`` stores them: ``close_seconds`` as JSON."""
    return {rule: {**f, "close_seconds": f["close_seconds"].to_json()} for rule, f in tickets.items()}


def tickets_from_json(stored: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Read ``kpi_daily.ticket_figures``: each rule's ``close_seconds`` (a list, or a histogram) as Durations."""
    return {rule: {**f, "close_seconds": Durations.from_json(f.get("close_seconds", []))} for rule, f in stored.items()}


def _no_anomalies() -> dict[str, int]:
    return {"opened": 0, "open": 0, "acknowledged": 0, "resolved": 0, "compensation_fen": 0}


@contextmanager
def open_kpi(store: Store) -> Iterator[KpiStore]:
    """Open a transaction for KPI queries; it commits when the block ends, rolls back on error."""
    with store.engine.begin() as conn:
        yield KpiStore(conn, store.dialect)


class KpiStore:
    """One transaction's worth of KPI queries."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    # -- live figures ---------------------------------------------------------------------

    def live(
        self, start: datetime, end: datetime, as_of: datetime, shop: str | None = None, carrier: str | None = None
    ) -> list[KpiSlice]:
        """Return the figures of events in [start, end) that happened by ``as_of``, per shop and carrier.

        A pickup falls due at its deadline: it counts once the deadline is in the span and
        has passed, and counts as in time when the first scan came at or before the deadline
        (the shipment's own deadline, presale or custom, else shipped_at + 24 h). Held parcels
        (refund-only before pickup) were never to be picked up and do not count.
        """
        slices: dict[tuple[str, str], KpiSlice] = {}

        def slice_of(row: Any) -> KpiSlice:
            key = (row.shop, row.carrier)
            if key not in slices:
                slices[key] = KpiSlice(row.shop, row.carrier)
            return slices[key]

        def span(column: Any) -> Any:
            return and_(column >= start, column < end, column <= as_of)

        def only(stmt: Any, table: Any = P) -> Any:
            if shop is not None:
                stmt = stmt.where(table.c.shop == shop)
            if carrier is not None:
                stmt = stmt.where(table.c.carrier == carrier)
            return stmt

        keys = (P.c.shop, P.c.carrier)
        day_keys = (PD.c.shop, PD.c.carrier)
        stmt = select(*day_keys, func.count().label("n")).where(span(PD.c.shipped_at)).group_by(*day_keys)
        for row in self.conn.execute(only(stmt, PD)):
            slice_of(row).shipped = row.n

        in_time = case((and_(PD.c.picked_up_at.is_not(None), PD.c.picked_up_at <= PD.c.pickup_deadline), 1), else_=0)
        stmt = (
            select(*day_keys, func.count().label("n"), func.coalesce(func.sum(in_time), 0).label("in_time"))
            .where(span(PD.c.pickup_deadline), PD.c.held.is_(False))
            .group_by(*day_keys)
        )
        for row in self.conn.execute(only(stmt, PD)):
            s = slice_of(row)
            s.pickup_due, s.picked_up_in_time = row.n, int(row.in_time)

        stmt = select(*keys, func.count().label("n")).where(span(P.c.delivered_at)).group_by(*keys)
        for row in self.conn.execute(only(stmt)):
            slice_of(row).delivered = row.n

        stmt = (
            select(
                *keys,
                AN.c.rule,
                AN.c.state,
                func.count().label("n"),
                func.coalesce(func.sum(AN.c.compensation_fen), 0).label("fen"),
            )
            .select_from(AN.join(P, P.c.id == AN.c.parcel_id))
            .where(span(AN.c.opened_at))
            .group_by(*keys, AN.c.rule, AN.c.state)
        )
        for row in self.conn.execute(only(stmt)):
            figures = slice_of(row).anomalies.setdefault(row.rule, _no_anomalies())
            figures["opened"] += row.n
            figures[row.state] = figures.get(row.state, 0) + row.n
            figures["compensation_fen"] += int(row.fen)

        stmt = (
            select(*keys, I.c.state, func.count().label("n"))
            .select_from(I.join(P, P.c.id == I.c.parcel_id))
            .where(span(I.c.requested_at))
            .group_by(*keys, I.c.state)
        )
        for row in self.conn.execute(only(stmt)):
            s = slice_of(row)
            if row.state in CARRIER_INTERCEPT_STATES:
                s.intercepts_requested += row.n
            s.intercepts_succeeded += row.n if row.state == "succeeded" else 0
            s.intercepts_failed += row.n if row.state in FAILED_INTERCEPT_STATES else 0
            s.intercepts_held += row.n if row.state == "held" else 0
            s.intercepts_skipped += row.n if row.state == "skipped" else 0

        stmt = (
            select(*keys, I.c.decided_at, R.c.received_at)
            .select_from(I.join(P, P.c.id == I.c.parcel_id).join(R, R.c.refund_id == I.c.refund_id))
            .where(span(I.c.requested_at), I.c.decided_at.is_not(None), I.c.state.in_(CARRIER_INTERCEPT_STATES))
            .order_by(I.c.id)
        )
        for row in self.conn.execute(only(stmt)):
            seconds = (row.decided_at - row.received_at).total_seconds()
            slice_of(row).intercept_latencies.add(round(seconds, 3))

        for (shop_, carrier_), figures in self.ticket_figures(start, end, as_of, shop, carrier).items():
            slice_of(_Keys(shop_, carrier_)).tickets = figures
        return [s for s in slices.values() if not s.is_empty()]

    def ticket_figures(
        self, start: datetime, end: datetime, as_of: datetime, shop: str | None = None, carrier: str | None = None
    ) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        """Return the tickets' figures of [start, end) as of ``as_of``, per (shop, carrier) and rule.

        Each counts on its own day: opened on the day it opened, closed (with its time to close
        and outcome; ``cancelled`` for a cancelled one) on the day it closed, gone overdue on the
        day its deadline passed with the ticket still being worked.
        """
        found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

        def figures(row: Any) -> dict[str, Any]:
            return found.setdefault((row.shop, row.carrier), {}).setdefault(row.rule, no_ticket_figures())

        def only(stmt: Any) -> Any:
            if shop is not None:
                stmt = stmt.where(T.c.shop == shop)
            if carrier is not None:
                stmt = stmt.where(T.c.carrier == carrier)
            return stmt

        def span(column: Any) -> Any:
            return and_(column >= start, column < end, column <= as_of)

        keys = (T.c.shop, T.c.carrier, T.c.rule)
        stmt = select(*keys, func.count().label("n")).where(span(T.c.created_at)).group_by(*keys)
        for row in self.conn.execute(only(stmt)):
            figures(row)["opened"] += row.n
        closed = T.c.state.in_(CLOSED_TICKET_STATES)
        stmt = select(*keys, T.c.state, T.c.outcome, T.c.created_at, T.c.closed_at).where(span(T.c.closed_at), closed)
        for row in self.conn.execute(only(stmt.order_by(T.c.id))):
            f = figures(row)
            f["closed"] += 1
            f["close_seconds"].add(round((row.closed_at - row.created_at).total_seconds(), 3))
            outcome = row.outcome or row.state
            f["outcomes"][outcome] = f["outcomes"].get(outcome, 0) + 1
        late = or_(T.c.closed_at.is_(None), T.c.closed_at > T.c.due_at)
        stmt = select(*keys, func.count().label("n")).where(span(T.c.due_at), late).group_by(*keys)
        for row in self.conn.execute(only(stmt)):
            figures(row)["went_overdue"] += row.n
        return found

    def overdue_tickets(self, now: datetime, shop: str | None = None, carrier: str | None = None) -> dict[str, int]:
        """Return how many tickets being worked are past their deadline at ``now``, by rule."""
        stmt = select(T.c.rule, func.count().label("n")).where(T.c.state.in_(WORKING_TICKET_STATES), T.c.due_at <= now)
        if shop is not None:
            stmt = stmt.where(T.c.shop == shop)
        if carrier is not None:
            stmt = stmt.where(T.c.carrier == carrier)
        return {r.rule: r.n for r in self.conn.execute(stmt.group_by(T.c.rule))}

    # -- kpi_daily ------------------------------------------------------------------------

    def purged_days(self, first: date, last: date) -> set[date]:
        """Return the days in [first, last] some of whose parcels were purged: only kpi_daily knows them whole."""
        stmt = select(KD.c.day).where(KD.c.day >= first, KD.c.day <= last, KD.c.purged_at.is_not(None)).distinct()
        return set(self.conn.execute(stmt).scalars())

    def daily(
        self, first: date, last: date, shop: str | None = None, carrier: str | None = None
    ) -> list[tuple[date, KpiSlice]]:
        """Return the rolled-up rows of days in [first, last]."""
        stmt = select(KD).where(KD.c.day >= first, KD.c.day <= last).order_by(KD.c.day, KD.c.shop, KD.c.carrier)
        if shop is not None:
            stmt = stmt.where(KD.c.shop == shop)
        if carrier is not None:
            stmt = stmt.where(KD.c.carrier == carrier)
        found = []
        for row in self.conn.execute(stmt):
            s = KpiSlice(row.shop, row.carrier, **{name: getattr(row, name) for name in COUNT_COLUMNS})
            s.anomalies = json.loads(row.anomalies_opened)
            s.intercept_latencies = Durations.from_json(json.loads(row.intercept_latencies))
            s.tickets = tickets_from_json(json.loads(row.ticket_figures or "{}"))
            found.append((row.day, s))
        return found

    def daily_version(self, first: date) -> tuple[Any, ...]:
        """Return what changes when the rollup rewrites a day from ``first`` on, without parsing its JSON.

        The newest ``rolled_up_at``, the row count and a sum over the counts and the JSON
        columns' lengths: a rollup run at the same instant that changed a figure changes it too.
        """
        lengths = sum(func.length(KD.c[name]) for name in ("anomalies_opened", "intercept_latencies", "ticket_figures"))
        counts = sum(KD.c[name] for name in COUNT_COLUMNS)
        stmt = select(func.max(KD.c.rolled_up_at), func.count(), func.sum(counts), func.sum(lengths))
        return tuple(self.conn.execute(stmt.where(KD.c.day >= first)).one())

    def daily_keys(self, first: date, last: date) -> set[tuple[date, str, str]]:
        """Return (day, shop, carrier) of every rolled-up row of days in [first, last]."""
        stmt = select(KD.c.day, KD.c.shop, KD.c.carrier).where(KD.c.day >= first, KD.c.day <= last)
        return {(r.day, r.shop, r.carrier) for r in self.conn.execute(stmt)}

    def replace_day(self, day: date, slices: Sequence[KpiSlice], at: datetime) -> tuple[int, int]:
        """Upsert one day's rows (one per shop and carrier); return (rows written, frozen rows kept).

        A row a purge relied on (``purged_at`` set) is never rewritten: the parcels it counted
        are gone, so recounting would lose them. Other rows of the day that no longer count
        anything are deleted, so re-running a day gives exactly what one run gives.
        """
        existing = self.conn.execute(select(KD.c.shop, KD.c.carrier, KD.c.purged_at).where(KD.c.day == day)).all()
        frozen = {(r.shop, r.carrier) for r in existing if r.purged_at is not None}
        fresh = {(s.shop, s.carrier) for s in slices}
        for r in existing:
            if r.purged_at is None and (r.shop, r.carrier) not in fresh:
                self.conn.execute(delete(KD).where(KD.c.day == day, KD.c.shop == r.shop, KD.c.carrier == r.carrier))
        rows = [_row(day, s, at) for s in slices if (s.shop, s.carrier) not in frozen]
        if rows:
            insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(KD)
            changing = [*COUNT_COLUMNS, "anomalies_opened", "intercept_latencies", "ticket_figures", "rolled_up_at"]
            stmt = insert.on_conflict_do_update(
                index_elements=["day", "shop", "carrier"],
                set_={name: insert.excluded[name] for name in changing},
                where=KD.c.purged_at.is_(None),
            )
            self.conn.execute(stmt, rows)
        return len(rows), len(frozen)

    def freeze(self, keys: Iterable[tuple[date, str, str]], at: datetime) -> None:
        """Mark rows that a purge relied on, so no later rollup rewrites them."""
        for day, shop, carrier in sorted(set(keys)):
            self.conn.execute(
                update(KD)
                .where(KD.c.day == day, KD.c.shop == shop, KD.c.carrier == carrier, KD.c.purged_at.is_(None))
                .values(purged_at=at)
            )

    # -- purge ----------------------------------------------------------------------------

    def finished_parcels(self, cutoff: datetime, after_id: int, limit: int) -> list[Row[Any]]:
        """Return delivered or returned parcels unchanged since ``cutoff`` with nothing left to do.

        Nothing left to do: no open or acknowledged anomaly, no pending or running action, no
        pending notification, no intercept still waiting for the carrier. Keyset-paged by id.
        """
        active_anomaly = exists().where(AN.c.parcel_id == P.c.id, AN.c.state != "resolved")
        open_action = exists().where(A.c.parcel_id == P.c.id, A.c.state.in_(("pending", "running")))
        pending_notice = exists(
            select(N.c.id).join(AN, AN.c.id == N.c.anomaly_id).where(AN.c.parcel_id == P.c.id, N.c.state == "pending")
        )
        open_intercept = exists().where(I.c.parcel_id == P.c.id, I.c.state.in_(OPEN_INTERCEPT_STATES))
        stmt = (
            select(
                P.c.id,
                P.c.shop,
                P.c.carrier,
                P.c.order_id,
                P.c.shipped_at,
                P.c.pickup_deadline,
                P.c.held,
                P.c.delivered_at,
            )
            .where(
                P.c.status.in_(FINISHED_STATUSES),
                P.c.updated_at < cutoff,
                P.c.id > after_id,
                ~active_anomaly,
                ~open_action,
                ~pending_notice,
                ~open_intercept,
            )
            .order_by(P.c.id)
            .limit(limit)
        )
        return list(self.conn.execute(stmt))

    def counted_times(self, parcel_ids: Sequence[int]) -> dict[int, list[datetime]]:
        """Return when each parcel's anomalies opened and its intercepts were requested."""
        found: dict[int, list[datetime]] = {pid: [] for pid in parcel_ids}
        for chunk in _chunks(list(parcel_ids)):
            for row in self.conn.execute(select(AN.c.parcel_id, AN.c.opened_at).where(AN.c.parcel_id.in_(chunk))):
                found[row.parcel_id].append(row.opened_at)
            for row in self.conn.execute(select(I.c.parcel_id, I.c.requested_at).where(I.c.parcel_id.in_(chunk))):
                found[row.parcel_id].append(row.requested_at)
        return found

    def delete_parcels(self, parcel_ids: Sequence[int], order_ids: Iterable[str]) -> dict[str, int]:
        """Delete parcels with every row that refers to them; return how many rows of each kind.

        Refunds go too once no parcel of their order is left, since they name the order only.
        """
        counts = dict.fromkeys(
            ("parcels", "events", "anomalies", "notifications", "actions", "ticket_events", "tickets", "intercepts",
             "activity", "refunds"), 0,
        )  # fmt: skip
        for chunk in _chunks(list(parcel_ids)):
            anomaly_ids = select(AN.c.id).where(AN.c.parcel_id.in_(chunk))
            ticket_ids = select(T.c.id).where(T.c.parcel_id.in_(chunk))
            # a reshipment outlives the parcel it replaced: it keeps being watched, unlinked
            self.conn.execute(update(P).where(P.c.replaces_parcel_id.in_(chunk)).values(replaces_parcel_id=None))
            steps = (
                ("notifications", delete(N).where(N.c.anomaly_id.in_(anomaly_ids))),
                ("actions", delete(A).where(A.c.parcel_id.in_(chunk))),
                ("ticket_events", delete(TE).where(TE.c.ticket_id.in_(ticket_ids))),
                ("tickets", delete(T).where(T.c.parcel_id.in_(chunk))),
                ("anomalies", delete(AN).where(AN.c.parcel_id.in_(chunk))),
                ("intercepts", delete(I).where(I.c.parcel_id.in_(chunk))),
                ("events", delete(E).where(E.c.parcel_id.in_(chunk))),
                ("activity", delete(ACT).where(ACT.c.parcel_id.in_(chunk))),
                ("parcels", delete(P).where(P.c.id.in_(chunk))),
            )
            for name, stmt in steps:
                counts[name] += self.conn.execute(stmt).rowcount
        orphan = ~exists().where(P.c.order_id == R.c.order_id)
        for chunk in _chunks(sorted(set(order_ids))):
            counts["refunds"] += self.conn.execute(delete(R).where(R.c.order_id.in_(chunk), orphan)).rowcount
        return counts


def _row(day: date, s: KpiSlice, at: datetime) -> dict[str, Any]:
    return {
        "day": day,
        "shop": s.shop,
        "carrier": s.carrier,
        **{name: getattr(s, name) for name in COUNT_COLUMNS},
        "anomalies_opened": json.dumps(s.anomalies, sort_keys=True, ensure_ascii=False),
        "intercept_latencies": json.dumps(s.intercept_latencies.to_json()),
        "ticket_figures": json.dumps(tickets_to_json(s.tickets), sort_keys=True, ensure_ascii=False),
        "rolled_up_at": at,
        "purged_at": None,
    }
