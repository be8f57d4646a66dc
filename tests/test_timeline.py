"""Folding carrier events into parcel state, and the deadlines that follow from it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carriers.model import ExceptionReason, Status, TrackingEvent
from monitor.rules.regions import CROSS_PROVINCE, REMOTE, SAME_REGION, normalize_province
from monitor.rules.ruleset import build_ruleset
from monitor.rules.timeline import ParcelState, Schedule, deadlines, fold
from tests.helpers import cst


def ev(status: Status | None, day: int, hour: int, **kw: object) -> TrackingEvent:
    return TrackingEvent("sandbox", "SB1", cst(day, hour), status, raw_code=str(status), **kw)  # type: ignore[arg-type]


def test_newest_event_sets_status_whatever_the_arrival_order() -> None:
    events = [ev(Status.PICKED_UP, 11, 10), ev(Status.IN_TRANSIT, 11, 20), ev(Status.DELIVERED, 13, 9)]
    forwards = fold(ParcelState(), events)
    backwards = fold(ParcelState(), reversed(events))
    assert forwards == backwards
    assert forwards.status == "delivered"
    assert forwards.picked_up_at == cst(11, 10)
    assert forwards.delivered_at == cst(13, 9)


def test_duplicates_change_nothing() -> None:
    once = fold(ParcelState(), [ev(Status.PICKED_UP, 11, 10)])
    assert fold(once, [ev(Status.PICKED_UP, 11, 10)]) == once


def test_late_older_event_moves_pickup_earlier_but_not_status() -> None:
    state = fold(ParcelState(), [ev(Status.IN_TRANSIT, 11, 20)])
    state = fold(state, [ev(Status.PICKED_UP, 11, 9)])
    assert state.status == "in_transit"
    assert state.picked_up_at == cst(11, 9)
    assert state.last_event_at == cst(11, 20)


def test_same_time_later_stage_wins() -> None:
    state = fold(ParcelState(), [ev(Status.IN_TRANSIT, 11, 10), ev(Status.PICKED_UP, 11, 10)])
    assert state.status == "in_transit"


def test_unknown_code_counts_as_an_update_not_as_a_status() -> None:
    state = fold(ParcelState(), [ev(Status.PICKED_UP, 11, 10), ev(None, 12, 10)])
    assert state.status == "picked_up"
    assert state.last_event_at == cst(12, 10)


def test_exception_reason_kept() -> None:
    state = fold(ParcelState(), [ev(Status.EXCEPTION, 11, 10, reason=ExceptionReason.LOST)])
    assert (state.status, state.exception_reason) == ("exception", "lost")


def schedule(region: str = CROSS_PROVINCE, held: bool = False) -> Schedule:
    return Schedule(cst(11, 9), cst(12, 9), cst(15, 18), region, held)


def test_deadlines_before_pickup() -> None:
    due = deadlines(ParcelState(), schedule(), build_ruleset().base)
    assert due["pickup_due"] == cst(12, 9)
    assert due["pickup_risk_due"] == cst(12, 5)
    assert due["delivery_due"] == cst(15, 18)
    assert due["stall_due"] is None and due["lost_due"] is None


@pytest.mark.parametrize(
    ("region", "stall", "lost"), [(SAME_REGION, 48, 96), (CROSS_PROVINCE, 72, 120), (REMOTE, 120, 168)]
)
def test_transit_deadlines_by_region(region: str, stall: int, lost: int) -> None:
    state = fold(ParcelState(), [ev(Status.PICKED_UP, 11, 10), ev(Status.IN_TRANSIT, 11, 20)])
    due = deadlines(state, schedule(region), build_ruleset().base)
    assert due["pickup_due"] is None
    assert due["stall_due"] == cst(11, 20) + timedelta(hours=stall)
    assert due["lost_due"] == cst(11, 20) + timedelta(hours=lost)


def test_held_and_terminal_parcels_have_no_deadlines() -> None:
    t = build_ruleset().base
    assert set(deadlines(ParcelState(), schedule(held=True), t).values()) == {None}
    delivered = fold(ParcelState(), [ev(Status.DELIVERED, 12, 10)])
    assert set(deadlines(delivered, schedule(), t).values()) == {None}


def test_provinces_and_region_classes() -> None:
    regions = build_ruleset().regions
    assert normalize_province("浙江省") == normalize_province("浙江") == "浙江"
    assert normalize_province("新疆维吾尔自治区") == "新疆"
    assert regions.classify("浙江", "上海") == SAME_REGION
    assert regions.classify("北京", "河北") == SAME_REGION
    assert regions.classify("广东", "广东") == SAME_REGION
    assert regions.classify("浙江", "广东") == CROSS_PROVINCE
    assert regions.classify("浙江", "新疆") == REMOTE
    assert regions.classify("西藏", "广东") == REMOTE
    assert regions.classify(None, "广东") == CROSS_PROVINCE
    with pytest.raises(ValueError, match="unknown province '浙姜'"):
        normalize_province("浙姜")
