"""Hostile and out-of-range input answers a 4xx naming the field, never a 5xx, on SQLite and PostgreSQL.

Each case is one request a fault-injection run sent by hand: JSON that Python reads but no
database or encoder takes (deep nesting, 5,000-digit integers, NaN, 1e999999999, lone
surrogates, NUL), amounts and ids past the 32-bit INTEGER columns, years that overflow when
zones are converted, and unicode digits that pass ``str.isdigit()``. One server per backend
serves every case, so the whole file stays quick.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from monitor.store.db import make_engine, upgrade
from monitor.store.store import Store
from tests.api.server import ApiServer, running_api, stored
from tests.conftest import BACKENDS, PG_URL

GOOD = {
    "order_id": "O1",
    "carrier": "sandbox",
    "tracking_no": "SB1",
    "shipped_at": "2026-11-11T09:00:00+08:00",
}
HUGE = "1" + "0" * 5000
MAX_ID = 2**31 - 1


def raw_shipment(**fields: str) -> bytes:
    """Write one shipment by hand, so values json.dumps would refuse (NaN, 1e999999999...) go out as written."""
    values = {key: json.dumps(value) for key, value in GOOD.items()} | fields
    return ("{" + ",".join(f'"{key}":{value}' for key, value in values.items()) + "}").encode()


def raw_batch(bad_index: int, **fields: str) -> bytes:
    """A batch of four shipments whose item ``bad_index`` carries ``fields`` as written."""
    items = [
        raw_shipment(tracking_no=json.dumps(f"SB{i}"), **(fields if i == bad_index else {})).decode() for i in range(4)
    ]
    return ('{"shipments":[' + ",".join(items) + "]}").encode()


@dataclass(frozen=True)
class Case:
    """One bad request and the refusal it must get."""

    method: str
    path: str
    body: bytes | None = None
    where: str | None = None
    status: int = 422
    params: dict[str, str] = field(default_factory=dict)
    signed: bool = False
    headers: dict[str, bytes] = field(default_factory=dict)


CASES: dict[str, Case] = {
    # -- JSON that decodes but nothing downstream takes --
    "nested-100000": Case("POST", "/api/v1/shipments", b"[" * 100_000 + b"]" * 100_000, "body", 400),
    "nested-40-objects": Case(
        "POST", "/api/v1/shipments", b'{"a":' * 40 + b"1" + b"}" * 40, "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a"
    ),
    "int-5000-digits": Case("POST", "/api/v1/shipments", raw_shipment(amount=HUGE), "amount"),
    "int-5000-digits-in-batch": Case("POST", "/api/v1/shipments", raw_batch(3, amount=HUGE), "shipments[3].amount"),
    "lone-surrogate-value": Case("POST", "/api/v1/shipments", raw_shipment(order_id='"\\ud800"'), "order_id"),
    "lone-surrogate-key": Case("POST", "/api/v1/shipments", b'{"\\udfff":1}', "?"),
    "nul-in-text": Case("POST", "/api/v1/shipments", raw_shipment(tracking_no='"SB\\u00001"'), "tracking_no"),
    "nul-in-batch": Case("POST", "/api/v1/shipments", raw_batch(1, shop='"a\\u0000"'), "shipments[1].shop"),
    # -- amounts --
    "amount-1e308": Case("POST", "/api/v1/shipments", raw_shipment(amount="1e308"), "amount"),
    "amount-NaN": Case("POST", "/api/v1/shipments", raw_shipment(amount="NaN"), "amount"),
    "amount-Infinity": Case("POST", "/api/v1/shipments", raw_shipment(amount="Infinity"), "amount"),
    "amount--Infinity": Case("POST", "/api/v1/shipments", raw_shipment(amount="-Infinity"), "amount"),
    "amount-1e999999999": Case("POST", "/api/v1/shipments", raw_shipment(amount="1e999999999"), "amount"),
    "amount-text-1e999999999": Case("POST", "/api/v1/shipments", raw_shipment(amount='"1e999999999"'), "amount"),
    "amount-text-inf": Case("POST", "/api/v1/shipments", raw_shipment(amount='"inf"'), "amount"),
    "amount-text-nan": Case("POST", "/api/v1/shipments", raw_shipment(amount='"nan"'), "amount"),
    "amount-over-int32": Case("POST", "/api/v1/shipments", raw_shipment(amount="21474836.48"), "amount"),
    "amount-over-int32-in-batch": Case(
        "POST", "/api/v1/shipments", raw_batch(2, amount='"99999999999"'), "shipments[2].amount"
    ),
    # -- years that overflow when zones are converted or deadlines added --
    "year-0001": Case(
        "POST", "/api/v1/shipments", raw_shipment(shipped_at='"0001-01-01T00:00:00+08:00"'), "shipped_at"
    ),
    "year-9999": Case(
        "POST", "/api/v1/shipments", raw_shipment(shipped_at='"9999-12-31T23:59:59-05:00"'), "shipped_at"
    ),
    "deadline-9999": Case(
        "POST", "/api/v1/shipments", raw_shipment(pickup_deadline='"9999-12-31T23:00:00+00:00"'), "pickup_deadline"
    ),
    "promised-0001": Case(
        "POST",
        "/api/v1/shipments",
        raw_batch(0, promised_delivery='"0001-01-01T08:00:00+08:00"'),
        "shipments[0].promised_delivery",
    ),
    # -- ids and cursors past 2^31 - 1, unicode digits --
    "anomaly-2^31": Case("GET", f"/api/v1/anomalies/{2**31}", where="anomaly_id"),
    "anomaly-2^63": Case("GET", f"/api/v1/anomalies/{2**63}", where="anomaly_id"),
    "anomaly-huge": Case("GET", f"/api/v1/anomalies/{HUGE}", where="anomaly_id"),
    "anomaly-0": Case("GET", "/api/v1/anomalies/0", where="anomaly_id"),
    "acknowledge-2^63": Case("POST", f"/api/v1/anomalies/{2**63}/acknowledge", where="anomaly_id"),
    "resolve-2^31": Case("POST", f"/api/v1/anomalies/{2**31}/resolve", where="anomaly_id"),
    "cursor-superscript": Case("GET", "/api/v1/parcels", where="cursor", params={"cursor": "²"}),
    "cursor-arabic-digits": Case("GET", "/api/v1/anomalies", where="cursor", params={"cursor": "١٢"}),
    "cursor-2^31": Case("GET", "/api/v1/tickets", where="cursor", params={"cursor": str(2**31)}),
    "cursor-2^63": Case("GET", "/api/v1/intercepts", where="cursor", params={"cursor": str(2**63)}),
    "limit-superscript": Case("GET", "/api/v1/parcels", where="limit", params={"limit": "²"}),
    "limit-huge": Case("GET", "/api/v1/parcels", where="limit", params={"limit": HUGE}),
    "days-huge": Case("GET", "/api/v1/reports", where="days", params={"days": HUGE}),
    # -- text filters and path segments --
    "nul-in-filter": Case("GET", "/api/v1/anomalies", where="carrier", params={"carrier": "sf\x00"}),
    "nul-in-ticket-state": Case("GET", "/api/v1/tickets", where="state", params={"state": "o\x00pen"}),
    "nul-in-report-shop": Case("GET", "/api/v1/reports/pickup-rate", where="shop", params={"shop": "\x00"}),
    "long-filter": Case("GET", "/api/v1/parcels", where="order_id", params={"order_id": "O" * 65}),
    "nul-in-path": Case("GET", "/api/v1/parcels/sandbox/SB%001", where="tracking_no"),
    "long-path": Case("GET", "/api/v1/parcels/sandbox/" + "9" * 65, where="tracking_no"),
    "nul-in-push-carrier": Case("POST", "/api/v1/carriers/kd%00/push", b"x", "carrier"),
    # -- the other bodies read by hand --
    "resolve-nan": Case("POST", "/api/v1/anomalies/1/resolve", b'{"resolution": NaN}', "resolution"),
    "resolve-surrogate": Case("POST", "/api/v1/anomalies/1/resolve", b'{"resolution": "\\ud83d"}', "resolution"),
    "refund-nul": Case(
        "POST",
        "/api/v1/refunds",
        b'{"refund_id":"R\\u0000","order_id":"O1","type":"refund_only"}',
        "refund_id",
        signed=True,
    ),
    "refund-int": Case(
        "POST",
        "/api/v1/refunds",
        ('{"refund_id":' + HUGE + ',"order_id":"O1","type":"refund_only"}').encode(),
        "refund_id",
        signed=True,
    ),
    "refund-timestamp-superscript": Case(
        "POST",
        "/api/v1/refunds",
        b'{"refund_id":"R1","order_id":"O1","type":"refund_only"}',
        "X-Parcel-Monitor-Timestamp",
        401,
        headers={"X-Parcel-Monitor-Timestamp": b"\xb2", "X-Parcel-Monitor-Signature": b"sha256=00"},  # "²" in latin-1
    ),
    "refund-nested": Case("POST", "/api/v1/refunds", b"[" * 50_000, "body", 400, signed=True),
}


def strict_json(text_: str) -> Any:
    """Decode an answer as strict JSON: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise AssertionError(f"the answer holds {name}, which is not JSON: {text_[:200]}")

    return json.loads(text_, parse_constant=refuse)


