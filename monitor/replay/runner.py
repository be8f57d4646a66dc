"""Run a parsed scenario through the real :class:`~monitor.service.Monitor` on simulated time.

Lines at a moment are applied before the sweep of that moment, and the sweep runs at every
whole minute at which something is due — exactly what the daemon's one-minute sweep would
do, but skipping the minutes where nothing happens.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO

import structlog
from sqlalchemy import Engine, event, func, select

from carriers.model import RETURN_STATUSES, Status
from carriers.sandbox import SandboxCarrier
from monitor.alerts.channels.console import RecordingChannel
from monitor.clock import SimulatedClock
from monitor.kpi.watch import ForecastWatch
from monitor.norms.model import NormBook
from monitor.replay.scenario import Step, Survey, Verdict
from monitor.rules.engine import PROBLEM_STATUSES, TIME_RULES, state_of
from monitor.rules.ruleset import RuleSet
from monitor.rules.timeline import DEADLINE_COLUMNS, fold
from monitor.service import Monitor
from monitor.store.db import make_engine, upgrade
from monitor.store.models import Action, Notification, Parcel, Refund
from monitor.store.store import Store, UnitOfWork
from monitor.store.types import UTCDateTime
from monitor.tickets.sla import SlaSettings, SlaWatch

MINUTE = timedelta(minutes=1)
_TICK = timedelta(microseconds=1)  # the first moment after another (times are kept to the microsecond)
LEAD_KEYS = ("at", "event", "carrier", "tracking_no", "order_id")
#: Lines at most in one batch (one transaction).
BATCH = 512
#: Transactions per commit of a scratch file (``_KeptConnection``).
GROUP = 64
#: Statuses that open anomalies when a parcel moves to them: such a line is not batched.
TROUBLE = frozenset({*(Status(s) for s in PROBLEM_STATUSES), *RETURN_STATUSES})
#: Intercept states that a delivery or return scan moves on (``InterceptService.follow``).
OPEN_INTERCEPTS = frozenset({"requested", "pending", "accepted"})
#: The table a writing statement names first (``?`` when it cannot be told: then it may be any).
WRITES = re.compile(r"\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)
#: Tables whose rows the outbox run and the alert flush act on.
QUEUES = frozenset({"action", "notification", "?"})
_P, _A, _N = Parcel.__table__, Action.__table__, Notification.__table__  # type: ignore[attr-defined]
#: ``UnitOfWork.due_moments`` as one statement built once: replay asks after every step that acts
#: (thousands of times a month), and a statement built per call costs more to build and cache-key
#: than to run. Each deadline column's MIN, then the earliest pending attempt, notification and
#: repeat; then what else the outbox and the flush claim: running actions' and sending notices' leases.
_DUE = select(
    *(select(func.min(_P.c[c])).scalar_subquery() for c in DEADLINE_COLUMNS),
    select(func.min(_A.c.next_attempt_at)).where(_A.c.state == "pending").scalar_subquery(),
    select(func.min(_N.c.due_at)).where(_N.c.state == "pending").scalar_subquery(),
    select(func.min(_N.c.repeat_due_at)).where(_N.c.repeat_due_at.is_not(None)).scalar_subquery(),
    select(func.min(_A.c.lease_until)).where(_A.c.state == "running").scalar_subquery(),
    select(func.min(_N.c.due_at)).where(_N.c.state == "sending").scalar_subquery(),
)
_DEADLINES = len(DEADLINE_COLUMNS)
_ANY_REFUND = select(select(Refund.__table__.c.id).limit(1).exists())  # type: ignore[attr-defined]
_TIME = UTCDateTime()
_encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(…, ensure_ascii=False), one encoder for every line
_rules_log = structlog.get_logger("monitor.rules")


def _key(step: Step) -> tuple[str, str]:
    return (step.payload.carrier, step.payload.tracking_no)


def _earliest(columns: Mapping[str, Any]) -> datetime | None:
    """Return the earliest deadline a parcel's columns arm."""
    return min((columns[c] for c in DEADLINE_COLUMNS if columns.get(c) is not None), default=None)


