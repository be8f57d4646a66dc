"""The intercept watchdog: no intercept sits in requested or pending unnoticed, whatever the cause.

A carrier that never answers, credentials rejected for hours, an A1007 whose verdict never
shows in the scans, an outbox that gave up: each ends the same way, an intercept waiting in
``requested`` or ``pending``. Past ``stuck_after`` in that state, ops staff hear about it once
per intercept, through the route tree (``{rule = "intercept_stuck", carrier, shop}``). The
query is an index range scan on (state, state_since); a claim (a conditional update) marks
each intercept before its alert goes out, so two replicas never both send it, and a failed
send is given back for the next run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import structlog

from monitor.alerts.model import Alert, Channel
from monitor.alerts.routing import Route, resolve
from monitor.clock import Clock
from monitor.store.store import Store

log = structlog.get_logger("monitor.intercepts")

RULE = "intercept_stuck"


class Watchdog:
    """Alert once about every intercept waiting too long for the carrier."""

    def __init__(
        self, store: Store, clock: Clock, channels: Mapping[str, Channel], route: Route, stuck_after: timedelta
    ) -> None:
        self.store = store
        self.clock = clock
        self.channels = dict(channels)
        self.route = route
        self.stuck_after = stuck_after

    async def run(self) -> int:
        """Alert about intercepts stuck since the last run; return how many were alerted."""
        now = self.clock.now()
        cutoff = now - self.stuck_after
        stuck = await self.store.transact(lambda uow: uow.claim_stuck_intercepts(cutoff, now))
        if not stuck:
            return 0
        by_receiver: dict[str, list[tuple[int, Alert]]] = {}
        for row in stuck:
            since = row.state_since or row.requested_at
            minutes = int((now - since).total_seconds() // 60)
            detail = f"{row.state} for {minutes} min" + (f": {row.reason}" if row.reason else "")
            alert = Alert(anomaly_id=0, rule=RULE, severity="critical", state="firing", carrier=row.carrier,
                          tracking_no=row.tracking_no, order_id=row.order_id, shop=row.shop, opened_at=since,
                          detail=detail[:200], waiting_since=since, actions=("intercept",))  # fmt: skip
            labels = {"rule": RULE, "severity": "critical", "carrier": row.carrier, "shop": row.shop}
            for route in resolve(self.route, labels):
                if route.receiver in self.channels:
                    by_receiver.setdefault(route.receiver, []).append((row.id, alert))
            log.warning("intercept.stuck", refund_id=row.refund_id, state=row.state, minutes=minutes,
                        carrier=row.carrier, tracking_no=row.tracking_no)  # fmt: skip
        unsent: set[int] = set()
        for receiver, items in sorted(by_receiver.items()):
            delivery = await self.channels[receiver].notify([alert for _, alert in items])
            if not delivery.sent:
                log.warning("intercept.stuck_alert_failed", channel=receiver, error=delivery.error)
                unsent.update(i for i, _ in items)
        if unsent:
            await self.store.transact(lambda uow: uow.release_stuck_alerts(sorted(unsent)))
        return len(stuck) - len(unsent)
