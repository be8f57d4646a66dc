"""POST /api/v1/shipments: one or a batch, idempotent, and all-or-nothing with named errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.config import ApiSettings
from monitor.store.store import Store
from tests.api.server import SECRET, TOKEN, ApiServer, running_api, stored


def shipment(no: str = "SB1", **changes: Any) -> dict[str, Any]:
    base = {"order_id": f"O-{no}", "carrier": "sandbox", "tracking_no": no, "shipped_at": "2026-11-11T09:00:00+08:00"}
    return base | changes


def parcels(api: ApiServer) -> list[dict[str, Any]]:
    with api.client() as http:
        return http.get("/api/v1/parcels", params={"limit": 500}).json()["items"]


def test_one_shipment_is_created_then_known(api: ApiServer) -> None:
    body = shipment(amount="162.10", shop="旗舰店", destination_province="河南", presale=True)
    with api.client() as http:
        first = http.post("/api/v1/shipments", json=body)
        again = http.post("/api/v1/shipments", json=body | {"order_id": "changed"})
    assert (first.status_code, first.json()) == (201, {"received": 1, "created": 1, "existing": 0})
    assert (again.status_code, again.json()) == (200, {"received": 1, "created": 0, "existing": 1})
    (parcel,) = parcels(api)
    assert parcel["order_id"] == "O-SB1"  # a repeat leaves the stored shipment as it was
    assert (parcel["shipped_at"], parcel["amount"], parcel["shop"], parcel["presale"]) == (
        "2026-11-11T01:00:00Z",
        162.1,
        "旗舰店",
        True,
    )
    assert parcel["destination_province"] == "河南"


def test_a_batch_counts_new_and_known_shipments(api: ApiServer) -> None:
    with api.client() as http:
        http.post("/api/v1/shipments", json=shipment("SB1"))
        batch = [shipment("SB1"), shipment("SB2", amount=89), shipment("K1", carrier="kuaidi100"), shipment("SB2")]
        response = http.post("/api/v1/shipments", json={"shipments": batch})
    assert (response.status_code, response.json()) == (201, {"received": 4, "created": 2, "existing": 2})
    assert sorted((p["carrier"], p["tracking_no"]) for p in parcels(api)) == [
        ("kuaidi100", "K1"),
        ("sandbox", "SB1"),
        ("sandbox", "SB2"),
    ]


def test_a_batch_of_ten_thousand_is_taken_in_one_request(api: ApiServer) -> None:
    batch = [shipment(f"SB{i:05d}") for i in range(10_000)]
    with api.client() as http:
        response = http.post("/api/v1/shipments", json={"shipments": batch})
    assert response.json() == {"received": 10_000, "created": 10_000, "existing": 0}
    assert stored(api.store)["parcel"] == 10_000


def test_an_amount_may_be_text_or_a_number(api: ApiServer) -> None:
    with api.client() as http:
        response = http.post(
            "/api/v1/shipments", json={"shipments": [shipment("A", amount="0.5"), shipment("B", amount=12)]}
        )
    assert response.status_code == 201
    assert sorted(p["amount"] for p in parcels(api)) == [0.5, 12.0]


GOOD = shipment("OK1")
BAD_BODIES = {
    "missing-field": (
        {"shipments": [GOOD, {k: v for k, v in shipment("X").items() if k != "shipped_at"}]},
        422,
        "missing_field",
        "shipments[1].shipped_at",
    ),
    "missing-in-single": ({"carrier": "sandbox", "tracking_no": "X", "shipped_at": "2026-11-11T09:00:00+08:00"}, 422,
                          "missing_field", "order_id"),
    "time-without-offset": ({"shipments": [GOOD, shipment("X", shipped_at="2026-11-11 09:00")]}, 422, "invalid_field",
                            "shipments[1].shipped_at"),
    "time-not-a-time": (shipment("X", promised_delivery="next tuesday"), 422, "invalid_field", "promised_delivery"),
    "time-a-number": (shipment("X", shipped_at=1794364200), 422, "invalid_field", "shipped_at"),
    "amount-words": ({"shipments": [GOOD, GOOD, shipment("X", amount="12,5元")]}, 422, "invalid_field",
                     "shipments[2].amount"),
    "amount-negative": (shipment("X", amount=-1), 422, "invalid_field", "amount"),
    "amount-bool": (shipment("X", amount=True), 422, "invalid_field", "amount"),
    "unknown-carrier": ({"shipments": [GOOD, shipment("X", carrier="yunda")]}, 422, "invalid_field",
                        "shipments[1].carrier"),
    "carrier-a-number": (shipment("X", carrier=7), 422, "invalid_field", "carrier"),
    "presale-not-bool": (shipment("X", presale=3), 422, "invalid_field", "presale"),
    "bad-province": (shipment("X", destination_province="Atlantis"), 422, "invalid_field", "destination_province"),
    "tracking-too-long": (shipment("X" * 65, order_id="O1"), 422, "invalid_field", "tracking_no"),
    "unknown-field": ({"shipments": [GOOD, shipment("X", buyer_phone="13812345678")]}, 422, "unknown_field",
                      "shipments[1].buyer_phone"),
    "batch-extra-key": ({"shipments": [GOOD], "shop": "x"}, 422, "unknown_field", "shop"),
    "top-level-array": ([GOOD], 422, "invalid_field", "body"),
    "top-level-string": ("hello", 422, "invalid_field", "body"),
    "shipments-not-array": ({"shipments": GOOD}, 422, "invalid_field", "shipments"),
    "item-not-object": ({"shipments": [GOOD, "SB2"]}, 422, "invalid_field", "shipments[1]"),
    "too-many": ({"shipments": [GOOD] * 10_001}, 422, "invalid_field", "shipments"),
}  # fmt: skip


@pytest.mark.parametrize(("body", "status", "code", "field"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_body_names_the_field_and_stores_nothing(
    api: ApiServer, body: Any, status: int, code: str, field: str
) -> None:
    before = stored(api.store)
    with api.client() as http:
        response = http.post("/api/v1/shipments", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    assert stored(api.store) == before


def test_a_bad_value_is_echoed_back(api: ApiServer) -> None:
    with api.client() as http:
        response = http.post(
            "/api/v1/shipments", json={"shipments": [GOOD, shipment("X", shipped_at="2026-11-11 09:00")]}
        )
    error = response.json()["error"]
    assert error["value"] == "2026-11-11 09:00"
    assert "offset" in error["message"]


def test_an_unknown_carrier_lists_the_configured_ones(api: ApiServer) -> None:
    with api.client() as http:
        response = http.post("/api/v1/shipments", json=shipment(carrier="yunda"))
    error = response.json()["error"]
    assert (error["field"], error["value"], error["allowed"]) == ("carrier", "yunda", ["kuaidi100", "sandbox"])


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe{}", b'{"order_id": "O1",'], ids=str)
def test_a_body_that_is_not_json_is_400(api: ApiServer, raw: bytes) -> None:
    with api.client() as http:
        response = http.post("/api/v1/shipments", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert response.json()["error"]["field"] == "body"
    assert stored(api.store)["parcel"] == 0


@pytest.fixture
def small_api(store: Store) -> Iterator[ApiServer]:
    """An API that takes bodies of at most 1,000 bytes."""
    with running_api(store, ApiSettings(token=TOKEN, refund_secret=SECRET, max_body_bytes=1000)) as server:
        yield server


def test_a_body_over_the_limit_is_413_and_stores_nothing(small_api: ApiServer) -> None:
    body = json.dumps({"shipments": [shipment(f"SB{i}") for i in range(20)]}).encode()
    assert len(body) > 1000
    with small_api.client() as http:
        response = http.post("/api/v1/shipments", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert stored(small_api.store)["parcel"] == 0


def test_a_streamed_body_over_the_limit_is_cut_off_with_413(small_api: ApiServer) -> None:
    body = json.dumps({"shipments": [shipment(f"SB{i}") for i in range(20)]}).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it arrives
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    with small_api.client() as http:
        response = http.post("/api/v1/shipments", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert stored(small_api.store)["parcel"] == 0


def test_a_body_under_the_limit_is_taken(small_api: ApiServer) -> None:
    with small_api.client() as http:
        assert http.post("/api/v1/shipments", json=shipment()).status_code == 201
