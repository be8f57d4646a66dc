"""/api/v1/parcels, /tickets and /intercepts: lists with filters and cursors, and one parcel in full."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from carriers.model import Status
from tests.api.server import SECRET, START, ApiServer

PII_WORDS = ("phone", "mobile", "address", "receiver", "recipient", "buyer", "name")


def ship(api: ApiServer, *numbers: str, carrier: str = "sandbox", shop: str = "旗舰店", order_id: str = "") -> None:
    batch = [
        {"order_id": order_id or f"O-{n}", "carrier": carrier, "tracking_no": n, "shop": shop,
         "shipped_at": "2026-11-11T09:00:00+08:00"}
        for n in numbers
    ]  # fmt: skip
    with api.client() as http:
        assert http.post("/api/v1/shipments", json={"shipments": batch}).status_code == 201


def refund(api: ApiServer, order_id: str, refund_id: str) -> dict[str, Any]:
    body = json.dumps({"refund_id": refund_id, "order_id": order_id, "type": "refund_only"}).encode()
    response = api.signed_refund(body, SECRET)
    assert response.status_code == 200
    return response.json()


def keys(obj: Any) -> set[str]:
    """Every key anywhere in a JSON document."""
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in keys(v)}
    return set()


def test_a_parcel_in_full_with_its_timeline(api: ApiServer) -> None:
    ship(api, "SB1", order_id="O1")
    api.scan(
        "SB1",
        Status.PICKED_UP,
        START + timedelta(minutes=30),
        raw_code="PU",
        raw_text="【杭州市】已揽收",
        location="杭州转运中心",
    )
    api.scan(
        "SB1",
        Status.OUT_FOR_DELIVERY,
        START + timedelta(hours=20),
        raw_code="OFD",
        raw_text="【郑州市】派件员王师傅正在派件，电话13812345678",
        location="郑州高新区营业部",
    )
    refund(api, "O1", "R1")
    with api.client() as http:
        response = http.get("/api/v1/parcels/sandbox/SB1")
    assert response.status_code == 200
    detail = response.json()
    assert (detail["parcel"]["status"], detail["parcel"]["order_id"], detail["parcel"]["shop"]) == (
        "out_for_delivery",
        "O1",
        "旗舰店",
    )
    assert [(e["time"], e["status"], e["raw_code"]) for e in detail["timeline"]] == [
        ("2026-11-11T02:30:00Z", "picked_up", "PU"),
        ("2026-11-11T22:00:00Z", "out_for_delivery", "OFD"),
    ]
    assert detail["timeline"][0]["raw_text"] == "【杭州市】已揽收"
    assert detail["timeline"][0]["location"] == "杭州转运中心"
    assert detail["timeline"][1]["raw_text"] == "【郑州市】派件员王师傅正在派件，电话138****5678"
    assert [(i["refund_id"], i["state"]) for i in detail["intercepts"]] == [("R1", "accepted")]
    assert [a["kind"] for a in detail["actions"]] == ["intercept"]
    assert "intercept_accepted" in [a["event"] for a in detail["activity"]]
    assert "13812345678" not in response.text
    assert not {k for k in keys(detail) if any(word in k.lower() for word in PII_WORDS)}


def test_a_parcel_lists_its_anomalies_and_tickets(api: ApiServer) -> None:
    ship(api, "SB1")
    api.clock.advance(timedelta(hours=25))
    api.tick()
    with api.client() as http:
        detail = http.get("/api/v1/parcels/sandbox/SB1").json()
    assert "pickup_overdue" in [a["rule"] for a in detail["anomalies"]]
    assert "pickup_overdue" in [t["rule"] for t in detail["tickets"]]
    assert {a["kind"] for a in detail["actions"]} >= {"ticket", "alert"}


def test_an_unknown_parcel_is_404(api: ApiServer) -> None:
    with api.client() as http:
        response = http.get("/api/v1/parcels/sandbox/NOPE")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_kuaidi100_number_with_a_company_prefix_is_found(api: ApiServer) -> None:
    ship(api, "shunfeng:SF1400000000099", carrier="kuaidi100")
    with api.client() as http:
        response = http.get("/api/v1/parcels/kuaidi100/shunfeng:SF1400000000099")
    assert response.json()["parcel"]["tracking_no"] == "shunfeng:SF1400000000099"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["SB3", "SB2", "SB1", "K2", "K1"]),
        ({"carrier": "kuaidi100"}, ["K2", "K1"]),
        ({"shop": "专营店"}, ["K2", "K1"]),
        ({"status": "picked_up"}, ["SB2"]),
        ({"order_id": "O-SB3"}, ["SB3"]),
        ({"carrier": "sandbox", "status": "pending"}, ["SB3", "SB1"]),
    ],
)
def test_parcel_filters(api: ApiServer, params: dict[str, str], expected: list[str]) -> None:
    ship(api, "K1", "K2", carrier="kuaidi100", shop="专营店")
    ship(api, "SB1", "SB2", "SB3")
    api.scan("SB2", Status.PICKED_UP, START + timedelta(minutes=30))
    with api.client() as http:
        items = http.get("/api/v1/parcels", params=params).json()["items"]
    assert [p["tracking_no"] for p in items] == expected


def test_parcel_pages_follow_the_cursor(api: ApiServer) -> None:
    ship(api, *[f"SB{i}" for i in range(1, 6)])
    pages: list[list[str]] = []
    with api.client() as http:
        page = http.get("/api/v1/parcels", params={"limit": 2}).json()
        pages.append([p["tracking_no"] for p in page["items"]])
        while page["next_cursor"] is not None:
            page = http.get("/api/v1/parcels", params={"limit": 2, "cursor": page["next_cursor"]}).json()
            pages.append([p["tracking_no"] for p in page["items"]])
    assert pages == [["SB5", "SB4"], ["SB3", "SB2"], ["SB1"]]


def test_a_full_last_page_has_no_next_cursor(api: ApiServer) -> None:
    ship(api, "SB1", "SB2")
    with api.client() as http:
        page = http.get("/api/v1/parcels", params={"limit": 2}).json()
    assert (len(page["items"]), page["next_cursor"]) == (2, None)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "lost"}, "status"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"cursor": "-1"}, "cursor")],
)
def test_a_bad_parcel_filter_names_the_parameter(api: ApiServer, params: dict[str, Any], field: str) -> None:
    with api.client() as http:
        response = http.get("/api/v1/parcels", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_a_bad_status_lists_the_statuses(api: ApiServer) -> None:
    with api.client() as http:
        error = http.get("/api/v1/parcels", params={"status": "lost"}).json()["error"]
    assert "in_transit" in error["allowed"] and "returned" in error["allowed"]


def test_tickets_and_intercepts_lists(api: ApiServer) -> None:
    ship(api, "SB1", order_id="O1")
    ship(api, "K1", carrier="kuaidi100", order_id="O2")
    api.scan("K1", Status.PICKED_UP, START + timedelta(minutes=30), carrier="kuaidi100")
    refund(api, "O1", "R1")  # held: a ticket for the warehouse
    refund(api, "O2", "R2")  # kuaidi100 cannot intercept: failed
    with api.client() as http:
        tickets = http.get("/api/v1/tickets").json()["items"]
        sandbox_tickets = http.get("/api/v1/tickets", params={"carrier": "sandbox"}).json()["items"]
        intercepts = http.get("/api/v1/intercepts").json()["items"]
        failed = http.get("/api/v1/intercepts", params={"state": "failed"}).json()["items"]
        held = http.get("/api/v1/intercepts", params={"state": "held", "carrier": "sandbox"}).json()["items"]
        none = http.get("/api/v1/intercepts", params={"state": "held", "carrier": "kuaidi100"}).json()["items"]
        bad = http.get("/api/v1/intercepts", params={"state": "lost"})
    assert [(t["rule"], t["refund_id"], t["state"]) for t in sandbox_tickets] == [("refund", "R1", "open")]
    assert {t["parcel"]["tracking_no"] for t in tickets} >= {"SB1"}
    assert [(i["refund_id"], i["parcel"]["tracking_no"]) for i in intercepts] == [("R2", "K1"), ("R1", "SB1")]
    assert [(i["refund_id"], i["reason"]) for i in failed] == [("R2", "carrier_has_no_intercept")]
    assert [i["refund_id"] for i in held] == ["R1"]
    assert none == []
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "state")


def test_ticket_and_intercept_pages_follow_the_cursor(api: ApiServer) -> None:
    ship(api, *[f"SB{i}" for i in range(1, 4)])
    for i in range(1, 4):
        refund(api, f"O-SB{i}", f"R{i}")
    with api.client() as http:
        # the ticket queue is most money at stake first, then oldest first (none at stake here)
        for path, order in (("/api/v1/tickets", ["SB1", "SB2", "SB3"]), ("/api/v1/intercepts", ["SB3", "SB2", "SB1"])):
            first = http.get(path, params={"limit": 2}).json()
            second = http.get(path, params={"limit": 2, "cursor": first["next_cursor"]}).json()
            numbers = [x["parcel"]["tracking_no"] for x in first["items"] + second["items"]]
            assert numbers == order and second["next_cursor"] is None
