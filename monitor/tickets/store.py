"""The SQL of the ``ticket``, ``ticket_event`` and ``ticket_rotation`` tables, on a unit of work's connection.

Like :mod:`monitor.people.store` it lives in its room and takes a transaction it does not own
(``TicketRows(uow)``), so a ticket change, its history row and the anomaly resolution or
outbox action that caused it commit together. The API's lists read through
:mod:`monitor.store.views`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, select, update

from monitor.store.models import Account, Ticket, TicketEvent, TicketRotation
from monitor.store.store import UnitOfWork, insert_ignoring, insert_of, set_values

T = Ticket.__table__
TE = TicketEvent.__table__
TR = TicketRotation.__table__
ACC = Account.__table__
CHUNK = 500
#: Prebuilt (as :mod:`monitor.store.store`'s hot statements are): opening a ticket built five a call.
_BY_KEY = select(T.c.id).where(T.c.idempotency_key == bindparam("key"))
_LATEST_FROM_RULE = (
    select(T)
    .where(T.c.parcel_id == bindparam("parcel_id"), T.c.rule == bindparam("rule"), T.c.anomaly_id.is_not(None))
    .order_by(T.c.id.desc())
    .limit(1)
    .with_for_update()
)
_OF_ANOMALIES = (
    select(T)
    .where(T.c.anomaly_id.in_(bindparam("ids", expanding=True)), T.c.state.in_(bindparam("states", expanding=True)))
    .order_by(T.c.id)
    .with_for_update()
)
_UPDATE = update(T).where(T.c.id == bindparam("ticket_id"))
_ADD_EVENTS = TE.insert().returning(TE.c.id, sort_by_parameter_order=True)


class TicketRows:
    """Queries about tickets and their history, inside one transaction."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.conn = uow.conn

    def _insert(self, table: Any) -> Any:
        return insert_of(self.uow.dialect, table)

    # -- tickets --------------------------------------------------------------------------

    def insert(self, row: dict[str, Any]) -> tuple[int, bool]:
        """Open a ticket unless its idempotency key exists; return (id, created)."""
        stmt = insert_ignoring(self.uow.dialect, T, ("idempotency_key",), returning_id=True)
        created = self.conn.execute(stmt, row).scalar()
        if created is not None:
            return created, True
        return self.conn.execute(_BY_KEY, {"key": row["idempotency_key"]}).scalar_one(), False

    def get(self, ticket_id: int, *, lock: bool = False) -> Row[Any] | None:
        """Return one ticket; ``lock`` holds its row (PostgreSQL) until the transaction ends."""
        stmt = select(T).where(T.c.id == ticket_id)
        return self.conn.execute(stmt.with_for_update() if lock else stmt).first()

    def many(self, ids: Sequence[int], *, lock: bool = False) -> dict[int, Row[Any]]:
        """Return tickets by id (locked on PostgreSQL, in id order so two bulk calls never deadlock)."""
        found: dict[int, Row[Any]] = {}
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), CHUNK):
            stmt = select(T).where(T.c.id.in_(wanted[start : start + CHUNK])).order_by(T.c.id)
            found.update((r.id, r) for r in self.conn.execute(stmt.with_for_update() if lock else stmt))
        return found

    def latest_from_rule(self, parcel_id: int, rule: str) -> Row[Any] | None:
        """Return the newest ticket an anomaly of ``rule`` opened for a parcel (the one a new firing reopens)."""
        return self.conn.execute(_LATEST_FROM_RULE, {"parcel_id": parcel_id, "rule": rule}).first()

    def of_anomalies(self, anomaly_ids: Iterable[int], states: Sequence[str]) -> list[Row[Any]]:
        """Return the tickets in ``states`` that belong to some anomalies."""
        found: list[Row[Any]] = []
        wanted = sorted(set(anomaly_ids))
        for start in range(0, len(wanted), CHUNK):
            params = {"ids": wanted[start : start + CHUNK], "states": list(states)}
            found.extend(self.conn.execute(_OF_ANOMALIES, params))
        return found

    def update(self, ticket_id: int, **values: Any) -> None:
        """Change one ticket's columns."""
        self.conn.execute(*set_values(_UPDATE, values, ticket_id=ticket_id))

    def load(self, account_ids: Sequence[int], states: Sequence[str]) -> dict[int, int]:
        """Count each account's tickets in ``states`` (least-loaded assignment)."""
        if not account_ids:
            return {}
        stmt = (
            select(T.c.assignee_id, func.count())
            .where(T.c.assignee_id.in_(list(account_ids)), T.c.state.in_(states))
            .group_by(T.c.assignee_id)
        )
        return {account_id: n for account_id, n in self.conn.execute(stmt)}

    # -- history --------------------------------------------------------------------------

    def add_events(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Append to tickets' history; return the new ids in order (never reused: a sink's event ids)."""
        if not rows:
            return []
        full = [{"from_value": None, "to_value": None, "body": ""} | r for r in rows]
        return list(self.conn.execute(_ADD_EVENTS, full).scalars())

    def events_of(self, ticket_id: int) -> list[Row[Any]]:
        """Return one ticket's history, oldest first."""
        return list(self.conn.execute(select(TE).where(TE.c.ticket_id == ticket_id).order_by(TE.c.id)))

    # -- round robin ----------------------------------------------------------------------

    def next_turn(self, team: str, at: datetime) -> int:
        """Take the team's next round-robin turn (0, 1, 2, …); the row lock serializes replicas."""
        self.conn.execute(
            self._insert(TR).values(team=team, turn=0, updated_at=at).on_conflict_do_nothing(index_elements=["team"])
        )
        stmt = update(TR).where(TR.c.team == team).values(turn=TR.c.turn + 1, updated_at=at).returning(TR.c.turn)
        return int(self.conn.execute(stmt).scalar_one()) - 1

    # -- accounts -------------------------------------------------------------------------

    def accounts_by_login(self, logins: Iterable[str]) -> dict[str, Row[Any]]:
        """Return (id, login, role, disabled, mobile, display_name) of accounts by login."""
        wanted = sorted(set(logins))
        if not wanted:
            return {}
        cols = (ACC.c.id, ACC.c.login, ACC.c.role, ACC.c.disabled, ACC.c.mobile, ACC.c.display_name)
        return {r.login: r for r in self.conn.execute(select(*cols).where(ACC.c.login.in_(wanted)))}

    def logins_of(self, account_ids: Iterable[int | None]) -> dict[int, str]:
        """Return the login of each account id."""
        wanted = sorted({i for i in account_ids if i is not None})
        if not wanted:
            return {}
        return {r.id: r.login for r in self.conn.execute(select(ACC.c.id, ACC.c.login).where(ACC.c.id.in_(wanted)))}

    def all_logins(self) -> set[str]:
        """Return every account's login (the start-up check of ``[tickets]``)."""
        return set(self.conn.execute(select(ACC.c.login)).scalars())
