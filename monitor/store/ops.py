"""Read-side queries of the console's 拦截 (intercepts) and 快递公司 (carriers) pages, and their API.

Both pages are read by ops staff all day, so each query is bounded by an index, never a scan
of the parcels: a page of intercepts is a range of ``ix_intercept_state_id`` (failed ones
first, then the others newest first, keyset-paged), the counts per state read that index
alone, and the parcels watched per carrier read the partial index ``ix_parcel_watched_carrier``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select

from monitor.store.models import WATCHED_PARCEL
from monitor.store.store import CALLED_INTERCEPT_STATES, CH, CU, UC, A, I, P, R

#: Every state an intercept row can be in, in the order of its life (``monitor.actions.intercepts``).
INTERCEPT_STATES = ("held", "requested", "pending", "accepted", "rejected", "succeeded", "failed", "joined",
                    "skipped")  # fmt: skip
FAILED = "failed"
#: A cursor of the intercept list: ``f`` (still in the failed ones) or ``o`` (the others), then the last id.
CURSOR = re.compile(r"^[fo][0-9]{1,10}$")
#: Most unknown codes listed (the most recently seen first).
UNKNOWN_CODES_SHOWN = 200


class BadCursor(ValueError):
    """A cursor this list did not hand out."""


@dataclass(frozen=True, slots=True)
class InterceptRow:
    """One intercept as the 拦截 page shows it: its row, its parcel's keys, and when the carrier answered."""

    row: Row[Any]
    #: When the refund reached us (None for an intercept asked by hand, which has no refund).
    refund_at: datetime | None
    #: When the carrier answered our call (None: not called, or no answer yet).
    answered_at: datetime | None
    #: Tries of the carrier call so far, and the last error of a try (a call still being retried).
    attempts: int
    last_error: str

    @property
    def seconds_to_call(self) -> float | None:
        """Seconds from the refund (an intercept by hand has none: from its request) to the carrier's answer."""
        start = self.refund_at or self.row.requested_at
        if self.answered_at is None:
            return None
        return max((self.answered_at - start).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class InterceptPage:
    """A page of intercepts and the cursor of the next page (None on the last)."""

    rows: list[InterceptRow]
    next_cursor: str | None


def intercept_page(
    conn: Connection,
    *,
    state: str | None = None,
    carrier: str | None = None,
    shop: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> InterceptPage:
    """Return intercepts, failed ones first, then newest first; keyset-paged by ``cursor``.

    Without a state filter the list is two index ranges read in turn: ``state = 'failed'``
    newest first, then every other state newest first. The cursor says which range the last
    row came from and its id, so page 50 costs what page 1 costs.
    """
    phase, before = _cursor(cursor)
    base = (
        select(I, P.c.tracking_no, P.c.order_id, R.c.received_at.label("refund_at"))
        .join(P, P.c.id == I.c.parcel_id)
        .outerjoin(R, R.c.refund_id == I.c.refund_id)
    )
    for column, value in ((I.c.carrier, carrier), (I.c.shop, shop)):  # on the row: ix_intercept_*_state
        if value is not None:
            base = base.where(column == value)
    if state is not None:
        rows = _newest(conn, base.where(I.c.state == state), before, limit + 1)
    else:
        rows = []
        if phase == "f":
            rows = _newest(conn, base.where(I.c.state == FAILED), before, limit + 1)
            before = None
        if len(rows) <= limit:
            rows += _newest(conn, base.where(I.c.state != FAILED), before, limit + 1 - len(rows))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = f"{'f' if state is None and last.state == FAILED else 'o'}{last.id}"
    return InterceptPage(_with_calls(conn, rows), next_cursor)


def _cursor(cursor: str | None) -> tuple[str, int | None]:
    if not cursor:
        return "f", None
    if not CURSOR.match(cursor) or int(cursor[1:]) > 2**31 - 1:
        raise BadCursor(f"cursor: {cursor!r} is not a cursor this list handed out")
    return cursor[0], int(cursor[1:])


def _newest(conn: Connection, stmt: Select[Any], before: int | None, n: int) -> list[Row[Any]]:
    if before is not None:
        stmt = stmt.where(I.c.id < before)
    return list(conn.execute(stmt.order_by(I.c.id.desc()).limit(n)))


def _with_calls(conn: Connection, rows: list[Row[Any]]) -> list[InterceptRow]:
    """Join the page's carrier calls (outbox rows keyed by parcel and attempt) in one indexed query."""
    keys = {r.id: f"intercept:parcel:{r.parcel_id}:{r.attempt}" for r in rows if r.state in CALLED_INTERCEPT_STATES}
    calls: dict[str, Row[Any]] = {}
    if keys:
        stmt = select(A.c.idempotency_key, A.c.state, A.c.done_at, A.c.attempts, A.c.last_error)
        calls = {a.idempotency_key: a for a in conn.execute(stmt.where(A.c.idempotency_key.in_(keys.values())))}
    out = []
    for r in rows:
        call = calls.get(keys.get(r.id, ""))
        out.append(InterceptRow(r, r.refund_at, _answered_at(r, call), call.attempts if call else 0,
                                call.last_error if call else ""))  # fmt: skip
    return out


def _answered_at(row: Row[Any], call: Row[Any] | None) -> datetime | None:
    """When the carrier answered: the call's end, unless the outbox closed it uncalled (the parcel ended first)."""
    if call is not None and call.state == "done" and call.done_at is not None:
        called = row.decided_at is not None or row.finished_at is None or call.done_at <= row.finished_at
        if called:
            return call.done_at  # type: ignore[no-any-return]
    return row.decided_at  # type: ignore[no-any-return]


def intercept_counts(conn: Connection, *, carrier: str | None = None, shop: str | None = None) -> dict[str, int]:
    """Count intercepts per state: an index-only read (``ix_intercept_state_id``, or by shop / carrier
    ``ix_intercept_shop_state`` / ``ix_intercept_carrier_state``: the row keeps its parcel's, migration 0016)."""
    stmt = select(I.c.state, func.count()).select_from(I)
    for column, value in ((I.c.carrier, carrier), (I.c.shop, shop)):
        if value is not None:
            stmt = stmt.where(column == value)
    found = {state: n for state, n in conn.execute(stmt.group_by(I.c.state))}
    return {s: found.get(s, 0) for s in INTERCEPT_STATES} | found


# -- carriers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CarrierStanding:
    """One carrier as the 快递公司 page shows it."""

    code: str
    configured: bool
    state: str  # up | failing | down; unconfigured: parcels of a carrier no adapter is loaded for, never polled
    failing_since: datetime | None
    last_error: str
    last_success_at: datetime | None
    used_today: int
    watched: int


def watched_counts(conn: Connection) -> dict[str, int]:
    """Count the parcels not yet delivered or returned, per carrier, over the partial index alone.

    Its cost grows with the parcels watched (~0.3 s for 1,000,000 on SQLite), so callers keep
    the answer for a minute (:func:`monitor.api.carriers.overview`).
    """
    stmt = select(P.c.carrier, func.count()).where(WATCHED_PARCEL).group_by(P.c.carrier)
    return {carrier: n for carrier, n in conn.execute(stmt)}


def carrier_standings(
    conn: Connection, configured: list[str], day: str, watched: dict[str, int] | None = None
) -> list[CarrierStanding]:
    """Return every configured carrier (and any other the store knows of), by code.

    ``day`` is the local quota day (``monitor.polling.pacing.quota_day``). Two small reads,
    the health rows and the day's usage rows, and :func:`watched_counts` unless given.
    """
    health = {r.carrier: r for r in conn.execute(select(CH))}
    used = {r.carrier: r.requests for r in conn.execute(select(CU.c.carrier, CU.c.requests).where(CU.c.day == day))}
    if watched is None:
        watched = watched_counts(conn)
    out = []
    for code in sorted(set(configured) | set(health) | set(watched)):
        h = health.get(code)
        out.append(
            CarrierStanding(
                code=code,
                configured=code in configured,
                state=h.state if h else ("up" if code in configured else "unconfigured"),
                failing_since=h.failing_since if h else None,
                last_error=h.last_error if h else "",
                last_success_at=h.last_success_at if h else None,
                used_today=used.get(code, 0),
                watched=watched.get(code, 0),
            )
        )
    return out


def unknown_codes(conn: Connection, limit: int = UNKNOWN_CODES_SHOWN) -> list[Row[Any]]:
    """Return the carrier codes no mapping knew, most recently seen first."""
    stmt = select(UC).order_by(UC.c.last_seen.desc(), UC.c.carrier, UC.c.code).limit(limit)
    return list(conn.execute(stmt))
