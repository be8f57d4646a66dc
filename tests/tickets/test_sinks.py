"""External ticket sinks: one signed document per ticket event, through the outbox, the same event id on a crash."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from carriers.testing.kuaidi100 import Fleet, quiet_in_transit
from monitor.actions.outbox import Dispatcher
from monitor.clock import SimulatedClock
from monitor.errors import ConfigError
from monitor.store.db import make_engine
from monitor.store.store import Store, UnitOfWork
from monitor.testing.receivers import FakeTicketSink
from monitor.tickets.book import TicketBook
from monitor.tickets.sinks import KIND, Sink, SinkConfig, SinkQueue, SinkSender, build_sinks, enqueue
from tests.daemon.process import Daemon, wait_for
from tests.faults.daemons import ENV, push_exception, ship, write_config

T0 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
SECRET = "s3cret-sink"


def open_ticket(uow: UnitOfWork, at: datetime, sinks: list[str], number: str = "SF1") -> tuple[int, int]:
    """Open a ticket with its ``opened`` event, queued for the sinks in the same transaction; return (ticket, event)."""
    uow.insert_parcels([{"carrier": "sf", "tracking_no": number, "order_id": f"O-{number}", "shop": "tmall-1",
                         "shipped_at": at, "pickup_deadline": at + timedelta(hours=24), "created_at": at,
                         "updated_at": at}])  # fmt: skip
    parcel = uow.parcels_by_keys([("sf", number)])[("sf", number)]
    ticket_id, _ = uow.insert_ticket(
        {
            "idempotency_key": f"t:{number}",
            "parcel_id": parcel.id,
            "rule": "lost_suspected",
            "title": "疑似丢件",
            "state": "open",
            "created_at": at,
            "updated_at": at,
            "team": "ops",
            "shop": "tmall-1",
            "carrier": "sf",
            "stake_fen": 1250,
        }
    )
    event_id = uow.add_ticket_event({"ticket_id": ticket_id, "at": at, "actor": "rules", "kind": "opened",
                                     "from_value": None, "to_value": "open", "body": ""})  # fmt: skip
    enqueue(uow, sinks, [(event_id, "opened")], parcel.id, at)
    return ticket_id, event_id


async def dispatch(store: Store, clock: SimulatedClock, url: str) -> int:
    async with httpx.AsyncClient() as http:
        sender = SinkSender(store, clock, http, {"ops": Sink("ops", url, SECRET)})
        return await Dispatcher(store, clock, {KIND: sender}).run()


def test_each_event_goes_out_signed_once(store: Store) -> None:
    clock = SimulatedClock(T0)
    with store.begin() as uow:
        ticket_id, event_id = open_ticket(uow, T0, ["ops"])
        comment = uow.add_ticket_event({"ticket_id": ticket_id, "at": T0, "actor": "wang", "kind": "comment",
                                        "body": "催过快递了"})  # fmt: skip
        overdue = uow.add_ticket_event({"ticket_id": ticket_id, "at": T0, "actor": "system", "kind": "overdue",
                                        "body": ""})  # fmt: skip
        enqueue(uow, ["ops"], [(comment, "comment"), (overdue, "overdue")], 1, T0)
    with FakeTicketSink(SECRET, clock=clock) as receiver:
        asyncio.run(dispatch(store, clock, receiver.url))
        asyncio.run(dispatch(store, clock, receiver.url))  # nothing left: nothing sent again
        documents = receiver.documents()
        assert len(receiver.received) == 2 and receiver.problems == []
    assert [d["event_id"] for d in documents] == [event_id, comment]  # the SLA's own notes are not sent
    opened = documents[0]
    assert (opened["kind"], opened["actor"], opened["at"]) == ("opened", "rules", T0.isoformat())
    ticket = opened["ticket"]
    assert (ticket["id"], ticket["stake"], ticket["tracking_no"], ticket["team"]) == (ticket_id, 12.5, "SF1", "ops")
    assert documents[1]["body"] == "催过快递了"
    with store.begin() as uow:
        assert {a.state for a in uow.actions() if a.kind == KIND} == {"done"}


def test_the_ticket_book_queues_its_history_for_the_sinks(store: Store) -> None:
    clock = SimulatedClock(T0)
    book = TicketBook(None, clock)
    book.listen(SinkQueue(["ops", "jira"]))
    with store.begin() as uow:
        ticket_id, _ = open_ticket(uow, T0, [])
        comment = book.comment(uow, ticket_id, "已联系快递", "wang")
        book.record(uow, ticket_id, "overdue", "system")  # the SLA's note: not for sinks
    with store.begin() as uow:
        keys = sorted(a.idempotency_key for a in uow.actions())
    assert keys == [f"ticket_sink:{comment}:jira", f"ticket_sink:{comment}:ops"]
    with FakeTicketSink(SECRET, clock=clock) as receiver:
        asyncio.run(dispatch(store, clock, receiver.url))  # only "ops" is configured here: "jira" gives up
        assert [(d["event_id"], d["kind"], d["actor"]) for d in receiver.documents()] == [(comment, "comment", "wang")]
    with store.begin() as uow:
        states = {a.target: a.state for a in uow.actions()}
    assert states == {"ops": "done", "jira": "failed"}


def test_the_signature_carries_the_wall_clock_not_the_business_clock(store: Store) -> None:
    """A receiver checks the timestamp against real time: a replayed or accelerated clock must not leak into it."""
    business, wall = SimulatedClock(T0), SimulatedClock(T0 + timedelta(days=400))
    with store.begin() as uow:
        open_ticket(uow, T0, ["ops"])

    async def send(url: str) -> None:
        async with httpx.AsyncClient() as http:
            sender = SinkSender(store, business, http, {"ops": Sink("ops", url, SECRET)}, wall=wall)
            await Dispatcher(store, business, {KIND: sender}).run()

    with FakeTicketSink(SECRET, clock=wall) as receiver:  # fresh by the wall clock, 400 days off the business one
        asyncio.run(send(receiver.url))
        assert len(receiver.received) == 1 and receiver.problems == []
        (request,) = receiver.received
    assert int(request.headers["x-parcel-monitor-timestamp"]) == int(wall.now().timestamp())


@pytest.mark.parametrize("fault", ["5xx", "gzip"])
def test_a_failing_receiver_gets_the_same_event_again(store: Store, fault: str) -> None:
    clock = SimulatedClock(T0)
    with store.begin() as uow:
        _, event_id = open_ticket(uow, T0, ["ops"])
    with FakeTicketSink(SECRET, clock=clock) as receiver:
        receiver.fail(fault, times=1)  # gzip: a reply its Content-Encoding does not decode
        asyncio.run(dispatch(store, clock, receiver.url))
        with store.begin() as uow:
            (action,) = uow.actions()
            assert (action.state, action.attempts) == ("pending", 1)
            assert {"5xx": "sink HTTP 503", "gzip": "undecodable reply"}[fault] in action.last_error
        clock.advance(timedelta(minutes=1))
        asyncio.run(dispatch(store, clock, receiver.url))
        assert [r.json()["event_id"] for r in receiver.received] == [event_id, event_id]
        assert receiver.event_ids() == [event_id, event_id]


def test_a_wrong_secret_is_refused_and_not_retried(store: Store) -> None:
    clock = SimulatedClock(T0)
    with store.begin() as uow:
        open_ticket(uow, T0, ["ops"])
    with FakeTicketSink("another-secret", clock=clock) as receiver:
        asyncio.run(dispatch(store, clock, receiver.url))
        assert receiver.documents() == []
    with store.begin() as uow:
        (action,) = uow.actions()
    assert action.state == "failed" and "401" in action.last_error


def test_sink_secrets_come_from_the_environment() -> None:
    config = SinkConfig(name="jira", url_env="JIRA_URL", secret_env="JIRA_SECRET")
    with pytest.raises(ConfigError, match="JIRA_SECRET"):
        build_sinks([config], {"JIRA_URL": "https://jira.example/hook"})
    sinks = build_sinks([config], {"JIRA_URL": "https://jira.example/hook", "JIRA_SECRET": "s3cr3t-value"})
    assert "s3cr3t" not in repr(sinks["jira"]) and "jira.example" not in repr(sinks["jira"])


# -- the crash: the daemon killed after the receiver got the event, before the outbox marked it done ------------


def test_a_daemon_killed_between_send_and_commit_sends_the_same_event_id_again(tmp_path: Path,
                                                                                database_url: str) -> None:  # fmt: skip
    number = "ZTS000001"
    sinks = '[[tickets.sinks]]\nname = "ops"\nurl_env = "TEST_SINK_URL"\nsecret_env = "TEST_SINK_SECRET"\n'
    with Fleet(quiet_in_transit(datetime.now(UTC) - timedelta(hours=1))) as carrier, FakeTicketSink(SECRET) as sink:
        sink.tolerance = 3600  # the second daemon signs on a clock 60× faster than the receiver's
        sink.fail("hang", times=1, seconds=60)  # the first event is received and held: no answer
        config = write_config(tmp_path, database_url, carrier.url, extra=sinks)
        env = ENV | {"TEST_SINK_URL": sink.url, "TEST_SINK_SECRET": SECRET}
        first = Daemon(["--config", str(config)], env).wait_started()
        try:
            with first.client() as client:
                ship(client, [number])
                assert push_exception(client, number).status_code == 200  # carrier_exception → a ticket
            wait_for(lambda: sink.received, timeout=30, every=0.01)
            first.kill()  # SIGKILL: the receiver has the event, the outbox never heard the answer
        finally:
            if first.proc.poll() is None:
                first.kill()
        sink.release()
        held = sink.received[0].json()["event_id"]
        assert action_states(database_url) == {held: "running"}  # leased by the dead daemon
        # a faster clock, so the dead process's two-minute lease runs out in two seconds
        second = Daemon(["--config", str(config), "--speed", "60"], env).wait_started()
        try:
            wait_for(lambda: sink.event_ids().count(held) == 2, timeout=30)
            wait_for(lambda: set(action_states(database_url).values()) == {"done"}, timeout=30)
        finally:
            assert second.terminate() == 0, second.output()
        sent = sink.event_ids()
    assert sent.count(held) == 2  # the same event id again …
    assert set(sent) == set(action_states(database_url)) == {held}  # … never a different one
    assert sink.problems == []


def action_states(database_url: str) -> dict[int, str]:
    """Return {event id: outbox state} of the ticket sink actions (read beside the daemon)."""
    engine = make_engine(database_url)
    try:
        with Store(engine).begin() as uow:
            return {int(a.idempotency_key.split(":")[1]): a.state for a in uow.actions() if a.kind == KIND}
    finally:
        engine.dispose()
