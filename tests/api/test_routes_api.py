"""GET /api/v1/routes and the estimated delivery window of GET /api/v1/parcels/{carrier}/{no}, on a real server."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from carriers.model import Status
from monitor.norms.learn import learn
from monitor.testing.history import Journey, write_journeys
from tests.api.server import START, ApiServer

H = timedelta(hours=1)


def history(api: ApiServer, n: int = 40) -> None:
    """Delivered sandbox parcels 浙江→四川: total 30 + i/4 h, out for delivery → delivered 3 h."""
    items = []
    for i in range(n):
        shipped = START - timedelta(days=20) + i * H
        at = shipped + 2 * H
        scans = [(at, "picked_up"), (at + 5 * H, "in_transit"), (at + 10 * H, "in_transit")]
        scans += [(shipped + (27 + i / 4) * H, "out_for_delivery"), (shipped + (30 + i / 4) * H, "delivered")]
        items.append(Journey("sandbox", "浙江", "四川", "cross_province", shipped, scans))
    with api.store.begin() as uow:
        write_journeys(uow, items)
    learn(api.store, START)
    api.ctx.monitor.norms.refresh(api.store)


def test_routes_lists_learned_norms_and_the_chain_for_one_route(api: ApiServer) -> None:
    with api.client() as http:
        empty = http.get("/api/v1/routes").json()
        assert (empty["norms"], empty["quantile"], empty["min_samples"]) == ([], "p95", 30)
        history(api)
        body = http.get("/api/v1/routes", params={"carrier": "sandbox"}).json()
        levels = {(n["level"], n["phase"]) for n in body["norms"]}
        assert ("route", "total") in levels and ("carrier", "transit_gap") in levels
        total = next(n for n in body["norms"] if (n["level"], n["phase"]) == ("route", "total"))
        assert (total["origin_province"], total["dest_province"], total["samples"]) == ("浙江", "四川", 40)
        assert total["p50_hours"] == pytest.approx(30 + 39 / 8, abs=0.01)
        chain = http.get("/api/v1/routes", params={"from": "浙江省", "to": "四川"}).json()["norms"]
        assert [n["phase"] for n in chain] == [
            "ship_to_pickup", "pickup_to_first_transit", "transit_gap", "ofd_to_delivered", "total",
        ]  # fmt: skip
        assert {n["level"] for n in chain} == {"route"}
        elsewhere = http.get("/api/v1/routes", params={"from": "浙江", "to": "新疆"}).json()["norms"]
        assert {n["level"] for n in elsewhere} == {"carrier"}  # no route nor region class learned: the carrier's
        bad = http.get("/api/v1/routes", params={"from": "火星", "to": "四川"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "from"
        half = http.get("/api/v1/routes", params={"from": "浙江"})
        assert half.status_code == 422
        assert http.get("/api/v1/routes", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_parcel_detail_carries_the_estimated_delivery_window(api: ApiServer) -> None:
    history(api)
    shipment = {"order_id": "O-E", "carrier": "sandbox", "tracking_no": "E1", "shipped_at": START.isoformat(),
                "origin_province": "浙江", "destination_province": "四川"}  # fmt: skip
    with api.client() as http:
        assert http.post("/api/v1/shipments", json=shipment).status_code == 201
        eta = http.get("/api/v1/parcels/sandbox/E1").json()["estimated_delivery"]
        assert (eta["level"], eta["phase"], eta["samples"]) == ("route", "total", 40)
        p50, p90 = 30 + 39 / 8, 30 + 0.9 * 39 / 4
        assert datetime.fromisoformat(eta["earliest"]) == pytest.approx(START + p50 * H, abs=timedelta(seconds=2))
        assert datetime.fromisoformat(eta["latest"]) == pytest.approx(START + p90 * H, abs=timedelta(seconds=2))
        # out for delivery: the window is the last mile's, from the courier's scan
        api.clock.set(START + 20 * H)
        api.scan("E1", Status.OUT_FOR_DELIVERY, START + 20 * H)
        eta = http.get("/api/v1/parcels/sandbox/E1").json()["estimated_delivery"]
        assert eta["phase"] == "ofd_to_delivered"
        assert datetime.fromisoformat(eta["latest"]) == START + 23 * H
        api.scan("E1", Status.DELIVERED, START + 22 * H)
        assert http.get("/api/v1/parcels/sandbox/E1").json()["estimated_delivery"] is None
