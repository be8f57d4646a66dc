"""The outbox handler for alerts: one action per anomaly and channel."""

from __future__ import annotations

from typing import Any

import structlog

from monitor.actions.outbox import DONE, Outcome, give_up, retry
from monitor.alerts.model import Alert, Channel
from monitor.clock import Clock
from monitor.rules.engine import parcel_keys
from monitor.store.store import Store

log = structlog.get_logger("monitor.alerts")


class Notifier:
    """Send an anomaly to the channel its action names, then record it as sent."""

    def __init__(self, store: Store, clock: Clock, channels: dict[str, Channel]) -> None:
        self.store = store
        self.clock = clock
        self.channels = channels

    @property
    def targets(self) -> list[str]:
        """Return the channel names an alert action fans out to."""
        return list(self.channels)

    async def __call__(self, action: Any) -> Outcome:
        channel = self.channels.get(action.target)
        if channel is None:
            return give_up(f"unknown alert channel {action.target!r}")
        with self.store.begin() as uow:
            anomaly = uow.anomaly(action.anomaly_id)
            parcel = uow.parcel(action.parcel_id)
        alert = Alert(
            anomaly_id=anomaly.id,
            rule=anomaly.rule,
            severity=anomaly.severity,
            state="resolved" if anomaly.state == "resolved" else "firing",
            carrier=parcel.carrier,
            tracking_no=parcel.tracking_no,
            order_id=parcel.order_id,
            shop=parcel.shop,
            opened_at=anomaly.opened_at,
            compensation_fen=anomaly.compensation_fen,
            detail=anomaly.detail,
        )
        delivery = await channel.notify([alert])
        if not delivery.sent:
            log.warning("alert.failed", channel=channel.name, error=delivery.error, retryable=delivery.retryable)
            return retry(delivery.error) if delivery.retryable else give_up(delivery.error)
        now = self.clock.now()
        with self.store.begin() as uow:
            uow.record(
                [
                    {
                        "at": now,
                        "event": "alert_sent",
                        "parcel_id": parcel.id,
                        "data": parcel_keys(parcel) | {"channel": channel.name, "rule": anomaly.rule},
                    }
                ]
            )
            uow.finish_action(action.id, now)
        return DONE
