"""Carrier texts often carry a phone number (the courier's, or the buyer's): it is masked before it is stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from carriers.model import Status, TrackingEvent
from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_phone_numbers_in_carrier_texts_are_masked_before_they_are_stored(store: Store) -> None:
    clock = SimulatedClock(T0)
    monitor = Monitor(store, build_ruleset({}), clock, {}, {})
    monitor.add_shipments([Shipment(order_id="O1", carrier="sandbox", tracking_no="SB1", shipped_at=T0)])
    text = "【杭州市】快件派送中，派件员：王师傅，电话：13812345678，收件人电话15900001111"
    event = TrackingEvent("sandbox", "SB1", T0 + timedelta(hours=3), Status.OUT_FOR_DELIVERY, raw_code="5",
                          raw_text=text)  # fmt: skip
    asyncio.run(monitor.ingest([event]))
    asyncio.run(monitor.ingest([event]))  # the same event again is still one row
    with store.begin() as uow:
        parcel = uow.parcels_by_keys([("sandbox", "SB1")])[("sandbox", "SB1")]
        stored = [e.raw_text for e in uow.events_of(parcel.id)]
    assert stored == ["【杭州市】快件派送中，派件员：王师傅，电话：138****5678，收件人电话159****1111"]
