"""The alert pipeline end to end on simulated time: route, group, wait, quiet hours, rate limit, log."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import event

from carriers.model import Status, TrackingEvent
from carriers.sandbox import SandboxCarrier
from monitor.alerts.model import SENT, Alert, Delivery
from monitor.alerts.notifier import SEND_LEASE, Notifier
from monitor.alerts.routing import parse_route
from monitor.alerts.timing import QuietHours, RateLimit
from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store
from tests.helpers import CST, cst


class Inbox:
    """A channel that keeps each message (a list of alerts) it was asked to send."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[list[Alert]] = []

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        self.messages.append(list(alerts))
        return SENT


NO_RISK = {"rule": {"pickup_at_risk": {"enabled": False}}}


def setup(
    store: Store, route: dict[str, object], *, quiet: QuietHours | None = None, limit: int | None = None,
    channels: Sequence[str] = ("ops",), rules: dict[str, object] | None = None, start: object = None,
) -> tuple[Monitor, SimulatedClock, dict[str, Inbox]]:  # fmt: skip
    clock = SimulatedClock(start or cst(11, 9))  # type: ignore[arg-type]
    inboxes = {name: Inbox(name) for name in channels}
    limits = {name: RateLimit(limit) for name in channels} if limit else None
    monitor = Monitor(
        store, build_ruleset(NO_RISK if rules is None else rules), clock, {"sandbox": SandboxCarrier(clock)}, inboxes,
        route=parse_route(route, set(channels)), quiet_hours=quiet, rate_limits=limits,
    )  # fmt: skip
    return monitor, clock, inboxes


def ship(monitor: Monitor, count: int, hour: int = 9, **kw: object) -> None:
    monitor.add_shipments(
        [Shipment(f"O{i}", "sandbox", f"SB{i}", cst(11, hour), amount_fen=1000 * (i + 1), **kw) for i in range(count)]  # type: ignore[arg-type]
    )


def at(monitor: Monitor, clock: SimulatedClock, moment: object) -> None:
    clock.set(moment)  # type: ignore[arg-type]
    asyncio.run(monitor.tick())


def rules_of(message: list[Alert]) -> set[str]:
    return {a.rule for a in message}


def test_a_burst_is_one_digest(store: Store) -> None:
    monitor, clock, inbox = setup(store, {"receiver": "ops", "group_by": ["rule"], "group_wait": "0s"})
    ship(monitor, 40)
    at(monitor, clock, cst(12, 9))
    (message,) = inbox["ops"].messages
    assert len(message) == 40 and rules_of(message) == {"pickup_overdue"}


def test_group_wait_holds_a_new_group(store: Store) -> None:
    route = {"receiver": "ops", "group_by": ["rule"], "group_wait": "5m"}
    monitor, clock, inbox = setup(store, route)
    monitor.add_shipments(
        [Shipment("O1", "sandbox", "SB1", cst(11, 9)), Shipment("O2", "sandbox", "SB2", cst(11, 9, 3))]
    )
    at(monitor, clock, cst(12, 9))
    at(monitor, clock, cst(12, 9, 4))
    assert inbox["ops"].messages == []  # still waiting for the group to fill
    at(monitor, clock, cst(12, 9, 5))
    assert [[a.tracking_no for a in m] for m in inbox["ops"].messages] == [["SB1", "SB2"]]


def test_busy_group_waits_for_its_interval(store: Store) -> None:
    route = {"receiver": "ops", "group_by": ["rule"], "group_wait": "0s", "group_interval": "30m"}
    monitor, clock, inbox = setup(store, route)
    monitor.add_shipments([Shipment("O1", "sandbox", "SB1", cst(11, 9))])
    monitor.add_shipments([Shipment("O2", "sandbox", "SB2", cst(11, 9, 10))])
    at(monitor, clock, cst(12, 9))
    assert len(inbox["ops"].messages) == 1
    at(monitor, clock, cst(12, 9, 10))
    assert len(inbox["ops"].messages) == 1  # same group, sent 10 minutes ago: wait for the interval
    at(monitor, clock, cst(12, 9, 30))
    assert [len(m) for m in inbox["ops"].messages] == [1, 1]
    assert inbox["ops"].messages[1][0].tracking_no == "SB2"


