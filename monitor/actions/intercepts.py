"""Refund-only interception: hold, intercept or say there is nothing to do — then follow up.

Not yet picked up → hold the shipment (a ticket to the warehouse). Picked up and not
delivered → ask the carrier to intercept at once, then follow the parcel until it heads
back (success) or is delivered anyway (failure). Delivered → nothing to intercept.

An intercept belongs to the parcel, not to the refund: a parcel has at most one open
intercept (held, requested, pending, accepted), and a later refund of the same order
*joins* it (a ``joined`` row, no second carrier call, no second ticket). The carrier call's
outbox key is the parcel and the attempt, so no refund id can make it a second call.

What the carrier answered decides, and only that: an explicit refusal is a rejection; an
answer we cannot read is an unknown outcome, retried under the same key (the carrier
dedupes by request id); a repeated-request answer (SF A1007) means the first request
arrived, so the intercept is pending and the parcel is polled at once and followed.
Rejected credentials pause the carrier (one operator alert, :mod:`monitor.polling.health`);
the intercept stays requested and resumes once a call succeeds again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from carriers.adapter import SupportsIntercept, SupportsInterceptStatus
from carriers.errors import CarrierAuthError, CarrierError, CarrierResponseError
from carriers.model import RETURN_STATUSES, InterceptResult, ParcelRef, Status
from monitor.actions.outbox import DONE, Outcome, retry
from monitor.clock import Clock
from monitor.intake.ingest import Ingestor
from monitor.rules.engine import Change, Firing, RuleEngine, parcel_keys, state_of
from monitor.store.store import Store, UnitOfWork

if TYPE_CHECKING:  # monitor.polling imports the service, which imports this module
    from monitor.polling.health import HealthBook

log = structlog.get_logger("monitor.intercepts")

REFUND_TYPES = ("refund_only", "return_and_refund")


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """A buyer's refund as the platform reports it."""

    refund_id: str
    order_id: str
    type: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What was decided for one parcel of a refund."""

    carrier: str
    tracking_no: str
    decision: str  # held | requested | joined | skipped | pending | accepted | rejected | failed | ...
    reason: str = ""


def intercept_key(parcel_id: int, attempt: int) -> str:
    """Return the outbox key of a parcel's carrier call: the parcel and the attempt, never a refund id."""
    return f"intercept:parcel:{parcel_id}:{attempt}"


