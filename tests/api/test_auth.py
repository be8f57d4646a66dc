"""Every /api/v1 route wants the bearer token, except the two that are signed instead."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from monitor.config import ApiSettings
from monitor.store.store import Store
from tests.api.server import TOKEN, ApiServer, running_api, stored

BEARER_ROUTES = [
    ("POST", "/api/v1/shipments"),
    ("GET", "/api/v1/parcels"),
    ("GET", "/api/v1/parcels/sandbox/SB1"),
    ("GET", "/api/v1/anomalies"),
    ("GET", "/api/v1/anomalies/1"),
    ("POST", "/api/v1/anomalies/1/acknowledge"),
    ("POST", "/api/v1/anomalies/1/resolve"),
    ("GET", "/api/v1/tickets"),
    ("GET", "/api/v1/intercepts"),
    ("GET", "/api/v1/reports"),
    ("GET", "/api/v1/reports/pickup-rate"),
]
SHIPMENT = {"order_id": "O1", "carrier": "sandbox", "tracking_no": "SB1", "shipped_at": "2026-11-11T09:00:00+08:00"}


#: Authorization headers that must not get through: none, a near miss, another scheme.
WRONG = [None, f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Basic {TOKEN}", TOKEN]


@pytest.mark.parametrize(("method", "path"), BEARER_ROUTES, ids=[f"{m} {p}" for m, p in BEARER_ROUTES])
def test_without_the_token_every_route_is_401(api: ApiServer, method: str, path: str) -> None:
    body = SHIPMENT if path.endswith("shipments") else None
    with api.client(token=None) as http:
        for authorization in WRONG:
            headers = {"Authorization": authorization} if authorization is not None else {}
            response = http.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, authorization
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["code"] == "unauthorized"
            assert TOKEN not in response.text
    assert stored(api.store)["parcel"] == 0


def test_with_the_token_the_route_answers(api: ApiServer) -> None:
    with api.client() as http:
        assert http.post("/api/v1/shipments", json=SHIPMENT).status_code == 201
    with api.client(token=None) as http:
        lower = http.get("/api/v1/parcels", headers={"Authorization": f"bearer {TOKEN}"})
    assert lower.status_code == 200  # the scheme is case-insensitive, the token is not


def test_refunds_and_pushes_need_no_bearer(api: ApiServer) -> None:
    body = json.dumps({"refund_id": "R1", "order_id": "O1", "type": "refund_only"}).encode()
    assert api.signed_refund(body).status_code == 200
    with api.client(token=None) as http:
        push = http.post("/api/v1/carriers/kuaidi100/push", content=b"param=x&sign=y")
    assert push.status_code == 401  # refused by the carrier's signature, not for want of a bearer
    assert push.json()["result"] is False


def test_probes_and_docs_need_no_token(api: ApiServer) -> None:
    with api.client(token=None) as http:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
            assert http.get(path).status_code == 200, path


@pytest.fixture
def unconfigured(store: Store) -> Iterator[ApiServer]:
    settings = ApiSettings(token=None, refund_secret=None, refund_secret_env="ERP_REFUND_SECRET")
    with running_api(store, settings) as server:
        yield server


def test_without_a_configured_token_or_secret_the_routes_say_what_to_set(unconfigured: ApiServer) -> None:
    with unconfigured.client(token="anything") as http:
        parcels = http.get("/api/v1/parcels")
    body = json.dumps({"refund_id": "R1", "order_id": "O1", "type": "refund_only"}).encode()
    refund = unconfigured.signed_refund(body, secret="anything")
    assert parcels.status_code == refund.status_code == 503
    assert parcels.json()["error"]["code"] == refund.json()["error"]["code"] == "not_configured"
    assert "PARCEL_MONITOR_API_TOKEN" in parcels.json()["error"]["message"]
    assert "ERP_REFUND_SECRET" in refund.json()["error"]["message"]
    assert stored(unconfigured.store)["refund"] == 0
