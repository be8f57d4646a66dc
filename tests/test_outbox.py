"""The outbox: a crash or a retry never intercepts twice, never opens a second ticket, loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from carriers.errors import CarrierUnavailable
from carriers.model import InterceptResult, ParcelRef, Status, TrackingEvent
from carriers.sandbox import SandboxCarrier
from monitor.actions.intercepts import RefundRequest
from monitor.actions.outbox import LEASE
from monitor.alerts.channels.console import RecordingChannel
from monitor.alerts.model import SENT, Alert, Delivery
from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store
from tests.helpers import cst


class FlakyChannel:
    """A channel that fails a set number of times, retryably or not, then delivers."""

    def __init__(self, failures: int, retryable: bool = True) -> None:
        self.name = "flaky"
        self.failures = failures
        self.retryable = retryable
        self.sent: list[Alert] = []

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        if self.failures:
            self.failures -= 1
            return Delivery(sent=False, retryable=self.retryable, error="HTTP 503")
        self.sent.extend(alerts)
        return SENT


class DownCarrier(SandboxCarrier):
    """A carrier whose intercept service is down for the first ``n`` calls."""

    def __init__(self, clock: SimulatedClock, n: int) -> None:
        super().__init__(clock)
        self.down = n

    async def intercept(self, parcel: ParcelRef, reason: str, idempotency_key: str) -> InterceptResult:
        if self.down:
            self.down -= 1
            raise CarrierUnavailable("timeout", carrier=self.code)
        return await super().intercept(parcel, reason, idempotency_key)


def build(
    store: Store, clock: SimulatedClock, carrier: SandboxCarrier | None = None, channel: object = None
) -> Monitor:
    channels = {"rec": channel or RecordingChannel("rec")}
    return Monitor(store, build_ruleset(), clock, {"sandbox": carrier or SandboxCarrier(clock)}, channels)  # type: ignore[dict-item]


def ship(monitor: Monitor, picked_up: bool) -> None:
    monitor.add_shipments([Shipment("O1", "sandbox", "SB1", cst(11, 9))])
    if picked_up:
        event = TrackingEvent("sandbox", "SB1", cst(11, 12), Status.PICKED_UP, raw_code="20")
        asyncio.run(monitor.ingest([event]))


def activity(store: Store) -> list[str]:
    with store.begin() as uow:
        return [row.event for row in uow.activity_after(0)]


def test_intercept_after_a_crash_reuses_the_key(store: Store) -> None:
    clock = SimulatedClock(cst(11, 9))
    carrier = SandboxCarrier(clock)
    monitor = build(store, clock, carrier)
    ship(monitor, picked_up=True)
    clock.set(cst(11, 13))
    with store.begin() as uow:  # the refund is recorded, then the process dies before dispatching
        monitor.interceptor.handle_refund(uow, RefundRequest("R1", "O1", "refund_only"))
        claimed = uow.claim_actions(clock.now(), 10, LEASE)
    assert [a.kind for a in claimed] == ["intercept"]
    asyncio.run(monitor.dispatcher.run())  # the lease still holds: nobody else takes it
    assert carrier.intercept_requests == []
    clock.advance(LEASE + timedelta(seconds=1))
    asyncio.run(monitor.dispatcher.run())
    asyncio.run(monitor.dispatcher.run())
    assert carrier.intercept_requests == [("intercept:parcel:1:1", "SB1")]  # the parcel and the attempt
    assert activity(store).count("intercept_accepted") == 1


def test_a_repeated_refund_intercepts_once(store: Store) -> None:
    clock = SimulatedClock(cst(11, 9))
    carrier = SandboxCarrier(clock)
    monitor = build(store, clock, carrier)
    ship(monitor, picked_up=True)
    first = asyncio.run(monitor.refund(RefundRequest("R1", "O1", "refund_only")))
    again = asyncio.run(monitor.refund(RefundRequest("R1", "O1", "refund_only")))
    assert [d.decision for d in first] == [d.decision for d in again] == ["accepted"]
    assert len(carrier.intercept_requests) == 1


def test_carrier_down_means_retry_with_backoff_then_success(store: Store) -> None:
    clock = SimulatedClock(cst(11, 9))
    carrier = DownCarrier(clock, n=2)
    monitor = build(store, clock, carrier)
    ship(monitor, picked_up=True)
    decisions = asyncio.run(monitor.refund(RefundRequest("R1", "O1", "refund_only")))
    assert [d.decision for d in decisions] == ["requested"]
    with store.begin() as uow:
        (action,) = [a for a in uow.actions() if a.kind == "intercept"]
    assert action.state == "pending" and action.next_attempt_at == clock.now() + timedelta(seconds=30)
    clock.advance(timedelta(seconds=30))
    asyncio.run(monitor.dispatcher.run())
    with store.begin() as uow:
        (action,) = [a for a in uow.actions() if a.kind == "intercept"]
    assert action.attempts == 2 and action.next_attempt_at == clock.now() + timedelta(seconds=60)
    clock.advance(timedelta(seconds=60))
    asyncio.run(monitor.dispatcher.run())
    assert activity(store).count("intercept_accepted") == 1
    with store.begin() as uow:
        assert [a.state for a in uow.actions() if a.kind == "intercept"] == ["done"]


def test_ticket_handler_run_twice_opens_one_ticket(store: Store) -> None:
    clock = SimulatedClock(cst(11, 9))
    monitor = build(store, clock)
    ship(monitor, picked_up=False)
    clock.set(cst(12, 9))
    monitor.engine.sweep()
    with store.begin() as uow:
        (ticket_action,) = [a for a in uow.actions() if a.kind == "ticket"]
    handler = monitor.dispatcher.handlers["ticket"]
    asyncio.run(handler(ticket_action))
    asyncio.run(handler(ticket_action))
    asyncio.run(monitor.dispatcher.run())
    with store.begin() as uow:
        assert len(uow.tickets()) == 1
    assert activity(store).count("ticket_opened") == 1


def test_retryable_alert_failure_is_sent_later_once(store: Store) -> None:
    clock = SimulatedClock(cst(11, 9))
    channel = FlakyChannel(failures=1)
    monitor = build(store, clock, channel=channel)
    ship(monitor, picked_up=False)
    clock.set(cst(12, 9))
    asyncio.run(monitor.tick())
    assert channel.sent == []  # the overdue alert failed once
    clock.advance(timedelta(seconds=29))
    asyncio.run(monitor.tick())
    assert channel.sent == []  # not before its backoff
    clock.advance(timedelta(seconds=1))
    asyncio.run(monitor.tick())
    asyncio.run(monitor.tick())
    assert [a.rule for a in channel.sent] == ["pickup_overdue"]
    assert activity(store).count("alert_sent") == 1


def test_non_retryable_alert_failure_gives_up(store: Store) -> None:
    clock = SimulatedClock(cst(11, 9))
    channel = FlakyChannel(failures=99, retryable=False)
    monitor = build(store, clock, channel=channel)
    ship(monitor, picked_up=False)
    clock.set(cst(12, 9))
    asyncio.run(monitor.tick())
    with store.begin() as uow:
        failed = uow.notifications("failed")
        pending_actions = uow.actions("pending")
    assert [(n.receiver, n.attempts) for n in failed] == [("rec", 1)]
    assert "HTTP 503" in failed[0].last_error
    assert pending_actions == []
    asyncio.run(monitor.tick())  # given up: never tried again
    assert channel.failures == 98  # one attempt only
    assert "alert_sent" not in activity(store)


def test_on_shutdown_the_action_in_hand_finishes_and_the_rest_is_given_back(store: Store) -> None:
    clock = SimulatedClock(cst(11, 9))
    monitor = build(store, clock)
    monitor.add_shipments([Shipment(f"O{i}", "sandbox", f"SB{i}", cst(11, 9)) for i in range(4)])
    clock.set(cst(12, 9))
    monitor.engine.sweep()  # pickup_overdue for all four: a ticket and an alert each
    ticket = monitor.dispatcher.handlers["ticket"]
    handled: list[int] = []

    async def ticket_then_stop(action: object) -> object:
        handled.append(1)
        monitor.dispatcher.stopping = True  # SIGTERM arrives while the first action is in hand
        return await ticket(action)

    monitor.dispatcher.handlers["ticket"] = ticket_then_stop
    asyncio.run(monitor.dispatcher.run())
    with store.begin() as uow:
        states = [(a.state, a.attempts) for a in uow.actions()]
    assert len(handled) == 1 and states.count(("done", 1)) == 1
    # not leased: the next process takes them at once
    assert all(s == ("pending", 0) for s in states if s != ("done", 1))
