"""Local actions: internal tickets (kept in :mod:`monitor.tickets`) and reshipment suggestions, one transaction each."""

from __future__ import annotations

from typing import Any

from monitor.actions.outbox import DONE, Outcome
from monitor.clock import Clock
from monitor.rules.engine import parcel_keys
from monitor.store.store import Store, UnitOfWork
from monitor.tickets.book import TicketBook


class TicketSink:
    """Open internal tickets through the ticket book; the action's idempotency key makes a retry a no-op."""

    def __init__(self, store: Store, clock: Clock, book: TicketBook | None = None) -> None:
        self.store = store
        self.clock = clock
        self.book = book or TicketBook(None, clock)

    async def __call__(self, action: Any) -> Outcome:
        return await self.store.transact(lambda uow: self._open(uow, action))

    def _open(self, uow: UnitOfWork, action: Any) -> Outcome:
        self.book.open_for_action(uow, action)
        uow.finish_action(action.id, self.clock.now())
        return DONE


class ReshipmentAdvisor:
    """Suggest sending the buyer a new parcel when the first one is probably lost."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def __call__(self, action: Any) -> Outcome:
        return await self.store.transact(lambda uow: self._suggest(uow, action))

    def _suggest(self, uow: UnitOfWork, action: Any) -> Outcome:
        now = self.clock.now()
        parcel = uow.parcel(action.parcel_id)
        anomaly = uow.anomaly(action.anomaly_id) if action.anomaly_id else None
        reason = (anomaly.detail if anomaly else "") or action.rule
        uow.record(
            [
                {
                    "at": now,
                    "event": "reshipment_suggested",
                    "parcel_id": parcel.id,
                    "data": parcel_keys(parcel) | {"rule": action.rule, "reason": reason},
                }
            ]
        )
        uow.finish_action(action.id, now)
        return DONE
