"""Refund-only interception in replay: hold, intercept, follow through — or say there is nothing to do.

Each test is a small replay scenario (REPLAY.md, docs/replay.md) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from tests.helpers import end, run

INTERCEPT_EVENTS = {
    "intercept_requested",
    "intercept_accepted",
    "intercept_rejected",
    "intercept_succeeded",
    "intercept_failed",
    "intercept_skipped",
    "shipment_held",
}


def t(day: int, hour: int, minute: int = 0) -> str:
    """Return an ISO time on ``day`` November 2026, +08:00."""
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def ship(at: str, no: str = "SB1", **extra: Any) -> dict[str, Any]:
    return {"kind": "shipment", "at": at, "order_id": "O1", "carrier": "sandbox", "tracking_no": no} | extra


def scan(at: str, status: str, no: str = "SB1", **extra: Any) -> dict[str, Any]:
    return {"kind": "tracking", "at": at, "carrier": "sandbox", "tracking_no": no, "status": status} | extra


def refund(at: str, type_: str = "refund_only", refund_id: str = "R1") -> dict[str, Any]:
    return {"kind": "refund", "at": at, "order_id": "O1", "refund_id": refund_id, "type": type_}


def verdict(at: str, accepted: bool, reason: str = "", no: str = "SB1") -> dict[str, Any]:
    return {"kind": "intercept_result", "at": at, "carrier": "sandbox", "tracking_no": no, "accepted": accepted} | (
        {"reason": reason} if reason else {}
    )


def events(out: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    return [o for o in out if o["event"] in names]


def intercept_trail(out: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Return (at, event) of every interception line, in order."""
    return [(o["at"], o["event"]) for o in out if o["event"] in INTERCEPT_EVENTS]


def opened(out: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [o for o in out if o["event"] == "anomaly_opened" and o["rule"] == rule]


IN_TRANSIT = [ship(t(11, 9)), scan(t(11, 12), "picked_up"), scan(t(11, 20), "in_transit")]


# -- before pickup: hold ---------------------------------------------------------------------


def test_refund_only_before_pickup_holds_the_shipment_with_a_ticket(database_url: str) -> None:
    out = run([ship(t(11, 9)), refund(t(11, 10)), end(t(14, 9))], database_url=database_url)
    (held,) = events(out, "shipment_held")
    assert (held["at"], held["refund_id"], held["tracking_no"], held["order_id"]) == (t(11, 10), "R1", "SB1", "O1")
    (ticket,) = events(out, "ticket_opened")
    assert (ticket["at"], ticket["rule"]) == (t(11, 10), "refund")
    assert intercept_trail(out) == [(t(11, 10), "shipment_held")]


def test_held_shipment_is_never_pickup_overdue(database_url: str) -> None:
    out = run([ship(t(11, 9)), refund(t(11, 10)), end(t(14, 9))], database_url=database_url)
    assert events(out, "anomaly_opened") == []


def test_holding_resolves_open_pickup_anomalies_as_held(database_url: str) -> None:
    out = run([ship(t(11, 9)), refund(t(12, 6)), end(t(14, 9))], database_url=database_url)
    (risk,) = opened(out, "pickup_at_risk")
    assert risk["at"] == t(12, 5)
    (cleared,) = events(out, "anomaly_resolved")
    assert (cleared["at"], cleared["rule"], cleared["anomaly_id"], cleared["resolution"]) == (
        t(12, 6),
        "pickup_at_risk",
        risk["anomaly_id"],
        "held",
    )
    assert opened(out, "pickup_overdue") == []


def test_holding_an_overdue_shipment_resolves_it_as_held(database_url: str) -> None:
    out = run([ship(t(11, 9)), refund(t(12, 10)), end(t(14, 9))], database_url=database_url)
    (overdue,) = opened(out, "pickup_overdue")
    (cleared,) = [o for o in events(out, "anomaly_resolved") if o["rule"] == "pickup_overdue"]
    assert (cleared["at"], cleared["anomaly_id"], cleared["resolution"]) == (t(12, 10), overdue["anomaly_id"], "held")


# -- in transit: intercept -------------------------------------------------------------------


def test_refund_only_in_transit_is_intercepted_and_accepted_at_once(database_url: str) -> None:
    out = run([*IN_TRANSIT, refund(t(12, 8)), end(t(12, 9))], database_url=database_url)
    assert intercept_trail(out) == [(t(12, 8), "intercept_requested"), (t(12, 8), "intercept_accepted")]
    requested, accepted = events(out, "intercept_requested", "intercept_accepted")
    assert requested["refund_id"] == accepted["refund_id"] == "R1"
    assert (accepted["carrier"], accepted["tracking_no"], accepted["order_id"]) == ("sandbox", "SB1", "O1")


def test_accepted_intercept_succeeds_when_the_parcel_heads_back(database_url: str) -> None:
    out = run(
        [*IN_TRANSIT, refund(t(12, 8)), scan(t(12, 15), "returning"), scan(t(14, 10), "returned"), end(t(20, 0))],
        database_url=database_url,
    )
    assert intercept_trail(out) == [
        (t(12, 8), "intercept_requested"),
        (t(12, 8), "intercept_accepted"),
        (t(12, 15), "intercept_succeeded"),
    ]
    (succeeded,) = events(out, "intercept_succeeded")
    assert succeeded["refund_id"] == "R1"
    assert opened(out, "returned") == []
    assert events(out, "anomaly_opened") == []


def test_rejected_intercept_decided_before_the_refund(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9)),
            scan(t(11, 12), "picked_up"),
            verdict(t(11, 15), accepted=False, reason="already_at_station"),
            scan(t(11, 20), "in_transit"),
            refund(t(12, 8)),
            end(t(12, 9)),
        ],
        database_url=database_url,
    )
    assert intercept_trail(out) == [
        (t(12, 8), "intercept_requested"),
        (t(12, 8), "intercept_rejected"),
        (t(12, 8), "intercept_failed"),
    ]
    (rejected,) = events(out, "intercept_rejected")
    assert (rejected["refund_id"], rejected["reason"]) == ("R1", "already_at_station")
    (failed_anomaly,) = opened(out, "intercept_failed")
    assert (failed_anomaly["at"], failed_anomaly["severity"]) == (t(12, 8), "critical")
    assert ("ticket_opened", "intercept_failed") in [(o["event"], o.get("rule")) for o in out if o["at"] == t(12, 8)]


