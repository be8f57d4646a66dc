"""A refund-only request that arrives before its shipment still holds the parcel when it comes."""

from __future__ import annotations

import json

import pytest

from tests.api.server import SECRET, START, ApiServer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def test_a_shipment_reported_after_its_refund_is_held(api: ApiServer) -> None:
    body = json.dumps({"refund_id": "RF-EARLY", "order_id": "O-LATE", "type": "refund_only"}).encode()
    early = api.signed_refund(body, SECRET).json()
    assert early["decisions"] == [] and early["message"] == "no parcels for this order"
    shipment = {"order_id": "O-LATE", "carrier": "sandbox", "tracking_no": "SB-LATE", "shipped_at": START.isoformat()}
    with api.client() as http:
        assert http.post("/api/v1/shipments", json=shipment).status_code == 201
        assert http.post("/api/v1/shipments", json=shipment).status_code in (200, 201)  # a repeat changes nothing
        intercepts = http.get("/api/v1/intercepts").json()["items"]
        parcel = http.get("/api/v1/parcels/sandbox/SB-LATE").json()["parcel"]
    again = api.signed_refund(body, SECRET).json()
    assert [(i["refund_id"], i["state"]) for i in intercepts] == [("RF-EARLY", "held")]
    assert parcel["intercept_state"] == "held"
    assert [d["decision"] for d in again["decisions"]] == ["held"] and again["repeated"] is True