def test_repeat_interval_for_open_anomalies_only(store: Store) -> None:
    route = {"receiver": "ops", "group_wait": "0s", "repeat_interval": "4h"}
    monitor, clock, inbox = setup(store, route)
    ship(monitor, 2)
    at(monitor, clock, cst(12, 9))
    with store.begin() as uow:
        first = sorted(a.id for a in uow.anomalies(state="open"))[0]
    monitor.acknowledge(first)
    at(monitor, clock, cst(12, 12, 59))
    assert len(inbox["ops"].messages) == 1
    at(monitor, clock, cst(12, 13))
    assert [len(m) for m in inbox["ops"].messages] == [2, 1]  # the acknowledged one is not repeated


def test_quiet_hours_hold_warnings_but_not_critical(store: Store) -> None:
    quiet = QuietHours.parse({"start": "23:00", "end": "08:00"}, CST)
    route = {"receiver": "ops", "group_wait": "0s", "send_resolved": False, "repeat_interval": "1d"}
    monitor, clock, inbox = setup(store, route, quiet=quiet, rules={}, start=cst(11, 0))
    monitor.add_shipments([Shipment("O1", "sandbox", "SB1", cst(11, 3)), Shipment("O2", "sandbox", "SB2", cst(11, 1))])
    clock.set(cst(11, 2, 30))
    asyncio.run(monitor.ingest([TrackingEvent("sandbox", "SB2", cst(11, 2, 30), Status.PICKED_UP, raw_code="20")]))
    at(monitor, clock, cst(11, 23))  # SB1 pickup_at_risk (warning) inside quiet hours: held
    at(monitor, clock, cst(12, 2, 30))  # SB2 stalled (warning): held
    assert inbox["ops"].messages == []
    at(monitor, clock, cst(12, 3))  # SB1 pickup_overdue (critical) breaks through; at-risk is escalated
    assert [rules_of(m) for m in inbox["ops"].messages] == [{"pickup_overdue"}]
    at(monitor, clock, cst(12, 8))  # quiet hours over: the stall goes out, the cleared at-risk never does
    assert [rules_of(m) for m in inbox["ops"].messages] == [{"pickup_overdue"}, {"stalled"}]


def test_rate_limit_spreads_messages(store: Store) -> None:
    route = {"receiver": "ops", "group_by": ["shop"], "group_wait": "0s"}
    monitor, clock, inbox = setup(store, route, limit=2)
    for shop in ("A", "B", "C"):
        monitor.add_shipments([Shipment(f"O{shop}", "sandbox", f"SB{shop}", cst(11, 9), shop=shop)])
    at(monitor, clock, cst(12, 9))
    assert len(inbox["ops"].messages) == 2
    at(monitor, clock, cst(12, 9, 1))
    assert len(inbox["ops"].messages) == 3


def test_resolved_notice_and_cancelled_firing(store: Store) -> None:
    route = {"receiver": "ops", "group_wait": "10m", "send_resolved": True}
    monitor, clock, inbox = setup(store, route)
    monitor.add_shipments([Shipment("O1", "sandbox", "SB1", cst(11, 9)), Shipment("O2", "sandbox", "SB2", cst(11, 9))])
    at(monitor, clock, cst(12, 9))
    clock.set(cst(12, 9, 2))  # SB2's scan arrives before anyone was told: its notice is dropped
    asyncio.run(monitor.ingest([TrackingEvent("sandbox", "SB2", cst(12, 9, 1), Status.PICKED_UP, raw_code="20")]))
    at(monitor, clock, cst(12, 9, 10))
    assert [[a.tracking_no for a in m] for m in inbox["ops"].messages] == [["SB1"]]
    clock.set(cst(12, 11))
    asyncio.run(monitor.ingest([TrackingEvent("sandbox", "SB1", cst(12, 10, 30), Status.PICKED_UP, raw_code="20")]))
    at(monitor, clock, cst(12, 11, 10))
    last = inbox["ops"].messages[-1]
    assert [(a.tracking_no, a.state) for a in last] == [("SB1", "resolved")]