def test_verdict_after_the_refund_arrives_at_that_lines_time(database_url: str) -> None:
    out = run(
        [*IN_TRANSIT, refund(t(12, 8)), verdict(t(12, 8, 30), accepted=True), end(t(12, 9))],
        database_url=database_url,
    )
    assert intercept_trail(out) == [(t(12, 8), "intercept_requested"), (t(12, 8, 30), "intercept_accepted")]
    (accepted,) = events(out, "intercept_accepted")
    assert accepted["refund_id"] == "R1"


def test_rejection_after_the_refund_fails_at_that_lines_time(database_url: str) -> None:
    out = run(
        [*IN_TRANSIT, refund(t(12, 8)), verdict(t(12, 11), accepted=False, reason="out_for_delivery"), end(t(12, 12))],
        database_url=database_url,
    )
    assert intercept_trail(out) == [
        (t(12, 8), "intercept_requested"),
        (t(12, 11), "intercept_rejected"),
        (t(12, 11), "intercept_failed"),
    ]
    assert events(out, "intercept_rejected")[0]["reason"] == "out_for_delivery"
    assert [o["at"] for o in opened(out, "intercept_failed")] == [t(12, 11)]


def test_accepted_intercept_then_delivered_fails(database_url: str) -> None:
    out = run(
        [*IN_TRANSIT, refund(t(12, 8)), scan(t(12, 18), "delivered"), end(t(20, 0))],
        database_url=database_url,
    )
    assert intercept_trail(out) == [
        (t(12, 8), "intercept_requested"),
        (t(12, 8), "intercept_accepted"),
        (t(12, 18), "intercept_failed"),
    ]
    (failed,) = events(out, "intercept_failed")
    assert failed["refund_id"] == "R1"
    (anomaly,) = opened(out, "intercept_failed")
    assert (anomaly["at"], anomaly["tracking_no"], anomaly["severity"]) == (t(12, 18), "SB1", "critical")


def test_order_with_two_parcels_holds_one_and_intercepts_the_other(database_url: str) -> None:
    out = run(
        [
            ship(t(11, 9), "SB1"),
            ship(t(11, 9), "SB2"),
            scan(t(11, 12), "in_transit", "SB2"),
            refund(t(11, 14)),
            end(t(11, 15)),
        ],
        database_url=database_url,
    )
    trail = [(o["tracking_no"], o["event"]) for o in out if o["event"] in INTERCEPT_EVENTS]
    assert sorted(trail) == [
        ("SB1", "shipment_held"),
        ("SB2", "intercept_accepted"),
        ("SB2", "intercept_requested"),
    ]
    assert {o["at"] for o in out if o["event"] in INTERCEPT_EVENTS} == {t(11, 14)}


# -- nothing to intercept --------------------------------------------------------------------


