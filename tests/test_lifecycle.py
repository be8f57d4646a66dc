"""The anomaly lifecycle: open → acknowledged → resolved, one active per parcel and rule."""

from __future__ import annotations

import asyncio

from carriers.model import Status, TrackingEvent
from carriers.sandbox import SandboxCarrier
from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store
from tests.helpers import cst


def overdue_monitor(store: Store) -> tuple[Monitor, SimulatedClock, int]:
    clock = SimulatedClock(cst(11, 9))
    monitor = Monitor(store, build_ruleset(), clock, {"sandbox": SandboxCarrier(clock)}, {})
    monitor.add_shipments([Shipment("O1", "sandbox", "SB1", cst(11, 9))])
    clock.set(cst(12, 9))
    asyncio.run(monitor.tick())
    with store.begin() as uow:
        (anomaly,) = uow.anomalies(state="open")
    assert anomaly.rule == "pickup_overdue"
    return monitor, clock, anomaly.id


def test_acknowledge_then_auto_resolve(store: Store) -> None:
    monitor, clock, anomaly_id = overdue_monitor(store)
    assert monitor.acknowledge(anomaly_id)
    assert not monitor.acknowledge(anomaly_id)  # only an open one can be acknowledged
    clock.set(cst(12, 11))
    asyncio.run(monitor.ingest([TrackingEvent("sandbox", "SB1", cst(12, 10), Status.PICKED_UP, raw_code="20")]))
    with store.begin() as uow:
        anomaly = uow.anomaly(anomaly_id)
    assert (anomaly.state, anomaly.resolution) == ("resolved", "auto")
    assert anomaly.acknowledged_at == cst(12, 9) and anomaly.resolved_at == cst(12, 11)


def test_manual_resolve_and_no_second_active_anomaly(store: Store) -> None:
    monitor, clock, anomaly_id = overdue_monitor(store)
    clock.set(cst(12, 10))
    asyncio.run(monitor.tick())  # nothing new is due: still one active anomaly
    with store.begin() as uow:
        assert len(uow.active_anomalies([1])) == 1
    assert monitor.resolve(anomaly_id)
    assert not monitor.resolve(anomaly_id)
    with store.begin() as uow:
        assert uow.anomaly(anomaly_id).resolution == "manual"
        assert uow.active_anomalies([1]) == []
