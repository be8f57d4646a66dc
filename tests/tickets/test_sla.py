"""Ticket deadlines: the overdue alert and the escalation at the right simulated minute, once each."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from monitor.alerts.channels.console import RecordingChannel
from monitor.alerts.channels.dingtalk import DingTalkChannel, DingTalkSettings
from monitor.alerts.model import Delivery
from monitor.alerts.routing import Route
from monitor.alerts.timing import QuietHours
from monitor.clock import SimulatedClock
from monitor.replay.runner import replay
from monitor.replay.scenario import parse
from monitor.rules.ruleset import build_ruleset
from monitor.store.models import Account
from monitor.store.store import TE, TK, Store, UnitOfWork
from monitor.testing.receivers import FakeDingTalk
from monitor.tickets.sla import SlaSettings, SlaWatch

START = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CST = timezone(timedelta(hours=8))
MOBILE = "13800138000"
LEAD_MOBILE = "13900139000"


def seed(uow: UnitOfWork, at: datetime, rule: str = "intercept_failed", number: str = "SF1") -> int:
    """Add a parcel, an assignee, a lead and one open ticket assigned to team ``ops``; return the ticket id."""
    uow.insert_parcels([{"carrier": "sf", "tracking_no": number, "order_id": f"O-{number}", "shop": "tmall-1",
                         "shipped_at": at, "pickup_deadline": at + timedelta(hours=24), "created_at": at,
                         "updated_at": at}])  # fmt: skip
    parcel = uow.parcels_by_keys([("sf", number)])[("sf", number)]
    people = {}
    for login, mobile in (("wang", MOBILE), ("lead", LEAD_MOBILE)):
        found = uow.account_by_login(login)
        if found is None:
            row = {"login": login, "display_name": login.title(), "mobile": mobile, "role": "operator",
                   "password_hash": "x", "created_at": at, "updated_at": at}  # fmt: skip
            uow.conn.execute(Account.__table__.insert().values(**row))
            found = uow.account_by_login(login)
        people[login] = found.id
    ticket_id, _ = uow.insert_ticket(
        {
            "idempotency_key": f"t:{number}",
            "parcel_id": parcel.id,
            "rule": rule,
            "title": "拦截失败",
            "state": "open",
            "created_at": at,
            "updated_at": at,
            "assignee_id": people["wang"],
            "team": "ops",
            "shop": "tmall-1",
            "carrier": "sf",
            "stake_fen": 500,
        }
        | SlaSettings().deadline(rule, at)
    )
    return ticket_id


def watch(store: Store, clock: SimulatedClock, channel: Any, quiet: QuietHours | None = None) -> SlaWatch:
    route = Route(receiver=channel.name)
    return SlaWatch(store, clock, SlaSettings(), {channel.name: channel}, route, quiet, leads={"ops": "lead"})


def run_minutes(sla: SlaWatch, clock: SimulatedClock, minutes: int) -> dict[int, int]:
    """Run the job every simulated minute; return {minute: tickets told} for minutes that told something."""
    told = {}
    for minute in range(1, minutes + 1):
        if START + timedelta(minutes=minute) < clock.now():
            continue
        clock.set(START + timedelta(minutes=minute))
        n = asyncio.run(sla.run())
        if n:
            told[minute] = n
    return told


def test_overdue_then_escalated_at_the_right_minute_once_each(store: Store) -> None:
    clock = SimulatedClock(START)
    with store.begin() as uow:
        ticket_id = seed(uow, START)  # intercept_failed: 30 min to handle
    channel = RecordingChannel("ops")
    told = run_minutes(watch(store, clock, channel), clock, 75)
    assert told == {30: 1, 60: 1}
    overdue, escalated = channel.sent
    assert (overdue.rule, overdue.mentions) == ("ticket_overdue", (MOBILE,))
    assert (escalated.rule, escalated.mentions) == ("ticket_escalated", (LEAD_MOBILE,))
    assert f"#{ticket_id}" in overdue.detail and overdue.shop == "tmall-1" and overdue.carrier == "sf"
    with store.begin() as uow:
        kinds = [e.kind for e in uow.conn.execute(select(TE).where(TE.c.ticket_id == ticket_id).order_by(TE.c.id))]
        ticket = next(t for t in uow.tickets() if t.id == ticket_id)
    assert kinds == ["overdue", "escalated"]
    assert ticket.overdue_alerted_at == START + timedelta(minutes=30)
    assert ticket.escalated_at == START + timedelta(minutes=60)


def test_closing_before_the_deadline_sends_nothing(store: Store) -> None:
    clock = SimulatedClock(START)
    with store.begin() as uow:
        ticket_id = seed(uow, START)
    clock.set(START + timedelta(minutes=20))
    with store.begin() as uow:  # what closing does to the row (B1's lifecycle): done, the clock stops
        uow.conn.execute(update(TK).where(TK.c.id == ticket_id).values(state="done", closed_at=clock.now()))
    channel = RecordingChannel("ops")
    assert run_minutes(watch(store, clock, channel), clock, 120) == {}
    assert channel.sent == []


def test_quiet_hours_hold_the_alert_until_they_end(store: Store) -> None:
    clock = SimulatedClock(START)
    with store.begin() as uow:
        seed(uow, START)  # due 10:30 Shanghai, inside the 10:15–11:00 quiet window; severity warning
    channel = RecordingChannel("ops")
    quiet = QuietHours(time(10, 15), time(11, 0), CST)
    told = run_minutes(watch(store, clock, channel, quiet), clock, 120)
    assert told == {60: 1, 90: 1}  # the overdue alert at 11:00 when the window closes; the lead's 30 min later
    assert [a.rule for a in channel.sent] == ["ticket_overdue", "ticket_escalated"]


def test_the_assignee_is_mentioned_in_the_dingtalk_message(store: Store) -> None:
    clock = SimulatedClock(START)
    with store.begin() as uow:
        seed(uow, START, rule="pickup_at_risk")  # 1 h

    async def go(url: str) -> int:
        async with httpx.AsyncClient() as http:
            channel = DingTalkChannel("ding", DingTalkSettings(webhook=url), http, clock)
            sla = SlaWatch(store, clock, SlaSettings(), {"ding": channel}, Route(receiver="ding"))
            clock.set(START + timedelta(minutes=59))
            assert await sla.run() == 0
            clock.set(START + timedelta(minutes=60))
            return await sla.run()

    with FakeDingTalk("tok", clock=clock) as ding:
        assert asyncio.run(go(ding.url)) == 1
        (request,) = ding.received
        body = request.json()
    assert body["at"]["atMobiles"] == [MOBILE]
    assert f"@{MOBILE}" in body["markdown"]["text"]
    assert ding.problems == []


def test_a_failed_send_is_tried_again_by_the_next_run(store: Store) -> None:
    clock = SimulatedClock(START)
    with store.begin() as uow:
        seed(uow, START)

    class Down(RecordingChannel):
        fail = True

        async def notify(self, alerts: Any) -> Any:
            if self.fail:
                return Delivery(sent=False, retryable=True, error="503")
            return await super().notify(alerts)

    channel = Down("ops")
    sla = watch(store, clock, channel)
    clock.set(START + timedelta(minutes=30))
    assert asyncio.run(sla.run()) == 0
    channel.fail = False
    clock.set(START + timedelta(minutes=31))
    assert asyncio.run(sla.run()) == 1
    assert [a.rule for a in channel.sent] == ["ticket_overdue"]


@pytest.mark.parametrize("raw", [{"stalled": "8 hours"}, {"stalled": 8}])
def test_bad_durations_name_the_rule(raw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"tickets\.sla\.stalled"):
        SlaSettings.parse(raw)


def test_settings_override_and_turn_off() -> None:
    sla = SlaSettings.parse({"stalled": "2h", "returned": "0m"})
    assert sla.period("stalled") == timedelta(hours=2)
    assert sla.period("returned") is None
    assert sla.period("intercept_failed") == timedelta(minutes=30)


def test_replay_tells_at_the_simulated_minute_once_each(database_url: str) -> None:
    """A parcel never picked up: pickup_overdue (and its ticket) at +24 h, overdue at +26 h, escalated at +28 h."""
    lines = [
        {"at": "2026-11-03T09:00:00+08:00", "kind": "shipment", "order_id": "TB1", "carrier": "sf",
         "tracking_no": "SF100", "shop": "旗舰店", "amount": 100.0},
        {"at": "2026-11-04T14:00:00+08:00", "kind": "end"},
    ]  # fmt: skip
    steps = parse([json.dumps(line, ensure_ascii=False) for line in lines])
    out = io.StringIO()
    asyncio.run(replay(steps, build_ruleset(None), out, database_url=database_url, sla=SlaSettings()))
    told = [json.loads(line) for line in out.getvalue().splitlines()]
    opened = [t["at"] for t in told if t["event"] == "ticket_opened"]
    assert opened == ["2026-11-04T09:00:00+08:00"]
    assert [
        (t["event"], t["at"]) for t in told if t["event"].startswith("ticket_") and t["event"] != "ticket_opened"
    ] == [("ticket_overdue", "2026-11-04T11:00:00+08:00"), ("ticket_escalated", "2026-11-04T13:00:00+08:00")]


def test_replay_without_sla_says_nothing_of_deadlines() -> None:
    lines = [
        {"at": "2026-11-03T09:00:00+08:00", "kind": "shipment", "order_id": "TB1", "carrier": "sf",
         "tracking_no": "SF100"},
        {"at": "2026-11-04T14:00:00+08:00", "kind": "end"},
    ]  # fmt: skip
    steps = parse([json.dumps(line) for line in lines])
    out = io.StringIO()
    asyncio.run(replay(steps, build_ruleset(None), out))
    assert "ticket_overdue" not in out.getvalue() and "ticket_opened" in out.getvalue()
