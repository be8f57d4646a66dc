"""slow_for_route: armed from the learned gap only before the fixed line, fires first, resolves on a scan, says why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from carriers.model import Status, TrackingEvent
from monitor.alerts.channels.console import RecordingChannel
from monitor.alerts.messages import one_line
from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment
from monitor.norms.learn import learn
from monitor.norms.model import NormBook
from monitor.rules.ruleset import build_ruleset
from monitor.rules.timeline import ParcelState, Schedule, deadlines
from monitor.service import Monitor
from monitor.store.store import Store
from monitor.testing.history import Journey, write_journeys

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
H = timedelta(hours=1)


def steady(shipped: datetime, gap_hours: float) -> Journey:
    """A delivered 浙江→四川 parcel scanned every ``gap_hours`` in transit."""
    at = shipped + 2 * H
    scans = [(at, "picked_up")]
    for _ in range(4):
        at += gap_hours * H
        scans.append((at, "in_transit"))
    at += gap_hours * H
    scans.append((at, "out_for_delivery"))
    at += 3 * H
    scans.append((at, "delivered"))
    return Journey("sf", "浙江", "四川", "cross_province", shipped, scans)


def learned(store: Store) -> NormBook:
    with store.begin() as uow:  # 40 parcels, transit gaps 5.0 … 6.95 h: p95 ≈ 6.9 h
        write_journeys(uow, [steady(NOW - timedelta(days=20) + i * 6 * H, 5 + i * 0.05) for i in range(40)])
    learn(store, NOW)
    return NormBook.load(store)


def test_deadlines_arm_slow_due_only_before_the_fixed_line() -> None:
    t = build_ruleset().thresholds("sf", "")
    last = datetime(2026, 11, 11, tzinfo=UTC)
    state = ParcelState(status="in_transit", last_event_at=last, picked_up_at=last - 5 * H)
    schedule = Schedule(last - 8 * H, last + 16 * H, None, "cross_province", held=False)
    assert deadlines(state, schedule, t)["slow_due"] is None  # no norms: nothing learned, nothing armed
    due = deadlines(state, schedule, t, {"transit_gap": 6 * 3600})
    assert (due["slow_due"], due["stall_due"]) == (last + 6 * H, last + 72 * H)
    assert deadlines(state, schedule, t, {"transit_gap": 80 * 3600})["slow_due"] is None  # later than the stall line
    assert deadlines(state, schedule, t, {"pickup_to_first_transit": 3600})["slow_due"] is None  # another phase
    pending = deadlines(ParcelState(), schedule, t, {"ship_to_pickup": 3 * 3600})
    assert pending["slow_due"] == schedule.shipped_at + 3 * H  # before pickup_at_risk (deadline − 4 h)
    delivered = ParcelState(status="delivered", last_event_at=last, picked_up_at=last, delivered_at=last)
    assert deadlines(delivered, schedule, t, {"transit_gap": 3600})["slow_due"] is None


def test_fires_hours_before_stalled_resolves_on_the_scan_and_says_why(store: Store) -> None:
    book = learned(store)
    clock = SimulatedClock(NOW)
    channel = RecordingChannel("console")
    monitor = Monitor(store, build_ruleset(), clock, {}, {"console": channel}, norms=book)

    async def scenario() -> list[str]:
        monitor.add_shipments([Shipment("O-1", "sf", "SF1", NOW, origin_province="浙江", destination_province="四川")])
        scan = NOW + 2 * H
        for status in (Status.PICKED_UP, Status.IN_TRANSIT):
            clock.set(scan)
            await monitor.ingest([TrackingEvent("sf", "SF1", scan, status, status.value)])
            scan += 4 * H
        last = NOW + 6 * H
        with store.begin() as uow:
            row = uow.parcels_by_keys([("sf", "SF1")])[("sf", "SF1")]
            due = uow.parcel(row.id)
        gap = book.find("sf", "浙江", "四川", "cross_province", "transit_gap")
        assert gap is not None and gap.samples == 160
        assert due.slow_due == last + timedelta(seconds=gap.p95)
        assert due.stall_due == last + 72 * H
        clock.set(last + 6 * H)
        assert await monitor.tick() == 0  # within the route's p95: quiet
        clock.set(last + 15 * H)
        assert await monitor.tick() == 1
        opened = [a for a in store_anomalies(store) if a.state == "open"]
        assert [a.rule for a in opened] == ["slow_for_route"]
        clock.set(last + 15 * H + 5 * timedelta(minutes=1))
        await monitor.run_actions()  # the alert group waits group_wait, then goes out
        # the scan comes: resolved like stalled, nothing else opened
        clock.set(last + 16 * H)
        await monitor.ingest([TrackingEvent("sf", "SF1", last + 16 * H, Status.IN_TRANSIT, "in_transit")])
        states = {(a.rule, a.state, a.resolution) for a in store_anomalies(store)}
        assert states == {("slow_for_route", "resolved", "auto")}
        return [one_line(a) for a in channel.sent]

    lines = asyncio.run(scenario())
    assert lines, "the alert was sent"
    hours = round(book.find("sf", "浙江", "四川", "cross_province", "transit_gap").p95 / 3600)
    assert f"此线路通常 {hours} 小时内有新轨迹，已 15 小时（160 件样本）" in lines[0]
    assert lines[0].startswith("[警告] 慢于线路常态")


def test_stalled_takes_over_from_the_learned_warning(store: Store) -> None:
    book = learned(store)
    clock = SimulatedClock(NOW)
    monitor = Monitor(store, build_ruleset(), clock, {}, {}, norms=book)

    async def scenario() -> None:
        monitor.add_shipments([Shipment("O-2", "sf", "SF2", NOW, origin_province="浙江", destination_province="四川")])
        clock.set(NOW + 2 * H)
        await monitor.ingest([TrackingEvent("sf", "SF2", NOW + 2 * H, Status.IN_TRANSIT, "in_transit")])
        clock.set(NOW + 12 * H)
        await monitor.tick()
        clock.set(NOW + 75 * H)
        await monitor.tick()

    asyncio.run(scenario())
    found = {a.rule: (a.state, a.resolution, a.opened_at) for a in store_anomalies(store)}
    assert found["slow_for_route"][:2] == ("resolved", "escalated")
    assert found["stalled"][0] == "open"
    gained = found["stalled"][2] - found["slow_for_route"][2]
    assert gained >= 60 * H  # the learned norm spoke ~2.5 days before the platform's 72 h line


def test_rule_is_configurable_like_every_rule(store: Store) -> None:
    rules = build_ruleset({"rule": {"slow_for_route": {"enabled": False}}})
    assert not rules.spec("slow_for_route").enabled
    default = build_ruleset().spec("slow_for_route")
    assert (default.severity, default.actions) == ("warning", ("alert",))
    book = learned(store)
    clock = SimulatedClock(NOW)
    monitor = Monitor(store, rules, clock, {}, {}, norms=book)

    async def scenario() -> int:
        monitor.add_shipments([Shipment("O-3", "sf", "SF3", NOW, origin_province="浙江", destination_province="四川")])
        clock.set(NOW + 2 * H)
        await monitor.ingest([TrackingEvent("sf", "SF3", NOW + 2 * H, Status.IN_TRANSIT, "in_transit")])
        clock.set(NOW + 20 * H)
        return await monitor.tick()

    assert asyncio.run(scenario()) == 0


def store_anomalies(store: Store) -> list:
    with store.begin() as uow:
        return uow.anomalies()
