"""The rule engine: time-driven rules as indexed sweeps, event-driven rules on each change.

Opening an anomaly, recording it and queueing its actions happen in one transaction, so
an anomaly is never opened without its ticket and alert on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from carriers.model import RETURN_STATUSES, Status
from monitor.clock import Clock
from monitor.rules.ruleset import RuleSet
from monitor.rules.timeline import ParcelState
from monitor.store.store import Store, UnitOfWork

log = structlog.get_logger("monitor.rules")

#: Time-driven rules and the deadline column each one sweeps, in evaluation order.
TIME_RULES = (
    ("pickup_overdue", "pickup_due"),
    ("pickup_at_risk", "pickup_risk_due"),
    ("lost_suspected", "lost_due"),
    ("stalled", "stall_due"),
    ("delivery_overdue", "delivery_due"),
    ("slow_for_route", "slow_due"),
)
PROBLEM_STATUSES = {Status.EXCEPTION.value, Status.DELIVERY_FAILED.value}
SEVERE_REASONS = {"lost", "damaged"}
OUR_INTERCEPT = {"requested", "pending", "accepted", "succeeded"}
#: A sweep opens no anomaly of the rule for a parcel with one of these active (overdue: at risk says nothing new).
SUPPRESSED_BY = {"pickup_at_risk": ("pickup_overdue",)}
#: Parcels a sweep batch (one transaction) takes, by backend. On PostgreSQL bigger batches held refunds
#: behind them without making the sweep faster: at 1M, B1 took 5.2 / 5.1 s at 200 / 500 a batch, and B4's
#: p99 during the sweep was 143 / 191 ms at 200 / 500 (2026-12-02; 184 / 160 / 323 ms at 200 / 500 / 1,000
#: on an earlier machine). On SQLite a batch's commit writes each page it dirtied to the WAL, scattered
#: parcel pages most of all, so fewer batches write fewer pages: B1 at 1M 0.82 → 0.79 s, B4's p99
#: during the sweep 139 → 163 ms at 200 → 500.
SWEEP_BATCHES = {"sqlite": 500}
SWEEP_BATCH = 200
#: What the engine tells about anomalies it resolved: (uow, the anomaly rows, resolution).
OnResolved = Callable[[UnitOfWork, Sequence[Any], str], None]


@dataclass(frozen=True, slots=True)
class Change:
    """A parcel whose state moved because of new carrier events."""

    parcel: Any  # the parcel row before the change
    old: ParcelState
    new: ParcelState


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule that should open an anomaly for a parcel."""

    parcel: Any
    rule: str
    detail: str = ""


def parcel_keys(parcel: Any) -> dict[str, Any]:
    """Return the keys every activity line carries."""
    return {"carrier": parcel.carrier, "tracking_no": parcel.tracking_no, "order_id": parcel.order_id}


