"""GET /api/v1/reports: the 24-hour pickup rate, intercepts and anomalies, as `parcel-monitor report` shows them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carriers.model import Status
from tests.api.server import START, ApiServer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def ship(api: ApiServer, numbers: list[str], shop: str) -> None:
    batch = [{"order_id": f"O-{n}", "carrier": "sandbox", "tracking_no": n, "shop": shop,
              "shipped_at": START.isoformat()} for n in numbers]  # fmt: skip
    with api.client() as http:
        assert http.post("/api/v1/shipments", json={"shipments": batch}).status_code == 201


def test_the_pickup_rate_per_shop_and_in_total(api: ApiServer) -> None:
    ship(api, ["A1", "A2", "A3", "A4"], "旗舰店")
    ship(api, ["B1"], "专营店")
    for number in ("A1", "A2", "A3", "B1"):
        api.scan(number, Status.PICKED_UP, START + timedelta(hours=5))
    api.clock.advance(timedelta(hours=30))  # every 24-hour deadline has passed; A4 was never picked up
    api.tick()
    with api.client() as http:
        everything = http.get("/api/v1/reports", params={"days": 7}).json()
        one = http.get("/api/v1/reports/pickup-rate", params={"days": 7, "shop": "旗舰店"}).json()
        anomalies = http.get("/api/v1/reports/anomalies").json()
        missing = http.get("/api/v1/reports/nope")
        bad_days = http.get("/api/v1/reports", params={"days": 0})
    with api.client(token=None) as http:
        anonymous = http.get("/api/v1/reports")
    total = everything["pickup"]["total"]
    assert (total["due"], total["in_time"], total["rate"]) == (5, 4, 0.8)
    rows = {r["shop"]: r for r in everything["pickup"]["rows"]}
    assert (rows["旗舰店"]["in_time"], rows["旗舰店"]["due"]) == (3, 4) and rows["专营店"]["rate"] == 1.0
    assert set(one) == {"window", "filters", "pickup"} and one["pickup"]["total"]["rate"] == 0.75
    assert {r["rule"] for r in anomalies["anomalies"]["rows"]} >= {"pickup_overdue"}
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "name"
    assert bad_days.status_code == 422 and bad_days.json()["error"]["field"] == "days"
    assert anonymous.status_code == 401
