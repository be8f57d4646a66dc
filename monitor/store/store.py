"""The store: every SQL statement of the service lives here.

Callers open a unit of work (one transaction) with :meth:`Store.begin` and call its
methods; rules and actions never write SQL. Bulk paths (event ingest, rule sweeps) use
executemany and ``ON CONFLICT DO NOTHING`` so duplicates cost nothing and retries are safe.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import json
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from monitor.people.audit import stamp
from monitor.store.models import (
    Account,
    Action,
    Activity,
    Anomaly,
    CarrierHealth,
    CarrierUsage,
    Intercept,
    Notification,
    Parcel,
    Refund,
    Ticket,
    TicketEvent,
    TrackingEventRow,
    UnknownCode,
)
from monitor.store.types import UTCDateTime

P = Parcel.__table__
E = TrackingEventRow.__table__
AN = Anomaly.__table__
T = Ticket.__table__
R = Refund.__table__
I = Intercept.__table__  # noqa: E741
A = Action.__table__
ACT = Activity.__table__
N = Notification.__table__
CU = CarrierUsage.__table__
CH = CarrierHealth.__table__
UC = UnknownCode.__table__
TK = Ticket.__table__  # the tickets section's name for T
TE = TicketEvent.__table__
ACC = Account.__table__
#: Ticket states someone still works on (their deadline runs); done and cancelled are closed.
WORKING_TICKET_STATES = ("open", "processing", "reopened")
CLOSED_TICKET_STATES = ("done", "cancelled")
#: What the poller needs to schedule a parcel's next poll.
POLL_COLUMNS = (
    "id", "carrier", "tracking_no", "status", "pickup_deadline", "picked_up_at", "promised_delivery",
    "intercept_state", "last_polled_at", "poll_step",
)  # fmt: skip
FINISHED = ("delivered", "returned")
WATCHED_INTERCEPTS = ("requested", "pending", "accepted")
#: An intercept of these states is the parcel's one open intercept; a later refund joins it.
OPEN_INTERCEPT_STATES = ("held", *WATCHED_INTERCEPTS)
#: States of an intercept whose call was made (or is being made) to the carrier.
CALLED_INTERCEPT_STATES = ("requested", "pending", "accepted", "rejected", "succeeded", "failed")
CHUNK = 500
DEADLINE_COLUMNS = ("pickup_risk_due", "pickup_due", "stall_due", "lost_due", "delivery_due", "slow_due")
EVENT_COLUMNS = (
    "parcel_id", "fingerprint", "time", "status", "reason", "raw_code", "raw_text", "location", "received_at",
)  # fmt: skip
#: What ingest, the rules and intercepts read of a parcel: less to convert on the hot path.
WORKING_COLUMNS = tuple(
    P.c[name]
    for name in (
        "id", "carrier", "tracking_no", "order_id", "shop", "shipped_at", "pickup_deadline", "promised_delivery",
        "region_class", "amount_fen", "status", "status_code", "exception_reason", "last_event_at", "picked_up_at",
        "delivered_at", "held", "intercept_state", "origin_province", "destination_province",
    )
)  # fmt: skip


#: Prebuilt once (statement building and cache-keying were a third of ingest's CPU): the
#: lookup of parcels by (carrier, number). SQLite: one carrier's numbers as an expanding
#: ``IN`` (chunked; a row-value IN scans there). PostgreSQL: every key at once, joined from
#: ``unnest`` of two arrays — the same SQL for any count, which psycopg prepares on the server.
_BY_NUMBERS_SQLITE = select(*WORKING_COLUMNS).where(
    P.c.carrier == bindparam("carrier"), P.c.tracking_no.in_(bindparam("numbers", expanding=True))
)
_PG_KEYS_DRIVER = (
    f"SELECT {', '.join(f'parcel.{c.name}' for c in WORKING_COLUMNS)} FROM parcel"
    " JOIN unnest(%s::text[], %s::text[]) AS k(carrier, tracking_no)"
    " ON parcel.carrier = k.carrier AND parcel.tracking_no = k.tracking_no"
)
#: The lookup locks the rows in id order (``for_update``): ingest folds on what it read, so
#: two replicas ingesting one parcel's events at once must fold one after the other (no lost
#: update). ``NO KEY UPDATE`` is the lock an UPDATE of non-key columns takes anyway; it leaves
#: foreign-key checks (an anomaly inserted for the parcel) unblocked.
#: Both run as driver SQL: their rows come back as the driver's tuples, with no
#: per-value result processing (ingest reads 200,000 parcels a second at its peak, and
#: SQLAlchemy's result rows with ``UTCDateTime``'s conversion were a sixth of its CPU). The
#: daemon's sessions run in UTC (``monitor.store.db``), so psycopg's times are already UTC;
#: another session's are converted (``_utc_rows``).
_PG_KEYS_DRIVER_LOCKED = _PG_KEYS_DRIVER + " ORDER BY parcel.id FOR NO KEY UPDATE OF parcel"
_WORKING_TIMES = tuple(k for k, c in enumerate(WORKING_COLUMNS) if isinstance(c.type, UTCDateTime))
#: The session's (``Connection.info``) staging tables known to exist, created by a committed transaction.
STAGED = "parcel_monitor_staged"
#: Column type oids of each staging table, read once (``UnitOfWork._stage``).
_STAGE_TYPES: dict[tuple[str, str], list[int]] = {}
#: Rows from which a PostgreSQL batch goes through ``COPY`` into a staging table and one
#: set-based statement instead of a pipelined executemany (fewer rows: 1 round trip beats 3).
COPY_ROWS = 50
#: The events of a staged batch into the log, a repeat skipped (``UnitOfWork.inserting_event_rows``).
_INSERT_STAGED_EVENTS = (
    f"INSERT INTO tracking_event ({', '.join(EVENT_COLUMNS)}) SELECT {', '.join(EVENT_COLUMNS)}"
    " FROM pg_temp.tracking_event_stage ON CONFLICT (parcel_id, fingerprint) DO NOTHING"
)


@contextmanager
def _driver_errors(statement: str) -> Iterator[None]:
    """Raise a driver error met outside SQLAlchemy's execution as SQLAlchemy's own (``IntegrityError``, …).

    Callers catch ``sqlalchemy.exc`` classes; psycopg's would slip past them.
    """
    try:
        yield
    except psycopg.Error as err:
        raise DBAPIError.instance(statement, None, err, psycopg.Error) from err


def _aware(value: Any) -> datetime:
    """Read an aggregate (MIN) of a time column, which skips the column type on SQLite."""
    return _TIME.process_result_value(value, None)  # type: ignore[return-value]


_TIME = UTCDateTime()
_T = TypeVar("_T")


def _pg_time(value: datetime | None) -> datetime | None:
    """Bind a time for psycopg as it is: ``timestamptz`` takes any aware time (no ``astimezone`` per value)."""
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} cannot be stored")
    return value


def _time_binder(dialect: Any) -> Callable[[datetime | None], Any]:
    """Return how the hot paths bind a time: as :class:`UTCDateTime` does, minus its generic steps on PostgreSQL."""
    return _pg_time if dialect.name == "postgresql" else _sqlite_time


def _sqlite_time(value: datetime | None) -> str | None:
    """Bind a time for SQLite as :class:`UTCDateTime` does (fixed-width ISO text in UTC), one call per value."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} cannot be stored")
    return value.astimezone(UTC).isoformat(" ", "microseconds")


def _in_utc(row: Row[Any]) -> bool:
    """Tell whether the driver gave this row's times in UTC (the session's time zone is UTC)."""
    return all(row[k] is None or row[k].tzinfo is UTC for k in _WORKING_TIMES)


def _utc_rows(names: Iterable[str], rows: Sequence[Any]) -> list[Any]:
    """Return ``rows`` (of columns ``names``) with their times in UTC, as ``UTCDateTime`` gives them (another zone)."""
    shape = collections.namedtuple("WorkingRow", list(names))  # type: ignore[misc]
    times = set(_WORKING_TIMES)
    return [
        shape(*(v.astimezone(UTC) if k in times and v is not None else v for k, v in enumerate(row))) for row in rows
    ]


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- prebuilt statements ----------------------------------------------------------------
# Built once, values as bind parameters: a statement built per call costs more to coerce and
# cache-key than to run (a third of a replay's CPU went there), and one kept memoizes its key.
# Each sends the SQL its method used to build. Those that differ by dialect (ON CONFLICT, a
# claim's SKIP LOCKED) are built on first use, once per dialect name (``functools.cache``).
_IDS = bindparam("ids", expanding=True)
_LIMIT = bindparam("limit", type_=Integer)  # typed as ``.limit(int)`` binds it (PostgreSQL casts it)


def _pick_once(pick: Select[Any], dialect: str) -> Select[Any]:
    """Return the ids a claim picks, evaluated exactly once.

    PostgreSQL may run an ``IN (SELECT … LIMIT … SKIP LOCKED)`` subquery more than once and
    claim more rows than asked, so there it is a materialized CTE that skips rows another
    claimer holds; SQLite runs the subquery once, under the write lock.
    """
    if dialect != "postgresql":
        return pick
    picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    return select(picked.c.id)