def test_restart_never_resends_and_never_drops(store: Store) -> None:
    route = {"receiver": "ops", "group_by": ["rule"], "group_wait": "0s", "group_interval": "1h"}
    monitor, clock, inbox = setup(store, route)
    monitor.add_shipments(
        [Shipment("O1", "sandbox", "SB1", cst(11, 9)), Shipment("O2", "sandbox", "SB2", cst(11, 9, 30))]
    )
    at(monitor, clock, cst(12, 9))
    at(monitor, clock, cst(12, 9, 30))  # SB1 sent at 09:00, SB2 waits for the interval (10:00)
    assert [[a.tracking_no for a in m] for m in inbox["ops"].messages] == [["SB1"]]
    again, clock2, inbox2 = setup(store, route)  # a new process on the same database
    clock2.set(cst(12, 10))
    asyncio.run(again.tick())
    assert [[a.tracking_no for a in m] for m in inbox2["ops"].messages] == [["SB2"]]


def test_routes_with_continue_reach_both_receivers(store: Store) -> None:
    route = {
        "receiver": "ops",
        "group_wait": "0s",
        "routes": [{"match": {"severity": "critical"}, "receiver": "oncall", "continue": True}, {"receiver": "ops"}],
    }
    monitor, clock, inbox = setup(store, route, channels=("ops", "oncall"), rules={})
    ship(monitor, 1)
    at(monitor, clock, cst(12, 5))  # pickup_at_risk: warning → ops only
    at(monitor, clock, cst(12, 9))  # pickup_overdue: critical → oncall and ops; at-risk resolved → ops told
    assert [rules_of(m) for m in inbox["oncall"].messages] == [{"pickup_overdue"}]
    ops = [[(a.rule, a.state) for a in m] for m in inbox["ops"].messages]
    assert ops == [[("pickup_at_risk", "firing")], [("pickup_overdue", "firing")], [("pickup_at_risk", "resolved")]]
    with store.begin() as uow:
        assert len(uow.notifications("sent")) == 4


def test_replay_records_alerts_through_the_configured_router(tmp_path: object) -> None:
    import io
    import json

    from monitor.replay.runner import replay
    from monitor.replay.scenario import parse

    lines = [
        {"kind": "shipment", "at": "2026-11-11T09:00:00+08:00", "order_id": "O1", "carrier": "sf", "tracking_no": "S1"},
        {"kind": "end", "at": "2026-11-12T10:00:00+08:00"},
    ]
    route = {
        "receiver": "ops",
        "group_wait": "2m",
        "routes": [{"match": {"severity": "critical"}, "receiver": "oncall"}],
    }
    out = io.StringIO()
    alerting = {"route": parse_route(route, {"ops", "oncall"})}
    steps = parse([json.dumps(line) for line in lines])
    asyncio.run(replay(steps, build_ruleset(), out, channels=("ops", "oncall"), alerting=alerting))
    sent = [json.loads(x) for x in out.getvalue().splitlines() if '"alert_sent"' in x]
    assert [(s["at"], s["channel"], s["rule"], s.get("status")) for s in sent] == [
        ("2026-11-12T05:02:00+08:00", "ops", "pickup_at_risk", None),  # group_wait 2m after 05:00
        ("2026-11-12T09:00:00+08:00", "ops", "pickup_at_risk", "resolved"),  # escalated: said at once
        ("2026-11-12T09:02:00+08:00", "oncall", "pickup_overdue", None),  # critical → oncall only
    ]


def test_message_says_how_long_and_what_was_done(store: Store) -> None:
    from monitor.alerts.messages import render

    monitor, clock, inbox = setup(store, {"receiver": "ops", "group_wait": "0s"})
    monitor.add_shipments([Shipment("O1", "sandbox", "SB1", cst(11, 9), amount_fen=30_000)])
    at(monitor, clock, cst(12, 9))
    ((alert,),) = inbox["ops"].messages
    assert alert.waiting_since == cst(11, 9) and alert.actions == ("ticket",)
    zh, en = render([alert]).text, render([alert], "en").text
    assert "已 24 小时无进展" in zh and "已建工单" in zh and "赔付风险 ¥15.00" in zh
    assert "24 h without progress" in en and "ticket opened" in en


