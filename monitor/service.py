"""The monitor, assembled: the one place that wires store, rules, actions and alerts.

Read top to bottom, this is DESIGN.md's data flow: shipments and carrier events go into
the store, the rule engine turns them into anomalies, the outbox turns anomalies and
refunds into tickets, intercepts and alerts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from carriers.model import InterceptResult, TrackingEvent
from monitor.actions.intercepts import Decision, Interceptor, RefundRequest
from monitor.actions.outbox import Dispatcher
from monitor.actions.tickets import ReshipmentAdvisor, TicketSink
from monitor.alerts.model import Channel
from monitor.alerts.notifier import Notifier
from monitor.alerts.routing import Route, default_route
from monitor.alerts.timing import QuietHours, RateLimit
from monitor.clock import Clock
from monitor.ingest import Ingestor, IngestResult
from monitor.rules.engine import RuleEngine
from monitor.rules.ruleset import RuleSet
from monitor.shipments import Shipment, ShipmentBook
from monitor.store.store import Store


class Monitor:
    """Everything the daemon, replay and the demo drive, with its dependencies passed in."""

    def __init__(
        self,
        store: Store,
        rules: RuleSet,
        clock: Clock,
        adapters: Mapping[str, Any],
        channels: Mapping[str, Channel],
        route: Route | None = None,
        quiet_hours: QuietHours | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.adapters = dict(adapters)
        route = route or default_route(list(channels))
        self.notifier = Notifier(store, clock, channels, route, quiet_hours, rate_limits)
        self.engine = RuleEngine(store, rules, clock)
        self.ingestor = Ingestor(rules, clock)
        self.shipments = ShipmentBook(store, rules, clock)
        self.interceptor = Interceptor(store, self.engine, self.ingestor, clock, self.adapters.get)
        self.dispatcher = Dispatcher(
            store,
            clock,
            {
                "ticket": TicketSink(store, clock),
                "reshipment_suggestion": ReshipmentAdvisor(store, clock),
                "alert": self.notifier,
                "alert_resolved": self.notifier.resolved,
                "intercept": self.interceptor.perform,
            },
        )

    async def act(self) -> None:
        """Run the outbox until nothing is due, then send the alert groups that are due."""
        await self.dispatcher.run()
        await self.notifier.flush()

    def add_shipments(self, shipments: Sequence[Shipment]) -> int:
        """Start watching shipments; return how many were new.

        A refund-only request that arrived before its shipment is applied now (the parcel is
        held); the dispatcher performs the resulting actions.
        """
        added = self.shipments.add(shipments)
        if added:
            with self.store.begin() as uow:
                self.interceptor.shipped_after_refund(uow, {s.order_id for s in shipments})
        return added

    async def ingest(self, events: Sequence[TrackingEvent], *, act: bool = True) -> IngestResult:
        """Apply carrier events, run event-driven rules and follow intercepts, then act.

        The poller passes ``act=False``: its rounds write events, and the dispatcher job
        performs what they queued, so a poll round never waits on alert channels.
        """
        with self.store.begin() as uow:
            result = self.ingestor.apply(uow, events)
            self.interceptor.follow(uow, result.changes)
            self.engine.on_changes(uow, result.changes)
        if act:
            await self.act()
        return result

    async def refund(self, refund: RefundRequest) -> list[Decision]:
        """Handle a refund request and perform its intercept at once, not at the next tick.

        Only this refund's own actions run here (the carrier call, the warehouse ticket), so
        the answer does not wait behind a backlog of alerts; the rest of the outbox is the
        dispatcher's job.
        """
        with self.store.begin() as uow:
            decisions = self.interceptor.handle_refund(uow, refund)
            keys = uow.action_keys_of_refund(refund.refund_id)
        if keys:
            await self.dispatcher.run(keys)
        with self.store.begin() as uow:
            return self.interceptor.decisions(uow, refund.refund_id) if decisions else decisions

    async def intercept_verdict(self, carrier: str, tracking_no: str, answer: InterceptResult) -> bool:
        """Apply a carrier's late answer to an intercept; False if none was waiting."""
        with self.store.begin() as uow:
            parcel = uow.parcels_by_keys([(carrier, tracking_no)]).get((carrier, tracking_no))
            applied = parcel is not None and self.interceptor.verdict_for(uow, parcel, answer)
        await self.act()
        return applied

    def acknowledge(self, anomaly_id: int) -> bool:
        """Mark an open anomaly as seen by a person; False if it is not open."""
        with self.store.begin() as uow:
            return uow.acknowledge_anomaly(anomaly_id, self.clock.now())

    def resolve(self, anomaly_id: int, resolution: str = "manual") -> bool:
        """Close an anomaly by hand; False if it is already resolved or unknown."""
        with self.store.begin() as uow:
            anomaly = uow.anomaly(anomaly_id)
            if anomaly is None or anomaly.state == "resolved":
                return False
            self.engine.resolve(uow, [anomaly], resolution)
            return True

    async def tick(self, *, act: bool = True) -> int:
        """Fire time-driven rules that are due and run the outbox; return anomalies opened.

        The daemon passes ``act=False``: its dispatch job runs the outbox, so a sweep that
        opened thousands of anomalies ends at once and the next sweep is not skipped.
        """
        opened = 0
        for batch in self.engine.sweep_steps():
            opened += batch
            # between batches (~70 ms of database work each) the loop serves what waits: a
            # refund needs a dozen turns of the loop, so give it 20 ms, not one turn (B4)
            await asyncio.sleep(0.02)
        if act:
            await self.act()
        return opened
