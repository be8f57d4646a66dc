"""Learning route norms in SQL: exact quantiles on known data on both backends, the window, the fallback chain."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from monitor.norms.learn import learn
from monitor.norms.model import NormBook
from monitor.norms.settings import NormSettings
from monitor.rules.ruleset import build_ruleset
from monitor.store.store import Store
from monitor.testing.history import Journey, Pace, write_history, write_journeys

NOW = datetime(2026, 11, 30, tzinfo=UTC)
H = timedelta(hours=1)


def cont(values: list[float], q: float) -> float:
    """percentile_cont: linear interpolation between the ranks around 1 + q·(n−1)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def known(n: int, shipped: datetime, origin: str | None = "浙江", dest: str | None = "四川") -> Journey:
    """A parcel whose phases are whole hours set by ``n``: pickup n h, first transit 2n h, gaps n and n+1 h."""
    at = shipped + n * H
    scans = [(at, "picked_up")]
    at += 2 * n * H
    scans.append((at, "in_transit"))
    at += n * H
    scans.append((at, "in_transit"))
    at += (n + 1) * H
    scans.append((at, "out_for_delivery"))
    at += 3 * H
    scans.append((at, "delivered"))
    return Journey("sf", origin, dest, "cross_province", shipped, scans)


def test_quantiles_are_percentile_cont_of_each_phase_on_both_backends(store: Store) -> None:
    ns = list(range(1, 41))
    with store.begin() as uow:
        write_journeys(uow, [known(n, NOW - timedelta(days=20) + n * H) for n in ns])
    result = learn(store, NOW)
    assert (result.parcels, result.samples) == (40, 40 * 6)
    book = NormBook.load(store)
    expected = {
        "ship_to_pickup": [float(n) for n in ns],
        "pickup_to_first_transit": [2.0 * n for n in ns],
        "transit_gap": [float(n) for n in ns] + [n + 1.0 for n in ns],
        "ofd_to_delivered": [3.0] * 40,
        "total": [n + 2 * n + n + n + 1 + 3.0 for n in ns],
    }
    for phase, hours in expected.items():
        norm = book.find("sf", "浙江", "四川", "cross_province", phase)
        assert norm is not None and norm.level == "route", phase
        assert norm.samples == len(hours), phase
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
            assert norm.quantile(name) / 3600 == pytest.approx(cont(hours, q), abs=1e-3), (phase, name)
    # the other levels group the same samples
    region = book.find("sf", None, None, "cross_province", "ship_to_pickup")
    assert region is not None and region.level == "region" and region.samples == 40
    assert {n.level for n in book.all()} == {"route", "region", "carrier"}


def test_learning_keeps_to_the_window_and_replaces_the_table(store: Store) -> None:
    with store.begin() as uow:
        write_journeys(uow, [known(n, NOW - timedelta(days=90)) for n in range(1, 11)])  # delivered long ago
        write_journeys(uow, [known(5, NOW - timedelta(days=5)) for _ in range(3)])
    assert learn(store, NOW, NormSettings(window_days=60)).parcels == 3
    assert learn(store, NOW, NormSettings(window_days=100)).parcels == 13
    book = NormBook.load(store)
    total = book.find("sf", "浙江", "四川", "cross_province", "total")
    assert total is None  # 13 samples < min_samples 30: nothing learned is enough
    assert len([n for n in book.all() if n.phase == "total"]) == 3  # one row per level, kept for `routes show`


def test_learned_p95_is_close_to_the_truth_at_200_samples(store: Store) -> None:
    pace = Pace("zto", "广东", "北京", "cross_province",
                {"ship_to_pickup": (3, 0.3), "pickup_to_first_transit": (5, 0.25), "transit_gap": (6, 0.3),
                 "ofd_to_delivered": (3, 0.3)})  # fmt: skip
    with store.begin() as uow:
        write_history(uow, [pace], 400, NOW - timedelta(days=50), timedelta(days=40))
    learn(store, NOW)
    book = NormBook.load(store)
    for phase in ("ship_to_pickup", "pickup_to_first_transit", "transit_gap", "ofd_to_delivered"):
        norm = book.find("zto", "广东", "北京", "cross_province", phase)
        assert norm is not None and norm.samples >= 200
        assert norm.p95 == pytest.approx(pace.truth(phase), rel=0.10), phase