class SlowInbox(Inbox):
    """An inbox that takes a while to answer (or never does), so senders overlap."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(name)
        self.seconds = seconds
        self.asked = 0

    async def notify(self, alerts: Sequence[Alert]) -> Delivery:
        self.asked += 1
        await asyncio.sleep(self.seconds)
        return await super().notify(alerts)


def queued(store: Store, count: int) -> tuple[Monitor, SimulatedClock]:
    """Open ``count`` pickup_overdue anomalies and queue their notices (nothing sent yet)."""
    monitor, clock, _ = setup(store, {"receiver": "ops", "group_by": ["rule"], "group_wait": "0s"})
    ship(monitor, count)
    clock.set(cst(12, 9))
    asyncio.run(monitor.tick(act=False))
    asyncio.run(monitor.dispatcher.run())
    return monitor, clock


def test_overlapping_flushes_send_each_group_once(store: Store) -> None:
    monitor, _ = queued(store, 40)
    threaded = Store(store.engine, threads=4)  # as the daemon runs it: flushes really overlap
    inbox = SlowInbox("ops", 0.05)
    notifier = Notifier(threaded, monitor.clock, {"ops": inbox}, monitor.notifier.route)

    async def five_at_once() -> list[int]:
        return await asyncio.gather(*(notifier.flush() for _ in range(5)))

    assert sorted(asyncio.run(five_at_once())) == [0, 0, 0, 0, 1]
    (message,) = inbox.messages
    assert len(message) == 40
    with store.begin() as uow:
        assert {n.state for n in uow.notifications()} == {"sent"}


def test_a_sender_killed_mid_send_leaves_its_group_to_the_next_after_the_lease(store: Store) -> None:
    monitor, clock = queued(store, 3)
    stuck = SlowInbox("ops", 3600)

    async def killed() -> None:
        task = asyncio.create_task(Notifier(store, clock, {"ops": stuck}, monitor.notifier.route).flush())
        while not stuck.asked:
            await asyncio.sleep(0.01)
        task.cancel()  # what kill -9 leaves: the rows claimed, nothing recorded

    asyncio.run(killed())
    inbox = Inbox("ops")
    fresh = Notifier(store, clock, {"ops": inbox}, monitor.notifier.route)
    assert asyncio.run(fresh.flush()) == 0  # still leased to the dead sender
    clock.advance(SEND_LEASE + timedelta(seconds=1))
    assert asyncio.run(fresh.flush()) == 1
    assert [len(m) for m in inbox.messages] == [3]


def test_act_only_queues_when_the_daemon_defers_it_to_the_dispatch_job(store: Store) -> None:
    monitor, clock, inbox = setup(store, {"receiver": "ops", "group_by": ["rule"], "group_wait": "0s"})
    monitor.defer_actions = True
    ship(monitor, 2)
    clock.set(cst(12, 9))
    asyncio.run(monitor.tick(act=False))
    asyncio.run(monitor.act())  # what a push or a verdict request calls
    assert inbox["ops"].messages == []
    asyncio.run(monitor.run_actions())  # the dispatch job
    assert [len(m) for m in inbox["ops"].messages] == [2]


class Statements:
    """The SQL statements the store issues while it is listened to (SQLAlchemy's ``before_cursor_execute``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.seen: list[str] = []

    def _saw(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.seen.append(" ".join(statement.split()))

    def __enter__(self) -> list[str]:
        event.listen(self.store.engine, "before_cursor_execute", self._saw)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        event.remove(self.store.engine, "before_cursor_execute", self._saw)


def test_a_flush_without_repeating_routes_reads_no_sent_notice(store: Store) -> None:
    """No route repeats: the flush is the claim alone, never a pass over the notification log's history."""
    monitor, clock, inbox = setup(store, {"receiver": "ops", "group_wait": "0s", "repeat_interval": "0s"})
    assert not monitor.notifier.repeats
    ship(monitor, 3)
    at(monitor, clock, cst(12, 9))
    assert len(inbox["ops"].messages) == 1
    clock.set(cst(13, 9))
    with Statements(store) as seen:
        assert asyncio.run(monitor.notifier.flush()) == 0
    touching = [s for s in seen if "notification" in s]
    assert len(touching) == 1 and "UPDATE notification SET state=" in touching[0]  # the claim
    assert not [s for s in seen if "'sent'" in s or "repeat" in s]


def test_the_repeat_pass_reads_only_notices_due_again(store: Store) -> None:
    """A repeating route: sent notices carry their next moment, and the pass reads that index, not every sent row."""
    route = {"receiver": "ops", "group_wait": "0s", "repeat_interval": "4h"}
    monitor, clock, inbox = setup(store, route)
    ship(monitor, 2)
    at(monitor, clock, cst(12, 9))
    with store.begin() as uow:
        sent = uow.notifications(state="sent")
        first = sorted(a.id for a in uow.anomalies(state="open"))[0]
    assert {n.repeat_due_at for n in sent} == {cst(12, 13)}
    monitor.resolve(first)
    clock.set(cst(12, 12))
    with Statements(store) as seen:
        asyncio.run(monitor.notifier.flush())
    (repeat_pass,) = [s for s in seen if s.startswith("SELECT") and "repeat_due_at" in s]
    assert "notification.repeat_due_at <=" in repeat_pass and "notification.state =" not in repeat_pass
    at(monitor, clock, cst(12, 13))
    firing = [[a.anomaly_id for a in m] for m in inbox["ops"].messages if m[0].state == "firing"]
    assert len(firing) == 2 and len(firing[0]) == 2 and first not in firing[1]  # the resolved one is not repeated …
    with store.begin() as uow:
        by_anomaly = {n.anomaly_id: n for n in uow.notifications() if n.kind == "firing"}
    assert by_anomaly[first].repeat_due_at is None  # … and is disarmed, so no later pass reads it again
    assert [n.repeat_due_at for a, n in by_anomaly.items() if a != first] == [cst(12, 17)]
    if store.dialect == "sqlite":  # the plan reads the partial index
        with store.engine.connect() as conn:
            plan = " ".join(r[-1] for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM notification WHERE repeat_due_at IS NOT NULL AND repeat_due_at <= ?",
                ("2026-11-12 05:00:00.000000+00:00",)))  # fmt: skip
        assert "ix_notification_repeat" in plan


def test_arming_repeats_reads_the_sent_notices_by_key(store: Store) -> None:
    """Marking notices sent reads those rows by id only: a state filter beside it let SQLite walk every sent row."""
    route = {"receiver": "ops", "group_wait": "0s", "repeat_interval": "4h"}
    monitor, clock, inbox = setup(store, route)
    ship(monitor, 2)
    with Statements(store) as seen:
        at(monitor, clock, cst(12, 9))
    assert inbox["ops"].messages, "the overdue pickups were alerted"
    (arming,) = [s for s in seen if s.startswith("SELECT notification.id, notification.repeat_seconds")]
    where = arming.split(" WHERE ", 1)[1]
    assert where.startswith("notification.id IN") and " AND " not in where, arming
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            params = tuple(range(1, arming.count("?") + 1))
            plan = " ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + arming, params))
        assert "PRIMARY KEY" in plan, plan


def test_queueing_and_flushing_read_the_group_and_the_outbox_by_index(store: Store) -> None:
    """When a group last went out, its pending batch and what else was queued per anomaly are index seeks.

    The notification log and the outbox keep every row ever written: a read that walks a whole
    group (``rule=stalled`` holds every stall ever told) or the whole outbox grows with the
    history, and in a 100,000-parcel replay these three were a quarter of the time by its end.
    """
    monitor, clock, inbox = setup(store, {"receiver": "ops", "group_by": ["rule"], "group_wait": "0s"})
    ship(monitor, 3)
    with Statements(store) as seen:
        at(monitor, clock, cst(12, 9))
    assert len(inbox["ops"].messages) == 1
    sent = [s for s in seen if s.startswith("SELECT max(notification.sent_at)")]
    pending = [s for s in seen if s.startswith("SELECT min(notification.due_at)") and "receiver" in s]
    kinds = [s for s in seen if s.startswith("SELECT action.anomaly_id, action.kind")]
    assert sent and pending and kinds, "queueing asked for the group's timing and the flush for the anomalies' actions"
    if store.dialect != "sqlite":
        return
    with store.engine.connect() as conn:
        def plan(statement: str) -> str:
            params = tuple(range(1, statement.count("?") + 1))
            return " ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))

        assert "COVERING INDEX ix_notification_group_sent (receiver=? AND group_key=?)" in plan(sent[0])
        assert "COVERING INDEX ix_notification_group (receiver=? AND group_key=? AND state=?)" in plan(pending[0])
        kinds_plan = plan(kinds[0])
        assert "COVERING INDEX ix_action_anomaly (anomaly_id=?)" in kinds_plan and "SCAN action" not in kinds_plan
