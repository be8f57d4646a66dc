"""The ticket lifecycle: open → processing → done | cancelled, reopened; auto-close on the simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carriers.model import Status
from monitor.clock import SimulatedClock
from monitor.people.accounts import People
from monitor.store.db import make_engine
from monitor.store.store import Store
from monitor.tickets import TicketChange
from monitor.tickets.errors import IllegalTransition, InvalidChange, OutcomeRequired, UnknownTicket
from tests.helpers import end, run
from tests.tickets.kit import START, MakeMonitor, add_people, history, overdue, scan, ship, tickets


def test_a_person_works_a_ticket_open_processing_done(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor, people: People
) -> None:
    add_people(people, "li.lei")
    monitor = make_monitor()
    ship(monitor, "SB1")
    overdue(monitor, clock)
    (ticket,) = tickets(store)
    assert (ticket.state, ticket.rule, ticket.shop, ticket.carrier) == ("open", "pickup_overdue", "旗舰店", "sandbox")
    assert ticket.stake_fen == 995  # 5% of 199.00 yuan: the anomaly's compensation, not the order amount
    book = monitor.tickets
    with store.begin() as uow:
        book.change(uow, ticket.id, TicketChange(assignee="li.lei", state="processing"), "li.lei")
    clock.advance(timedelta(minutes=5))
    with store.begin() as uow, pytest.raises(OutcomeRequired):
        book.change(uow, ticket.id, TicketChange(state="done"), "li.lei")
    with store.begin() as uow:
        book.change(uow, ticket.id, TicketChange(state="done", outcome="chased", note="催了快递员"), "li.lei")
    (ticket,) = tickets(store)
    assert (ticket.state, ticket.outcome, ticket.note) == ("done", "chased", "催了快递员")
    assert ticket.closed_at == clock.now() and ticket.close_reason == "by li.lei"
    assert history(store, ticket.id) == [
        ("rules", "opened", None, "open"),
        ("li.lei", "assigned", None, "li.lei"),
        ("li.lei", "state", "open", "processing"),
        ("li.lei", "state", "processing", "done"),
        ("li.lei", "outcome", None, "chased"),
    ]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["done"], "processing"),  # done → processing: only reopened
        (["cancelled"], "done"),
        (["processing"], "reopened"),  # reopened is for closed tickets
    ],
)
def test_illegal_transitions_are_refused_naming_from_and_to(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor, path: list[str], refused: str
) -> None:
    monitor = make_monitor()
    ship(monitor, "SB1")
    overdue(monitor, clock)
    (ticket,) = tickets(store)
    for state in path:
        with store.begin() as uow:
            outcome = "nothing_needed" if state == "done" else None
            monitor.tickets.change(uow, ticket.id, TicketChange(state=state, outcome=outcome), "li.lei")
    before = history(store, ticket.id)
    with store.begin() as uow, pytest.raises(IllegalTransition) as err:
        monitor.tickets.change(uow, ticket.id, TicketChange(state=refused, outcome="chased"), "li.lei")
    assert (err.value.from_state, err.value.to_state) == (path[-1], refused)
    assert f"from {path[-1]} to {refused}" in str(err.value)
    assert history(store, ticket.id) == before and tickets(store)[0].state == path[-1]


def test_refusals_name_the_field(store: Store, clock: SimulatedClock, make_monitor: MakeMonitor) -> None:
    monitor = make_monitor()
    ship(monitor, "SB1")
    overdue(monitor, clock)
    (ticket,) = tickets(store)
    with store.begin() as uow:
        with pytest.raises(InvalidChange) as err:
            monitor.tickets.change(uow, ticket.id, TicketChange(assignee="nobody"), "li.lei")
        assert err.value.field == "assignee"
        with pytest.raises(InvalidChange) as err:
            monitor.tickets.change(uow, ticket.id, TicketChange(state="done", outcome="lost_it"), "li.lei")
        assert err.value.field == "outcome"
        with pytest.raises(InvalidChange) as err:
            monitor.tickets.change(uow, ticket.id, TicketChange(state="cancelled", outcome="chased"), "li.lei")
        assert err.value.field == "outcome"
        with pytest.raises(UnknownTicket):
            monitor.tickets.change(uow, 999, TicketChange(state="processing"), "li.lei")


def test_the_scan_arriving_closes_the_ticket_by_itself(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor
) -> None:
    monitor = make_monitor()
    ship(monitor, "SB1")
    overdue(monitor, clock)
    clock.advance(timedelta(hours=2))
    scan(monitor, "SB1", Status.PICKED_UP, clock.now() - timedelta(minutes=3))
    (ticket,) = tickets(store)
    assert (ticket.state, ticket.outcome) == ("done", None)
    assert ticket.close_reason == "auto: anomaly resolved (auto)"
    assert ticket.closed_at == START + timedelta(hours=26, minutes=1)  # the simulated clock, not the wall
    assert history(store, ticket.id)[-1] == ("rules", "auto_closed", "open", "done")


def test_a_rule_kept_for_a_person_stays_open(store: Store, clock: SimulatedClock, make_monitor: MakeMonitor) -> None:
    monitor = make_monitor(keep_for_person=["pickup_overdue"])
    ship(monitor, "SB1")
    overdue(monitor, clock)
    scan(monitor, "SB1", Status.PICKED_UP, clock.now())
    (ticket,) = tickets(store)
    assert ticket.state == "open" and ticket.closed_at is None
    assert [kind for _, kind, _, _ in history(store, ticket.id)] == ["opened"]


def test_the_same_anomaly_firing_again_reopens_its_ticket(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor
) -> None:
    monitor = make_monitor()
    ship(monitor, "SB1")
    scan(monitor, "SB1", Status.PICKED_UP, START + timedelta(hours=1))
    clock.set(START + timedelta(hours=5))
    scan(monitor, "SB1", Status.EXCEPTION, clock.now(), reason="address")
    (ticket,) = tickets(store)
    assert (ticket.rule, ticket.state, ticket.stake_fen) == ("carrier_exception", "open", 19_900)  # no compensation
    clock.advance(timedelta(hours=3))
    scan(monitor, "SB1", Status.IN_TRANSIT, clock.now())  # the exception cleared: closed by itself
    assert tickets(store)[0].state == "done"
    clock.advance(timedelta(hours=3))
    scan(monitor, "SB1", Status.EXCEPTION, clock.now(), reason="address")  # the same rule, the same parcel
    (ticket,) = tickets(store)  # still one ticket
    assert (ticket.state, ticket.reopened_count, ticket.closed_at, ticket.close_reason) == ("reopened", 1, None, None)
    assert [kind for _, kind, _, _ in history(store, ticket.id)] == ["opened", "auto_closed", "reopened"]
    with store.begin() as uow:
        anomalies = uow.anomalies(rule="carrier_exception")
    assert ticket.anomaly_id == anomalies[0].id  # the newest anomaly
    # and a person's close of the reopened ticket is one more ordinary close
    with store.begin() as uow:
        monitor.tickets.change(uow, ticket.id, TicketChange(outcome="buyer_contacted"), "li.lei")
    assert (tickets(store)[0].state, tickets(store)[0].outcome) == ("done", "buyer_contacted")


def test_a_retried_ticket_action_changes_nothing(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor
) -> None:
    monitor = make_monitor()
    ship(monitor, "SB1")
    overdue(monitor, clock)
    with store.begin() as uow:
        (action,) = [a for a in uow.actions() if a.kind == "ticket"]
        assert monitor.tickets.open_for_action(uow, action) == (tickets(store)[0].id, False)
    assert len(tickets(store)) == 1 and len(history(store, tickets(store)[0].id)) == 1


def test_cancel_needs_no_outcome_and_a_person_may_reopen(
    store: Store, clock: SimulatedClock, make_monitor: MakeMonitor
) -> None:
    monitor = make_monitor()
    ship(monitor, "SB1")
    overdue(monitor, clock)
    (ticket,) = tickets(store)
    with store.begin() as uow:
        monitor.tickets.change(uow, ticket.id, TicketChange(state="cancelled"), "han")
    with store.begin() as uow:
        monitor.tickets.change(uow, ticket.id, TicketChange(state="reopened", note="买家又来问了"), "han")
    (ticket,) = tickets(store)
    assert (ticket.state, ticket.reopened_count, ticket.note) == ("reopened", 1, "买家又来问了")
    assert history(store, ticket.id)[1:] == [
        ("han", "state", "open", "cancelled"),
        ("han", "state", "cancelled", "reopened"),
    ]


def test_replay_closes_and_reopens_on_its_simulated_clock_printing_nothing_new(database_url: str) -> None:
    def line(kind: str, at: str, **extra: object) -> dict[str, object]:
        return {"kind": kind, "at": at, "carrier": "sandbox", "tracking_no": "SB1"} | extra

    out = run(
        [
            line("shipment", "2026-11-11T09:00:00+08:00", order_id="O-SB1"),
            line("tracking", "2026-11-12T10:30:00+08:00", status="picked_up"),  # after the overdue ticket
            line("tracking", "2026-11-12T14:00:00+08:00", status="exception", reason="address"),
            line("tracking", "2026-11-12T18:00:00+08:00", status="in_transit"),
            line("tracking", "2026-11-12T20:00:00+08:00", status="exception", reason="address"),
            end("2026-11-13T09:00:00+08:00"),
        ],
        database_url=database_url,
    )
    printed = {o["event"] for o in out if "event" in o}
    assert printed <= {"anomaly_opened", "anomaly_resolved", "ticket_opened", "alert_sent", "alert_resolved"}
    reopened = [o for o in out if o.get("event") == "ticket_opened" and o.get("reopened")]
    assert [(o["rule"], o["reopened"], o["at"]) for o in reopened] == [
        ("carrier_exception", 1, "2026-11-12T20:00:00+08:00")
    ]
    store = Store(make_engine(database_url))
    overdue_ticket, exception_ticket = tickets(store)
    assert (overdue_ticket.rule, overdue_ticket.state) == ("pickup_overdue", "done")
    assert overdue_ticket.closed_at == datetime(2026, 11, 12, 2, 30, tzinfo=UTC)  # the scan's simulated minute
    assert (exception_ticket.state, exception_ticket.reopened_count) == ("reopened", 1)
    store.engine.dispose()