@pytest.fixture(scope="module", params=BACKENDS)
def bad_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One API per backend for every case of this file (a fresh database, migrated)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('bad') / 'monitor.db'}"
        admin = None
    else:
        request.getfixturevalue("pg_available")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    try:
        with running_api(Store(engine)) as server:
            yield server
    finally:
        engine.dispose()
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def send(api: ApiServer, case: Case) -> Any:
    if case.signed:
        assert case.body is not None
        return api.signed_refund(case.body)
    with api.client() as http:
        headers: dict[str, str | bytes] = {"Content-Type": "application/json"} if case.body is not None else {}
        headers |= case.headers
        return http.request(case.method, case.path, content=case.body, params=case.params, headers=headers)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_a_4xx_naming_the_field(bad_api: ApiServer, name: str) -> None:
    case = CASES[name]
    before = stored(bad_api.store)
    response = send(bad_api, case)
    assert response.status_code < 500, response.text
    assert response.status_code == case.status, response.text
    error = strict_json(response.text)["error"]
    assert error["code"] in ("invalid_field", "invalid_json", "missing_field", "unknown_field", "bad_signature"), error
    assert error.get("field") == case.where, error
    assert stored(bad_api.store) == before  # a refused batch stores no item of it


def test_the_largest_amount_and_id_still_work(bad_api: ApiServer) -> None:
    """The bounds are the columns' own: 21,474,836.47 yuan is stored, id 2^31 - 1 is a plain 404."""
    body = raw_shipment(tracking_no='"SBMAX"', amount="21474836.47")
    with bad_api.client() as http:
        assert http.post("/api/v1/shipments", content=body).status_code in (200, 201)
        parcel = http.get("/api/v1/parcels/sandbox/SBMAX").json()["parcel"]
        missing = http.get(f"/api/v1/anomalies/{MAX_ID}")
        page = http.get("/api/v1/parcels", params={"cursor": str(MAX_ID)})
    assert parcel["amount"] == 21474836.47
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert page.status_code == 200 and any(p["tracking_no"] == "SBMAX" for p in page.json()["items"])
