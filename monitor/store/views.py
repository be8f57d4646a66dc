"""Read-side queries of the HTTP API and the metrics: lists, one parcel in full, and counts.

The write side (:mod:`monitor.store.store`) owns transactions that change things; this module
only reads, so the API can page through thousands of parcels without touching the hot paths.
Lists are newest first and paged with a keyset (``id < cursor``) rather than OFFSET, so page
500 costs what page 1 costs and a row inserted meanwhile never shifts a page. Times come back
aware UTC through :class:`~monitor.store.types.UTCDateTime`.

Nothing here selects a column we do not have: the store keeps no buyer names, phone numbers
or addresses, so no query can return one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, func, or_, select, text

from monitor.store.models import Account, TicketEvent
from monitor.store.store import ACT, AN, A, E, I, N, P, R, Store, T

#: What a list item says about its parcel (joined in, so a client needs no second request).
PARCEL_KEYS = (P.c.carrier, P.c.tracking_no, P.c.order_id, P.c.shop)
#: States that count as "active" for anomalies: not yet resolved.
ACTIVE_STATES = ("open", "acknowledged")
ACC = Account.__table__
TE = TicketEvent.__table__
#: A ticket as lists show it: its columns, its parcel's keys, its assignee's login.
TICKET_COLUMNS = (*T.c, *PARCEL_KEYS[1:3], ACC.c.login.label("assignee_login"))
#: Ticket states somebody still has to work (``monitor.tickets.model.ACTIVE_STATES``).
ACTIVE_TICKETS = ("open", "processing", "reopened")


@dataclass(frozen=True, slots=True)
class TicketPage:
    """One page of the ticket queue, and the (stake_fen, id) the next page starts after (None on the last)."""

    rows: list[Row[Any]]
    next_key: tuple[int | None, int] | None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the rows, and the cursor of the next page (None on the last)."""

    rows: list[Row[Any]]
    next_cursor: int | None