def insert_of(dialect: str, table: Any) -> Any:
    """Return an INSERT that can take ``ON CONFLICT`` in ``dialect``."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@functools.cache
def insert_ignoring(dialect: str, table: Any, conflict: tuple[str, ...], *, returning_id: bool = False) -> Any:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING`` into ``table`` (``RETURNING id``); rows come as parameters.

    Built once per dialect and table (also for :mod:`monitor.tickets.store`), where a ``.values(**row)`` per
    call built it anew: the parameters' keys choose the columns as ``.values`` did.
    """
    stmt = insert_of(dialect, table).on_conflict_do_nothing(index_elements=list(conflict))
    return stmt.returning(table.c.id) if returning_id else stmt


@functools.cache
def _claim_actions(dialect: str, by_keys: bool) -> Any:
    """:meth:`UnitOfWork.claim_actions`' one conditional ``UPDATE … RETURNING`` (``keys``: only those actions)."""
    now = bindparam("now")
    ready = or_(
        and_(A.c.state == "pending", A.c.next_attempt_at <= now),
        and_(A.c.state == "running", A.c.lease_until < now),
    )
    pick = select(A.c.id).where(ready).order_by(A.c.next_attempt_at, A.c.id).limit(_LIMIT)
    if by_keys:
        pick = pick.where(A.c.idempotency_key.in_(bindparam("keys", expanding=True)))
    return (
        update(A)
        .where(A.c.id.in_(_pick_once(pick, dialect)), ready)
        .values(state="running", lease_until=bindparam("lease_end"), attempts=A.c.attempts + 1)
        .returning(*A.c)
    )


_FINISH_ACTION = (
    update(A).where(A.c.id == bindparam("action_id")).values(state="done", done_at=bindparam("at"), lease_until=None)
)
#: By ``give_up``: failed for good, or pending again at ``at``.
_RETRY_ACTION = {
    give_up: update(A)
    .where(A.c.id == bindparam("action_id"))
    .values(
        last_error=bindparam("error"),
        lease_until=None,
        state="failed" if give_up else "pending",
        **({"done_at": bindparam("at")} if give_up else {"next_attempt_at": bindparam("at")}),
    )
    for give_up in (False, True)
}
_ACTION_KINDS = (
    select(A.c.anomaly_id, A.c.kind)
    .where(A.c.anomaly_id.in_(_IDS), A.c.kind.not_in(["alert", "alert_resolved"]))
    .order_by(A.c.id)
)
_PARCEL = select(P).where(P.c.id == bindparam("parcel_id"))
_PARCELS_BY_IDS = select(P).where(P.c.id.in_(_IDS))
_ANOMALY = select(AN).where(AN.c.id == bindparam("anomaly_id"))
#: By whether the rules are given.
_ACTIVE_ANOMALIES = {
    by_rule: select(AN)
    .where(AN.c.parcel_id.in_(_IDS), AN.c.state != "resolved")
    .where(*([AN.c.rule.in_(bindparam("rules", expanding=True))] if by_rule else []))
    .order_by(AN.c.id)
    for by_rule in (False, True)
}
_RESOLVE_ANOMALIES = (
    update(AN)
    .where(AN.c.id.in_(_IDS), AN.c.state != "resolved")
    .values(state="resolved", resolved_at=bindparam("at"), resolution=bindparam("how"))
)
_OPEN_INTERCEPTS = (
    select(I).where(I.c.parcel_id.in_(_IDS), I.c.state.in_(["requested", "pending", "accepted"])).order_by(I.c.id)
)
_OF_GROUP = (N.c.receiver == bindparam("receiver"), N.c.group_key == bindparam("group_key"))
_GROUP_PENDING = select(func.min(N.c.due_at)).where(*_OF_GROUP, N.c.state == "pending")
_GROUP_SENT = select(func.max(N.c.sent_at)).where(*_OF_GROUP)


@functools.cache
def _claim_notifications(dialect: str) -> Any:
    """:meth:`UnitOfWork.claim_notifications`' one conditional ``UPDATE … RETURNING``."""
    claimable = and_(N.c.state.in_(("pending", "sending")), N.c.due_at <= bindparam("now"))
    pick = select(N.c.id).where(claimable).order_by(N.c.due_at, N.c.id).limit(_LIMIT)
    return (
        update(N)
        .where(N.c.id.in_(_pick_once(pick, dialect)), claimable)
        .values(state="sending", due_at=bindparam("lease_end"))
        .returning(N.c.id)
    )


_CLAIMED_NOTIFICATIONS = (
    select(
        N,
        AN.c.rule,
        AN.c.state.label("anomaly_state"),
        AN.c.opened_at,
        AN.c.compensation_fen,
        AN.c.detail,
        P.c.id.label("parcel_id"),
        P.c.carrier,
        P.c.tracking_no,
        P.c.order_id,
        P.c.shop,
        func.coalesce(P.c.last_event_at, P.c.shipped_at).label("waiting_since"),
        P.c.status,  # with the route: the learned norm a slow_for_route alert quotes
        P.c.origin_province,
        P.c.destination_province,
        P.c.region_class,
    )
    .join(AN, AN.c.id == N.c.anomaly_id)
    .join(P, P.c.id == AN.c.parcel_id)
    .where(N.c.id.in_(_IDS))
)
_SETTLE_NOTIFICATIONS = update(N).where(N.c.id.in_(_IDS), N.c.state == "sending", N.c.due_at == bindparam("lease_end"))
_UPDATE_NOTIFICATIONS = update(N).where(N.c.id.in_(_IDS))
_REPEATS_OF = select(N.c.id, N.c.repeat_seconds, N.c.state, N.c.kind).where(N.c.id.in_(_IDS))
_UPDATE_INTERCEPT = update(I).where(I.c.id == bindparam("intercept_id"))
_INTERCEPTS_OF_REFUND = select(I).where(I.c.refund_id == bindparam("refund_id")).order_by(I.c.id)
_NOTIFICATIONS_OF = select(N).where(N.c.anomaly_id == bindparam("anomaly_id")).order_by(N.c.id)
_CARRIER_HEALTH = select(CH).where(CH.c.carrier == bindparam("carrier"))
_ACTIVITY_AFTER = select(ACT).where(ACT.c.id > bindparam("last_id")).order_by(ACT.c.id).limit(_LIMIT)
_RECORD = ACT.insert()


@functools.cache
def _setting(stmt: Any, names: tuple[str, ...]) -> Any:
    """Return the prebuilt UPDATE ``stmt`` setting the columns ``names``, each from the parameter ``v_<name>``.

    One per set of columns a caller changes (a handful), instead of a ``.values(**values)`` per call.
    """
    return stmt.values({name: bindparam(f"v_{name}") for name in names})


def set_values(stmt: Any, values: dict[str, Any], **where: Any) -> tuple[Any, dict[str, Any]]:
    """Return the prebuilt UPDATE ``stmt`` setting the keys of ``values``, and its parameters (``where``: its WHERE's).

    What ``stmt.values(**values)`` sends, for the price of a dict lookup (also :mod:`monitor.tickets.store`'s).
    """
    names = tuple(sorted(values))
    return _setting(stmt, names), where | {f"v_{name}": values[name] for name in names}


#: Set (per task) for the daemon's jobs: their transactions give way to requests' (:meth:`Store.transact`).
BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("store_background", default=False)
#: A bulk transaction (a sweep batch) starts once no request's transaction has run or waited for this long …
QUIET_SECONDS = 0.015
#: … or after this long anyway, so a steady stream of requests cannot stall the sweep.
MAX_YIELD_SECONDS = 0.25


class _Turns:
    """SQLite's single writer, taken in turn: requests before jobs, each in arrival order.

    Without it the daemon's threads race for the write lock in SQLite's busy handler, which
    sleeps and retries, so a refund's short transaction can lose to a sweep's back-to-back
    batches for seconds (B4).
    """

    def __init__(self) -> None:
        self.busy = False
        self._waiting: tuple[collections.deque[asyncio.Future[None]], ...] = (collections.deque(), collections.deque())

    async def __aenter__(self) -> None:
        if not self.busy:
            self.busy = True
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting[BACKGROUND.get()].append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the turn as we were cancelled: pass it on
                self._next()
            else:
                self._waiting[BACKGROUND.get()].remove(turn)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._next()

    def _next(self) -> None:
        for queue in self._waiting:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self.busy = False


