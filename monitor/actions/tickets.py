"""Local actions: internal tickets and reshipment suggestions, each one transaction on the store's threads."""

from __future__ import annotations

from typing import Any

from monitor.actions.outbox import DONE, Outcome
from monitor.clock import Clock
from monitor.rules.engine import parcel_keys
from monitor.store.store import Store, UnitOfWork

TITLES = {
    "pickup_at_risk": "揽收即将超时",
    "pickup_overdue": "24小时未揽收",
    "stalled": "物流轨迹停滞",
    "carrier_exception": "快递异常件",
    "returned": "快递被退回",
    "delivery_overdue": "超过承诺送达时间",
    "lost_suspected": "疑似丢件",
    "intercept_failed": "拦截失败",
    "refund": "仅退款: 暂停发货",
}


class TicketSink:
    """Open internal tickets; the action's idempotency key makes a retry a no-op."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def __call__(self, action: Any) -> Outcome:
        return await self.store.transact(lambda uow: self._open(uow, action))

    def _open(self, uow: UnitOfWork, action: Any) -> Outcome:
        now = self.clock.now()
        parcel = uow.parcel(action.parcel_id)
        title = f"{TITLES.get(action.rule, action.rule)} · {parcel.carrier} {parcel.tracking_no}"
        ticket_id, created = uow.insert_ticket(
            {
                "idempotency_key": action.idempotency_key,
                "parcel_id": parcel.id,
                "anomaly_id": action.anomaly_id,
                "refund_id": action.refund_id,
                "rule": action.rule,
                "title": title,
                "created_at": now,
            }
        )
        if created:
            uow.record(
                [
                    {
                        "at": now,
                        "event": "ticket_opened",
                        "parcel_id": parcel.id,
                        "data": parcel_keys(parcel) | {"ticket_id": ticket_id, "rule": action.rule},
                    }
                ]
            )
        uow.finish_action(action.id, now)
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
