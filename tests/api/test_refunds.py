"""POST /api/v1/refunds: signed with docs/api.md's own snippet; decided at once, the carrier called right after."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest

from carriers.model import Status
from tests.api.server import SNIPPET, START, ApiServer, stored


def refund(refund_id: str = "R1", order_id: str = "O1", type_: str = "refund_only") -> bytes:
    return json.dumps({"refund_id": refund_id, "order_id": order_id, "type": type_}).encode()


def ship(api: ApiServer, no: str = "SB1", order_id: str = "O1", carrier: str = "sandbox") -> None:
    body = {"order_id": order_id, "carrier": carrier, "tracking_no": no, "shipped_at": "2026-11-11T09:00:00+08:00"}
    with api.client() as http:
        assert http.post("/api/v1/shipments", json=body).status_code == 201


def decisions(response: Any) -> list[tuple[str, str, str]]:
    return [(d["carrier"], d["tracking_no"], d["decision"]) for d in response.json()["decisions"]]


def settle(api: ApiServer) -> None:
    """Wait for the carrier calls the refunds started after answering (on the server's loop)."""
    assert api.call(api.ctx.monitor.drain(10))


def test_a_picked_up_parcel_is_intercept_requested_and_called_right_after(api: ApiServer) -> None:
    ship(api)
    api.scan("SB1", Status.PICKED_UP, START + timedelta(minutes=30))
    response = api.signed_refund(refund())
    assert response.status_code == 200, response.text
    assert decisions(response) == [("sandbox", "SB1", "intercept_requested")]
    assert response.json()["repeated"] is False
    settle(api)
    # the carrier was called right after the answer, without any tick of the scheduler
    assert [number for _, number in api.sandbox.intercept_requests] == ["SB1"]
    with api.client() as http:
        (intercept,) = http.get("/api/v1/intercepts").json()["items"]
        detail = http.get("/api/v1/parcels/sandbox/SB1").json()
    assert (intercept["refund_id"], intercept["state"], intercept["parcel"]["tracking_no"]) == ("R1", "accepted", "SB1")
    assert detail["parcel"]["intercept_state"] == "accepted"
    assert [(a["kind"], a["state"]) for a in detail["actions"]] == [("intercept", "done")]


def test_a_parcel_not_picked_up_is_held_with_a_ticket(api: ApiServer) -> None:
    ship(api)
    response = api.signed_refund(refund())
    assert decisions(response) == [("sandbox", "SB1", "held")]
    assert api.sandbox.intercept_requests == []
    with api.client() as http:
        (ticket,) = http.get("/api/v1/tickets").json()["items"]
    assert (ticket["rule"], ticket["refund_id"], ticket["parcel"]["tracking_no"]) == ("refund", "R1", "SB1")


def test_a_delivered_parcel_is_skipped_and_says_why(api: ApiServer) -> None:
    ship(api)
    api.scan("SB1", Status.PICKED_UP, START + timedelta(minutes=30))
    api.scan("SB1", Status.DELIVERED, START + timedelta(minutes=50))
    response = api.signed_refund(refund())
    (decision,) = response.json()["decisions"]
    assert (decision["decision"], decision["reason"]) == ("skipped", "delivered")
    assert api.sandbox.intercept_requests == []


def test_a_rejected_intercept_fails_and_opens_an_anomaly(api: ApiServer) -> None:
    ship(api)
    api.scan("SB1", Status.PICKED_UP, START + timedelta(minutes=30))
    api.sandbox.stage_verdict("SB1", accepted=False, reason="已派送中，无法拦截")
    (decision,) = api.signed_refund(refund()).json()["decisions"]
    assert decision["decision"] == "intercept_requested"
    settle(api)
    with api.client() as http:
        (anomaly,) = http.get("/api/v1/anomalies", params={"rule": "intercept_failed"}).json()["items"]
        (intercept,) = http.get("/api/v1/intercepts").json()["items"]
    assert anomaly["parcel"]["tracking_no"] == "SB1"
    assert (intercept["state"], intercept["reason"]) == ("failed", "已派送中，无法拦截")


def test_an_order_of_two_parcels_gets_a_decision_each(api: ApiServer) -> None:
    ship(api, "SB1")
    ship(api, "SB2")
    api.scan("SB2", Status.PICKED_UP, START + timedelta(minutes=30))
    response = api.signed_refund(refund())
    assert sorted(decisions(response)) == [("sandbox", "SB1", "held"), ("sandbox", "SB2", "intercept_requested")]


def test_an_unknown_order_answers_200_with_no_decisions(api: ApiServer) -> None:
    response = api.signed_refund(refund(order_id="NOPE"))
    assert response.status_code == 200
    assert (response.json()["decisions"], response.json()["message"]) == ([], "no parcels for this order")
    assert stored(api.store)["refund"] == 1


def test_return_and_refund_is_recorded_and_intercepts_nothing(api: ApiServer) -> None:
    ship(api)
    api.scan("SB1", Status.PICKED_UP, START + timedelta(minutes=30))
    response = api.signed_refund(refund(type_="return_and_refund"))
    assert response.json()["decisions"] == []
    assert "nothing to intercept" in response.json()["message"]
    assert api.sandbox.intercept_requests == []


def test_a_repeated_refund_does_nothing_new(api: ApiServer) -> None:
    ship(api)
    api.scan("SB1", Status.PICKED_UP, START + timedelta(minutes=30))
    first = api.signed_refund(refund())
    settle(api)
    api.clock.advance(timedelta(minutes=5))
    again = api.signed_refund(refund())
    assert again.status_code == 200
    assert decisions(first) == [("sandbox", "SB1", "intercept_requested")]
    assert decisions(again) == [("sandbox", "SB1", "accepted")]  # as it stands now
    assert (first.json()["repeated"], again.json()["repeated"]) == (False, True)
    settle(api)
    assert len(api.sandbox.intercept_requests) == 1
    assert stored(api.store)["intercept"] == 1


def test_a_second_refund_of_the_order_joins_the_open_intercept(api: ApiServer) -> None:
    ship(api)
    api.scan("SB1", Status.PICKED_UP, START + timedelta(minutes=30))
    api.signed_refund(refund("R1"))
    settle(api)
    second = api.signed_refund(refund("R2"))
    (decision,) = second.json()["decisions"]
    assert (decision["decision"], decision["reason"]) == ("joined", "refund R1: accepted")
    settle(api)
    assert len(api.sandbox.intercept_requests) == 1
    with api.client() as http:
        states = sorted(i["state"] for i in http.get("/api/v1/intercepts").json()["items"])
    assert states == ["accepted", "joined"]


def test_a_second_refund_of_a_held_order_joins_the_hold(api: ApiServer) -> None:
    ship(api)
    api.signed_refund(refund("R1"))
    second = api.signed_refund(refund("R2"))
    assert decisions(second) == [("sandbox", "SB1", "joined")]
    settle(api)
    with api.client() as http:
        assert len(http.get("/api/v1/tickets").json()["items"]) == 1


def test_a_refund_id_reused_for_another_order_is_a_conflict(api: ApiServer) -> None:
    api.signed_refund(refund(order_id="O1"))
    response = api.signed_refund(refund(order_id="O2"))
    assert response.status_code == 409
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("refund_conflict", "refund_id")


def test_the_docs_verify_accepts_what_sign_makes() -> None:
    body = refund()
    headers = SNIPPET["sign"]("s3cret", body, 1794364200)
    stamp, signature = headers["X-Parcel-Monitor-Timestamp"], headers["X-Parcel-Monitor-Signature"]
    assert SNIPPET["verify"]("s3cret", stamp, signature, body, now=1794364200 + 299)
    assert not SNIPPET["verify"]("s3cret", stamp, signature, body + b" ", now=1794364200)
    assert not SNIPPET["verify"]("other", stamp, signature, body, now=1794364200)
    assert not SNIPPET["verify"]("s3cret", stamp, signature, body, now=1794364200 + 301)


# -- refused: nothing happens ----------------------------------------------------------------


def post_raw(api: ApiServer, body: bytes, headers: dict[str, str]) -> Any:
    with api.client(token=None) as http:
        return http.post("/api/v1/refunds", content=body, headers=headers)


def sign(body: bytes, secret: str = "refund-secret-8d1e", offset: float = 0) -> dict[str, str]:
    return SNIPPET["sign"](secret, body, int(START.timestamp() + offset))


REFUSED = {
    "no-headers": (lambda body: {"Content-Type": "application/json"}, "missing_signature"),
    "no-signature": (lambda body: {"X-Parcel-Monitor-Timestamp": str(int(START.timestamp()))}, "missing_signature"),
    "wrong-secret": (lambda body: sign(body, secret="guessed"), "bad_signature"),
    "tampered-body": (lambda body: sign(body.replace(b"O1", b"O2")), "bad_signature"),
    "stale": (lambda body: sign(body, offset=-301), "stale_timestamp"),
    "from-the-future": (lambda body: sign(body, offset=301), "stale_timestamp"),
    "signed-with-the-wall-clock": (lambda body: SNIPPET["sign"]("refund-secret-8d1e", body, int(time.time())),
                                   "stale_timestamp"),
    "timestamp-not-digits": (lambda body: sign(body) | {"X-Parcel-Monitor-Timestamp": "soon"}, "bad_signature"),
    "signature-without-prefix": (
        lambda body: sign(body) | {"X-Parcel-Monitor-Signature": sign(body)["X-Parcel-Monitor-Signature"][7:]},
        "bad_signature",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("headers", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_an_unauthentic_refund_is_401_and_nothing_happens(api: ApiServer, headers: Any, code: str) -> None:
    ship(api)
    api.scan("SB1", Status.PICKED_UP, START + timedelta(minutes=30))
    before = stored(api.store)
    body = refund()
    response = post_raw(api, body, headers(body))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert api.sandbox.intercept_requests == []
    assert stored(api.store) == before


def test_a_timestamp_inside_the_window_is_accepted(api: ApiServer) -> None:
    body = refund()
    assert post_raw(api, body, sign(body, offset=-299)).status_code == 200


def test_a_bearer_token_does_not_replace_the_signature(api: ApiServer) -> None:
    with api.client() as http:
        response = http.post("/api/v1/refunds", content=refund(), headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert stored(api.store)["refund"] == 0


BAD_REFUNDS = {
    "missing-type": (b'{"refund_id": "R1", "order_id": "O1"}', 422, "missing_field", "type"),
    "unknown-type": (refund(type_="exchange"), 422, "invalid_field", "type"),
    "empty-refund-id": (refund(refund_id=""), 422, "invalid_field", "refund_id"),
    "order-id-a-number": (b'{"refund_id": "R1", "order_id": 7, "type": "refund_only"}', 422, "invalid_field",
                          "order_id"),
    "unknown-field": (b'{"refund_id": "R1", "order_id": "O1", "type": "refund_only", "buyer": "x"}', 422,
                      "unknown_field", "buyer"),
    "array": (b"[]", 422, "invalid_field", "body"),
    "not-json": (b"refund_id=R1", 400, "invalid_json", "body"),
}  # fmt: skip


@pytest.mark.parametrize(("body", "status", "code", "field"), BAD_REFUNDS.values(), ids=BAD_REFUNDS.keys())
def test_a_signed_but_bad_body_names_the_field(api: ApiServer, body: bytes, status: int, code: str, field: str) -> None:
    response = post_raw(api, body, sign(body))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert stored(api.store)["refund"] == 0


def test_an_unknown_type_lists_the_accepted_ones(api: ApiServer) -> None:
    body = refund(type_="exchange")
    error = post_raw(api, body, sign(body)).json()["error"]
    assert error["allowed"] == ["refund_only", "return_and_refund"]