def test_fallback_chain_route_then_region_then_carrier_then_preset(store: Store) -> None:
    with store.begin() as uow:
        # 35 parcels 浙江→四川, 10 浙江→重庆 (same region class), 30 more of another class to 上海
        write_journeys(uow, [known(4, NOW - timedelta(days=3)) for _ in range(35)])
        write_journeys(uow, [known(8, NOW - timedelta(days=3), dest="重庆") for _ in range(10)])
        write_journeys(uow, [Journey("sf", "浙江", "上海", "same_region", NOW - timedelta(days=3),
                                     known(1, NOW - timedelta(days=3)).scans) for _ in range(30)])  # fmt: skip
    learn(store, NOW)
    book = NormBook.load(store, NormSettings(min_samples=30))
    rules = build_ruleset()
    t = rules.thresholds("sf", "")
    gap = "ship_to_pickup"
    assert book.chain("sf", "浙江", "四川", "cross_province", gap, t).level == "route"
    chongqing = book.chain("sf", "浙江", "重庆", "cross_province", gap, t)
    assert (chongqing.level, chongqing.samples) == ("region", 45)  # 10 of its own are too few
    remote = book.chain("sf", "浙江", "新疆", "remote", gap, t)
    assert (remote.level, remote.samples) == ("carrier", 75)
    preset = book.chain("yto", "浙江", "四川", "cross_province", "transit_gap", t)
    assert (preset.level, preset.p95) == ("preset", 72 * 3600)  # the fixed line: the rule never arms on it
    assert book.gaps("yto", "浙江", "四川", "cross_province") == {}
    assert book.chain("yto", "浙江", "四川", "cross_province", "total", t) is None
    # a province missing: no route level, the region class still applies
    assert book.find("sf", None, "四川", "cross_province", gap).level == "region"


def test_norm_book_refresh_and_gaps_use_the_configured_quantile(store: Store) -> None:
    book = NormBook.load(store, NormSettings(quantile="p50"))
    assert len(book) == 0 and book.gaps("sf", "浙江", "四川", "cross_province") == {}
    with store.begin() as uow:
        write_journeys(uow, [known(n, NOW - timedelta(days=20)) for n in range(1, 32)])
    learn(store, NOW)
    book.refresh(store)
    gaps = book.gaps("sf", "浙江", "四川", "cross_province")
    assert gaps["ship_to_pickup"] == pytest.approx(statistics.median(range(1, 32)) * 3600)
    assert set(gaps) == {"ship_to_pickup", "pickup_to_first_transit", "transit_gap", "ofd_to_delivered"}


def test_scans_before_shipping_and_pending_scans_keep_percentile_cont_on_both_backends(store: Store) -> None:
    """Negative durations fall in negative histogram buckets (SQLite packs the bucket into one key with the
    route and phase: they must not spill into a neighbour's), and a pending scan is no "next scan" for a gap."""
    ns = list(range(1, 41))
    journeys = []
    for n in ns:
        shipped = NOW - timedelta(days=10) + n * H
        at = shipped + (n - 25) * H  # scanned before it was entered as shipped: -24 h … +15 h
        scans = [(at, "picked_up"), (at + 2 * H, "in_transit"), (at + 2.5 * H, "pending"),
                 (at + (2 + n) * H, "in_transit"), (at + (3 + n) * H, "out_for_delivery"),
                 (at + (4 + n) * H, "delivered")]  # fmt: skip
        journeys.append(Journey("sf", "浙江", "四川", "cross_province", shipped, scans))
    with store.begin() as uow:
        write_journeys(uow, journeys)
    result = learn(store, NOW)
    assert (result.parcels, result.samples) == (40, 40 * 6)
    book = NormBook.load(store)
    expected = {
        "ship_to_pickup": [n - 25.0 for n in ns],
        "transit_gap": [float(n) for n in ns] + [1.0] * 40,  # the pending scan skipped
        "total": [n - 25.0 + 4 + n for n in ns],
    }
    for phase, hours in expected.items():
        norm = book.find("sf", "浙江", "四川", "cross_province", phase)
        assert norm is not None and norm.samples == len(hours), phase
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
            want = max(cont(hours, q), 0.0)  # a norm is never negative
            assert norm.quantile(name) / 3600 == pytest.approx(want, abs=1e-3), (phase, name)