def _page(conn: Connection, stmt: Select[Any], id_column: Any, limit: int, before: int | None) -> Page:
    """Run ``stmt`` newest first from ``before`` on, fetching one row more to know if more follow."""
    if before is not None:
        stmt = stmt.where(id_column < before)
    rows = list(conn.execute(stmt.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more and rows else None)


@contextmanager
def read(store: Store) -> Iterator[Views]:
    """Open a read-only connection on the store; nothing is committed when the block ends."""
    with store.engine.connect() as conn:
        yield Views(conn)


class Views:
    """The API's and the metrics' read queries, on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def ping(self) -> None:
        """Run ``SELECT 1``: raises if the database does not answer."""
        self.conn.execute(text("SELECT 1")).scalar_one()

    # -- parcels --------------------------------------------------------------------------

    def parcels(
        self,
        *,
        carrier: str | None = None,
        shop: str | None = None,
        status: str | None = None,
        order_id: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page:
        """Return parcels, newest first, filtered on any of carrier, shop, status and order."""
        stmt = select(P)
        for column, value in ((P.c.carrier, carrier), (P.c.shop, shop), (P.c.status, status), (P.c.order_id, order_id)):
            if value is not None:
                stmt = stmt.where(column == value)
        return _page(self.conn, stmt, P.c.id, limit, before)

    def parcel(self, carrier: str, tracking_no: str) -> Row[Any] | None:
        """Return one parcel by carrier and tracking number."""
        return self.conn.execute(select(P).where(P.c.carrier == carrier, P.c.tracking_no == tracking_no)).first()

    def replacement_links(self, parcel: Row[Any]) -> tuple[Row[Any] | None, list[Row[Any]]]:
        """Return the parcel ``parcel`` replaces (a reshipment), and the parcels sent to replace it."""
        keys = (P.c.id, P.c.carrier, P.c.tracking_no, P.c.status)
        replaces = None
        if parcel.replaces_parcel_id is not None:
            replaces = self.conn.execute(select(*keys).where(P.c.id == parcel.replaces_parcel_id)).first()
        by = self.conn.execute(select(*keys).where(P.c.replaces_parcel_id == parcel.id).order_by(P.c.id))
        return replaces, list(by)

    def events_of(self, parcel_id: int) -> list[Row[Any]]:
        """Return a parcel's carrier events, oldest first, with the carrier's own code and text."""
        return list(self.conn.execute(select(E).where(E.c.parcel_id == parcel_id).order_by(E.c.time, E.c.id)))

    def anomalies_of(self, parcel_id: int) -> list[Row[Any]]:
        """Return a parcel's anomalies, oldest first, with its keys like the anomaly list has them."""
        stmt = select(AN, *PARCEL_KEYS).join(P, P.c.id == AN.c.parcel_id).where(AN.c.parcel_id == parcel_id)
        return list(self.conn.execute(stmt.order_by(AN.c.id)))

    def tickets_of(self, parcel_id: int) -> list[Row[Any]]:
        """Return a parcel's tickets, oldest first, with their assignee's login."""
        stmt = (
            select(*TICKET_COLUMNS)
            .join(P, P.c.id == T.c.parcel_id)
            .outerjoin(ACC, ACC.c.id == T.c.assignee_id)
            .where(T.c.parcel_id == parcel_id)
        )
        return list(self.conn.execute(stmt.order_by(T.c.id)))

    def intercepts_of(self, parcel_id: int) -> list[Row[Any]]:
        """Return a parcel's intercepts, oldest first."""
        stmt = select(I, P.c.tracking_no, P.c.order_id).join(P, P.c.id == I.c.parcel_id)  # shop, carrier: I's own
        stmt = stmt.where(I.c.parcel_id == parcel_id)
        return list(self.conn.execute(stmt.order_by(I.c.id)))

    def actions_of(self, parcel_id: int) -> list[Row[Any]]:
        """Return a parcel's outbox actions (tickets, alerts, intercept calls), oldest first."""
        return list(self.conn.execute(select(A).where(A.c.parcel_id == parcel_id).order_by(A.c.id)))

    def activity_of(self, parcel_id: int) -> list[dict[str, Any]]:
        """Return what the monitor did about a parcel, oldest first, with ``data`` decoded."""
        rows = self.conn.execute(select(ACT).where(ACT.c.parcel_id == parcel_id).order_by(ACT.c.id))
        return [{"id": r.id, "at": r.at, "event": r.event, "data": json.loads(r.data or "{}")} for r in rows]

    # -- anomalies, tickets, intercepts ---------------------------------------------------

    def anomalies(
        self,
        *,
        state: str | None = None,
        rule: str | None = None,
        carrier: str | None = None,
        shop: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page:
        """Return anomalies with their parcel's keys, newest first; ``state="active"`` is open or acknowledged."""
        stmt = select(AN, *PARCEL_KEYS).join(P, P.c.id == AN.c.parcel_id)
        if state == "active":
            stmt = stmt.where(AN.c.state.in_(ACTIVE_STATES))
        elif state is not None:
            stmt = stmt.where(AN.c.state == state)
        for column, value in ((AN.c.rule, rule), (P.c.carrier, carrier), (P.c.shop, shop)):
            if value is not None:
                stmt = stmt.where(column == value)
        return _page(self.conn, stmt, AN.c.id, limit, before)

    def anomaly(self, anomaly_id: int) -> Row[Any] | None:
        """Return one anomaly with its parcel's keys."""
        stmt = select(AN, *PARCEL_KEYS).join(P, P.c.id == AN.c.parcel_id).where(AN.c.id == anomaly_id)
        return self.conn.execute(stmt).first()

    def tickets(
        self,
        *,
        state: str | None = None,
        assignee: str | None = None,
        team: str | None = None,
        rule: str | None = None,
        shop: str | None = None,
        carrier: str | None = None,
        overdue_at: datetime | None = None,
        severity: str | None = None,
        limit: int = 100,
        after: tuple[int | None, int] | None = None,
    ) -> TicketPage:
        """Return the ticket queue: most money at stake first (no stake last), then oldest first.

        ``state="active"`` is open, processing or reopened; ``assignee`` is a login, or ``""`` for the
        unassigned queue; ``overdue_at`` keeps active tickets whose ``due_at`` passed by then;
        ``severity`` keeps tickets whose anomaly has it (a refund's ticket has none).
        Paged with a keyset on (stake_fen, id): ``after`` is the last row's pair.

        Ids first: the page's ids come from the ticket table alone (its indexes, LIMIT), and only
        those ≤ ``limit`` rows are then joined to their parcel and assignee — joining before the
        LIMIT cost a parcel lookup per matching ticket, 6–10× slower at 1M parcels (benchmarks/b7).
        """
        stmt = select(T.c.id, T.c.stake_fen)
        if state == "active" or overdue_at is not None:
            stmt = stmt.where(T.c.state.in_(ACTIVE_TICKETS))
        if state not in (None, "active"):
            stmt = stmt.where(T.c.state == state)
        if overdue_at is not None:
            stmt = stmt.where(T.c.due_at < overdue_at)
        if assignee == "":
            stmt = stmt.where(T.c.assignee_id.is_(None))
        elif assignee is not None:
            stmt = stmt.where(T.c.assignee_id == select(ACC.c.id).where(ACC.c.login == assignee).scalar_subquery())
        for column, value in ((T.c.team, team), (T.c.rule, rule), (T.c.shop, shop), (T.c.carrier, carrier)):
            if value is not None:
                stmt = stmt.where(column == value)
        if severity is not None:  # a primary-key probe per candidate ticket, no scan of anomalies
            stmt = stmt.where(select(AN.c.id).where(AN.c.id == T.c.anomaly_id, AN.c.severity == severity).exists())
        if after is not None:
            stake, last_id = after
            if stake is None:
                stmt = stmt.where(T.c.stake_fen.is_(None), T.c.id > last_id)
            else:
                stmt = stmt.where(
                    or_(
                        T.c.stake_fen < stake,
                        and_(T.c.stake_fen == stake, T.c.id > last_id),
                        T.c.stake_fen.is_(None),
                    )
                )
        order = (T.c.stake_fen.desc().nulls_last(), T.c.id)
        keys = list(self.conn.execute(stmt.order_by(*order).limit(limit + 1)))
        more = len(keys) > limit
        keys = keys[:limit]
        rows = self.tickets_by_ids([k.id for k in keys]) if keys else []
        return TicketPage(rows, (keys[-1].stake_fen, keys[-1].id) if more and keys else None)

    def ticket(self, ticket_id: int) -> Row[Any] | None:
        """Return one ticket with its parcel's keys and its assignee's login."""
        stmt = (
            select(*TICKET_COLUMNS)
            .join(P, P.c.id == T.c.parcel_id)
            .outerjoin(ACC, ACC.c.id == T.c.assignee_id)
            .where(T.c.id == ticket_id)
        )
        return self.conn.execute(stmt).first()

    def tickets_by_ids(self, ids: list[int]) -> list[Row[Any]]:
        """Return tickets by id, in the order given (unknown ids left out)."""
        stmt = (
            select(*TICKET_COLUMNS)
            .join(P, P.c.id == T.c.parcel_id)
            .outerjoin(ACC, ACC.c.id == T.c.assignee_id)
            .where(T.c.id.in_(ids))
        )
        found = {r.id: r for r in self.conn.execute(stmt)}
        return [found[i] for i in ids if i in found]

    def ticket_events(self, ticket_id: int) -> list[Row[Any]]:
        """Return one ticket's history, oldest first."""
        return list(self.conn.execute(select(TE).where(TE.c.ticket_id == ticket_id).order_by(TE.c.id)))

    def ticket_events_of(self, parcel_id: int) -> list[Row[Any]]:
        """Return the history of a parcel's tickets, oldest first (the parcel timeline shows it)."""
        stmt = select(TE).join(T, T.c.id == TE.c.ticket_id).where(T.c.parcel_id == parcel_id)
        return list(self.conn.execute(stmt.order_by(TE.c.id)))

    def intercepts(
        self, *, state: str | None = None, carrier: str | None = None, limit: int = 100, before: int | None = None
    ) -> Page:
        """Return intercepts with their parcel's keys, newest first."""
        stmt = select(I, P.c.tracking_no, P.c.order_id).join(P, P.c.id == I.c.parcel_id)  # shop, carrier: I's own
        for column, value in ((I.c.state, state), (I.c.carrier, carrier)):
            if value is not None:
                stmt = stmt.where(column == value)
        return _page(self.conn, stmt, I.c.id, limit, before)

    def refund(self, refund_id: str) -> Row[Any] | None:
        """Return a refund request as first received, or None if it never came."""
        return self.conn.execute(select(R).where(R.c.refund_id == refund_id)).first()

    # -- counts for /metrics --------------------------------------------------------------
    #
    # Read at every scrape, so each is one GROUP BY over an indexed column: anomalies over
    # ix_anomaly_state_rule, actions over ix_action_due, notifications over ix_notification_due.

    def parcels_by_status(self) -> dict[str, int]:
        """Count parcels per status."""
        stmt = select(P.c.status, func.count()).group_by(P.c.status)
        return {status: n for status, n in self.conn.execute(stmt)}

    def active_anomalies_by_rule(self) -> dict[tuple[str, str], int]:
        """Count open and acknowledged anomalies per (rule, state)."""
        stmt = (
            select(AN.c.rule, AN.c.state, func.count())
            .where(AN.c.state.in_(ACTIVE_STATES))
            .group_by(AN.c.state, AN.c.rule)
        )
        return {(rule, state): n for rule, state, n in self.conn.execute(stmt)}

    def pending_actions_by_kind(self) -> dict[str, int]:
        """Count outbox actions not yet done (pending or running) per kind."""
        stmt = select(A.c.kind, func.count()).where(A.c.state.in_(("pending", "running"))).group_by(A.c.kind)
        return {kind: n for kind, n in self.conn.execute(stmt)}

    def pending_notifications_by_receiver(self) -> dict[str, int]:
        """Count notifications waiting to be sent per receiver."""
        stmt = select(N.c.receiver, func.count()).where(N.c.state == "pending").group_by(N.c.receiver)
        return {receiver: n for receiver, n in self.conn.execute(stmt)}