class RuleEngine:
    """Evaluate the rules of a :class:`RuleSet` against the store."""

    def __init__(self, store: Store, rules: RuleSet, clock: Clock, on_resolved: OnResolved | None = None) -> None:
        """``on_resolved(uow, anomalies, resolution)`` runs in each resolution's transaction (tickets close there)."""
        self.store = store
        self.rules = rules
        self.clock = clock
        self.on_resolved = on_resolved

    def sweep(self) -> int:
        """Fire every time-driven rule whose deadline has passed; return anomalies opened."""
        return sum(self.sweep_steps())

    def sweep_steps(self) -> Iterator[int]:
        """Sweep one batch per step (one transaction each), yielding anomalies opened per batch.

        The daemon awaits between steps, so a sweep that opens ten thousand anomalies never
        holds the event loop (and the refund webhook) for more than one batch.
        """
        now = self.clock.now()
        opened = 0
        for rule, column in TIME_RULES:
            while True:
                with self.store.begin() as uow:
                    batch = self.sweep_batch(uow, rule, column, now)
                if batch is None:
                    break
                opened += batch
                yield batch
        if opened:
            log.info("rules.swept", opened=opened, at=now.isoformat())

    async def sweep_off_loop(self) -> int:
        """Sweep like :meth:`sweep_steps`, each batch one transaction on the store's threads; return anomalies opened.

        The event loop only awaits: a sweep that opens thousands of anomalies never holds the
        refund webhook, and as a job its batches give way to requests' transactions.
        """
        now = self.clock.now()
        opened = 0
        for rule, column in TIME_RULES:

            def step(uow: UnitOfWork, rule: str = rule, column: str = column) -> int | None:
                return self.sweep_batch(uow, rule, column, now)

            while (batch := await self.store.transact(step, bulk=True)) is not None:
                opened += batch
        if opened:
            log.info("rules.swept", opened=opened, at=now.isoformat())
        return opened

    def sweep_batch(self, uow: UnitOfWork, rule: str, column: str, now: datetime) -> int | None:
        """Fire ``rule`` for one batch of parcels whose ``column`` deadline passed; None when none is left.

        Set-based, in the batch's one transaction: one read of the due parcels, one ``INSERT …
        SELECT … ON CONFLICT DO NOTHING RETURNING`` opening the anomalies, one statement each
        for their activity lines and outbox rows (built from what that RETURNING gave), and one
        ``UPDATE`` disarming the batch's deadlines — a handful of statements per batch whatever
        its size. Generic over :data:`TIME_RULES`: a new (rule, column) pair needs nothing here.
        """
        due = uow.claim_due_parcels(column, now, SWEEP_BATCHES.get(uow.dialect, SWEEP_BATCH))
        if not due:
            return None
        spec = self.rules.spec(rule)
        opened = 0
        if spec.enabled:
            at = self.clock.now()
            detail = "no_update" if column in ("stall_due", "lost_due") else "deadline_passed"
            comp = spec.compensation.fen if spec.compensation else lambda _amount: None
            rows = [
                {
                    "parcel_id": r.id,
                    "severity": spec.severity,
                    "state": "open",
                    "compensation_fen": comp(r.amount_fen),
                    "detail": detail,
                    "opened_at": at,
                }
                for r in due
            ]
            ids = uow.open_due_anomalies(rule, rows, SUPPRESSED_BY.get(rule, ()))
            fresh = [(Firing(r, rule, detail), row, ids[r.id]) for r, row in zip(due, rows, strict=True) if r.id in ids]
            self._opened(uow, fresh, at)
            opened = len(fresh)
        uow.clear_deadline(column, [r.id for r in due])
        return opened

    def open(self, uow: UnitOfWork, firings: Sequence[Firing]) -> int:
        """Open anomalies (at most one active per parcel and rule), record them, queue actions."""
        firings = [f for f in firings if self.rules.spec(f.rule).enabled]
        if not firings:
            return 0
        now = self.clock.now()
        active = {(a.parcel_id, a.rule) for a in uow.active_anomalies({f.parcel.id for f in firings})}
        fresh: list[Firing] = []
        for f in firings:
            if (f.parcel.id, f.rule) not in active:
                active.add((f.parcel.id, f.rule))
                fresh.append(f)
        rows = []
        for f in fresh:
            spec = self.rules.spec(f.rule)
            comp = spec.compensation.fen(f.parcel.amount_fen) if spec.compensation else None
            rows.append(
                {
                    "parcel_id": f.parcel.id,
                    "rule": f.rule,
                    "severity": spec.severity,
                    "state": "open",
                    "compensation_fen": comp,
                    "detail": f.detail,
                    "opened_at": now,
                }
            )
        ids = uow.insert_anomalies(rows)
        self._opened(uow, list(zip(fresh, rows, ids, strict=True)), now)
        return len(fresh)

    def _opened(self, uow: UnitOfWork, fresh: Sequence[tuple[Firing, dict[str, Any], int]], now: datetime) -> None:
        """Record anomalies just opened (firing, anomaly row, id), queue their actions, resolve what they escalate."""
        if not fresh:
            return
        activity, actions = [], []
        escalated: list[int] = []
        slowed: list[int] = []
        for f, row, anomaly_id in fresh:
            comp = row["compensation_fen"]
            activity.append(
                {
                    "at": now,
                    "event": "anomaly_opened",
                    "parcel_id": f.parcel.id,
                    "data": parcel_keys(f.parcel)
                    | {
                        "rule": f.rule,
                        "severity": row["severity"],
                        "anomaly_id": anomaly_id,
                        "compensation": None if comp is None else comp / 100,
                    },
                }
            )
            for kind in self.rules.spec(f.rule).actions:
                actions.append(_action(kind, f.parcel.id, anomaly_id, f.rule, now))
            if f.rule == "pickup_overdue":
                escalated.append(f.parcel.id)
            if f.rule in ("stalled", "lost_suspected"):  # the fixed line took over from the learned warning
                slowed.append(f.parcel.id)
            log.info("anomaly.opened", rule=f.rule, anomaly_id=anomaly_id, **parcel_keys(f.parcel))
        uow.record_set(activity)
        uow.enqueue_set(actions)
        if escalated:
            self.resolve(uow, uow.active_anomalies(escalated, ["pickup_at_risk"]), "escalated")
        if slowed:
            self.resolve(uow, uow.active_anomalies(slowed, ["slow_for_route"]), "escalated")

    def resolve(self, uow: UnitOfWork, anomalies: Sequence[Any], resolution: str) -> None:
        """Resolve anomalies and record it."""
        if not anomalies:
            return
        now = self.clock.now()
        uow.resolve_anomalies([a.id for a in anomalies], now, resolution)
        parcels = uow.parcels_by_ids(a.parcel_id for a in anomalies)
        uow.record(
            [
                {
                    "at": now,
                    "event": "anomaly_resolved",
                    "parcel_id": a.parcel_id,
                    "data": parcel_keys(parcels[a.parcel_id])
                    | {"rule": a.rule, "anomaly_id": a.id, "resolution": resolution},
                }
                for a in anomalies
            ]
        )
        uow.enqueue(
            [
                _action("alert_resolved", a.parcel_id, a.id, a.rule, now)
                for a in anomalies
                if "alert" in self.rules.spec(a.rule).actions
            ]
        )
        if self.on_resolved is not None:
            self.on_resolved(uow, anomalies, resolution)
        for a in anomalies:
            log.info("anomaly.resolved", rule=a.rule, anomaly_id=a.id, resolution=resolution)

    def on_changes(self, uow: UnitOfWork, changes: Sequence[Change]) -> None:
        """Resolve anomalies whose condition cleared, then fire event-driven rules."""
        if not changes:
            return
        by_parcel = {c.parcel.id: c for c in changes}
        cleared = [a for a in uow.active_anomalies(by_parcel) if _cleared(a.rule, by_parcel[a.parcel_id])]
        self.resolve(uow, cleared, "auto")
        firings: list[Firing] = []
        for c in changes:
            new, old = c.new, c.old
            moved = (new.status, new.exception_reason) != (old.status, old.exception_reason)
            if not moved:
                continue
            if new.status in PROBLEM_STATUSES:
                firings.append(Firing(c.parcel, "carrier_exception", new.exception_reason or new.status))
                if new.exception_reason in SEVERE_REASONS:
                    firings.append(Firing(c.parcel, "lost_suspected", new.exception_reason or ""))
            if new.status in RETURN_STATUSES and (c.parcel.intercept_state or "") not in OUR_INTERCEPT:
                firings.append(Firing(c.parcel, "returned", new.status))
        self.open(uow, firings)


