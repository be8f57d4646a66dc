"""/api/v1/anomalies: list and filter what the rules found, acknowledge it, resolve it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.api.server import ApiServer


def overdue(api: ApiServer) -> dict[str, dict[str, Any]]:
    """Ship three parcels and let their pickup deadlines pass; return the pickup_overdue anomalies by number."""
    batch = [
        {"order_id": "O1", "carrier": "sandbox", "tracking_no": "SB1", "shop": "旗舰店", "amount": "100"},
        {"order_id": "O2", "carrier": "sandbox", "tracking_no": "SB2", "shop": "专营店"},
        {"order_id": "O3", "carrier": "kuaidi100", "tracking_no": "K1", "shop": "旗舰店"},
    ]
    with api.client() as http:
        shipped = [s | {"shipped_at": "2026-11-11T09:00:00+08:00"} for s in batch]
        assert http.post("/api/v1/shipments", json={"shipments": shipped}).status_code == 201
    api.clock.advance(timedelta(hours=25))
    assert api.tick() > 0
    with api.client() as http:
        items = http.get("/api/v1/anomalies", params={"rule": "pickup_overdue"}).json()["items"]
    return {a["parcel"]["tracking_no"]: a for a in items}


def test_the_list_is_newest_first_with_the_parcel(api: ApiServer) -> None:
    found = overdue(api)
    assert set(found) == {"SB1", "SB2", "K1"}
    sb1 = found["SB1"]
    assert (sb1["state"], sb1["severity"], sb1["parcel"]["order_id"], sb1["parcel"]["shop"]) == (
        "open",
        "critical",
        "O1",
        "旗舰店",
    )
    assert sb1["compensation"] is not None and found["SB2"]["compensation"] is None
    with api.client() as http:
        ids = [a["id"] for a in http.get("/api/v1/anomalies").json()["items"]]
    assert ids == sorted(ids, reverse=True)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"carrier": "kuaidi100"}, {"K1"}),
        ({"shop": "旗舰店"}, {"SB1", "K1"}),
        ({"carrier": "sandbox", "shop": "专营店"}, {"SB2"}),
        ({"state": "active"}, {"SB1", "SB2", "K1"}),
        ({"state": "resolved"}, set()),
    ],
)
def test_filters(api: ApiServer, params: dict[str, str], expected: set[str]) -> None:
    overdue(api)
    with api.client() as http:
        items = http.get("/api/v1/anomalies", params=params | {"rule": "pickup_overdue"}).json()["items"]
    assert {a["parcel"]["tracking_no"] for a in items} == expected


def test_pages_follow_the_cursor_to_the_end(api: ApiServer) -> None:
    overdue(api)
    seen: list[int] = []
    cursor: str | None = None
    with api.client() as http:
        everything = [a["id"] for a in http.get("/api/v1/anomalies").json()["items"]]
        for _ in range(20):
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = http.get("/api/v1/anomalies", params=params).json()
            seen += [a["id"] for a in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == everything and len(everything) > 2


def test_acknowledge_then_resolve(api: ApiServer) -> None:
    anomaly_id = overdue(api)["SB1"]["id"]
    with api.client() as http:
        acked = http.post(f"/api/v1/anomalies/{anomaly_id}/acknowledge")
        again = http.post(f"/api/v1/anomalies/{anomaly_id}/acknowledge")
        listed = http.get("/api/v1/anomalies", params={"state": "acknowledged"}).json()["items"]
        resolved = http.post(f"/api/v1/anomalies/{anomaly_id}/resolve", json={"resolution": "reshipped"})
        fetched = http.get(f"/api/v1/anomalies/{anomaly_id}").json()
        active = http.get("/api/v1/anomalies", params={"state": "active", "rule": "pickup_overdue"}).json()["items"]
    assert (acked.status_code, acked.json()["state"]) == (200, "acknowledged")
    assert acked.json()["acknowledged_at"] == "2026-11-12T03:00:00Z"
    assert (again.status_code, again.json()["state"]) == (200, "acknowledged")
    assert [a["id"] for a in listed] == [anomaly_id]
    assert (resolved.status_code, resolved.json()["state"], resolved.json()["resolution"]) == (
        200,
        "resolved",
        "reshipped",
    )
    assert fetched == resolved.json()
    assert anomaly_id not in {a["id"] for a in active}


def test_resolve_without_a_body_is_manual(api: ApiServer) -> None:
    anomaly_id = overdue(api)["SB2"]["id"]
    with api.client() as http:
        response = http.post(f"/api/v1/anomalies/{anomaly_id}/resolve")
    assert response.json()["resolution"] == "manual"


def test_a_resolved_anomaly_is_409_for_both_actions(api: ApiServer) -> None:
    anomaly_id = overdue(api)["SB1"]["id"]
    with api.client() as http:
        http.post(f"/api/v1/anomalies/{anomaly_id}/resolve")
        resolve = http.post(f"/api/v1/anomalies/{anomaly_id}/resolve")
        acknowledge = http.post(f"/api/v1/anomalies/{anomaly_id}/acknowledge")
    for response in (resolve, acknowledge):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "already_resolved"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/anomalies/999"),
        ("POST", "/api/v1/anomalies/999/acknowledge"),
        ("POST", "/api/v1/anomalies/999/resolve"),
    ],
)
def test_an_unknown_anomaly_is_404(api: ApiServer, method: str, path: str) -> None:
    with api.client() as http:
        response = http.request(method, path)
    assert response.status_code == 404
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("not_found", "anomaly_id")


@pytest.mark.parametrize(
    ("request_args", "status", "code", "field"),
    [
        ({"json": {"resolution": "x" * 33}}, 422, "invalid_field", "resolution"),
        ({"json": {"resolution": 5}}, 422, "invalid_field", "resolution"),
        ({"json": {"why": "x"}}, 422, "unknown_field", "why"),
        ({"content": b"{oops", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json", "body"),
    ],
    ids=["too-long", "not-text", "unknown-field", "not-json"],
)
def test_a_bad_resolve_body_names_the_field_and_changes_nothing(
    api: ApiServer, request_args: dict[str, Any], status: int, code: str, field: str
) -> None:
    anomaly_id = overdue(api)["SB1"]["id"]
    with api.client() as http:
        response = http.post(f"/api/v1/anomalies/{anomaly_id}/resolve", **request_args)
        after = http.get(f"/api/v1/anomalies/{anomaly_id}").json()
    assert response.status_code == status
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (code, field)
    assert after["state"] == "open"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "closed"}, "state"),
        ({"rule": "late"}, "rule"),
        ({"limit": 501}, "limit"),
        ({"cursor": "x"}, "cursor"),
    ],
)
def test_a_bad_filter_names_the_parameter(api: ApiServer, params: dict[str, Any], field: str) -> None:
    with api.client() as http:
        response = http.get("/api/v1/anomalies", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_a_bad_rule_lists_the_rule_ids(api: ApiServer) -> None:
    with api.client() as http:
        error = http.get("/api/v1/anomalies", params={"rule": "late"}).json()["error"]
    assert "pickup_overdue" in error["allowed"] and "intercept_failed" in error["allowed"]


def test_a_path_id_that_is_not_a_number_is_422(api: ApiServer) -> None:
    with api.client() as http:
        response = http.get("/api/v1/anomalies/abc")
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid_field",
        "field": "anomaly_id",
        "value": "abc",
        "message": response.json()["error"]["message"],
    }
