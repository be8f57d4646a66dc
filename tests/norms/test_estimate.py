"""The estimated delivery window, and delivery_overdue at the p90 estimate when a shipment has no promise (opt-in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment, ShipmentBook
from monitor.norms.estimate import estimate
from monitor.norms.model import Norm, NormBook
from monitor.norms.settings import NormSettings
from monitor.rules.ruleset import build_ruleset
from monitor.store.store import Store

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
H = timedelta(hours=1)


def book(settings: NormSettings | None = None) -> NormBook:
    total = Norm("route", "sf", "浙江", "四川", "", "total", 40 * 3600, 60 * 3600, 70 * 3600, 90 * 3600, 50)
    ofd = Norm("region", "sf", "", "", "cross_province", "ofd_to_delivered", 2 * 3600, 5 * 3600, 6 * 3600, 8 * 3600, 31)
    few = Norm("route", "sf", "浙江", "重庆", "", "total", 3600, 3600, 3600, 3600, 29)
    return NormBook([total, ofd, few], settings)


def parcel(status: str, dest: str = "四川", last: datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(carrier="sf", origin_province="浙江", destination_province=dest,
                           region_class="cross_province", status=status, shipped_at=T0, last_event_at=last)  # fmt: skip


def test_window_is_p50_to_p90_from_the_current_state() -> None:
    b = book()
    w = estimate(b, parcel("in_transit", last=T0 + 5 * H), T0 + 6 * H)
    assert (w.earliest, w.latest, w.level, w.phase, w.samples) == (T0 + 40 * H, T0 + 60 * H, "route", "total", 50)
    late = estimate(b, parcel("in_transit"), T0 + 50 * H)
    assert (late.earliest, late.latest) == (T0 + 50 * H, T0 + 60 * H)  # p50 passed: from now on
    later = estimate(b, parcel("in_transit"), T0 + 70 * H)
    assert later.earliest == later.latest == T0 + 70 * H
    ofd = estimate(b, parcel("out_for_delivery", last=T0 + 30 * H), T0 + 31 * H)
    assert (ofd.earliest, ofd.latest, ofd.level) == (T0 + 32 * H, T0 + 35 * H, "region")
    assert estimate(b, parcel("delivered"), T0) is None
    assert estimate(b, parcel("returning"), T0) is None
    assert estimate(b, parcel("in_transit", dest="重庆"), T0) is None  # 29 samples: not enough, nothing else learned


def test_delivery_overdue_at_the_p90_estimate_only_when_asked(store: Store) -> None:
    rules, clock = build_ruleset(), SimulatedClock(T0)
    s = Shipment("O-1", "sf", "SF1", T0, origin_province="浙江", destination_province="四川")
    promised = Shipment("O-2", "sf", "SF2", T0, promised_delivery=T0 + 30 * H, origin_province="浙江",
                        destination_province="四川")  # fmt: skip
    assert ShipmentBook(store, rules, clock, book()).row(s)["delivery_due"] is None  # off by default
    on = ShipmentBook(store, rules, clock, book(NormSettings(estimate_delivery_overdue=True)))
    assert on.row(s)["delivery_due"] == T0 + 60 * H
    assert on.row(s)["promised_delivery"] is None  # the estimate arms the rule; the shipment's own field stays empty
    assert on.row(promised)["delivery_due"] == T0 + 30 * H  # a promise always wins