class Interceptor:
    """Turn refund-only requests into holds and carrier intercepts, and see them through."""

    def __init__(
        self,
        store: Store,
        engine: RuleEngine,
        ingestor: Ingestor,
        clock: Clock,
        adapter_for: Callable[[str], object | None],
        health: HealthBook | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.ingestor = ingestor
        self.clock = clock
        self.adapter_for = adapter_for
        self.health = health

    # -- deciding ---------------------------------------------------------------------------

    def handle_refund(self, uow: UnitOfWork, refund: RefundRequest) -> list[Decision]:
        """Record a refund and decide, per parcel of the order; a repeated refund decides nothing new."""
        now = self.clock.now()
        fresh = uow.insert_refund(
            {"refund_id": refund.refund_id, "order_id": refund.order_id, "type": refund.type, "received_at": now}
        )
        if not fresh:
            return self.decisions(uow, refund.refund_id)
        if refund.type != "refund_only":
            return []
        parcels = uow.parcels_of_order(refund.order_id)
        if not parcels:
            log.warning("refund.unknown_order", refund_id=refund.refund_id, order_id=refund.order_id)
        for parcel in parcels:
            self._decide(uow, parcel, refund.refund_id)
        return self.decisions(uow, refund.refund_id)

    def shipped_after_refund(self, uow: UnitOfWork, order_ids: Iterable[str]) -> int:
        """Decide for parcels that arrived after their order's refund-only request; return how many.

        An ERP may report the refund before the shipment (or the shipment late): the refund was
        recorded with nothing to decide, and its parcel must still be held or intercepted.
        """
        decided = 0
        for refund in uow.refund_only_of_orders(order_ids):
            done = {i.parcel_id for i in uow.intercepts_of_refund(refund.refund_id)}
            for parcel in uow.parcels_of_order(refund.order_id):
                if parcel.id in done:
                    continue
                self._decide(uow, parcel, refund.refund_id)
                decided += 1
        return decided

    def _decide(self, uow: UnitOfWork, parcel: Any, refund_id: str) -> None:
        opened = uow.open_intercept_of(parcel.id)
        if opened is not None:
            self._join(uow, parcel, refund_id, opened)
        elif parcel.status == Status.DELIVERED:
            self._skip(uow, parcel, refund_id, "delivered")
        elif parcel.status in RETURN_STATUSES:
            self._skip(uow, parcel, refund_id, "already_returning")
        elif parcel.picked_up_at is None:
            self._hold(uow, parcel, refund_id)
        else:
            self._request(uow, parcel, refund_id, None)

    def by_hand(self, uow: UnitOfWork, parcel_id: int, login: str) -> tuple[Decision, str | None]:
        """Intercept one parcel because a person asked (the console's 立即拦截); return what was decided.

        The refund path's own steps: not picked up → held (the warehouse ticket), in transit → the
        carrier call in the outbox. Exactly once: a parcel with an open intercept gets nothing new
        (``already`` and that intercept's state) — clicking twice, or two people at once, makes one
        intercept; the partial unique index settles a race. A delivered or returning parcel is
        refused without a row. The intercept's ``refund_id`` is ``manual:<parcel>:<n>`` (no refund
        row: nothing was refunded); the second value is it when something was queued.
        """
        parcel = uow.parcel(parcel_id)
        if parcel is None:
            raise LookupError(parcel_id)
        opened = uow.open_intercept_of(parcel.id)
        if opened is None and parcel.status == Status.DELIVERED:
            return Decision(parcel.carrier, parcel.tracking_no, "skipped", "delivered"), None
        if opened is None and parcel.status in RETURN_STATUSES:
            return Decision(parcel.carrier, parcel.tracking_no, "skipped", "already_returning"), None
        if opened is None:  # two at once compute the same id: the loser's insert does nothing
            refund_id = f"manual:{parcel.id}:{len(uow.intercepts_of_parcel(parcel.id)) + 1}"
            if parcel.picked_up_at is None:
                self._hold(uow, parcel, refund_id)
            else:
                self._request(uow, parcel, refund_id, None)
            opened = uow.open_intercept_of(parcel.id)
            if opened is not None and opened.refund_id == refund_id:
                self._note(uow, parcel, "intercept_by_hand", refund_id=refund_id, login=login)
                return Decision(parcel.carrier, parcel.tracking_no, opened.state), refund_id
        state = opened.state if opened is not None else "unknown"
        return Decision(parcel.carrier, parcel.tracking_no, "already", state), None

    def decisions(self, uow: UnitOfWork, refund_id: str) -> list[Decision]:
        """Return what a refund led to, per parcel (a joined one names the intercept it joined)."""
        rows = uow.intercepts_of_refund(refund_id)
        parcels = uow.parcels_by_ids(r.parcel_id for r in rows)
        decisions = []
        for r in rows:
            reason = r.reason
            if r.state == "joined":
                primary = next((i for i in uow.intercepts_of_parcel(r.parcel_id) if i.id == r.joined_to), None)
                if primary is not None:
                    reason = f"refund {primary.refund_id}: {primary.state}"
            p = parcels[r.parcel_id]
            decisions.append(Decision(p.carrier, p.tracking_no, r.state, reason))
        return decisions

    def _note(self, uow: UnitOfWork, parcel: Any, event: str, **data: Any) -> None:
        uow.record(
            [{"at": self.clock.now(), "event": event, "parcel_id": parcel.id, "data": parcel_keys(parcel) | data}]
        )

    def _set(self, uow: UnitOfWork, intercept_id: int, state: str, **values: Any) -> None:
        """Change an intercept's state; ``state_since`` is what the watchdog measures."""
        uow.update_intercept(intercept_id, state=state, state_since=self.clock.now(), **values)

    def _join(self, uow: UnitOfWork, parcel: Any, refund_id: str, opened: Any) -> None:
        now = self.clock.now()
        row = {"refund_id": refund_id, "parcel_id": parcel.id, "state": "joined", "joined_to": opened.id,
               "attempt": opened.attempt, "requested_at": now, "state_since": now}  # fmt: skip
        uow.insert_intercept(row)
        log.info("intercept.joined", refund_id=refund_id, joined=opened.refund_id, state=opened.state,
                 **parcel_keys(parcel))  # fmt: skip

    def _insert_open(self, uow: UnitOfWork, parcel: Any, refund_id: str, row: dict[str, Any]) -> bool:
        """Insert the parcel's open intercept; False (and joined instead) if another refund opened one first."""
        if uow.insert_intercept(row) is not None:
            return True
        opened = uow.open_intercept_of(parcel.id)
        if opened is not None:
            self._join(uow, parcel, refund_id, opened)
        return False

    def _skip(self, uow: UnitOfWork, parcel: Any, refund_id: str, reason: str) -> None:
        now = self.clock.now()
        uow.insert_intercept({"refund_id": refund_id, "parcel_id": parcel.id, "state": "skipped", "reason": reason,
                              "requested_at": now, "state_since": now})  # fmt: skip
        self._note(uow, parcel, "intercept_skipped", refund_id=refund_id, reason=reason)
        log.info("intercept.skipped", refund_id=refund_id, reason=reason, **parcel_keys(parcel))

    def _hold(self, uow: UnitOfWork, parcel: Any, refund_id: str) -> None:
        now = self.clock.now()
        row = {"refund_id": refund_id, "parcel_id": parcel.id, "state": "held", "requested_at": now, "state_since": now}
        if not self._insert_open(uow, parcel, refund_id, row):
            return
        columns = self.ingestor.columns(parcel, state_of(parcel), held=True)
        uow.update_parcels([{"id": parcel.id, "held": True, "intercept_state": "held", "updated_at": now, **columns}])
        pickup = uow.active_anomalies([parcel.id], ["pickup_at_risk", "pickup_overdue"])
        self.engine.resolve(uow, pickup, "held")
        self._note(uow, parcel, "shipment_held", refund_id=refund_id)
        uow.enqueue([self._action("ticket", parcel, refund_id, f"ticket:refund:{refund_id}:{parcel.id}", now)])
        log.info("intercept.held", refund_id=refund_id, **parcel_keys(parcel))

    def _request(self, uow: UnitOfWork, parcel: Any, refund_id: str, intercept_id: int | None) -> None:
        now = self.clock.now()
        attempt = uow.next_intercept_attempt(parcel.id)
        if intercept_id is None:
            row = {"refund_id": refund_id, "parcel_id": parcel.id, "state": "requested", "attempt": attempt,
                   "requested_at": now, "state_since": now}  # fmt: skip
            if not self._insert_open(uow, parcel, refund_id, row):
                return
        else:
            self._set(uow, intercept_id, "requested", attempt=attempt)
        uow.update_parcels([{"id": parcel.id, "intercept_state": "requested", "updated_at": now}])
        self._note(uow, parcel, "intercept_requested", refund_id=refund_id)
        uow.enqueue([self._action("intercept", parcel, refund_id, intercept_key(parcel.id, attempt), now)])
        log.info("intercept.requested", refund_id=refund_id, attempt=attempt, **parcel_keys(parcel))

    @staticmethod
    def _action(kind: str, parcel: Any, refund_id: str, key: str, now: datetime) -> dict[str, Any]:
        return {
            "idempotency_key": key,
            "kind": kind,
            "parcel_id": parcel.id,
            "refund_id": refund_id,
            "rule": "refund",
            "next_attempt_at": now,
            "created_at": now,
        }

    # -- calling the carrier ------------------------------------------------------------------

    def _load(self, uow: UnitOfWork, action: Any) -> tuple[Any, Any] | None:
        """Return (intercept, parcel) of an intercept action, or finish the action if nothing waits for it."""
        parcel = uow.parcel(action.parcel_id)
        intercept = next(
            (i for i in uow.intercepts_of_parcel(action.parcel_id)
             if i.refund_id == action.refund_id and i.state != "joined"),
            None,
        )  # fmt: skip
        if parcel is None or intercept is None or intercept.state != "requested":
            uow.finish_action(action.id, self.clock.now())
            return None
        return intercept, parcel

    async def perform(self, action: Any) -> Outcome:
        """Outbox handler: call the carrier's intercept under the action's key, record what it said.

        Only an answer decides: every failed call (unreachable, rate limited, unreadable,
        credentials rejected) leaves the intercept requested and the action retried with the
        same key, so the carrier never sees two intercepts and we never record a false failure.
        """
        found = await self.store.transact(lambda uow: self._load(uow, action))
        if found is None:
            return DONE
        intercept, parcel = found
        adapter = self.adapter_for(parcel.carrier)
        if isinstance(adapter, SupportsIntercept):
            answer = await self._call(adapter, intercept, parcel, action.idempotency_key)
            if isinstance(answer, Outcome):
                return answer
        else:
            answer = InterceptResult(accepted=False, reason="carrier_has_no_intercept")

        def record(uow: UnitOfWork) -> None:
            self.apply_verdict(uow, intercept, uow.parcel(parcel.id), answer)
            uow.finish_action(action.id, self.clock.now())

        await self.store.transact(record)
        return DONE

    async def _call(
        self, adapter: SupportsIntercept, intercept: Any, parcel: Any, key: str
    ) -> InterceptResult | Outcome:
        """Ask the carrier once; return its answer, or the outbox's retry when there is none to record."""
        carrier = parcel.carrier
        if self.health is not None and await self.store.offload(self.health.paused, carrier, self.clock.now()):
            return retry(f"{carrier} paused: credentials rejected")
        ref = ParcelRef(carrier, parcel.tracking_no, parcel.order_id, parcel.shop)
        try:
            answer = await adapter.intercept(ref, "refund_only", key)
        except CarrierAuthError as err:
            await self._auth_failed(carrier, intercept, err)
            return retry(f"{type(err).__name__}: {err}")
        except CarrierResponseError as err:  # an unknown outcome: the carrier may have taken it
            log.warning("intercept.unknown_outcome", carrier=carrier, key=key, error=str(err))
            known = await self._ask_status(adapter, ref, key)
            if known is None:
                return retry(f"unknown outcome, retried under the same key: {err}")
            answer = known
        except CarrierError as err:
            return retry(f"{type(err).__name__}: {err}")
        await self._carrier_answered(carrier)
        if answer.accepted is None:
            answer = await self._ask_status(adapter, ref, key) or answer
        return answer

    async def _ask_status(self, adapter: Any, ref: ParcelRef, key: str) -> InterceptResult | None:
        """Ask the carrier how an earlier request ended, where it has such a call; None if undecided or unknown."""
        if not isinstance(adapter, SupportsInterceptStatus):
            return None
        try:
            answer = await adapter.intercept_status(ref, key)
        except CarrierError as err:
            log.warning("intercept.status_failed", carrier=ref.carrier, key=key, error=str(err))
            return None
        return answer if answer.accepted is not None else None

    async def _auth_failed(self, carrier: str, intercept: Any, err: CarrierAuthError) -> None:
        """Pause the carrier with one operator alert; the intercept waits, still requested."""
        log.error("intercept.auth_failed", carrier=carrier, error=str(err))
        reason = "waiting: carrier credentials rejected"
        await self.store.transact(lambda uow: uow.update_intercept(intercept.id, reason=reason))
        if self.health is not None:
            await self.store.offload(self.health.failed, carrier, f"{type(err).__name__}: {err}")
            await self.health.announce(carrier)

    async def _carrier_answered(self, carrier: str) -> None:
        """A call went through: a paused carrier is up again, and its waiting intercepts resume.

        ``succeeded`` also keeps the carrier's last success fresh (the 快递公司 page) when it was up.
        """
        if self.health is None:
            return
        before = await self.store.offload(self.health.succeeded, carrier)
        if before.state == "up" and before.alerted == "up":
            return
        await self.health.announce(carrier)

    # -- verdicts and following -----------------------------------------------------------------

    def apply_verdict(self, uow: UnitOfWork, intercept: Any, parcel: Any, answer: InterceptResult) -> None:
        """Record the carrier's answer to an intercept request."""
        now = self.clock.now()
        if answer.accepted is None:
            reason = answer.reason
            if answer.repeated:
                reason = "repeated request: the first one arrived; following the parcel's scans"
            self._set(uow, intercept.id, "pending", reason=reason[:256])
            uow.update_parcels([{"id": parcel.id, "intercept_state": "pending", "updated_at": now}])
            uow.set_next_poll([parcel.id], now)  # follow its next scans at once: 99/648 or a delivery decides
            log.info("intercept.pending", refund_id=intercept.refund_id, repeated=answer.repeated,
                     **parcel_keys(parcel))  # fmt: skip
            return
        state = "accepted" if answer.accepted else "rejected"
        self._set(uow, intercept.id, state, reason=answer.reason[:256], decided_at=now)
        uow.update_parcels([{"id": parcel.id, "intercept_state": state, "updated_at": now}])
        self._note(uow, parcel, f"intercept_{state}", refund_id=intercept.refund_id, reason=answer.reason)
        log.info(f"intercept.{state}", refund_id=intercept.refund_id, reason=answer.reason, **parcel_keys(parcel))
        if not answer.accepted:
            self._fail(uow, intercept, parcel, answer.reason or "rejected")

    def verdict_for(self, uow: UnitOfWork, parcel: Any, answer: InterceptResult) -> bool:
        """Apply a verdict that arrives later (push, replay line); False if no intercept waits."""
        waiting = [i for i in uow.open_intercepts([parcel.id]) if i.state in ("requested", "pending")]
        if not waiting:
            return False
        for intercept in waiting:
            self.apply_verdict(uow, intercept, parcel, answer)
        return True

    def _fail(self, uow: UnitOfWork, intercept: Any, parcel: Any, reason: str) -> None:
        now = self.clock.now()
        self._set(uow, intercept.id, "failed", finished_at=now, reason=reason[:256])
        uow.update_parcels([{"id": parcel.id, "intercept_state": "failed", "updated_at": now}])
        self._note(uow, parcel, "intercept_failed", refund_id=intercept.refund_id)
        self.engine.open(uow, [Firing(parcel, "intercept_failed", reason)])

    def follow(self, uow: UnitOfWork, changes: Sequence[Change]) -> None:
        """See intercepts through as the parcel moves: back to sender, or delivered anyway."""
        if not changes:
            return
        by_parcel = {c.parcel.id: c for c in changes}
        now = self.clock.now()
        for intercept in uow.open_intercepts(by_parcel):
            c = by_parcel[intercept.parcel_id]
            if c.new.status in RETURN_STATUSES:
                self._set(uow, intercept.id, "succeeded", finished_at=now)
                uow.update_parcels([{"id": c.parcel.id, "intercept_state": "succeeded", "updated_at": now}])
                self._note(uow, c.parcel, "intercept_succeeded", refund_id=intercept.refund_id)
                log.info("intercept.succeeded", refund_id=intercept.refund_id, **parcel_keys(c.parcel))
            elif c.new.status == Status.DELIVERED:
                self._fail(uow, intercept, c.parcel, "delivered")
        for c in changes:  # a held parcel the carrier picked up anyway: intercept it now
            was_held = c.parcel.intercept_state == "held" and c.old.picked_up_at is None
            moving = c.new.picked_up_at is not None and c.new.status not in RETURN_STATUSES | {Status.DELIVERED}
            if was_held and moving:
                for intercept in uow.intercepts_of_parcel(c.parcel.id, "held"):
                    self._request(uow, c.parcel, intercept.refund_id, intercept.id)