#: An activity line's ``data`` as JSON (what ``json.dumps(…, ensure_ascii=False, default=str)`` gives), with one
#: encoder for every line: ``json.dumps`` with arguments builds a new encoder per call, ~20 % of a sweep's JSON.
_activity_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _activity_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return activity rows as stored: the current actor added (``stamp``), ``data`` as JSON."""
    return [r | {"data": _activity_json(r.get("data", {}))} for r in stamp(rows)]


class Store:
    """The database, opened once and shared by every component.

    ``threads`` > 0 (the daemon) runs the blocking database work of async callers on threads
    of the store's own (:meth:`offload`, :meth:`transact`), each with its own pooled
    connection, so a slow or locked database never stalls the event loop that serves
    ``/healthz`` and the refund webhook. ``threads=0`` (replay, the CLI, most tests) runs it
    inline: one thread, no hops, deterministic order.
    """

    def __init__(self, engine: Engine, *, threads: int = 0) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="store") if threads else None
        self._turns: dict[asyncio.AbstractEventLoop, _Turns] = {}
        self._requests = 0  # requests' transactions running or waiting
        self._request_done = 0.0  # monotonic time the last one ended

    @property
    def offloading(self) -> bool:
        """Tell whether database work of async callers runs off the event loop."""
        return self._executor is not None

    async def offload(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """Run blocking database work ``fn(*args)`` off the event loop (inline when not offloading)."""
        if self._executor is None:
            return fn(*args)
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def transact(self, work: Callable[[UnitOfWork], _T], *, bulk: bool = False, urgent: bool = False) -> _T:
        """Run ``work(uow)`` in one transaction off the event loop and return what it returns.

        Requests come first. On SQLite, transactions take the one write lock in turn, requests'
        before jobs' (``BACKGROUND``), instead of racing for it in SQLite's busy handler; and a
        ``bulk`` transaction (one sweep batch, ~100 ms) waits until requests' transactions have
        been quiet for ``QUIET_SECONDS``, so a refund's few steps run back to back rather than
        each behind a batch. An ``urgent`` transaction of a job takes a request's turn: it
        records what already happened outside (a message a channel accepted), and every
        moment it waits is a moment in which a crash makes the job do that again.
        """
        if self._executor is None:
            return self._transact(work)
        token = BACKGROUND.set(False) if urgent else None
        background = BACKGROUND.get()
        if bulk:
            await self._quiet()
        if not background:
            self._requests += 1
        try:
            if self.dialect != "sqlite":
                return await self.offload(self._transact, work)
            async with self._turns_of(asyncio.get_running_loop()):
                return await self.offload(self._transact, work)
        finally:
            if not background:
                self._requests -= 1
                self._request_done = time.monotonic()
            if token is not None:
                BACKGROUND.reset(token)

    async def _quiet(self) -> None:
        """Wait until no request's transaction ran or waited for a moment (at most ``MAX_YIELD_SECONDS``)."""
        give_up = time.monotonic() + MAX_YIELD_SECONDS
        while (self._requests or time.monotonic() - self._request_done < QUIET_SECONDS) and time.monotonic() < give_up:
            await asyncio.sleep(QUIET_SECONDS / 3)

    def _turns_of(self, loop: asyncio.AbstractEventLoop) -> _Turns:
        turns = self._turns.get(loop)
        if turns is None:  # one per event loop (tests run several loops one after another)
            turns = _Turns()
            self._turns = {loop: turns}
        return turns

    def _transact(self, work: Callable[[UnitOfWork], _T]) -> _T:
        with self.begin() as uow:
            return work(uow)

    def close(self) -> None:
        """Stop the store's threads (after the work in hand) and release its connections."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.engine.dispose()

    @contextmanager
    def singleton(self, name: str) -> Iterator[bool]:
        """Hold a cluster-wide lock named ``name`` while the block runs; yield whether we got it.

        On PostgreSQL this is a session advisory lock, so of several replicas only one runs a
        singleton job (the rule sweep, the KPI rollup); SQLite has one process by design.
        """
        if self.dialect != "postgresql":
            yield True
            return
        key = zlib.crc32(f"parcel-monitor:{name}".encode())
        with self.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

    @contextmanager
    def begin(self) -> Iterator[UnitOfWork]:
        """Open a transaction; it commits when the block ends, rolls back on error."""
        with self.engine.begin() as conn:
            uow = UnitOfWork(conn, self.dialect)
            yield uow
            session = conn.info  # the DBAPI connection's: cleared when it is replaced
        if uow.staged:  # committed: the session's temp tables outlive the transaction now
            session.setdefault(STAGED, set()).update(uow.staged)


class UnitOfWork:
    """One transaction's worth of queries."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        #: Staging tables this transaction created (``_stage``): known to the session once it commits.
        self.staged: set[str] = set()

    @property
    def _mark(self) -> str:
        """Return the driver's positional placeholder."""
        return "?" if self.dialect == "sqlite" else "%s"

    def _insert(self, table: Any) -> Any:
        return insert_of(self.dialect, table)

    def _picked(self, pick: Select[Any]) -> Select[Any]:
        """Return the ids a claim picks, evaluated exactly once (see :func:`_pick_once`)."""
        return _pick_once(pick, self.dialect)

    # -- parcels --------------------------------------------------------------------------

    def insert_parcels(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert shipments; one already known (same carrier and number) is left as it is."""
        if rows:
            self.conn.execute(insert_ignoring(self.dialect, P, ("carrier", "tracking_no")), list(rows))

    def parcels_by_keys(
        self, keys: Iterable[tuple[str, str]], *, for_update: bool = False
    ) -> dict[tuple[str, str], Any]:
        """Return parcels by (carrier, tracking number), with the columns ingest and rules read.

        ``for_update`` (ingest) locks them on PostgreSQL until the transaction ends, in id
        order, so two batches never deadlock each other.
        """
        if self.dialect == "postgresql":
            with self.looking_up_parcels(keys, for_update=for_update) as found:
                pass
            return found
        by_carrier: dict[str, set[str]] = {}
        for carrier, number in keys:
            by_carrier.setdefault(carrier, set()).add(number)
        found = {}
        for carrier, numbers in by_carrier.items():
            # carrier = ? AND tracking_no IN (...) uses the unique index; a row-value IN (...)
            # makes SQLite scan the whole table.
            for chunk in _chunks(sorted(numbers)):
                for row in self.conn.execute(_BY_NUMBERS_SQLITE, {"carrier": carrier, "numbers": chunk}).all():
                    found[(row.carrier, row.tracking_no)] = row
        return found

    @contextmanager
    def looking_up_parcels(
        self, keys: Iterable[tuple[str, str]], *, for_update: bool = False
    ) -> Iterator[dict[tuple[str, str], Any]]:
        """Look parcels up as :meth:`parcels_by_keys` does, while the block runs: the block must not use the store.

        Yields the dict of parcels found, filled when the block ends. On PostgreSQL the lookup
        is sent in pipeline mode and its answer read after the block, so ingest computes its
        events' fingerprints while the server probes the indexes (and waits for row locks);
        its rows are named tuples of the same columns. Elsewhere the dict is filled first.
        """
        found: dict[tuple[str, str], Any] = {}
        if self.dialect != "postgresql":
            found.update(self.parcels_by_keys(keys, for_update=for_update))
            yield found
            return
        pairs = sorted(set(keys))
        if not pairs:
            yield found
            return
        sql = _PG_KEYS_DRIVER_LOCKED if for_update else _PG_KEYS_DRIVER
        raw = self.conn.connection.driver_connection
        with raw.cursor(row_factory=namedtuple_row) as cur:  # type: ignore[union-attr]
            with _driver_errors(sql), raw.pipeline():  # type: ignore[union-attr]
                cur.execute(sql, ([c for c, _ in pairs], [n for _, n in pairs]))  # sent, answered after the block
                yield found
            rows = cur.fetchall()
        if rows and not _in_utc(rows[0]):
            rows = _utc_rows(rows[0]._fields, rows)
        for row in rows:
            found[(row.carrier, row.tracking_no)] = row

    def parcels_by_ids(self, ids: Iterable[int]) -> dict[int, Row[Any]]:
        """Return parcels by id."""
        found: dict[int, Row[Any]] = {}
        for chunk in _chunks(sorted(set(ids))):
            for row in self.conn.execute(_PARCELS_BY_IDS, {"ids": chunk}):
                found[row.id] = row
        return found

    def parcel(self, parcel_id: int) -> Row[Any] | None:
        """Return one parcel."""
        return self.conn.execute(_PARCEL, {"parcel_id": parcel_id}).first()

    def parcels_of_order(self, order_id: str) -> list[Row[Any]]:
        """Return the parcels of one order."""
        return list(self.conn.execute(select(P).where(P.c.order_id == order_id).order_by(P.c.id)))

    def update_parcels(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write changed columns; every row must carry ``id`` and the same keys as the first."""
        if not rows:
            return
        by_shape: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row in rows:
            shape = tuple(sorted(k for k in row if k != "id"))
            by_shape.setdefault(shape, []).append((row["id"], *(row[n] for n in shape)))
        for shape, group in by_shape.items():
            self.update_parcel_rows(shape, group)

    def update_parcel_rows(self, shape: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Write the columns ``shape`` of many parcels, each row ``(id, *values in shape order)`` (ingest's path).

        Tuples, not dicts: ingest builds its rows in this order directly, so nothing is copied
        or sorted per parcel before the driver sees it.
        """
        if not rows:
            return
        for name in shape:
            if name not in P.c:
                raise KeyError(f"parcel has no column {name!r}")
        bind = _time_binder(self.conn.dialect)
        times = [k for k, name in enumerate(shape, start=1) if isinstance(P.c[name].type, UTCDateTime)]
        if times:
            bound = []
            for r in rows:
                values = list(r)
                for k in times:
                    values[k] = bind(values[k])
                bound.append(values)
        else:
            bound = [list(r) for r in rows]
        if self.dialect == "postgresql" and len(rows) >= COPY_ROWS:
            self._update_staged(tuple(shape), bound)
            return
        sql = f"UPDATE parcel SET {', '.join(f'{n} = {self._mark}' for n in shape)} WHERE id = {self._mark}"
        self.conn.exec_driver_sql(sql, [(*r[1:], r[0]) for r in bound])

    def _update_staged(self, shape: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
        """Update many parcels on PostgreSQL: ``COPY`` the rows into a staging table, then one ``UPDATE … FROM``.

        ``rows`` are ``(id, *values)``, times already bound. The staging table (one per set of
        columns) lives as long as the connection and is emptied at every commit. A parcel listed
        twice takes its last row, as executemany would.
        """
        last = {r[0]: r for r in rows}
        cols = ("id", *shape)
        stage = f"parcel_stage_{zlib.crc32(','.join(shape).encode()):08x}"
        sets = ", ".join(f"{n} = s.{n}" for n in shape)
        self._stage(stage, "parcel", cols, last.values())
        self.conn.exec_driver_sql(f"UPDATE parcel SET {sets} FROM pg_temp.{stage} AS s WHERE parcel.id = s.id")

    def _stage(self, stage: str, like: str, cols: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
        """Fill the session's temp table ``stage`` (columns ``cols`` typed as in table ``like``) by binary ``COPY``.

        ``ON COMMIT DELETE ROWS``: what one transaction staged is gone at its commit or rollback.
        Binary rows cost the client a quarter of text ones; their types (the staged columns'
        own) are read once per process.
        """
        names = ", ".join(cols)
        cur = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if stage not in self.staged and stage not in self.conn.info.get(STAGED, ()):
                # once per session, not per batch (a round trip and a "relation already exists" notice);
                # a table created by a transaction that rolls back is gone, so it counts from its commit
                cur.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS"
                    f" SELECT {names} FROM {like} WITH NO DATA"
                )
                self.staged.add(stage)
            types = _STAGE_TYPES.get((stage, names))
            if types is None:
                cur.execute(
                    "SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
                    (f"pg_temp.{stage}",),
                )
                types = _STAGE_TYPES[(stage, names)] = [int(oid) for (oid,) in cur.fetchall()]
            sql = f"COPY pg_temp.{stage} ({names}) FROM STDIN (FORMAT BINARY)"
            with _driver_errors(sql), cur.copy(sql) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        finally:
            cur.close()

    def due_parcels(self, column: str, now: datetime, limit: int) -> list[Row[Any]]:
        """Return parcels whose ``column`` deadline has passed, oldest first."""
        col = P.c[column]
        stmt = (
            select(P.c.id, P.c.carrier, P.c.tracking_no, P.c.order_id, P.c.shop, P.c.amount_fen, col.label("due"))
            .where(col <= now)
            .order_by(col, P.c.id)
            .limit(limit)
        )
        return list(self.conn.execute(stmt))

    def clear_deadline(self, column: str, ids: Sequence[int]) -> None:
        """Disarm a time-driven rule for parcels it has fired for: one ``UPDATE`` whatever the number of ids."""
        if column not in DEADLINE_COLUMNS:
            raise KeyError(f"parcel has no deadline column {column!r}")
        if not ids:
            return
        if self.dialect == "postgresql":  # = ANY(array): an index scan in id order, the order ingest locks in
            self.conn.exec_driver_sql(f"UPDATE parcel SET {column} = NULL WHERE id = ANY(%s::integer[])", (list(ids),))
            return
        source, params = self._rows_source([("id", P.c.id)], [(i,) for i in ids])
        self.conn.exec_driver_sql(f"UPDATE parcel SET {column} = NULL WHERE id IN (SELECT d.id FROM {source})", params)

    def claim_due_parcels(self, column: str, now: datetime, limit: int) -> list[Row[Any]]:
        """Return (on PostgreSQL: lock) parcels whose ``column`` deadline has passed, oldest first: one sweep batch.

        ``FOR NO KEY UPDATE SKIP LOCKED`` on PostgreSQL: a parcel another transaction is
        changing (ingest folding its events, another sweep's batch) is left to that one and the
        next sweep instead of waited for, so a batch never waits on, or deadlocks with, ingest's
        row locks, and two sweeps at once share the work; its deadline stays armed. Rows merely
        referenced meanwhile (an event or anomaly inserted for the parcel) are not skipped.
        """
        if column not in DEADLINE_COLUMNS:
            raise KeyError(f"parcel has no deadline column {column!r}")
        lock = " FOR NO KEY UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""
        sql = (
            f"SELECT id, carrier, tracking_no, order_id, shop, amount_fen FROM parcel WHERE {column} <= {self._mark}"
            f" ORDER BY {column}, id LIMIT {self._mark}{lock}"
        )
        return self.conn.exec_driver_sql(sql, (_TIME.process_bind_param(now, self.conn.dialect), limit)).all()

    def _rows_source(
        self, columns: Sequence[tuple[str, Any]], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, tuple[Any, ...]]:
        """Return a FROM item ``d`` giving ``rows`` in order (``d.pos``), one parameter per column; and the parameters.

        One statement text per shape whatever the number of rows, so the set-based sweep's
        statements are prepared once: ``unnest(…) WITH ORDINALITY`` over typed arrays on
        PostgreSQL, ``json_each`` over one JSON array on SQLite (columns equal in every row bound
        once beside it: a text per shape and set of such columns). ``columns`` are (name, the
        table column whose type the values take); times are bound as the column type binds them.
        """
        dialect = self.conn.dialect
        binds = [_TIME.process_bind_param if isinstance(c.type, UTCDateTime) else None for _, c in columns]
        names = [n for n, _ in columns]
        if self.dialect == "postgresql":
            values = [[v if b is None or v is None else b(v, dialect) for v, b in zip(r, binds, strict=True)]
                      for r in rows]  # fmt: skip
            # %b: binary arrays. Text ones cost psycopg a regex quote-and-escape per string
            # element (the JSON of every activity line), the larger part of a sweep's client CPU.
            arrays = ", ".join(f"%b::{c.type.compile(dialect)}[]" for _, c in columns)
            source = f"unnest({arrays}) WITH ORDINALITY AS d({', '.join(names)}, pos)"
            return source, tuple([r[k] for r in values] for k in range(len(names)))
        # A column with one value in every row (a batch's rule, time, state, defaults) is bound once,
        # not repeated in each row's JSON: every ``->>`` parses its row's array up to the element
        # asked for, so an outbox row of 14 columns cost ~100 element parses, of which 4 vary.
        first, count = rows[0], len(rows)
        same = []
        for k in range(len(names)):
            column = [r[k] for r in rows]
            same.append(column.count(first[k]) == count and len(set(map(type, column))) == 1)

        def bound(k: int, v: Any) -> Any:
            b = binds[k]
            return v if b is None or v is None else b(v, dialect)

        varying = [k for k in range(len(names)) if not same[k]]
        at = {k: i for i, k in enumerate(varying)}
        flat = len(varying) == 1  # one varying column (the deadline update's ids): a flat array, no ->> at all
        pick = (lambda k: "j.value") if flat else (lambda k: f"j.value ->> {at[k]}")
        picks = ", ".join(f"? AS {n}" if same[k] else f"{pick(k)} AS {n}" for k, n in enumerate(names))
        constants = tuple(bound(k, first[k]) for k in range(len(names)) if same[k])
        if flat:
            data: list[Any] = [bound(varying[0], r[varying[0]]) for r in rows]
        else:
            data = [[bound(k, r[k]) for k in varying] for r in rows]
        return f"(SELECT {picks}, j.key AS pos FROM json_each(?) AS j) AS d", (*constants, json.dumps(data))

    def _insert_rows(self, table: Any, rows: Sequence[dict[str, Any]], tail: str = "") -> Any:
        """``INSERT … SELECT`` every row in one statement, in order; columns a row leaves out take their default.

        ``tail`` is the conflict clause and/or ``RETURNING`` list. Every row must carry the keys of the first.
        """
        given = list(rows[0])
        missing = [c for c in table.columns if c.name not in given and not c.primary_key]
        fixed = []
        for c in missing:
            if c.default is not None and not c.default.is_scalar:
                raise ValueError(f"{table.name}.{c.name}: a computed default cannot be filled in a set-based insert")
            fixed.append(c.default.arg if c.default is not None else None)
        columns = [(n, table.c[n]) for n in given] + [(c.name, c) for c in missing]
        source, params = self._rows_source(columns, [(*(r[n] for n in given), *fixed) for r in rows])
        names = ", ".join(n for n, _ in columns)
        where = " WHERE true" if tail and self.dialect == "sqlite" else ""  # SQLite: ON CONFLICT after a SELECT
        sql = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {source}{where} ORDER BY d.pos {tail}"
        return self.conn.exec_driver_sql(sql.rstrip(), params)

    def open_due_anomalies(
        self, rule: str, rows: Sequence[dict[str, Any]], unless_active: Sequence[str] = ()
    ) -> dict[int, int]:
        """Open one anomaly of ``rule`` per row unless the parcel has one active; return {parcel id: anomaly id} opened.

        One ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``: the partial unique index
        ``uq_anomaly_active`` (one active anomaly per parcel and rule) is the conflict target, so
        two sweeps at once (two processes) open it once, and the loser's RETURNING leaves it out
        (its actions are the winner's to queue). A parcel with an active anomaly of a rule in
        ``unless_active`` gets none. Rows carry the anomaly columns (``parcel_id``, ``severity``,
        ``opened_at``, …) in the order the ids are to be given.
        """
        if not rows:
            return {}
        given = [*(n for n in rows[0] if n != "rule"), "rule"]
        columns = [(n, AN.c[n]) for n in given]
        source, params = self._rows_source(columns, [(*(r[n] for n in given[:-1]), rule) for r in rows])
        names = ", ".join(given)
        where = "true"
        if unless_active:
            marks = ", ".join([self._mark] * len(unless_active))
            where = (
                "NOT EXISTS (SELECT 1 FROM anomaly a WHERE a.parcel_id = d.parcel_id"
                f" AND a.state != 'resolved' AND a.rule IN ({marks}))"
            )
            params = (*params, *unless_active)
        sql = (
            f"INSERT INTO anomaly ({names}) SELECT {names} FROM {source} WHERE {where} ORDER BY d.pos"
            " ON CONFLICT (parcel_id, rule) WHERE state != 'resolved' DO NOTHING RETURNING id, parcel_id"
        )
        return {r.parcel_id: r.id for r in self.conn.exec_driver_sql(sql, params).all()}

    def earliest_due(self) -> datetime | None:
        """Return the earliest armed rule deadline or pending outbox attempt, passed or not."""
        moments = [self.conn.execute(select(func.min(P.c[c]))).scalar() for c in DEADLINE_COLUMNS]
        moments.append(self.conn.execute(select(func.min(A.c.next_attempt_at)).where(A.c.state == "pending")).scalar())
        moments.append(self.conn.execute(select(func.min(N.c.due_at)).where(N.c.state == "pending")).scalar())
        return min((_aware(m) for m in moments if m is not None), default=None)

    def due_for_poll(self, now: datetime, limit: int) -> list[Row[Any]]:
        """Return parcels whose next poll is due, the longest waiting first."""
        stmt = (
            select(P.c.id, P.c.carrier, P.c.tracking_no)
            .where(P.c.next_poll_at <= now)
            .order_by(P.c.next_poll_at, P.c.id)
            .limit(limit)
        )
        return list(self.conn.execute(stmt))

    def claim_for_poll(
        self,
        carrier: str,
        now: datetime,
        limit: int,
        lease_until: datetime,
        *,
        risk_until: datetime,
        polled_before: datetime | None = None,
    ) -> list[Row[Any]]:
        """Lease up to ``limit`` due parcels of one carrier to this poller, parcels at risk first.

        At risk: not picked up with the pickup deadline before ``risk_until``, or an intercept
        of ours being followed. The lease moves ``next_poll_at`` to ``lease_until``, so a
        poller that dies leaves its parcels to be polled again then, and other pollers skip
        them: each claim is a conditional ``UPDATE … WHERE next_poll_at <= now … RETURNING``
        (with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two never get the same parcel.
        ``polled_before`` keeps the per-number cap: a parcel asked about after it is not claimed.

        Two claims, each read off an index, not one ordered by a ``CASE`` that no index serves
        (which sorted every due row on every claim: B6 slowed as the backlog grew): first the
        parcels at risk, through the partial indexes on pending parcels' pickup deadlines and
        on parcels with an intercept state (migration 0013), then, if the round has room, the
        rest in ``next_poll_at`` order. The second sees the first's leases (same transaction),
        so a parcel is claimed once.
        """
        if limit <= 0:
            return []
        at_risk = or_(
            and_(P.c.picked_up_at.is_(None), P.c.pickup_deadline <= risk_until),
            # the IS NOT NULL term is the partial index's predicate, written out so both planners match it
            and_(P.c.intercept_state.is_not(None), P.c.intercept_state.in_(WATCHED_INTERCEPTS)),
        )
        risk = case((at_risk, 0), else_=1)
        due = and_(P.c.carrier == carrier, P.c.next_poll_at <= now)
        if polled_before is not None:
            due = and_(due, or_(P.c.last_polled_at.is_(None), P.c.last_polled_at <= polled_before))
        claimed: list[Row[Any]] = []
        for where in (and_(due, at_risk), due):
            if claimed:
                where = and_(where, P.c.id.not_in([r.id for r in claimed]))
            pick = select(P.c.id).where(where).order_by(P.c.next_poll_at, P.c.id).limit(limit - len(claimed))
            stmt = (
                update(P)
                .where(P.c.id.in_(self._picked(pick)), where)
                .values(next_poll_at=lease_until)
                .returning(*(P.c[n] for n in POLL_COLUMNS), risk.label("risk"))
            )
            claimed.extend(self.conn.execute(stmt))
            if len(claimed) >= limit:
                break
        return sorted(claimed, key=lambda r: (r.risk, r.id))

    def poll_view(self, ids: Sequence[int]) -> dict[int, Row[Any]]:
        """Return what scheduling needs of some parcels, by id."""
        cols = [P.c[n] for n in POLL_COLUMNS]
        found: dict[int, Row[Any]] = {}
        for chunk in _chunks(ids):
            found.update((r.id, r) for r in self.conn.execute(select(*cols).where(P.c.id.in_(chunk))))
        return found

    def pollable_carriers(self, now: datetime) -> list[str]:
        """Return the carriers with at least one parcel due for polling."""
        stmt = select(P.c.carrier).where(P.c.next_poll_at <= now).distinct()
        return sorted(self.conn.execute(stmt).scalars())

    def earliest_poll(self) -> datetime | None:
        """Return the earliest scheduled poll, passed or not."""
        value = self.conn.execute(select(func.min(P.c.next_poll_at))).scalar()
        return None if value is None else _aware(value)

    # -- carrier quotas and health -------------------------------------------------------

    def usage(self, carrier: str, day: str) -> int:
        """Return the requests counted against ``carrier`` on ``day`` (local date, ISO)."""
        stmt = select(CU.c.requests).where(CU.c.carrier == carrier, CU.c.day == day)
        return self.conn.execute(stmt).scalar() or 0

    def add_usage(self, carrier: str, day: str, requests: int) -> None:
        """Count ``requests`` (negative to give back an unused reservation) against a day."""
        if not requests:
            return
        stmt = self._insert(CU).values(carrier=carrier, day=day, requests=requests)
        stmt = stmt.on_conflict_do_update(
            index_elements=["carrier", "day"], set_={"requests": CU.c.requests + requests}
        )
        self.conn.execute(stmt)

    def carrier_health(self, carrier: str) -> Row[Any] | None:
        """Return a carrier's health row, or None if it never failed."""
        return self.conn.execute(_CARRIER_HEALTH, {"carrier": carrier}).first()

    def carrier_healths(self) -> list[Row[Any]]:
        """Return every carrier's health row."""
        return list(self.conn.execute(select(CH).order_by(CH.c.carrier)))

    def save_carrier_health(self, carrier: str, **values: Any) -> None:
        """Write a carrier's health row (insert or replace)."""
        stmt = self._insert(CH).values(carrier=carrier, **values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["carrier"], set_=values))

    def note_unknown_codes(self, rows: Sequence[dict[str, Any]]) -> None:
        """Count carrier codes no mapping knows, one statement for a batch's distinct (carrier, code) rows.

        Each row has ``carrier``, ``code``, ``text_sample``, ``seen`` (the batch's time) and ``count``;
        the first sighting is kept, the latest text and time replace the older ones.
        """
        if not rows:
            return
        values = [{"carrier": r["carrier"], "code": r["code"], "text_sample": r["text_sample"],
                   "first_seen": r["seen"], "last_seen": r["seen"], "count": r["count"]} for r in rows]  # fmt: skip
        stmt = self._insert(UC).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["carrier", "code"],
            set_={"count": UC.c["count"] + stmt.excluded["count"], "last_seen": stmt.excluded.last_seen,
                  "text_sample": stmt.excluded.text_sample},
        )  # fmt: skip
        self.conn.execute(stmt)

    def set_next_poll(self, ids: Sequence[int], at: datetime | None) -> None:
        """Schedule the next poll of parcels; terminal parcels are not polled again."""
        done = ("delivered", "returned")
        for chunk in _chunks(ids):
            stmt = update(P).where(P.c.id.in_(chunk))
            self.conn.execute(stmt.where(P.c.status.not_in(done)).values(next_poll_at=at))
            self.conn.execute(stmt.where(P.c.status.in_(done)).values(next_poll_at=None))

    # -- tracking events ------------------------------------------------------------------

    def insert_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store events given as dicts keyed by :data:`EVENT_COLUMNS`; see :meth:`insert_event_rows`."""
        self.insert_event_rows([tuple(r[c] for c in EVENT_COLUMNS) for r in rows])

    def insert_event_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Store events, each a tuple in :data:`EVENT_COLUMNS` order; one already stored is skipped.

        Already stored: the same parcel and fingerprint.

        This is the hottest statement of the service, so it goes to the driver with times
        converted once, skipping SQLAlchemy's per-row parameter processing; on PostgreSQL a
        batch of ``COPY_ROWS`` or more is copied into a staging table and inserted from there by
        one ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
        """
        with self.inserting_event_rows(rows):
            pass

    @contextmanager
    def inserting_event_rows(self, rows: Sequence[tuple[Any, ...]]) -> Iterator[None]:
        """Store events as :meth:`insert_event_rows` does, while the block runs: the block must not use the store.

        On PostgreSQL a large batch is copied into its staging table, then the ``INSERT … SELECT``
        is sent in pipeline mode and the block runs while the server inserts; the block's end
        waits for the insert and raises its error (as SQLAlchemy's exception), if any. Ingest
        folds the batch into parcel states there: pure Python that needs no answer from the
        insert, and about as long as the insert itself, so the two no longer take turns.
        Elsewhere (SQLite, a small batch) the insert runs first, then the block.
        """
        if not rows:
            yield
            return
        cols = EVENT_COLUMNS
        bind = _time_binder(self.conn.dialect)
        params = [(r[0], r[1], bind(r[2]), r[3], r[4], r[5], r[6], r[7], bind(r[8])) for r in rows]
        if self.dialect == "postgresql" and len(rows) >= COPY_ROWS:
            # COPY into a staging table, then one set-based insert: 3 round trips a batch, not one per row.
            self._stage("tracking_event_stage", "tracking_event", cols, params)
            raw = self.conn.connection.driver_connection
            with raw.cursor() as cur, _driver_errors(_INSERT_STAGED_EVENTS), raw.pipeline():  # type: ignore[union-attr]
                cur.execute(_INSERT_STAGED_EVENTS)  # sent; its answer is read when the pipeline ends
                yield
            return
        self._insert_event_params(params)
        yield

    def _insert_event_params(self, params: Sequence[tuple[Any, ...]]) -> None:
        cols = EVENT_COLUMNS
        marks = ", ".join([self._mark] * len(cols))
        sql = (
            f"INSERT INTO tracking_event ({', '.join(cols)}) VALUES ({marks})"
            " ON CONFLICT (parcel_id, fingerprint) DO NOTHING"
        )
        self.conn.exec_driver_sql(sql, params)

    def events_of(self, parcel_id: int) -> list[Row[Any]]:
        """Return a parcel's events, oldest first."""
        return list(self.conn.execute(select(E).where(E.c.parcel_id == parcel_id).order_by(E.c.time, E.c.id)))

    # -- anomalies ------------------------------------------------------------------------

    def active_anomalies(self, parcel_ids: Iterable[int], rules: Iterable[str] | None = None) -> list[Row[Any]]:
        """Return the open or acknowledged anomalies of some parcels."""
        found: list[Row[Any]] = []
        wanted = list(rules) if rules is not None else None
        stmt = _ACTIVE_ANOMALIES[wanted is not None]
        for chunk in _chunks(sorted(set(parcel_ids))):
            found.extend(self.conn.execute(stmt, {"ids": chunk} if wanted is None else {"ids": chunk, "rules": wanted}))
        return found

    def insert_anomalies(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Open anomalies and return their ids in the order given."""
        if not rows:
            return []
        stmt = AN.insert().returning(AN.c.id, sort_by_parameter_order=True)
        return list(self.conn.execute(stmt, list(rows)).scalars())

    def resolve_anomalies(self, ids: Sequence[int], at: datetime, resolution: str) -> None:
        """Resolve anomalies that are still active."""
        for chunk in _chunks(ids):
            self.conn.execute(_RESOLVE_ANOMALIES, {"ids": chunk, "at": at, "how": resolution})

    def anomaly(self, anomaly_id: int) -> Row[Any] | None:
        """Return one anomaly."""
        return self.conn.execute(_ANOMALY, {"anomaly_id": anomaly_id}).first()

    def acknowledge_anomaly(self, anomaly_id: int, at: datetime) -> bool:
        """Acknowledge an open anomaly; False if it is not open."""
        res = self.conn.execute(
            update(AN)
            .where(AN.c.id == anomaly_id, AN.c.state == "open")
            .values(state="acknowledged", acknowledged_at=at)
        )
        return res.rowcount == 1

    def anomalies(self, state: str | None = None, rule: str | None = None) -> list[Row[Any]]:
        """Return anomalies, newest first, filtered by state and rule."""
        stmt = select(AN).order_by(AN.c.id.desc())
        if state:
            stmt = stmt.where(AN.c.state == state)
        if rule:
            stmt = stmt.where(AN.c.rule == rule)
        return list(self.conn.execute(stmt))

    # -- outbox ---------------------------------------------------------------------------

    def enqueue(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add side effects to the outbox; one with a known idempotency key is ignored."""
        if rows:
            self.conn.execute(insert_ignoring(self.dialect, A, ("idempotency_key",)), list(rows))

    def enqueue_set(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add side effects as :meth:`enqueue` does (a known idempotency key is ignored), in one ``INSERT … SELECT``."""
        if rows:
            self._insert_rows(A, rows, "ON CONFLICT (idempotency_key) DO NOTHING")

    def claim_actions(
        self, now: datetime, limit: int, lease: timedelta, keys: Sequence[str] | None = None
    ) -> list[Row[Any]]:
        """Lease due actions (pending, or running with an expired lease) to this worker.

        One conditional ``UPDATE … WHERE <still claimable> … RETURNING``: of two processes
        claiming at once, each row goes to exactly one (``SKIP LOCKED`` on PostgreSQL, the
        write lock and the re-checked state on SQLite).
        """
        stmt = _claim_actions(self.dialect, keys is not None)
        params: dict[str, Any] = {"now": now, "limit": limit, "lease_end": now + lease}
        if keys is not None:
            params["keys"] = list(keys)
        return sorted(self.conn.execute(stmt, params), key=lambda r: r.id)

    def action_keys_of_refund(self, refund_id: str) -> list[str]:
        """Return the idempotency keys of the actions a refund queued that are not done yet."""
        stmt = select(A.c.idempotency_key).where(A.c.refund_id == refund_id, A.c.state.in_(("pending", "running")))
        return list(self.conn.execute(stmt).scalars())

    def release_actions(self, ids: Sequence[int]) -> None:
        """Give claimed actions back untried (on shutdown), so the next process need not wait for the lease."""
        for chunk in _chunks(ids):
            stmt = update(A).where(A.c.id.in_(chunk), A.c.state == "running")
            self.conn.execute(stmt.values(state="pending", lease_until=None, attempts=A.c.attempts - 1))

    def finish_action(self, action_id: int, at: datetime) -> None:
        """Mark an action done."""
        self.conn.execute(_FINISH_ACTION, {"action_id": action_id, "at": at})

    def retry_action(self, action_id: int, at: datetime, error: str, give_up: bool) -> None:
        """Put an action back for a later attempt, or give up on it."""
        self.conn.execute(_RETRY_ACTION[bool(give_up)], {"action_id": action_id, "at": at, "error": error[:500]})

    def actions(self, state: str | None = None) -> list[Row[Any]]:
        """Return outbox rows, oldest first."""
        stmt = select(A).order_by(A.c.id)
        return list(self.conn.execute(stmt.where(A.c.state == state) if state else stmt))

    # -- notification log -----------------------------------------------------------------

    def insert_notification(self, row: dict[str, Any]) -> bool:
        """Queue one notification; False if that anomaly, receiver and kind is already logged."""
        stmt = insert_ignoring(self.dialect, N, ("anomaly_id", "receiver", "kind"), returning_id=True)
        return self.conn.execute(stmt, row).scalar() is not None

    def group_timing(self, receiver: str, group_key: str) -> tuple[datetime | None, datetime | None]:
        """Return (due time of the group's pending batch, when the group was last sent)."""
        group = {"receiver": receiver, "group_key": group_key}
        pending = self.conn.execute(_GROUP_PENDING, group).scalar()
        sent = self.conn.execute(_GROUP_SENT, group).scalar()
        return (_aware(pending) if pending else None), (_aware(sent) if sent else None)

    def claim_notifications(self, now: datetime, lease_until: datetime, limit: int = 10_000) -> list[Row[Any]]:
        """Lease the due notifications to this sender; return them with their anomaly and parcel, in order.

        One conditional ``UPDATE … SET state = 'sending', due_at = <lease end> WHERE state IN
        ('pending', 'sending') AND due_at <= now … RETURNING``: of two senders, each row goes
        to exactly one, and a sender that died leaves its rows to be claimed again when the
        lease (its ``due_at``) ends. The lease end is the claim's token for
        :meth:`settle_notifications`.
        """
        claim = _claim_notifications(self.dialect)
        ids = sorted(self.conn.execute(claim, {"now": now, "limit": limit, "lease_end": lease_until}).scalars())
        if not ids:
            return []
        rows: list[Row[Any]] = []
        for chunk in _chunks(ids):
            rows.extend(self.conn.execute(_CLAIMED_NOTIFICATIONS, {"ids": chunk}))
        return sorted(rows, key=lambda r: r.id)  # groups go out in the order their first notice was queued

    def settle_notifications(self, ids: Sequence[int], lease_until: datetime, **values: Any) -> int:
        """Record what became of claimed notifications (sent, retry at, failed) if the claim is still ours.

        Conditional on ``state = 'sending'`` and the claim's own lease end: a sender whose lease
        ran out (and whose rows another sender claimed since) changes nothing. Return rows changed.
        A firing notice of a repeating route that is marked sent gets the moment it is due again.
        """
        changed = 0
        for chunk in _chunks(ids):
            stmt, params = set_values(_SETTLE_NOTIFICATIONS, values, ids=chunk, lease_end=lease_until)
            changed += self.conn.execute(stmt, params).rowcount
            if values.get("state") == "sent" and values.get("sent_at") is not None:
                self._arm_repeats(chunk, values["sent_at"])
        return changed

    def _arm_repeats(self, ids: Sequence[int], sent_at: datetime) -> None:
        # Read by id alone and filter here: given ``state = 'sent'`` too, SQLite (no statistics) walks
        # ix_notification_due over every sent row — 0.67 s a flush at 1,000,000 rows (B9).
        rows = self.conn.execute(_REPEATS_OF, {"ids": ids}).all()
        by_seconds: dict[int, list[int]] = {}
        for r in rows:
            if r.state == "sent" and r.kind == "firing" and r.repeat_seconds is not None:
                by_seconds.setdefault(r.repeat_seconds, []).append(r.id)
        for seconds, group in by_seconds.items():
            self.update_notifications(group, repeat_due_at=sent_at + timedelta(seconds=seconds))

    def action_kinds(self, anomaly_ids: Iterable[int]) -> dict[int, list[str]]:
        """Return what was queued for each anomaly besides alerts (tickets, reshipment suggestions)."""
        found: dict[int, list[str]] = {}
        for chunk in _chunks(sorted(set(anomaly_ids))):
            for row in self.conn.execute(_ACTION_KINDS, {"ids": chunk}):
                found.setdefault(row.anomaly_id, []).append(row.kind)
        return found

    def update_notifications(self, ids: Sequence[int], **values: Any) -> None:
        """Change the state of notifications (sent, failed, deferred, cancelled)."""
        for chunk in _chunks(ids):
            self.conn.execute(*set_values(_UPDATE_NOTIFICATIONS, values, ids=chunk))

    def notifications_of(self, anomaly_id: int) -> list[Row[Any]]:
        """Return the notification log of one anomaly."""
        return list(self.conn.execute(_NOTIFICATIONS_OF, {"anomaly_id": anomaly_id}))

    def due_moments(self) -> tuple[datetime | None, datetime | None]:
        """Return (:meth:`earliest_due`, the earliest pending outbox attempt, notification or repeat) in one statement.

        Each MIN is its own scalar subquery, so each reads one end of its index (replay asks after each step that acts).
        """
        mins = [select(func.min(P.c[c])).scalar_subquery() for c in DEADLINE_COLUMNS]
        mins.append(select(func.min(A.c.next_attempt_at)).where(A.c.state == "pending").scalar_subquery())
        mins.append(select(func.min(N.c.due_at)).where(N.c.state == "pending").scalar_subquery())
        mins.append(select(func.min(N.c.repeat_due_at)).where(N.c.repeat_due_at.is_not(None)).scalar_subquery())
        row = self.conn.execute(select(*mins)).one()
        moments = [_aware(m) for m in row[:-1] if m is not None]
        sends = [_aware(m) for m in row[-3:] if m is not None]
        return min(moments, default=None), min(sends, default=None)

    def requeue_repeats(self, now: datetime) -> int:
        """Queue again the sent firing notices of still-open anomalies whose repeat interval passed.

        Reads only the notices due again (the partial index on ``repeat_due_at``), never every
        sent one: a notice of an anomaly no longer open is disarmed once, when its moment comes.
        """
        rows = self.conn.execute(
            select(N.c.id, AN.c.state)
            .join(AN, AN.c.id == N.c.anomaly_id)
            .where(N.c.repeat_due_at.is_not(None), N.c.repeat_due_at <= now)
        ).all()
        due = [r.id for r in rows if r.state == "open"]
        self.update_notifications(due, state="pending", due_at=now, repeat_due_at=None)
        self.update_notifications([r.id for r in rows if r.state != "open"], repeat_due_at=None)
        return len(due)

    def notifications(self, state: str | None = None) -> list[Row[Any]]:
        """Return the notification log, oldest first."""
        stmt = select(N).order_by(N.c.id)
        return list(self.conn.execute(stmt.where(N.c.state == state) if state else stmt))

    # -- tickets, refunds, intercepts -----------------------------------------------------

    def insert_ticket(self, row: dict[str, Any]) -> tuple[int, bool]:
        """Open a ticket unless its idempotency key exists; return (id, created)."""
        stmt = self._insert(T).values(**row).on_conflict_do_nothing(index_elements=["idempotency_key"])
        created = self.conn.execute(stmt.returning(T.c.id)).scalar()
        if created is not None:
            return created, True
        return self.conn.execute(
            select(T.c.id).where(T.c.idempotency_key == row["idempotency_key"])
        ).scalar_one(), False

    def tickets(self) -> list[Row[Any]]:
        """Return every ticket, oldest first."""
        return list(self.conn.execute(select(T).order_by(T.c.id)))

    def insert_refund(self, row: dict[str, Any]) -> bool:
        """Record a refund request; False if that refund id was seen before."""
        stmt = self._insert(R).values(**row).on_conflict_do_nothing(index_elements=["refund_id"])
        return self.conn.execute(stmt.returning(R.c.id)).scalar() is not None

    def refund_only_of_orders(self, order_ids: Iterable[str]) -> list[Row[Any]]:
        """Return the refund-only requests of some orders, oldest first."""
        found: list[Row[Any]] = []
        for chunk in _chunks(sorted(set(order_ids))):
            stmt = select(R).where(R.c.order_id.in_(chunk), R.c.type == "refund_only")
            found.extend(self.conn.execute(stmt))
        return sorted(found, key=lambda r: r.id)

    def refund_seen(self, refund_id: str) -> bool:
        """Tell whether a refund id was recorded before."""
        return self.conn.execute(select(R.c.id).where(R.c.refund_id == refund_id)).first() is not None

    def freshness_of_order(self, order_id: str) -> list[Row[Any]]:
        """Return what tells how fresh each parcel of an order is: status, last poll, last event."""
        cols = (P.c.id, P.c.carrier, P.c.tracking_no, P.c.status, P.c.last_polled_at, P.c.last_event_at)
        return list(self.conn.execute(select(*cols).where(P.c.order_id == order_id).order_by(P.c.id)))

    def insert_intercept(self, row: dict[str, Any]) -> int | None:
        """Record an intercept decision for one parcel of one refund.

        Returns None, inserting nothing, when that refund already decided for the parcel or the
        parcel already has an open intercept (the partial unique index): the caller joins that one.
        """
        of_parcel = {  # the parcel's shop and carrier, kept on the row for the 拦截 filters (migration 0016)
            name: select(P.c[name]).where(P.c.id == row["parcel_id"]).scalar_subquery() for name in ("shop", "carrier")
        }
        stmt = self._insert(I).values(**(of_parcel | row)).on_conflict_do_nothing()
        return self.conn.execute(stmt.returning(I.c.id)).scalar()

    def open_intercept_of(self, parcel_id: int) -> Row[Any] | None:
        """Return the parcel's open intercept (held, requested, pending or accepted), if any."""
        stmt = select(I).where(I.c.parcel_id == parcel_id, I.c.state.in_(OPEN_INTERCEPT_STATES))
        return self.conn.execute(stmt.order_by(I.c.id).limit(1)).first()

    def next_intercept_attempt(self, parcel_id: int) -> int:
        """Return the number the parcel's next carrier call gets (1 for the first)."""
        stmt = select(func.max(I.c.attempt)).where(I.c.parcel_id == parcel_id, I.c.state.in_(CALLED_INTERCEPT_STATES))
        return (self.conn.execute(stmt).scalar() or 0) + 1

    def claim_stuck_intercepts(self, cutoff: datetime, now: datetime, limit: int = 500) -> list[Row[Any]]:
        """Mark intercepts waiting (requested/pending) since ``cutoff`` or before, not alerted yet; return them.

        An index range scan on (state, state_since); the conditional update makes each intercept
        claimed by exactly one watchdog run, with the parcel's keys for the alert.
        """
        waiting = and_(I.c.state.in_(("requested", "pending")), I.c.state_since <= cutoff)
        stmt = select(I.c.id).where(waiting, I.c.stuck_alerted_at.is_(None)).order_by(I.c.state_since).limit(limit)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(self.conn.execute(stmt).scalars())
        if not ids:
            return []
        claim = update(I).where(I.c.id.in_(ids), I.c.stuck_alerted_at.is_(None)).values(stuck_alerted_at=now)
        mine = list(self.conn.execute(claim.returning(I.c.id)).scalars())
        keys = (P.c.tracking_no, P.c.order_id)  # shop and carrier: the intercept's own (migration 0016)
        stmt = select(I, *keys).join(P, P.c.id == I.c.parcel_id).where(I.c.id.in_(mine)).order_by(I.c.id)
        return list(self.conn.execute(stmt)) if mine else []

    def release_stuck_alerts(self, ids: Sequence[int]) -> None:
        """Unmark intercepts whose stuck alert could not be sent, so the next run tries again."""
        if ids:
            self.conn.execute(update(I).where(I.c.id.in_(list(ids))).values(stuck_alerted_at=None))

    def requeue_intercepts(self, carrier: str, now: datetime) -> int:
        """Make the waiting intercept calls of a carrier due now (its credentials work again); return how many."""
        waiting = select(I.c.parcel_id).join(P, P.c.id == I.c.parcel_id)
        waiting = waiting.where(P.c.carrier == carrier, I.c.state == "requested")
        calls = and_(A.c.kind == "intercept", A.c.state.in_(("pending", "failed")), A.c.parcel_id.in_(waiting))
        stmt = update(A).where(calls)
        result = self.conn.execute(
            stmt.values(state="pending", attempts=0, next_attempt_at=now, lease_until=None, done_at=None)
        )
        return result.rowcount or 0

    def claim_carrier_alert(self, carrier: str, told: str, telling: str, at: datetime) -> bool:
        """Move a carrier's ``alerted`` from ``told`` to ``telling``; False if another sender did it first."""
        stmt = update(CH).where(CH.c.carrier == carrier, CH.c.alerted == told).values(alerted=telling, updated_at=at)
        return bool(self.conn.execute(stmt).rowcount)

    def intercepts_of_refund(self, refund_id: str) -> list[Row[Any]]:
        """Return the intercepts a refund caused."""
        return list(self.conn.execute(_INTERCEPTS_OF_REFUND, {"refund_id": refund_id}))

    def intercepts_of_parcel(self, parcel_id: int, state: str | None = None) -> list[Row[Any]]:
        """Return a parcel's intercepts, optionally only those in ``state``."""
        stmt = select(I).where(I.c.parcel_id == parcel_id).order_by(I.c.id)
        return list(self.conn.execute(stmt.where(I.c.state == state) if state else stmt))

    def open_intercepts(self, parcel_ids: Iterable[int]) -> list[Row[Any]]:
        """Return intercepts still waiting for the carrier's answer or the parcel's return."""
        found: list[Row[Any]] = []
        for chunk in _chunks(sorted(set(parcel_ids))):
            found.extend(self.conn.execute(_OPEN_INTERCEPTS, {"ids": chunk}))
        return found

    def update_intercept(self, intercept_id: int, **values: Any) -> None:
        """Change an intercept's state."""
        self.conn.execute(*set_values(_UPDATE_INTERCEPT, values, intercept_id=intercept_id))

    # -- ticket deadlines, sinks, reshipments, KPIs (monitor.tickets.sla/sinks/reshipment/kpis) --

    def overdue_tickets(self, now: datetime, limit: int = 500) -> list[Row[Any]]:
        """Return working tickets past their deadline and not alerted yet, with what their alert says.

        An index range scan on (state, due_at); the rows carry the parcel's keys, the anomaly's
        severity and the assignee's name and mobile (for the @-mention, never logged).
        """
        mark = TK.c.overdue_alerted_at.is_(None)
        return self._ticket_deadlines(and_(TK.c.due_at <= now, mark), limit)

    def escalations_due(self, cutoff: datetime, limit: int = 500) -> list[Row[Any]]:
        """Return alerted, not yet escalated working tickets whose deadline is ``cutoff`` or before."""
        marks = and_(TK.c.overdue_alerted_at.is_not(None), TK.c.escalated_at.is_(None))
        return self._ticket_deadlines(and_(TK.c.due_at <= cutoff, marks), limit)

    def _ticket_deadlines(self, where: Any, limit: int) -> list[Row[Any]]:
        stmt = (
            select(
                TK.c.id, TK.c.rule, TK.c.title, TK.c.state, TK.c.team, TK.c.due_at, TK.c.overdue_alerted_at,
                TK.c.created_at, TK.c.assignee_id, TK.c.stake_fen, TK.c.anomaly_id, TK.c.parcel_id,
                P.c.carrier, P.c.tracking_no, P.c.order_id, P.c.shop,
                func.coalesce(AN.c.severity, "warning").label("severity"),
                ACC.c.login.label("assignee_login"), ACC.c.display_name.label("assignee_name"),
                ACC.c.mobile.label("assignee_mobile"),
            )
            .join(P, P.c.id == TK.c.parcel_id)
            .outerjoin(AN, AN.c.id == TK.c.anomaly_id)
            .outerjoin(ACC, ACC.c.id == TK.c.assignee_id)
            .where(TK.c.state.in_(WORKING_TICKET_STATES), where)
            .order_by(TK.c.due_at, TK.c.id)
            .limit(limit)
        )  # fmt: skip
        return list(self.conn.execute(stmt))

    def mark_tickets(self, ids: Sequence[int], column: str, now: datetime) -> list[int]:
        """Set ``overdue_alerted_at`` or ``escalated_at`` where still unset; return the ids this call marked.

        The conditional update is the claim: of two replicas, each ticket's alert goes out from one.
        """
        if column not in ("overdue_alerted_at", "escalated_at") or not ids:
            return []
        col = TK.c[column]
        stmt = update(TK).where(TK.c.id.in_(list(ids)), col.is_(None)).values({column: now})
        return sorted(self.conn.execute(stmt.returning(TK.c.id)).scalars())

    def unmark_tickets(self, ids: Sequence[int], column: str) -> None:
        """Give back a mark whose alert could not be sent, so the next run tries again."""
        if column in ("overdue_alerted_at", "escalated_at") and ids:
            self.conn.execute(update(TK).where(TK.c.id.in_(list(ids))).values({column: None}))

    def add_ticket_event(self, row: dict[str, Any]) -> int:
        """Append one change to a ticket's history; return its id."""
        return int(self.conn.execute(TE.insert().values(**row).returning(TE.c.id)).scalar_one())

    def ticket_parcels(self, ticket_ids: Iterable[int]) -> dict[int, int]:
        """Return the parcel id of each ticket."""
        found: dict[int, int] = {}
        for chunk in _chunks(sorted(set(ticket_ids))):
            found.update({r.id: r.parcel_id for r in self.conn.execute(select(TK.c.id, TK.c.parcel_id).where(
                TK.c.id.in_(chunk)))})  # fmt: skip
        return found

    def ticket_event_snapshot(self, event_id: int) -> Row[Any] | None:
        """Return one ticket event with its ticket and the parcel's keys (what a sink is sent)."""
        stmt = (
            select(
                TE.c.id.label("event_id"), TE.c.at, TE.c.actor, TE.c.kind, TE.c.from_value, TE.c.to_value,
                TE.c.body, TK, P.c.tracking_no, P.c.order_id, ACC.c.login.label("assignee_login"),
            )
            .join(TK, TK.c.id == TE.c.ticket_id)
            .join(P, P.c.id == TK.c.parcel_id)
            .outerjoin(ACC, ACC.c.id == TK.c.assignee_id)
            .where(TE.c.id == event_id)
        )  # fmt: skip
        return self.conn.execute(stmt).first()

    def account_by_login(self, login: str) -> Row[Any] | None:
        """Return an enabled account's id, name and mobile by login (a team lead for an escalation)."""
        cols = (ACC.c.id, ACC.c.login, ACC.c.display_name, ACC.c.mobile)
        return self.conn.execute(select(*cols).where(ACC.c.login == login.lower(), ACC.c.disabled.is_(False))).first()

    def parcel_watched(self, carrier: str, tracking_no: str) -> Row[Any] | None:
        """Return the parcel already watched under (carrier, number), if any."""
        cols = (P.c.id, P.c.order_id, P.c.replaces_parcel_id)
        stmt = select(*cols).where(P.c.carrier == carrier, P.c.tracking_no == tracking_no)
        return self.conn.execute(stmt).first()

    def link_replacement(self, parcel_id: int, replaces_parcel_id: int) -> None:
        """Record that ``parcel_id`` was sent to replace ``replaces_parcel_id``."""
        self.conn.execute(update(P).where(P.c.id == parcel_id).values(replaces_parcel_id=replaces_parcel_id))

    def closed_tickets_between(self, start: datetime, end: datetime) -> list[Row[Any]]:
        """Return tickets closed in [start, end): rule, shop, carrier, outcome, opened and closed times."""
        cols = (TK.c.id, TK.c.rule, TK.c.shop, TK.c.carrier, TK.c.outcome, TK.c.state, TK.c.created_at, TK.c.closed_at)
        stmt = select(*cols).where(TK.c.closed_at >= start, TK.c.closed_at < end, TK.c.state.in_(CLOSED_TICKET_STATES))
        return list(self.conn.execute(stmt.order_by(TK.c.id)))

    def opened_tickets_between(self, start: datetime, end: datetime) -> list[Row[Any]]:
        """Return (rule, shop, carrier) of tickets opened in [start, end)."""
        cols = (TK.c.rule, TK.c.shop, TK.c.carrier)
        return list(self.conn.execute(select(*cols).where(TK.c.created_at >= start, TK.c.created_at < end)))

    def overdue_ticket_counts(self, now: datetime) -> list[Row[Any]]:
        """Return (rule, shop, carrier, count) of working tickets past their deadline at ``now``."""
        stmt = (
            select(TK.c.rule, TK.c.shop, TK.c.carrier, func.count().label("n"))
            .where(TK.c.state.in_(WORKING_TICKET_STATES), TK.c.due_at <= now)
            .group_by(TK.c.rule, TK.c.shop, TK.c.carrier)
        )
        return list(self.conn.execute(stmt))

    # -- activity -------------------------------------------------------------------------

    def record(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append to the activity log; ``data`` is stored as JSON, with who did it during an API request."""
        if rows:
            self.conn.execute(_RECORD, _activity_rows(rows))

    def record_set(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append to the activity log as :meth:`record` does, in one ``INSERT … SELECT`` (the sweep's path)."""
        if rows:
            self._insert_rows(ACT, _activity_rows(rows))

    def activity_after(self, last_id: int, limit: int = 10_000) -> list[Row[Any]]:
        """Return activity newer than ``last_id``, in order."""
        return list(self.conn.execute(_ACTIVITY_AFTER, {"last_id": last_id, "limit": limit}))

    # -- reports --------------------------------------------------------------------------

    def pickup_counts(self, until: datetime) -> tuple[int, int]:
        """Return (due for pickup by ``until``, picked up by their deadline) over all parcels."""
        due = or_(P.c.pickup_deadline <= until, P.c.picked_up_at.is_not(None))
        total = self.conn.execute(select(func.count()).where(due, P.c.held.is_(False))).scalar_one()
        on_time = self.conn.execute(
            select(func.count()).where(
                P.c.picked_up_at.is_not(None), P.c.picked_up_at <= P.c.pickup_deadline, P.c.held.is_(False)
            )
        ).scalar_one()
        return total, on_time
