"""The monitor, assembled: the one place that wires store, rules, actions and alerts.

Read top to bottom, this is DESIGN.md's data flow: shipments and carrier events go into
the store, the rule engine turns them into anomalies, the outbox turns anomalies and
refunds into tickets, intercepts and alerts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from carriers.model import RETURN_STATUSES, TERMINAL_STATUSES, InterceptResult, TrackingEvent
from monitor.actions.intercepts import Decision, Interceptor, RefundRequest
from monitor.actions.outbox import Dispatcher
from monitor.actions.tickets import ReshipmentAdvisor, TicketSink
from monitor.actions.watchdog import Watchdog
from monitor.alerts.model import Channel
from monitor.alerts.notifier import Notifier
from monitor.alerts.routing import Route, default_route
from monitor.alerts.timing import QuietHours, RateLimit
from monitor.clock import Clock
from monitor.config import InterceptSettings
from monitor.intake.ingest import Ingestor, IngestResult
from monitor.intake.shipments import Shipment, ShipmentBook
from monitor.norms.model import NormBook
from monitor.rules.engine import RuleEngine, parcel_keys
from monitor.rules.ruleset import RuleSet
from monitor.store.store import Store
from monitor.tickets.book import TicketBook
from monitor.tickets.settings import TicketSettings
from monitor.tickets.sinks import SinkQueue

log = structlog.get_logger("monitor.intercepts")
#: Parcel states a fresh track call cannot turn into another refund decision.
SETTLED = frozenset(s.value for s in TERMINAL_STATUSES | RETURN_STATUSES)


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
        intercepts: InterceptSettings | None = None,
        tickets: TicketSettings | None = None,
        norms: NormBook | None = None,
    ) -> None:
        """``intercepts`` None (replay, most tests): no fresh track call before a refund, default watchdog.

        ``norms``: the learned route norms in memory (``slow_for_route``, estimates); None: an empty book.

        ``tickets`` None: the default ``[tickets]`` (no assignment rules, the default keep_for_person).
        """
        from monitor.polling.health import HealthBook  # here: monitor.polling imports this module

        self.store = store
        self.clock = clock
        self.adapters = dict(adapters)
        #: Set by the daemon: :meth:`act` leaves the outbox to the dispatch job.
        self.defer_actions = False
        route = route or default_route(list(channels))
        self.notifier = Notifier(store, clock, channels, route, quiet_hours, rate_limits)
        #: Tickets: opened by the outbox, closed in the transaction that resolves their anomaly.
        ticket_settings = tickets or TicketSettings()
        self.tickets = TicketBook(tickets, clock, deadline=ticket_settings.sla_settings().due)  # [tickets.sla]
        if ticket_settings.sinks:  # [[tickets.sinks]]: every history row queued for them in its transaction
            self.tickets.listen(SinkQueue([s.name for s in ticket_settings.sinks]))
        self.engine = RuleEngine(store, rules, clock, on_resolved=self.tickets.on_anomalies_resolved)
        #: The learned route norms, shared by ingest, shipments and the alert wording; refreshed after learning.
        self.norms = norms if norms is not None else NormBook()
        self.notifier.explain = self.norms.explain
        self.ingestor = Ingestor(rules, clock, self.norms)
        self.shipments = ShipmentBook(store, rules, clock, self.norms)
        self.intercept_settings = intercepts
        #: Carrier health, shared (through the store) with the poller: rejected credentials pause intercepts.
        self.health = HealthBook(store, clock, channels, route)
        self.interceptor = Interceptor(store, self.engine, self.ingestor, clock, self.adapters.get, self.health)
        stuck = timedelta(minutes=(intercepts or InterceptSettings()).stuck_after_minutes)
        self.watchdog = Watchdog(store, clock, channels, route, stuck)
        #: Carrier calls started by refunds and not finished yet (the outbox has them anyway).
        self.background: set[asyncio.Task[Any]] = set()
        self.dispatcher = Dispatcher(
            store,
            clock,
            {
                "ticket": TicketSink(store, clock, self.tickets),
                "reshipment_suggestion": ReshipmentAdvisor(store, clock),
                "alert": self.notifier,
                "alert_resolved": self.notifier.resolved,
                "intercept": self.interceptor.perform,
            },
        )

    async def act(self) -> None:
        """Run the outbox until nothing is due, then send the alert groups that are due.

        With ``defer_actions`` (the daemon) this only queues: the work is already in the
        outbox, and the dispatch job (:meth:`run_actions`) performs it, so an HTTP request
        (a push, an intercept verdict) never waits on alert channels nor sends alerts itself.
        """
        if not self.defer_actions:
            await self.run_actions()

    async def run_actions(self) -> None:
        """Run the outbox until nothing is due, then send the alert groups that are due, now."""
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

        def apply(uow: Any) -> IngestResult:
            result = self.ingestor.apply(uow, events)
            self.interceptor.follow(uow, result.changes)
            self.engine.on_changes(uow, result.changes)
            return result

        result = await self.store.transact(apply)
        if act:
            await self.act()
        return result

    async def refund(
        self,
        refund: RefundRequest,
        *,
        wait: bool = True,
        on_answer: Callable[[list[Decision]], None] | None = None,
    ) -> list[Decision]:
        """Record and decide a refund in one transaction, then perform its own actions at once.

        The decision and its actions (the carrier call, the warehouse ticket) commit together in
        the outbox, so a crash at any later point loses nothing (the outbox retries them).
        ``wait`` (replay, the CLI, the demo): run them now and return the decisions as they
        then stand. ``wait=False`` (the refund webhook): return the decisions at once — a parcel
        in transit is ``requested`` — and run the actions in the background, right after the
        commit; ``on_answer`` gets the decisions once they are done (at once if there are none).
        """
        await self._freshen(refund)

        def decide(uow: Any) -> tuple[list[Decision], list[str]]:
            return self.interceptor.handle_refund(uow, refund), uow.action_keys_of_refund(refund.refund_id)

        decisions, keys = await self.store.transact(decide)
        if not keys:
            if on_answer is not None:
                on_answer(decisions)
            return decisions
        if wait:
            await self._follow_up(refund.refund_id, keys, on_answer)
            return await self.store.transact(lambda uow: self.interceptor.decisions(uow, refund.refund_id))
        task = asyncio.get_running_loop().create_task(self._follow_up(refund.refund_id, keys, on_answer))
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return decisions

    async def intercept_now(self, parcel_id: int, login: str) -> Decision:
        """Intercept one parcel by hand (the console), then make the carrier call at once, as a refund does.

        At most one open intercept per parcel: asking again while one is open answers ``already``.
        The decision and its outbox rows commit together; the call runs in the background right
        after (the dispatch job retries it if this process stops).
        """

        def decide(uow: Any) -> tuple[Decision, list[str]]:
            decision, refund_id = self.interceptor.by_hand(uow, parcel_id, login)
            return decision, uow.action_keys_of_refund(refund_id) if refund_id else []

        decision, keys = await self.store.transact(decide)
        if keys:
            task = asyncio.get_running_loop().create_task(self._follow_up(keys[0], keys, None))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return decision

    async def _follow_up(
        self, refund_id: str, keys: list[str], on_answer: Callable[[list[Decision]], None] | None
    ) -> None:
        """Perform a refund's own actions (the carrier call, the ticket) now, not at the next dispatch."""
        try:
            await self.dispatcher.run(keys)
            if on_answer is not None:
                on_answer(await self.store.transact(lambda uow: self.interceptor.decisions(uow, refund_id)))
        except Exception:  # the actions stay in the outbox: the dispatch job retries them
            log.exception("refund.follow_up_failed", refund_id=refund_id)

    async def drain(self, timeout: float) -> bool:
        """Wait for refunds' carrier calls in flight; False if some still ran after ``timeout``."""
        tasks = list(self.background)
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        return not pending

    async def _freshen(self, refund: RefundRequest) -> None:
        """Ask the carrier about parcels we know only from long ago, bounded in time, before deciding.

        A parcel whose last poll and last event are older than ``stale_after_minutes`` (a poll
        round killed with its lease, a slow carrier) may have been picked up since: one track
        call per carrier batch, all within ``fresh_track_seconds``, and the answer is ingested.
        If the call fails or times out the refund is decided on what we have, and the log says so.
        """
        settings = self.intercept_settings
        if settings is None or not settings.stale_after_minutes or refund.type != "refund_only":
            return
        now = self.clock.now()
        before = now - timedelta(minutes=settings.stale_after_minutes)

        def stale(uow: Any) -> list[Any]:
            if uow.refund_seen(refund.refund_id):
                return []
            rows = uow.freshness_of_order(refund.order_id)
            return [r for r in rows if r.status not in SETTLED and _known_at(r) < before]

        rows = await self.store.transact(stale)
        by_carrier: dict[str, list[Any]] = {}
        for row in rows:
            by_carrier.setdefault(row.carrier, []).append(row)
        calls, asked = [], []
        for carrier, group in by_carrier.items():
            adapter = self.adapters.get(carrier)
            if adapter is None or not hasattr(adapter, "track"):
                continue
            if await self.store.offload(self.health.resting, carrier, now):
                log.info("refund.stale_state", refund_id=refund.refund_id, carrier=carrier, reason="carrier resting")
                continue
            size = max(adapter.limits.batch_size, 1)
            for i in range(0, len(group), size):
                chunk = group[i : i + size]
                calls.append(adapter.track([r.tracking_no for r in chunk]))
                asked.append(chunk)
        if not calls:
            return
        seconds = settings.fresh_track_seconds
        try:
            answers = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), seconds)
        except TimeoutError:
            reason = f"track call over {seconds:g} s: deciding on what we have"
            log.warning("refund.stale_state", refund_id=refund.refund_id, order_id=refund.order_id,
                        parcels=len(rows), reason=reason)  # fmt: skip
            return
        events: list[TrackingEvent] = []
        fresh: list[int] = []
        for chunk, answer in zip(asked, answers, strict=True):
            if isinstance(answer, BaseException):
                log.warning("refund.stale_state", refund_id=refund.refund_id, carrier=chunk[0].carrier,
                            parcels=len(chunk), reason=f"track call failed: {type(answer).__name__}")  # fmt: skip
                continue
            events.extend(ev for result in answer for ev in result.events)
            fresh.extend(r.id for r in chunk)
        if events:
            await self.ingest(events, act=False)
        if fresh:
            polled = [{"id": pid, "last_polled_at": now} for pid in fresh]
            await self.store.transact(lambda uow: uow.update_parcels(polled))
        log.info("refund.freshened", refund_id=refund.refund_id, parcels=len(fresh), events=len(events))

    async def intercept_verdict(self, carrier: str, tracking_no: str, answer: InterceptResult) -> bool:
        """Apply a carrier's late answer to an intercept; False if none was waiting."""

        def apply(uow: Any) -> bool:
            parcel = uow.parcels_by_keys([(carrier, tracking_no)]).get((carrier, tracking_no))
            return parcel is not None and self.interceptor.verdict_for(uow, parcel, answer)

        applied = await self.store.transact(apply)
        await self.act()
        return applied

    def acknowledge(self, anomaly_id: int) -> bool:
        """Mark an open anomaly as seen by a person; False if it is not open."""
        now = self.clock.now()
        with self.store.begin() as uow:
            if not uow.acknowledge_anomaly(anomaly_id, now):
                return False
            anomaly = uow.anomaly(anomaly_id)
            parcel = uow.parcel(anomaly.parcel_id)
            data = parcel_keys(parcel) | {"rule": anomaly.rule, "anomaly_id": anomaly_id}
            uow.record([{"at": now, "event": "anomaly_acknowledged", "parcel_id": parcel.id, "data": data}])
            return True

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
        if self.store.offloading:  # each batch's transaction on the store's threads: the loop never waits on it
            opened = await self.engine.sweep_off_loop()
        else:
            for batch in self.engine.sweep_steps():
                opened += batch
                # between batches (~70 ms of database work each) the loop serves what waits: a
                # refund needs a dozen turns of the loop, so give it 20 ms, not one turn (B4)
                await asyncio.sleep(0.02)
        if act:
            await self.run_actions()
        return opened


def _known_at(row: Any) -> datetime:
    """Return when we last heard of a parcel: its last poll or its last event, whichever is later."""
    moments = [m for m in (row.last_polled_at, row.last_event_at) if m is not None]
    return max(moments) if moments else datetime.min.replace(tzinfo=UTC)