def test_refund_only_after_delivery_is_skipped(database_url: str) -> None:
    out = run(
        [*IN_TRANSIT, scan(t(12, 10), "delivered"), refund(t(12, 12)), end(t(20, 0))],
        database_url=database_url,
    )
    assert intercept_trail(out) == [(t(12, 12), "intercept_skipped")]
    (skipped,) = events(out, "intercept_skipped")
    assert (skipped["refund_id"], skipped["reason"]) == ("R1", "delivered")
    assert events(out, "anomaly_opened", "ticket_opened") == []


def test_refund_only_while_returning_is_skipped(database_url: str) -> None:
    out = run(
        [*IN_TRANSIT, scan(t(12, 10), "returning"), refund(t(12, 12)), end(t(12, 13))],
        database_url=database_url,
    )
    (skipped,) = events(out, "intercept_skipped")
    assert (skipped["at"], skipped["reason"]) == (t(12, 12), "already_returning")


def test_return_and_refund_intercepts_nothing(database_url: str) -> None:
    out = run(
        [*IN_TRANSIT, refund(t(12, 8), "return_and_refund"), scan(t(13, 10), "delivered"), end(t(20, 0))],
        database_url=database_url,
    )
    assert intercept_trail(out) == []
    assert events(out, "anomaly_opened", "ticket_opened") == []


def test_return_and_refund_before_pickup_does_not_hold(database_url: str) -> None:
    out = run([ship(t(11, 9)), refund(t(11, 10), "return_and_refund"), end(t(12, 9))], database_url=database_url)
    assert intercept_trail(out) == []
    assert [o["at"] for o in opened(out, "pickup_overdue")] == [t(12, 9)]


# -- idempotency -----------------------------------------------------------------------------


def test_same_refund_twice_requests_one_intercept(database_url: str) -> None:
    out = run([*IN_TRANSIT, refund(t(12, 8)), refund(t(12, 9)), end(t(12, 10))], database_url=database_url)
    assert intercept_trail(out) == [(t(12, 8), "intercept_requested"), (t(12, 8), "intercept_accepted")]


def test_same_refund_twice_before_pickup_holds_once(database_url: str) -> None:
    out = run([ship(t(11, 9)), refund(t(11, 10)), refund(t(11, 11)), end(t(12, 10))], database_url=database_url)
    assert intercept_trail(out) == [(t(11, 10), "shipment_held")]
    assert len(events(out, "ticket_opened")) == 1


def test_held_parcel_picked_up_anyway_is_intercepted(database_url: str) -> None:
    out = run(
        [ship(t(11, 9)), refund(t(11, 10)), scan(t(11, 16), "picked_up"), end(t(11, 17))],
        database_url=database_url,
    )
    assert intercept_trail(out) == [
        (t(11, 10), "shipment_held"),
        (t(11, 16), "intercept_requested"),
        (t(11, 16), "intercept_accepted"),
    ]


# -- an intercept belongs to the parcel ------------------------------------------------------------


def test_a_second_refund_of_the_order_joins_the_open_intercept(database_url: str) -> None:
    out = run([*IN_TRANSIT, refund(t(12, 8)), refund(t(12, 9), refund_id="R2"), end(t(12, 10))],
              database_url=database_url)  # fmt: skip
    assert intercept_trail(out) == [(t(12, 8), "intercept_requested"), (t(12, 8), "intercept_accepted")]
    assert {o["refund_id"] for o in events(out, "intercept_requested", "intercept_accepted")} == {"R1"}


def test_a_second_refund_of_a_held_order_joins_the_hold(database_url: str) -> None:
    out = run([ship(t(11, 9)), refund(t(11, 10)), refund(t(11, 11), refund_id="R2"), end(t(12, 10))],
              database_url=database_url)  # fmt: skip
    assert intercept_trail(out) == [(t(11, 10), "shipment_held")]
    assert len(events(out, "ticket_opened")) == 1


def test_a_refund_after_a_failed_intercept_asks_the_carrier_again(database_url: str) -> None:
    out = run(
        [
            *IN_TRANSIT,
            verdict(t(11, 21), accepted=False, reason="already_at_station"),
            refund(t(12, 8)),
            refund(t(12, 9), refund_id="R2"),
            end(t(12, 10)),
        ],
        database_url=database_url,
    )
    assert intercept_trail(out) == [
        (t(12, 8), "intercept_requested"),
        (t(12, 8), "intercept_rejected"),
        (t(12, 8), "intercept_failed"),
        (t(12, 9), "intercept_requested"),  # attempt 2: a new request, not joined to a finished intercept
        (t(12, 9), "intercept_rejected"),  # the scripted carrier refuses this parcel again
        (t(12, 9), "intercept_failed"),
    ]
    assert [o["refund_id"] for o in events(out, "intercept_requested")] == ["R1", "R2"]