def _action(kind: str, parcel_id: int, anomaly_id: int, rule: str, now: Any) -> dict[str, Any]:
    """Return the outbox row of one action an anomaly causes."""
    return {
        "idempotency_key": f"{kind}:anomaly:{anomaly_id}",
        "kind": kind,
        "parcel_id": parcel_id,
        "anomaly_id": anomaly_id,
        "rule": rule,
        "next_attempt_at": now,
        "created_at": now,
    }


def _cleared(rule: str, c: Change) -> bool:
    """Tell whether the condition behind an active anomaly no longer holds."""
    new, old = c.new, c.old
    advanced = new.last_event_at is not None and (old.last_event_at is None or new.last_event_at > old.last_event_at)
    if rule in ("pickup_at_risk", "pickup_overdue"):
        return new.picked_up_at is not None
    if rule in ("stalled", "slow_for_route"):
        return advanced
    if rule == "lost_suspected":
        return advanced and not (new.status == Status.EXCEPTION and new.exception_reason in SEVERE_REASONS)
    if rule == "carrier_exception":
        return new.status not in PROBLEM_STATUSES
    if rule == "delivery_overdue":
        return new.status == Status.DELIVERED
    return False


def state_of(parcel: Any) -> ParcelState:
    """Read the carrier-derived state off a parcel row."""
    return ParcelState(
        status=parcel.status,
        status_code=parcel.status_code,
        exception_reason=parcel.exception_reason,
        last_event_at=parcel.last_event_at,
        picked_up_at=parcel.picked_up_at,
        delivered_at=parcel.delivered_at,
    )
