"""Refund-only interception: hold, intercept or say there is nothing to do — then follow up.

Not yet picked up → hold the shipment (a ticket to the warehouse). Picked up and not
delivered → ask the carrier to intercept at once, then follow the parcel until it heads
back (success) or is delivered anyway (failure). Delivered → nothing to intercept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from carriers.adapter import SupportsIntercept
from carriers.errors import CarrierAuthError, CarrierError, CarrierRateLimited, CarrierUnavailable
from carriers.model import RETURN_STATUSES, InterceptResult, ParcelRef, Status
from monitor.actions.outbox import DONE, Outcome, give_up, retry
from monitor.clock import Clock
from monitor.ingest import Ingestor
from monitor.rules.engine import Change, Firing, RuleEngine, parcel_keys, state_of
from monitor.store.store import Store, UnitOfWork

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
    decision: str  # held | intercept_requested | skipped | pending | accepted | rejected | ...
    reason: str = ""


class Interceptor:
    """Turn refund-only requests into holds and carrier intercepts, and see them through."""

    def __init__(
        self,
        store: Store,
        engine: RuleEngine,
        ingestor: Ingestor,
        clock: Clock,
        adapter_for: Callable[[str], object | None],
    ) -> None:
        self.store = store
        self.engine = engine
        self.ingestor = ingestor
        self.clock = clock
        self.adapter_for = adapter_for

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
        if parcel.status == Status.DELIVERED:
            self._skip(uow, parcel, refund_id, "delivered")
        elif parcel.status in RETURN_STATUSES:
            self._skip(uow, parcel, refund_id, "already_returning")
        elif parcel.picked_up_at is None:
            self._hold(uow, parcel, refund_id)
        else:
            self._request(uow, parcel, refund_id, None)

    def decisions(self, uow: UnitOfWork, refund_id: str) -> list[Decision]:
        """Return what a refund led to, per parcel."""
        rows = uow.intercepts_of_refund(refund_id)
        parcels = uow.parcels_by_ids(r.parcel_id for r in rows)
        return [
            Decision(parcels[r.parcel_id].carrier, parcels[r.parcel_id].tracking_no, r.state, r.reason) for r in rows
        ]

    def _note(self, uow: UnitOfWork, parcel: Any, event: str, **data: Any) -> None:
        uow.record(
            [{"at": self.clock.now(), "event": event, "parcel_id": parcel.id, "data": parcel_keys(parcel) | data}]
        )

    def _skip(self, uow: UnitOfWork, parcel: Any, refund_id: str, reason: str) -> None:
        now = self.clock.now()
        uow.insert_intercept(
            {"refund_id": refund_id, "parcel_id": parcel.id, "state": "skipped", "reason": reason, "requested_at": now}
        )
        self._note(uow, parcel, "intercept_skipped", refund_id=refund_id, reason=reason)
        log.info("intercept.skipped", refund_id=refund_id, reason=reason, **parcel_keys(parcel))

    def _hold(self, uow: UnitOfWork, parcel: Any, refund_id: str) -> None:
        now = self.clock.now()
        columns = self.ingestor.columns(parcel, state_of(parcel), held=True)
        uow.update_parcels([{"id": parcel.id, "held": True, "intercept_state": "held", "updated_at": now, **columns}])
        uow.insert_intercept({"refund_id": refund_id, "parcel_id": parcel.id, "state": "held", "requested_at": now})
        pickup = uow.active_anomalies([parcel.id], ["pickup_at_risk", "pickup_overdue"])
        self.engine.resolve(uow, pickup, "held")
        self._note(uow, parcel, "shipment_held", refund_id=refund_id)
        uow.enqueue([self._action("ticket", parcel, refund_id, now)])
        log.info("intercept.held", refund_id=refund_id, **parcel_keys(parcel))

    def _request(self, uow: UnitOfWork, parcel: Any, refund_id: str, intercept_id: int | None) -> None:
        now = self.clock.now()
        if intercept_id is None:
            uow.insert_intercept(
                {"refund_id": refund_id, "parcel_id": parcel.id, "state": "requested", "requested_at": now}
            )
        else:
            uow.update_intercept(intercept_id, state="requested")
        uow.update_parcels([{"id": parcel.id, "intercept_state": "requested", "updated_at": now}])
        self._note(uow, parcel, "intercept_requested", refund_id=refund_id)
        uow.enqueue([self._action("intercept", parcel, refund_id, now)])
        log.info("intercept.requested", refund_id=refund_id, **parcel_keys(parcel))

    @staticmethod
    def _action(kind: str, parcel: Any, refund_id: str, now: datetime) -> dict[str, Any]:
        return {
            "idempotency_key": f"{kind}:refund:{refund_id}:{parcel.id}",
            "kind": kind,
            "parcel_id": parcel.id,
            "refund_id": refund_id,
            "rule": "refund",
            "next_attempt_at": now,
            "created_at": now,
        }

    async def perform(self, action: Any) -> Outcome:
        """Outbox handler: call the carrier's intercept, record its answer."""
        with self.store.begin() as uow:
            parcel = uow.parcel(action.parcel_id)
            intercept = next((i for i in uow.intercepts_of_refund(action.refund_id) if i.parcel_id == parcel.id), None)
            if intercept is None or intercept.state != "requested":
                uow.finish_action(action.id, self.clock.now())
                return DONE
        adapter = self.adapter_for(parcel.carrier)
        if not isinstance(adapter, SupportsIntercept):
            answer = InterceptResult(accepted=False, reason="carrier_has_no_intercept")
        else:
            ref = ParcelRef(parcel.carrier, parcel.tracking_no, parcel.order_id, parcel.shop)
            try:
                answer = await adapter.intercept(ref, "refund_only", action.idempotency_key)
            except (CarrierUnavailable, CarrierRateLimited) as err:
                return retry(f"{type(err).__name__}: {err}")
            except CarrierAuthError as err:
                log.error("intercept.auth_failed", carrier=parcel.carrier, error=str(err))
                return give_up(f"{type(err).__name__}: {err}")
            except CarrierError as err:
                answer = InterceptResult(accepted=False, reason=f"carrier_error: {err}", raw_code=err.code)
        with self.store.begin() as uow:
            self.apply_verdict(uow, intercept, uow.parcel(parcel.id), answer)
            uow.finish_action(action.id, self.clock.now())
        return DONE

    def apply_verdict(self, uow: UnitOfWork, intercept: Any, parcel: Any, answer: InterceptResult) -> None:
        """Record the carrier's answer to an intercept request."""
        now = self.clock.now()
        if answer.accepted is None:
            uow.update_intercept(intercept.id, state="pending", reason=answer.reason)
            uow.update_parcels([{"id": parcel.id, "intercept_state": "pending", "updated_at": now}])
            return
        state = "accepted" if answer.accepted else "rejected"
        uow.update_intercept(intercept.id, state=state, reason=answer.reason, decided_at=now)
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
        uow.update_intercept(intercept.id, state="failed", finished_at=now, reason=reason)
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
                uow.update_intercept(intercept.id, state="succeeded", finished_at=now)
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