def _intercept_acts(state: str | None, status: Status) -> bool:
    """Tell whether a scan in ``status`` likely moves the parcel's intercept in ``state`` (a guess; writes decide).

    A held parcel picked up is intercepted; an intercept under way ends when the parcel is
    delivered or returns. A finished one (failed, succeeded, rejected) is not moved by scans.
    """
    if state == "held":
        return True
    return state in OPEN_INTERCEPTS and (status is Status.DELIVERED or status in RETURN_STATUSES)


def ceil_minute(moment: datetime) -> datetime:
    """Return the first whole minute at or after ``moment``."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


class _ReplayClock(SimulatedClock):
    """The simulated clock, which a rolled-back batch also winds back to where the batch began."""

    def rewind(self, moment: datetime) -> None:
        """Go back to ``moment``, with the transaction that moved past it undone."""
        self._now = moment


class _Retry(Exception):
    """A speculative batch must be rolled back and run shorter: only its first ``keep`` lines."""

    def __init__(self, keep: int) -> None:
        super().__init__(keep)
        self.keep = keep


class _Planned:
    """A batch's transaction that answers again, from memory, what planning the batch read in it.

    Planning read the batch's parcels (``asked``: those not found did not exist) and saw no
    active anomaly on them; the shipments then ask which are known, ingest looks the parcels up
    again and the rules ask for their active anomalies: in the same transaction, with nothing
    written to those rows in between (shipments are inserted only when new, and a key inserted
    is asked of the database again), so the answers are the same. Only on SQLite, where
    ``for_update`` locks nothing; and an anomaly question after anything was written while the
    rules looked (the batch is then rolled back anyway) goes to the database.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        asked: set[tuple[str, str]],
        parcels: Mapping[tuple[str, str], Any],
        quiet: set[int],
        wrote: Callable[[], bool],
    ) -> None:
        self._uow = uow
        self._asked = asked
        self._parcels = parcels
        self._quiet = quiet
        self._wrote = wrote
        self._inserted: set[tuple[str, str]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow, name)

    def parcels_by_keys(
        self, keys: Iterable[tuple[str, str]], *, for_update: bool = False
    ) -> dict[tuple[str, str], Any]:
        """The parcels planning read, when it read them all (``UnitOfWork.parcels_by_keys``)."""
        keys = list(keys)
        if all(k in self._parcels or (k in self._asked and k not in self._inserted) for k in keys):
            return {k: self._parcels[k] for k in keys if k in self._parcels}
        return self._uow.parcels_by_keys(keys, for_update=for_update)

    @contextmanager
    def looking_up_parcels(
        self, keys: Iterable[tuple[str, str]], *, for_update: bool = False
    ) -> Iterator[dict[tuple[str, str], Any]]:
        """Ingest's lookup (``UnitOfWork.looking_up_parcels``), answered by :meth:`parcels_by_keys`."""
        yield self.parcels_by_keys(keys, for_update=for_update)

    def insert_parcels(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert shipments (``UnitOfWork.insert_parcels``); their keys are asked of the database from now on."""
        self._inserted.update((r["carrier"], r["tracking_no"]) for r in rows)
        self._uow.insert_parcels(rows)

    def active_anomalies(self, parcel_ids: Iterable[int], rules: Iterable[str] | None = None) -> list[Any]:
        """None for parcels planning saw without one, unless something was written since (``UnitOfWork``'s)."""
        ids = set(parcel_ids)
        if ids <= self._quiet and not self._wrote():
            return []
        return self._uow.active_anomalies(ids, rules)


class Replay:
    """One scenario run: its clock, its database, its scripted carriers and recorders.

    Lines are streamed. Runs of shipment and tracking lines that fall before the next due moment
    are applied as one batch, in one transaction (one lookup, one insert, one update), when
    that is provably the same as applying them one by one: nothing falls due between them,
    and the rules, intercepts and refunds they reach write nothing (no anomaly opened or
    resolved, nothing queued), so running the outbox after each would have done nothing.
    A batch that turns out otherwise is rolled back and run shorter, down to the one line
    that acts, which runs alone as before. The next due moment is kept, not queried per line.
    """

    def __init__(
        self,
        steps: Iterable[Step],
        rules: RuleSet,
        channels: Sequence[str],
        store: Store,
        out: TextIO,
        alerting: Mapping[str, Any] | None = None,
        sla: SlaSettings | None = None,
        survey: Survey | None = None,
        progress: Callable[[int], None] | None = None,
        batching: bool = True,
        norms: NormBook | None = None,
        forecast: Callable[[str], float] | None = None,
    ):
        """``sla`` (``[tickets.sla]``): also tell of overdue tickets at their minute, as the daemon's job does.

        ``norms``: route norms learned before the run (``--learn-from``, ``--warmup-until``): slow_for_route fires.

        ``forecast`` (each shop's pickup-rate target, ``--forecast``): project the pickup rate at
        every whole hour, as the daemon's hourly job does, and tell of ``pickup_rate_forecast``
        crossings (local days in the scenario's own offset).

        ``survey``: the checking pass over a streamed file (without it ``steps`` is read whole
        here); ``progress(lines)`` is told how many more lines were played; ``batching=False``
        plays every line alone (the same output, slower: tests compare the two).
        """
        if survey is None:
            steps = list(steps)
            survey = Survey()
            for step in steps:
                survey.add(step)
        if survey.first is None:
            raise ValueError("the scenario has no lines")
        self.steps = steps
        self.out = out
        self.display_tz: tzinfo = survey.first.offset
        self.clock = _ReplayClock(survey.first.at)
        self.carriers = {code: SandboxCarrier(self.clock) for code in sorted(survey.carriers)}
        for carrier, tracking_no in sorted(survey.verdicts):
            self.carriers[carrier].expect_verdict_later(tracking_no)
        recorders = {name: RecordingChannel(name) for name in channels}
        self.monitor = Monitor(store, rules, self.clock, self.carriers, recorders, **(alerting or {}), norms=norms)
        self.store = store
        self.sla = None
        if sla is not None:
            n = self.monitor.notifier
            self.sla = SlaWatch(store, self.clock, sla, n.channels, n.route, n.quiet_hours)
            self.monitor.tickets.deadline = sla.due  # new and reopened tickets get their deadline
        self.forecast: ForecastWatch | None = None
        self._next_forecast: datetime | None = None
        if forecast is not None:
            n = self.monitor.notifier
            self.forecast = ForecastWatch(store, self.clock, self.display_tz, forecast, n.channels, n.route,
                                          n.quiet_hours)  # fmt: skip
            self._next_forecast = _next_hour(survey.first.at)
        self.counts: Counter[str] = Counter()
        self.rule_counts: Counter[str] = Counter()
        self._last_activity = 0
        self._progress = progress
        #: Batches need a next due moment that only writes we see can move: no SLA watch (its
        #: moment moves with quiet hours).
        self._batching = batching and self.sla is None and self.forecast is None
        self._due: datetime | None = None  # the earliest rule deadline, outbox attempt or notification
        self._due_send: datetime | None = None  # the earliest outbox attempt or notification
        self._claim_action: datetime | None = None  # when the outbox run first has something to claim
        self._claim_notice: datetime | None = None  # when the alert flush first has something to claim
        self._fresh = False  # the two were read from the store after the last write
        self._writes = 0
        self._watching = False
        #: Tables written since it was last cleared: the outbox run and the flush after a line are
        #: skipped when that line queued nothing and printed nothing.
        self._written: set[str] = set()
        #: Lines found to act (planning stopped at them): played alone without another planning round.
        self._acting: set[int] = set()
        #: The orders of the refund lines played, when the database held no refund before: new
        #: shipments of other orders have no refund to follow (None: ask the database each time).
        self._refunded: set[str] | None = None
        self._flushed = False  # the first flush prints what a database replayed into before holds
        event.listen(store.engine, "before_cursor_execute", self._saw)

    def _saw(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        """Note the tables written; count statements that write while the rules and intercepts look at a batch."""
        head = statement.lstrip()[:9].upper()
        if head.startswith(("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN")):
            return  # reads, and the grouped commits' own statements (_KeptConnection)
        found = WRITES.match(statement)
        self._written.add(found.group(1).lower() if found else "?")
        if self._watching:
            self._writes += 1

    def close(self) -> None:
        """Stop listening to the store's statements."""
        event.remove(self.store.engine, "before_cursor_execute", self._saw)

    async def run(self) -> None:
        """Play every line, firing time-driven rules in between, up to the ``end`` line."""
        self._requery()
        with self.store.begin() as uow:
            self._refunded = None if uow.conn.execute(_ANY_REFUND).scalar() else set()
        lines = iter(self.steps)
        held: list[Step] = []  # lines read ahead that the last batch could not take
        while True:
            step = held.pop(0) if held else next(lines, None)
            if step is None:
                break
            if step.kind == "end":
                await self._run_until(step.at, inclusive=True)
                self._tell(1)
                break
            if self._alone(step):
                await self._exactly(step)
                continue
            if not self._fits([], step) and (self._fresh or not self._requeried_fits(step)):
                if not self._batching or step.kind not in ("shipment", "tracking"):
                    await self._exactly(step)
                    continue
                # Something falls due first: sweep up to the line, then try it in a batch after all.
                await self._run_until(step.at, inclusive=False)
                if not self._fits([], step):
                    await self._exactly(step, swept=True)
                    continue
            batch = [step]
            keys = {_key(step)}
            while len(batch) < BATCH:
                following = held.pop(0) if held else next(lines, None)
                if following is None:
                    break
                if not self._fits(batch, following) or _key(following) in keys or self._alone(following):
                    held.insert(0, following)
                    break
                batch.append(following)
                keys.add(_key(following))
            while batch:
                applied, retry = self._quietly(batch)
                if applied:
                    held[:0] = batch[applied:]
                    break
                if retry == 0:  # the first line acts: it runs alone, the rest waits its turn
                    held[:0] = batch[1:]
                    await self._exactly(batch[0])
                    break
                held[:0] = batch[retry:]
                batch = batch[:retry]

    def _alone(self, step: Step) -> bool:
        """Tell whether ``step`` is known to act (a planning round stopped at it, or trouble): it plays alone."""
        if step.line in self._acting:
            return True
        return self._batching and step.kind == "tracking" and step.payload.status in TROUBLE

    def _requeried_fits(self, step: Step) -> bool:
        """Read the next due moments again (batches re-arm deadlines, so ours may be early) and check ``step``."""
        if not self._batching or step.kind not in ("shipment", "tracking"):
            return False
        self._requery()
        return self._fits([], step)

    def _fits(self, batch: Sequence[Step], step: Step) -> bool:
        """Tell whether ``step`` may join ``batch``: as far as is known now, nothing falls due before it."""
        if not self._batching or step.kind not in ("shipment", "tracking"):
            return False
        if step.kind == "tracking" and self._due_send is not None and self._due_send <= step.at:
            return False
        now = batch[-1].at if batch else self.clock.now()
        return self._due is None or ceil_minute(max(self._due, now)) >= step.at

    def _quietly(self, batch: Sequence[Step]) -> tuple[int, int]:
        """Apply a first part of ``batch`` in one transaction if it acts on nothing; return (applied, retry).

        ``applied`` lines went in. None did (the transaction rolled back): the first ``retry``
        are known to be quiet and are tried again alone; ``retry`` 0: the first line acts.
        """
        start = self.clock.now()
        self._written.clear()
        try:
            with self.store.begin() as uow:
                keep, due, planned = self._plan(uow, batch)
                if keep == 0:
                    raise _Retry(0)
                batch = batch[:keep]
                self._write(planned, batch)
        except _Retry as retry:
            self.clock.rewind(start)
            return 0, retry.keep
        self._due, self._fresh = due, False
        self.clock.set(batch[-1].at)
        if not self._flushed or self._written & {"activity", "?"}:
            self._flush()  # a database replayed into before prints its rows at the first flush, as it always did
        self._tell(len(batch))
        return len(batch), 0

    def _plan(self, uow: UnitOfWork, batch: Sequence[Step]) -> tuple[int, datetime | None, Any]:
        """Return how many first lines of ``batch`` may go in together, the next due moment after them, and the uow.

        The uow returned answers again what this read (:class:`_Planned`, on SQLite).

        Reads only. A line stops the batch when something falls due before it (a deadline an
        earlier line armed), or when it looks likely to act (its parcel has an open anomaly or
        an intercept, or the carrier reports trouble or a return): that line is then tried first
        in the next batch, or alone. What the rules really do is checked when the batch is written.
        """
        asked = {_key(s) for s in batch}
        parcels = uow.parcels_by_keys(asked)  # shipments too: _write asks which are known
        active = {a.parcel_id for a in uow.active_anomalies([p.id for p in parcels.values()])} if parcels else set()
        planned: Any = uow
        if uow.dialect == "sqlite":
            quiet = {p.id for p in parcels.values()} - active
            planned = _Planned(uow, asked, parcels, quiet, lambda: bool(self._writes))
        due, before = self._due, self.clock.now()
        for i, step in enumerate(batch):
            if i and due is not None and ceil_minute(max(due, before)) < step.at:
                return i, due, planned
            armed = None
            if step.kind == "shipment":
                armed = _earliest(self.monitor.shipments.row(step.payload))
            else:
                p = parcels.get(_key(step))
                if p is not None:
                    if (
                        p.id in active
                        or _intercept_acts(p.intercept_state, step.payload.status)
                        or step.payload.status in TROUBLE
                    ):
                        self._acting.add(step.line)
                        return i, due, planned
                    old = state_of(p)
                    new = fold(old, [step.payload])
                    if new != old:
                        armed = _earliest(self.ingestor.columns(p, new))
            if armed is not None:
                due = armed if due is None else min(due, armed)
            before = step.at
        return len(batch), due, planned

    def _write(self, uow: Any, batch: Sequence[Step]) -> None:
        """Write a batch's shipments and events; raise _Retry if rules, intercepts or refunds act on them."""
        rows = []
        for step in batch:
            if step.kind == "shipment":
                self.clock.set(step.at)  # the row's own times, as if it came alone
                rows.append(self.monitor.shipments.row(step.payload))
        known = uow.parcels_by_keys((r["carrier"], r["tracking_no"]) for r in rows) if rows else {}
        uow.insert_parcels(rows)
        added = [r for r in rows if (r["carrier"], r["tracking_no"]) not in known]
        self.clock.set(batch[-1].at)
        result = self.ingestor.apply(uow, [s.payload for s in batch if s.kind == "tracking"])
        self._watching, self._writes = True, 0
        try:
            self.monitor.interceptor.follow(uow, result.changes)
            self.monitor.engine.on_changes(uow, result.changes)
            orders = {r["order_id"] for r in added}
            if orders and (self._refunded is None or orders & self._refunded):  # else it would find no refund
                self.monitor.interceptor.shipped_after_refund(uow, orders)
        finally:
            self._watching = False
        if self._writes:
            raise _Retry(len(batch) // 2)

    @property
    def ingestor(self) -> Any:
        """The monitor's ingestor."""
        return self.monitor.ingestor

    async def _exactly(self, step: Step, swept: bool = False) -> None:
        """Play one line alone: what falls due before it (unless ``swept``), the line, the outbox, its output.

        The outbox run after a tracking line and the flush of its output are skipped when the
        line wrote no action, notification or activity and nothing else is due now: they would
        have found nothing.
        """
        self._acting.discard(step.line)
        if not swept:
            await self._run_until(step.at, inclusive=False)
        self.clock.set(step.at)
        self._written.clear()
        await self._apply(step)
        self._settle(not self._flushed or bool(self._written & {"activity", "?"}))
        self._tell(1)

    def _tell(self, lines: int) -> None:
        if self._progress is not None:
            self._progress(lines)

    def _requery(self) -> None:
        """Read the next due moments from the store (after anything that may have moved them)."""
        with self.store.begin() as uow:
            self._read_due(uow)

    def _read_due(self, uow: UnitOfWork) -> None:
        """Read the next due moments in ``uow`` (what ``UnitOfWork.due_moments`` returns, prebuilt)."""
        self._fresh = True
        row = [_TIME.process_result_value(m, None) for m in uow.conn.execute(_DUE).one()]
        attempt, notice, repeat, lease, sending = row[_DEADLINES:]
        self._due = min((m for m in row[: _DEADLINES + 2] if m is not None), default=None)
        self._due_send = min((m for m in (attempt, notice, repeat) if m is not None), default=None)
        #: What the outbox would claim first (a pending attempt; a running lease ends *before* it is
        #: claimable again, so a moment just past it), and the flush (notice, lease end, repeat).
        claims = [attempt, lease + _TICK if lease is not None else None]
        self._claim_action = min((m for m in claims if m is not None), default=None)
        self._claim_notice = min((m for m in (notice, sending, repeat) if m is not None), default=None)
        if self.sla is not None:
            moments = [m for m in (self._due, self.sla.next_due(uow, self.clock.now())) if m is not None]
            self._due = min(moments, default=None)
        if self._next_forecast is not None:  # the forecast's next whole hour is due like a deadline
            self._due = min(m for m in (self._due, self._next_forecast) if m is not None)

    def _settle(self, flush: bool) -> None:
        """After a step: print its activity (when ``flush``) and read the next due moments, in one transaction.

        Both only read, so one transaction gives what the two did one after the other.
        """
        with self.store.begin() as uow:
            rows = uow.activity_after(self._last_activity) if flush else []
            self._read_due(uow)
        if flush:
            self._print(rows)

    def _sweep(self, now: datetime) -> None:
        """Fire the time-driven rules due at ``now``: ``RuleEngine.sweep``, but all its batches in one transaction.

        The daemon keeps a transaction per batch so that requests get the write lock in
        between; replay has no requests, and a sweep at every due minute of a month made
        six or more transactions each (one per rule even with nothing due).
        """
        engine = self.monitor.engine
        opened = 0
        with self.store.begin() as uow:
            for rule, column in TIME_RULES:
                while (batch := engine.sweep_batch(uow, rule, column, now)) is not None:
                    opened += batch
        if opened:
            _rules_log.info("rules.swept", opened=opened, at=now.isoformat())

    async def _apply(self, step: Step) -> None:
        if step.kind == "shipment":
            self.monitor.add_shipments([step.payload])
        elif step.kind == "tracking":
            await self.monitor.ingest([step.payload], act=False)
            due = self._due_send is not None and self._due_send <= self.clock.now()
            if due or self._written & QUEUES or not self._batching:
                await self._run_actions()
        elif step.kind == "refund":
            if self._refunded is not None:
                self._refunded.add(step.payload.order_id)
            await self.monitor.refund(step.payload)
            await self._run_actions()
        elif step.kind == "intercept_result":
            v: Verdict = step.payload
            if not await self.monitor.intercept_verdict(v.carrier, v.tracking_no, v.answer):
                assert v.answer.accepted is not None
                self.carriers[v.carrier].stage_verdict(v.tracking_no, v.answer.accepted, v.answer.reason)

    async def _run_until(self, limit: datetime, inclusive: bool) -> None:
        """Sweep at each minute something falls due, up to ``limit`` (the daemon's sweep and dispatch, no waits)."""
        previous: datetime | None = None
        while True:
            if self.sla is not None:
                self._requery()  # the watch's moment moves with the clock (quiet hours)
            due = self._due
            if due is None:
                return
            moment = ceil_minute(max(due, self.clock.now()))
            if moment > limit or (moment == limit and not inclusive) or moment == previous:
                return
            self.clock.set(moment)
            self._written.clear()
            self._sweep(moment)
            sends = self._due_send is not None and self._due_send <= moment
            if sends or self._written & QUEUES or not self._batching:  # else the outbox and flush find nothing
                await self._run_actions()
            if self.sla is not None:
                await self.sla.run()
            if self.forecast is not None and self._next_forecast is not None and moment >= self._next_forecast:
                await self.forecast.run()
                self._next_forecast = _next_hour(moment)
            self._settle(not self._flushed or bool(self._written & {"activity", "?"}))
            previous = moment

    async def _run_actions(self) -> None:
        """``Monitor.run_actions`` (the outbox, then the alert flush), each skipped when it would claim nothing.

        The last next-due read gave the first moments either could claim something, and every
        write since is in ``_written``: nothing written to its table and nothing claimable by
        now means its claim would find nothing. An empty claim costs two ORM-built statements
        and a transaction, and most runs after a line find one side empty (a notice fell due,
        or the alerts just queued wait their group_wait). Line by line (``batching=False``)
        plays as the daemon does, unskipped: tests compare the two.
        """
        if not self._batching:
            await self.monitor.run_actions()
            return
        now = self.clock.now()
        if self._written & {"action", "?"} or (self._claim_action is not None and self._claim_action <= now):
            await self.monitor.dispatcher.run()
        if self._written & {"notification", "?"} or (self._claim_notice is not None and self._claim_notice <= now):
            await self.monitor.notifier.flush()

    def _flush(self) -> None:
        with self.store.begin() as uow:
            rows = uow.activity_after(self._last_activity)
        self._print(rows)

    def _print(self, rows: Sequence[Any]) -> None:
        """Print activity rows as scenario output lines, and count them."""
        self._flushed = True
        for row in rows:
            self._last_activity = row.id
            data: dict[str, Any] = json.loads(row.data)
            line = {"at": row.at.astimezone(self.display_tz).isoformat(), "event": row.event}
            line |= {k: data.pop(k, None) for k in LEAD_KEYS[2:]}
            line |= data
            self.counts[row.event] += 1
            if row.event == "anomaly_opened":
                self.rule_counts[data["rule"]] += 1
            self.out.write(_encode(line) + "\n")
        self.out.flush()

    def summary(self) -> dict[str, Any]:
        """Return counts per event and rule, and the scenario's 24-hour pickup rate."""
        with self.store.begin() as uow:
            due, on_time = uow.pickup_counts(self.clock.now())
        return {
            "summary": True,
            "events": dict(sorted(self.counts.items())),
            "rules": dict(sorted(self.rule_counts.items())),
            "pickup_due": due,
            "picked_up_on_time": on_time,
            "pickup_rate_24h": round(on_time / due, 4) if due else None,
        }


class _KeptConnection(Store):
    """Replay's store: every transaction on one connection kept open, not a pool checkout each.

    Replay is one thread and runs tens of thousands of short transactions; checking a
    connection out of the pool and back (with its reset) cost more than most of them. A
    transaction begun inside another (none of the code replay runs does that) gets a pooled
    connection of its own, as it always did.

    ``group`` > 1 (a scratch file that only this connection reads): each transaction is a
    savepoint of one SQLite transaction committed every ``group`` of them, so the pages most
    transactions touch (index roots, the tails of the event, activity and outbox tables) are
    written to the file once per group rather than at every commit — 250,000 commits were a
    tenth of a 100,000-parcel month. A transaction still ends as it did (released, or rolled
    back to its savepoint on error); what a crash loses is a scratch file deleted anyway.
    """

    def __init__(self, engine: Engine, group: int = 1) -> None:
        super().__init__(engine)
        self._kept = engine.connect()
        self._group = group
        self._open: Any = None  # the grouping transaction, while one is open
        self._released = 0  # savepoints released in it
        self._inside = False

    @contextmanager
    def begin(self) -> Iterator[UnitOfWork]:
        """Open a transaction on the kept connection; it commits when the block ends, rolls back on error."""
        if self._inside or (self._open is None and self._kept.in_transaction()):
            with super().begin() as uow:
                yield uow
            return
        self._inside = True
        try:
            if self._group <= 1:
                with self._kept.begin():
                    yield UnitOfWork(self._kept, self.dialect)
                return
            if self._open is None:
                self._open = self._kept.begin()
                # pysqlite opens SQLite's transaction only at a write: a savepoint outside one would
                # be a transaction of its own, committed by its release
                self._kept.exec_driver_sql("BEGIN")
            raw = self._kept.connection.driver_connection
            raw.execute("SAVEPOINT kept")  # the driver's: SQLAlchemy's savepoint cost more than the commit it saved
            try:
                yield UnitOfWork(self._kept, self.dialect)
            except BaseException:
                raw.execute("ROLLBACK TO kept")
                raw.execute("RELEASE kept")
                raise
            raw.execute("RELEASE kept")
        finally:
            self._inside = False
        self._released += 1
        if self._released >= self._group:
            self.commit()

    def commit(self) -> None:
        """Commit the grouping transaction, if one is open (before anything else reads the file)."""
        if self._open is not None:
            self._open.commit()
            self._open, self._released = None, 0

    def release(self) -> None:
        """Commit what is grouped and give the kept connection back (the engine is disposed by whoever made it)."""
        try:
            self.commit()
        finally:
            self._kept.close()


def _next_hour(moment: datetime) -> datetime:
    """Return the first whole hour after ``moment``."""
    return moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _scratch(dbapi_connection: Any, _record: Any) -> None:
    """A scratch file deleted at the end: no fsync per commit, the rollback journal in memory."""
    dbapi_connection.execute("PRAGMA synchronous=OFF")
    dbapi_connection.execute("PRAGMA journal_mode=MEMORY")
    dbapi_connection.execute("PRAGMA temp_store=MEMORY")
    dbapi_connection.execute("PRAGMA cache_size=-32768")


async def replay(
    steps: Iterable[Step],
    rules: RuleSet,
    out: TextIO,
    *,
    channels: Sequence[str] = ("console",),
    database_url: str | None = None,
    summary: bool = False,
    alerting: Mapping[str, Any] | None = None,
    sla: SlaSettings | None = None,
    survey: Survey | None = None,
    progress: Callable[[int], None] | None = None,
    batching: bool = True,
    norms: NormBook | None = None,
    forecast: Callable[[str], float] | None = None,
) -> Mapping[str, Any]:
    """Replay ``steps`` into ``out``; a fresh SQLite file unless ``database_url`` is given.

    With ``survey`` (the checking pass, :func:`monitor.replay.scenario.survey`) ``steps`` may be
    a stream read once; ``progress(lines)`` hears of every line played.
    """
    with tempfile.TemporaryDirectory(prefix="parcel-monitor-replay-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'replay.db'}"
        engine = make_engine(url)
        if database_url is None:  # a scratch file, deleted at the end: no fsync per commit
            event.listen(engine, "connect", _scratch)
        try:
            upgrade(engine)
            # grouped commits only in a scratch file that nothing but the kept connection reads (the SLA
            # watch and the forecast open connections of their own)
            alone = database_url is None and sla is None and forecast is None
            store = _KeptConnection(engine, group=GROUP if alone else 1)
            try:
                run = Replay(steps, rules, channels, store, out, alerting, sla, survey, progress, batching, norms,
                             forecast)  # fmt: skip
                try:
                    await run.run()
                finally:
                    run.close()
                result = run.summary()
            finally:
                store.release()
            if summary:
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            return result
        finally:
            engine.dispose()
