"""Each rule fires at the simulated minute DESIGN.md gives it, and clears when it should.

Every test is a small replay scenario (REPLAY.md) run through the real engine, on SQLite
and on PostgreSQL; times are November 2026 in China Standard Time.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitor.rules.ruleset import build_ruleset
from tests.helpers import end, run


def t(day: int, hour: int, minute: int = 0, second: int = 0) -> str:
    """Return an ISO time on ``day`` November 2026, +08:00."""
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}+08:00"


def ship(at: str, no: str = "SB1", carrier: str = "sandbox", **extra: Any) -> dict[str, Any]:
    return {"kind": "shipment", "at": at, "order_id": f"O-{no}", "carrier": carrier, "tracking_no": no} | extra


def scan(at: str, status: str, no: str = "SB1", carrier: str = "sandbox", **extra: Any) -> dict[str, Any]:
    return {"kind": "tracking", "at": at, "carrier": carrier, "tracking_no": no, "status": status} | extra


def opened(out: list[dict[str, Any]], rule: str, no: str | None = None) -> list[dict[str, Any]]:
    """Return the anomaly_opened lines of ``rule`` (for one tracking number if given)."""
    return [
        o
        for o in out
        if o["event"] == "anomaly_opened" and o["rule"] == rule and (no is None or o["tracking_no"] == no)
    ]


def resolved(out: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [o for o in out if o["event"] == "anomaly_resolved" and o["rule"] == rule]


def opened_at(out: list[dict[str, Any]], rule: str, no: str | None = None) -> list[str]:
    """Return the times at which ``rule`` opened anomalies."""
    return [o["at"] for o in opened(out, rule, no)]


# -- pickup ----------------------------------------------------------------------------------


def test_pickup_at_risk_fires_four_hours_before_the_deadline(database_url: str) -> None:
    out = run([ship(t(11, 9)), end(t(12, 8))], database_url=database_url)
    (risk,) = opened(out, "pickup_at_risk")
    assert risk["at"] == t(12, 5)
    assert (risk["carrier"], risk["tracking_no"], risk["order_id"]) == ("sandbox", "SB1", "O-SB1")
    assert risk["severity"] == "warning"
    assert opened(out, "pickup_overdue") == []


def test_pickup_overdue_fires_24_hours_after_shipped_at_and_escalates_at_risk(database_url: str) -> None:
    out = run([ship(t(11, 10), shipped_at=t(11, 9)), end(t(13, 9))], database_url=database_url)
    (risk,) = opened(out, "pickup_at_risk")
    (overdue,) = opened(out, "pickup_overdue")
    assert risk["at"] == t(12, 5)
    assert overdue["at"] == t(12, 9)
    assert overdue["severity"] == "critical"
    (escalated,) = resolved(out, "pickup_at_risk")
    assert escalated["at"] == t(12, 9)
    assert escalated["anomaly_id"] == risk["anomaly_id"]
    assert escalated["resolution"] == "escalated"


def test_pickup_deadline_fires_at_the_first_whole_minute_at_or_after_it(database_url: str) -> None:
    out = run([ship(t(11, 9, 0, 30)), end(t(13, 9))], database_url=database_url)
    assert opened_at(out, "pickup_at_risk") == [t(12, 5, 1)]
    assert opened_at(out, "pickup_overdue") == [t(12, 9, 1)]


def test_pickup_overdue_uses_the_shipments_own_pickup_deadline(database_url: str) -> None:
    out = run([ship(t(11, 9), pickup_deadline=t(11, 18)), end(t(13, 9))], database_url=database_url)
    assert opened_at(out, "pickup_at_risk") == [t(11, 14)]
    assert opened_at(out, "pickup_overdue") == [t(11, 18)]


def test_presale_without_a_deadline_waits_72_hours_for_pickup(database_url: str) -> None:
    out = run([ship(t(11, 9), presale=True), end(t(15, 9))], database_url=database_url)
    assert opened_at(out, "pickup_at_risk") == [t(14, 5)]
    assert opened_at(out, "pickup_overdue") == [t(14, 9)]


def test_presale_with_its_own_deadline_uses_that_deadline(database_url: str) -> None:
    out = run([ship(t(11, 9), presale=True, pickup_deadline=t(12, 21)), end(t(15, 9))], database_url=database_url)
    assert opened_at(out, "pickup_overdue") == [t(12, 21)]


def test_shipment_imported_after_its_deadline_is_overdue_at_once_without_at_risk(database_url: str) -> None:
    out = run([ship(t(12, 10, 0, 30), shipped_at=t(11, 9)), end(t(13, 0))], database_url=database_url)
    assert opened_at(out, "pickup_overdue") == [t(12, 10, 1)]
    assert opened(out, "pickup_at_risk") == []


def test_late_old_pickup_scan_resolves_overdue_and_fires_the_passed_stall_at_the_next_minute(
    database_url: str,
) -> None:
    out = run(
        [ship(t(11, 9)), scan(t(13, 10, 0, 30), "picked_up", time=t(11, 12)), end(t(15, 0))],
        database_url=database_url,
    )
    assert [(r["at"], r["resolution"]) for r in resolved(out, "pickup_overdue")] == [(t(13, 10, 0, 30), "auto")]
    assert opened_at(out, "stalled") == [t(13, 10, 1)]  # due 12T12, armed late
    assert opened_at(out, "lost_suspected") == [t(14, 12)]  # 72 h after the scan's own time


def test_pickup_deadline_closer_than_4_hours_is_at_risk_at_once(database_url: str) -> None:
    out = run([ship(t(11, 9), pickup_deadline=t(11, 11)), end(t(11, 12))], database_url=database_url)
    assert opened_at(out, "pickup_at_risk") == [t(11, 9)]
    assert opened_at(out, "pickup_overdue") == [t(11, 11)]


def test_output_times_use_the_offset_of_the_first_line(database_url: str) -> None:
    out = run(
        [ship(t(11, 9)), scan("2026-11-11T04:00:00+00:00", "exception", reason="address"), end(t(11, 13))],
        database_url=database_url,
    )
    assert opened_at(out, "carrier_exception") == [t(11, 12)]


def test_pickup_scan_one_minute_before_the_deadline_is_in_time(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(12, 8, 59), "picked_up"), end(t(12, 12))], database_url=database_url)
    assert opened(out, "pickup_overdue") == []
    (risk,) = opened(out, "pickup_at_risk")
    (cleared,) = resolved(out, "pickup_at_risk")
    assert (cleared["at"], cleared["anomaly_id"], cleared["resolution"]) == (t(12, 8, 59), risk["anomaly_id"], "auto")


def test_pickup_scan_exactly_at_the_deadline_is_in_time(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(12, 9), "picked_up"), end(t(12, 12))], database_url=database_url)
    assert opened(out, "pickup_overdue") == []
    assert [(r["at"], r["resolution"]) for r in resolved(out, "pickup_at_risk")] == [(t(12, 9), "auto")]


def test_pickup_scan_after_overdue_resolves_it_automatically(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(12, 10, 30), "picked_up"), end(t(12, 12))], database_url=database_url)
    (overdue,) = opened(out, "pickup_overdue")
    (cleared,) = resolved(out, "pickup_overdue")
    assert cleared["at"] == t(12, 10, 30)
    assert cleared["anomaly_id"] == overdue["anomaly_id"]
    assert cleared["resolution"] == "auto"


def test_overdue_pickup_opens_a_ticket_and_an_alert(database_url: str) -> None:
    out = run([ship(t(11, 9)), end(t(12, 9))], database_url=database_url)
    at_overdue = [(o["event"], o.get("rule")) for o in out if o["at"] == t(12, 9)]
    assert ("anomaly_opened", "pickup_overdue") in at_overdue
    assert ("ticket_opened", "pickup_overdue") in at_overdue
    assert ("alert_sent", "pickup_overdue") in at_overdue


# -- stalls ----------------------------------------------------------------------------------


def test_stalled_24_hours_after_the_pickup_scan(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(11, 12), "picked_up"), end(t(13, 12))], database_url=database_url)
    (stalled,) = opened(out, "stalled")
    assert stalled["at"] == t(12, 12)
    assert stalled["severity"] == "warning"


def test_stall_clock_runs_from_the_event_time_not_the_line_time(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(11, 14), "picked_up", time=t(11, 12)), end(t(13, 12))], database_url=database_url)
    assert opened_at(out, "stalled") == [t(12, 12)]


@pytest.mark.parametrize(
    ("origin", "destination", "hours"),
    [
        ("浙江", "浙江", 48),  # same province
        ("浙江省", "上海市", 48),  # same region group (江浙沪皖)
        ("北京", "河北", 48),  # same region group (京津冀)
        ("浙江", "广东", 72),  # cross-province
        ("浙江", "新疆", 120),  # remote
        ("西藏", "广东省", 120),  # remote origin
        (None, None, 72),  # no province given: cross-province
        ("浙江", None, 72),  # only one province given: cross-province
    ],
)
def test_stalled_in_transit_waits_by_region_class(
    database_url: str, origin: str | None, destination: str | None, hours: int
) -> None:
    provinces = {k: v for k, v in (("origin_province", origin), ("destination_province", destination)) if v}
    out = run([ship(t(11, 9), **provinces), scan(t(11, 12), "in_transit"), end(t(20, 12))], database_url=database_url)
    assert opened_at(out, "stalled") == [t(11 + hours // 24, 12)]


def test_stalled_out_for_delivery_after_24_hours(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(12, 8), "out_for_delivery"), end(t(20, 8))], database_url=database_url)
    assert opened_at(out, "stalled") == [t(13, 8)]
    assert opened(out, "lost_suspected") == []


def test_stalled_available_for_pickup_after_72_hours(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(12, 8), "available_for_pickup"), end(t(20, 8))], database_url=database_url)
    assert opened_at(out, "stalled") == [t(15, 8)]
    assert opened(out, "lost_suspected") == []


def test_new_scan_after_stalled_resolves_it_automatically(database_url: str) -> None:
    out = run(
        [ship(t(11, 9)), scan(t(11, 12), "picked_up"), scan(t(12, 15), "in_transit"), end(t(13, 0))],
        database_url=database_url,
    )
    (stalled,) = opened(out, "stalled")
    (cleared,) = resolved(out, "stalled")
    assert stalled["at"] == t(12, 12)
    assert (cleared["at"], cleared["anomaly_id"], cleared["resolution"]) == (t(12, 15), stalled["anomaly_id"], "auto")


def test_stall_rearms_after_a_new_scan(database_url: str) -> None:
    out = run(
        [ship(t(11, 9)), scan(t(11, 12), "picked_up"), scan(t(12, 15), "in_transit"), end(t(16, 0))],
        database_url=database_url,
    )
    assert opened_at(out, "stalled") == [t(12, 12), t(15, 15)]  # in transit, no province: 72 h


# -- lost ------------------------------------------------------------------------------------


def test_lost_suspected_72_hours_after_pickup_without_update(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(11, 12), "picked_up"), end(t(20, 12))], database_url=database_url)
    (lost,) = opened(out, "lost_suspected")
    assert lost["at"] == t(14, 12)
    assert lost["severity"] == "critical"


@pytest.mark.parametrize(
    ("origin", "destination", "hours"),
    [("浙江", "上海", 96), ("浙江", "广东", 120), (None, None, 120), ("浙江", "新疆", 168)],
)
def test_lost_suspected_in_transit_by_region_class(
    database_url: str, origin: str | None, destination: str | None, hours: int
) -> None:
    provinces = {k: v for k, v in (("origin_province", origin), ("destination_province", destination)) if v}
    out = run([ship(t(11, 9), **provinces), scan(t(11, 12), "in_transit"), end(t(20, 12))], database_url=database_url)
    assert opened_at(out, "lost_suspected") == [t(11 + hours // 24, 12)]


def test_lost_suspected_suggests_a_reshipment_after_a_long_stall(database_url: str) -> None:
    out = run([ship(t(11, 9)), scan(t(11, 12), "picked_up"), end(t(14, 12))], database_url=database_url)
    (suggestion,) = [o for o in out if o["event"] == "reshipment_suggested"]
    assert suggestion["at"] == t(14, 12)
    assert suggestion["rule"] == "lost_suspected"
    assert suggestion["tracking_no"] == "SB1"


@pytest.mark.parametrize("reason", ["lost", "damaged"])
def test_exception_lost_or_damaged_suspects_loss_at_once(database_url: str, reason: str) -> None:
    out = run(
        [ship(t(11, 9)), scan(t(11, 12), "in_transit"), scan(t(12, 10), "exception", reason=reason), end(t(12, 11))],
        database_url=database_url,
    )
    assert opened_at(out, "lost_suspected") == [t(12, 10)]
    assert opened_at(out, "carrier_exception") == [t(12, 10)]
    (suggestion,) = [o for o in out if o["event"] == "reshipment_suggested"]
    assert (suggestion["at"], suggestion["rule"], suggestion["reason"]) == (t(12, 10), "lost_suspected", reason)


def test_exception_for_another_reason_does_not_suspect_loss(database_url: str) -> None:
    out = run(
        [ship(t(11, 9)), scan(t(11, 12), "in_transit"), scan(t(12, 10), "exception", reason="address"), end(t(12, 11))],
        database_url=database_url,
    )
    assert opened_at(out, "carrier_exception") == [t(12, 10)]
    assert opened(out, "lost_suspected") == []
    assert [o for o in out if o["event"] == "reshipment_suggested"] == []


def test_normal_scan_after_a_lost_exception_resolves_lost_suspected(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9)),
            scan(t(11, 12), "in_transit"),
            scan(t(12, 10), "exception", reason="lost"),
            scan(t(13, 10), "in_transit"),
            end(t(13, 11)),
        ],
        database_url=database_url,
    )
    (lost,) = opened(out, "lost_suspected")
    (cleared,) = resolved(out, "lost_suspected")
    assert (cleared["at"], cleared["anomaly_id"], cleared["resolution"]) == (t(13, 10), lost["anomaly_id"], "auto")


# -- carrier exceptions ----------------------------------------------------------------------


@pytest.mark.parametrize(("status", "extra"), [("exception", {"reason": "address"}), ("delivery_failed", {})])
def test_carrier_exception_fires_on_the_event(database_url: str, status: str, extra: dict[str, Any]) -> None:
    out = run(
        [ship(t(11, 9)), scan(t(11, 12), "in_transit"), scan(t(12, 10, 30), status, **extra), end(t(12, 11))],
        database_url=database_url,
    )
    (exc,) = opened(out, "carrier_exception")
    assert exc["at"] == t(12, 10, 30)
    assert exc["severity"] == "warning"
    assert exc["compensation"] is None


def test_later_normal_scan_resolves_carrier_exception(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9)),
            scan(t(11, 12), "in_transit"),
            scan(t(12, 10), "exception", reason="weather"),
            scan(t(12, 16), "in_transit"),
            end(t(12, 17)),
        ],
        database_url=database_url,
    )
    (exc,) = opened(out, "carrier_exception")
    (cleared,) = resolved(out, "carrier_exception")
    assert (cleared["at"], cleared["anomaly_id"], cleared["resolution"]) == (t(12, 16), exc["anomaly_id"], "auto")


def test_repeated_exceptions_keep_one_open_anomaly(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9)),
            scan(t(11, 12), "in_transit"),
            scan(t(12, 10), "exception", reason="address"),
            scan(t(12, 11), "exception", reason="address"),
            scan(t(12, 12), "exception", reason="weather"),
            scan(t(12, 13), "delivery_failed"),
            end(t(12, 14)),
        ],
        database_url=database_url,
    )
    assert opened_at(out, "carrier_exception") == [t(12, 10)]
    assert resolved(out, "carrier_exception") == []


def test_exception_after_the_first_was_resolved_opens_a_new_anomaly(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9)),
            scan(t(11, 12), "in_transit"),
            scan(t(12, 10), "exception", reason="address"),
            scan(t(12, 11), "in_transit"),
            scan(t(12, 12), "exception", reason="address"),
            end(t(12, 14)),
        ],
        database_url=database_url,
    )
    first, second = opened(out, "carrier_exception")
    assert (first["at"], second["at"]) == (t(12, 10), t(12, 12))
    assert first["anomaly_id"] != second["anomaly_id"]


# -- returned, delivery_overdue --------------------------------------------------------------


def test_returning_without_a_refund_is_returned(database_url: str) -> None:
    out = run(
        [ship(t(11, 9), amount=300), scan(t(11, 12), "in_transit"), scan(t(12, 10), "returning"), end(t(20, 0))],
        database_url=database_url,
    )
    (ret,) = opened(out, "returned")
    assert ret["at"] == t(12, 10)
    assert ret["compensation"] == 60.0  # 20 % of 300
    assert opened(out, "stalled") == []  # a parcel heading back is not stalled


def test_delivery_overdue_when_the_promised_time_passes(database_url: str) -> None:
    out = run(
        [ship(t(11, 9), promised_delivery=t(13, 18)), scan(t(11, 12), "in_transit"), end(t(14, 0))],
        database_url=database_url,
    )
    (late,) = opened(out, "delivery_overdue")
    assert late["at"] == t(13, 18)
    assert late["severity"] == "warning"


def test_delivered_in_time_is_not_overdue(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9), promised_delivery=t(13, 18)),
            scan(t(11, 12), "picked_up"),
            scan(t(12, 10), "in_transit"),
            scan(t(13, 17), "delivered"),
            end(t(20, 0)),
        ],
        database_url=database_url,
    )
    assert [o for o in out if o["event"] == "anomaly_opened"] == []


def test_delivered_after_delivery_overdue_resolves_it(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9), promised_delivery=t(13, 18)),
            scan(t(11, 12), "in_transit"),
            scan(t(14, 9), "delivered"),
            end(t(20, 0)),
        ],
        database_url=database_url,
    )
    (late,) = opened(out, "delivery_overdue")
    (cleared,) = resolved(out, "delivery_overdue")
    assert (cleared["at"], cleared["anomaly_id"], cleared["resolution"]) == (t(14, 9), late["anomaly_id"], "auto")


def test_delivered_parcel_raises_nothing_more(database_url: str) -> None:
    out = run(
        [ship(t(11, 9)), scan(t(11, 12), "picked_up"), scan(t(11, 20), "delivered"), end(t(25, 0))],
        database_url=database_url,
    )
    assert [o for o in out if o["event"] == "anomaly_opened"] == []


# -- compensation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "compensation"), [(300, 15.0), (2000, 50.0), (20, 5.0), (None, None)])
def test_stalled_compensation_is_5_percent_clamped_to_5_and_50_yuan(
    database_url: str, amount: float | None, compensation: float | None
) -> None:
    extra = {} if amount is None else {"amount": amount}
    out = run([ship(t(11, 9), **extra), scan(t(11, 12), "picked_up"), end(t(12, 12))], database_url=database_url)
    (stalled,) = opened(out, "stalled")
    assert stalled["compensation"] == compensation


# -- overrides and presets -------------------------------------------------------------------


def test_carrier_override_changes_only_that_carrier(database_url: str) -> None:
    rules = {"overrides": [{"carrier": "sf", "pickup_hours": 12}]}
    out = run(
        [ship(t(11, 9), "SF1", carrier="sf"), ship(t(11, 9), "SB1"), end(t(13, 0))],
        rules=rules,
        database_url=database_url,
    )
    assert opened_at(out, "pickup_overdue", "SF1") == [t(11, 21)]
    assert opened_at(out, "pickup_at_risk", "SF1") == [t(11, 17)]
    assert opened_at(out, "pickup_overdue", "SB1") == [t(12, 9)]
    assert opened_at(out, "pickup_at_risk", "SB1") == [t(12, 5)]


def test_shop_override_changes_only_that_shop(database_url: str) -> None:
    rules = {"overrides": [{"shop": "flagship", "after_pickup_hours": 6}]}
    out = run(
        [
            ship(t(11, 9), "A1", shop="flagship"),
            ship(t(11, 9), "B1", shop="outlet"),
            scan(t(11, 12), "picked_up", "A1"),
            scan(t(11, 12), "picked_up", "B1"),
            end(t(13, 0)),
        ],
        rules=rules,
        database_url=database_url,
    )
    assert opened_at(out, "stalled", "A1") == [t(11, 18)]
    assert opened_at(out, "stalled", "B1") == [t(12, 12)]


def test_shop_and_carrier_override_beats_carrier_only(database_url: str) -> None:
    rules = {
        "overrides": [
            {"carrier": "sf", "shop": "flagship", "pickup_hours": 6},
            {"carrier": "sf", "pickup_hours": 12},
        ]
    }
    out = run(
        [
            ship(t(11, 9), "SF1", carrier="sf", shop="flagship"),
            ship(t(11, 9), "SF2", carrier="sf", shop="outlet"),
            ship(t(11, 9), "SB1", shop="flagship"),
            end(t(13, 0)),
        ],
        rules=rules,
        database_url=database_url,
    )
    assert opened_at(out, "pickup_overdue", "SF1") == [t(11, 15)]
    assert opened_at(out, "pickup_overdue", "SF2") == [t(11, 21)]
    assert opened_at(out, "pickup_overdue", "SB1") == [t(12, 9)]


def test_shop_override_beats_carrier_override(database_url: str) -> None:
    rules = {"overrides": [{"shop": "flagship", "pickup_hours": 6}, {"carrier": "sf", "pickup_hours": 12}]}
    out = run(
        [ship(t(11, 9), "SF1", carrier="sf", shop="flagship"), end(t(13, 0))], rules=rules, database_url=database_url
    )
    assert opened_at(out, "pickup_overdue", "SF1") == [t(11, 15)]


def test_global_thresholds_apply_to_every_parcel(database_url: str) -> None:
    rules = {"thresholds": {"transit_hours": {"cross_province": 36}}}
    out = run([ship(t(11, 9)), scan(t(11, 12), "in_transit"), end(t(13, 12))], rules=rules, database_url=database_url)
    assert opened_at(out, "stalled") == [t(13, 0)]


def test_douyin_preset_loads_and_runs(database_url: str) -> None:
    rules = build_ruleset({"preset": "douyin"})
    assert rules.preset == "douyin"
    assert rules.base.pickup_hours == 24
    assert rules.base.transit_hours == {"same_region": 48, "cross_province": 72, "remote": 120}
    out = run([ship(t(11, 9)), end(t(13, 0))], rules={"preset": "douyin"}, database_url=database_url)
    assert opened_at(out, "pickup_overdue") == [t(12, 9)]


def test_disabled_rule_never_fires(database_url: str) -> None:
    rules = {"rule": {"pickup_at_risk": {"enabled": False}}}
    out = run([ship(t(11, 9)), end(t(13, 0))], rules=rules, database_url=database_url)
    assert opened(out, "pickup_at_risk") == []
    assert opened_at(out, "pickup_overdue") == [t(12, 9)]


# -- duplicate and out-of-order carrier events -----------------------------------------------


def test_same_tracking_line_twice_changes_nothing(database_url: str) -> None:
    base = [ship(t(11, 9)), scan(t(11, 12), "in_transit"), scan(t(12, 10), "exception", reason="address")]
    once = run([*base, end(t(20, 0))], database_url=database_url)
    twice = run([*base, base[-1], end(t(20, 0))], database_url=database_url)
    assert twice == once
    assert opened_at(once, "carrier_exception") == [t(12, 10)]


def test_same_event_redelivered_later_changes_nothing(database_url: str) -> None:
    base = [ship(t(11, 9)), scan(t(11, 12), "picked_up")]
    once = run([*base, end(t(20, 0))], database_url=database_url)
    again = run([*base, scan(t(11, 18), "picked_up", time=t(11, 12)), end(t(20, 0))], database_url=database_url)
    assert again == once
    assert opened_at(once, "stalled") == [t(12, 12)]


def test_older_event_after_delivered_does_not_move_the_status_back(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9)),
            scan(t(11, 12), "picked_up"),
            scan(t(12, 10), "delivered"),
            scan(t(12, 11), "in_transit", time=t(12, 8)),
            end(t(25, 0)),
        ],
        database_url=database_url,
    )
    assert [o for o in out if o["event"] == "anomaly_opened"] == []


def test_older_pickup_scan_after_in_transit_keeps_the_transit_stall(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9)),
            scan(t(11, 12), "in_transit"),
            scan(t(11, 13), "picked_up", time=t(11, 10)),
            end(t(15, 0)),
        ],
        database_url=database_url,
    )
    assert opened_at(out, "stalled") == [t(14, 12)]  # 72 h after the in-transit scan, not 24 h after pickup
