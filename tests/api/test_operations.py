"""Probes, metrics, the OpenAPI document, the one error shape and the access log."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from carriers.model import Status
from carriers.testing.server import closed_port
from monitor.metrics import Metrics
from monitor.store.db import make_engine
from monitor.store.store import Store
from tests.api.server import DOCS, SECRET, START, TOKEN, ApiServer, running_api
from tests.carriers.payloads import kuaidi100_recorded as fixture

FAMILIES = {
    "parcel_monitor_polls",
    "parcel_monitor_carrier_requests",
    "parcel_monitor_events_ingested",
    "parcel_monitor_refunds",
    "parcel_monitor_intercept_latency_seconds",
    "parcel_monitor_http_requests",
    "parcel_monitor_http_request_duration_seconds",
    "parcel_monitor_parcels",
    "parcel_monitor_anomalies_active",
    "parcel_monitor_actions_pending",
    "parcel_monitor_notifications_pending",
    "parcel_monitor_store_up",
}
ROUTES = {
    ("post", "/api/v1/shipments"),
    ("post", "/api/v1/refunds"),
    ("post", "/api/v1/carriers/{carrier}/push"),
    ("get", "/api/v1/parcels"),
    ("get", "/api/v1/parcels/{carrier}/{tracking_no}"),
    ("get", "/api/v1/anomalies"),
    ("get", "/api/v1/anomalies/{anomaly_id}"),
    ("post", "/api/v1/anomalies/{anomaly_id}/acknowledge"),
    ("post", "/api/v1/anomalies/{anomaly_id}/resolve"),
    ("get", "/api/v1/tickets"),
    ("get", "/api/v1/tickets.csv"),
    ("get", "/api/v1/tickets/{ticket_id}"),
    ("patch", "/api/v1/tickets/{ticket_id}"),
    ("post", "/api/v1/tickets/{ticket_id}/comments"),
    ("post", "/api/v1/tickets/bulk"),
    ("get", "/api/v1/intercepts"),
    ("get", "/api/v1/carriers"),
    ("get", "/api/v1/routes"),
    ("get", "/api/v1/reports"),
    ("get", "/api/v1/reports/pickup-forecast"),
    ("get", "/api/v1/reports/{name}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}
SIGNED = {"/api/v1/refunds", "/api/v1/carriers/{carrier}/push"}
OPEN = {"/healthz", "/readyz", "/metrics"}


def scrape(api: ApiServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of /metrics by (name, labels)."""
    with api.client(token=None) as http:
        response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_healthz_is_always_200(api: ApiServer) -> None:
    api.ready[0] = False
    with api.client(token=None) as http:
        response = http.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (200, "ok")


def test_readyz_follows_the_daemon_and_the_database(api: ApiServer) -> None:
    with api.client(token=None) as http:
        ready = http.get("/readyz")
        api.ready[0] = False
        starting = http.get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ok")
    assert starting.status_code == 503
    assert starting.json() == {"status": "unavailable", "reason": "the daemon is starting or stopping"}


def test_readyz_is_503_when_the_database_does_not_answer() -> None:
    engine = make_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none", connect_args={"connect_timeout": 2}
    )
    with running_api(Store(engine)) as api, api.client(token=None) as http:
        response = http.get("/readyz")
        metrics = http.get("/metrics")
    assert response.status_code == 503
    assert "database" in response.json()["reason"] and "nobody" not in response.text
    assert "parcel_monitor_store_up 0.0" in metrics.text


def test_metrics_has_every_family_and_moves_with_activity(api: ApiServer) -> None:
    before = scrape(api)
    assert {name for name, _ in before} >= {"parcel_monitor_store_up"}
    with api.client(token=None) as http:
        text = http.get("/metrics").text
    for family in FAMILIES:
        assert f"# TYPE {family}" in text, family

    shipment = {"order_id": "O1", "carrier": "sandbox", "tracking_no": "SB1", "shipped_at": "2026-11-11T09:00:00+08:00"}
    with api.client() as http:
        http.post("/api/v1/shipments", json=shipment)
        http.post("/api/v1/shipments", json=shipment | {"tracking_no": "SB2", "order_id": "O2"})
    api.scan("SB1", Status.PICKED_UP, START + timedelta(minutes=30))
    body = json.dumps({"refund_id": "R1", "order_id": "O1", "type": "refund_only"}).encode()
    api.signed_refund(body, SECRET)
    api.clock.advance(timedelta(hours=25))
    api.tick()
    api.ctx.metrics.polls.labels("sandbox", "ok").inc(3)  # as the poller will
    after = scrape(api)

    def value(name: str, **labels: str) -> float:
        return after.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("parcel_monitor_parcels", status="pending") == 1
    assert value("parcel_monitor_parcels", status="picked_up") == 1
    assert value("parcel_monitor_refunds_total", decision="accepted") == 1
    assert value("parcel_monitor_intercept_latency_seconds_count") == 1
    assert value("parcel_monitor_polls_total", carrier="sandbox", outcome="ok") == 3
    assert value("parcel_monitor_anomalies_active", rule="pickup_overdue", state="open") == 1
    assert value("parcel_monitor_http_requests_total", method="POST", route="/api/v1/shipments", status="201") == 2
    assert value("parcel_monitor_http_request_duration_seconds_count", method="POST", route="/api/v1/shipments") == 2
    assert value("parcel_monitor_store_up") == 1
    pending = sum(v for (name, _), v in after.items() if name == "parcel_monitor_notifications_pending")
    assert pending >= 0


def test_a_push_counts_its_events(api: ApiServer) -> None:
    push = fixture("push_callback")
    with api.client(token=None) as http:
        http.post(
            "/api/v1/carriers/kuaidi100/push",
            data={"param": push["param"], "sign": push["sign"]},
        )
    events = len(json.loads(push["param"])["lastResult"]["data"])
    assert scrape(api)[("parcel_monitor_events_ingested_total", (("carrier", "kuaidi100"),))] == events


def test_routes_are_counted_by_template_not_path(api: ApiServer) -> None:
    with api.client() as http:
        http.get("/api/v1/anomalies/41")
        http.get("/api/v1/anomalies/42")
        http.get("/no/such/path/123")
    samples = scrape(api)
    labels = {dict(k).get("route") for name, k in samples if name == "parcel_monitor_http_requests_total"}
    assert "/api/v1/anomalies/{anomaly_id}" in labels and "<unmatched>" in labels
    assert not any(label and ("41" in label or "123" in label) for label in labels)


def test_metrics_registries_are_independent() -> None:
    first, second = Metrics(), Metrics()
    first.refunds.labels("held").inc()
    assert b'parcel_monitor_refunds_total{decision="held"} 1.0' in first.render()[0]
    assert b"decision=" not in second.render()[0]


def test_openapi_lists_every_route_and_the_bearer_scheme(api: ApiServer) -> None:
    with api.client(token=None) as http:
        doc = http.get("/openapi.json").json()
        assert "swagger-ui" in http.get("/docs").text
    assert doc["info"]["title"] and doc["info"]["version"] and "Authentication" in doc["info"]["description"]
    operations = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert operations == ROUTES
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    for method, path in ROUTES:
        operation = doc["paths"][path][method]
        assert operation.get("tags") and operation.get("summary"), path
        needs_bearer = path not in SIGNED | OPEN
        assert (operation.get("security") == [{"bearer": []}]) is needs_bearer, path
    assert {t["name"] for t in doc["tags"]} >= {"shipments", "refunds", "anomalies", "operations"}


def test_openapi_references_resolve_and_bodies_have_examples(api: ApiServer) -> None:
    with api.client(token=None) as http:
        doc = http.get("/openapi.json").json()

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
            return found | {r for v in node.values() for r in refs(v)}
        if isinstance(node, list):
            return {r for v in node for r in refs(v)}
        return set()

    schemas = doc["components"]["schemas"]
    assert {r.rsplit("/", 1)[1] for r in refs(doc)} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    shipments = doc["paths"]["/api/v1/shipments"]["post"]["requestBody"]["content"]["application/json"]
    assert set(shipments["examples"]) == {"one", "batch"}
    refund = doc["paths"]["/api/v1/refunds"]["post"]
    assert {p["name"] for p in refund["parameters"]} == {"X-Parcel-Monitor-Timestamp", "X-Parcel-Monitor-Signature"}
    assert schemas["ShipmentIn"]["properties"]["shipped_at"]["format"] == "date-time"
    assert "422" in doc["paths"]["/api/v1/parcels"]["get"]["responses"]


def test_framework_errors_use_the_one_shape(api: ApiServer) -> None:
    with api.client() as http:
        missing = http.get("/api/v1/nothing")
        wrong_method = http.get("/api/v1/refunds")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")


def _wait_for(logs: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Return the access-log events once ``count`` are in: each is written just after its answer is sent."""
    deadline = time.monotonic() + 5
    while True:
        events = [e for e in logs if e["event"] == "http.request"]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.01)


def test_one_log_event_per_request_and_no_secret_in_any(api: ApiServer) -> None:
    body = json.dumps({"refund_id": "R1", "order_id": "O-secret-order", "type": "refund_only"}).encode()
    with capture_logs() as logs:
        with api.client() as http:
            http.post(
                "/api/v1/shipments",
                json={
                    "order_id": "O9",
                    "carrier": "sandbox",
                    "tracking_no": "SB9",
                    "shipped_at": "2026-11-11T09:00:00+08:00",
                    "shop": "body-only",
                },
            )
            http.get("/api/v1/anomalies/7", params={"q": "query-only"})
        response = api.signed_refund(body, SECRET)
        with api.client(token="wrong-token-value") as http:
            http.get("/api/v1/parcels")
        events = _wait_for(logs, 4)
    assert [(e["method"], e["route"], e["status"]) for e in events] == [
        ("POST", "/api/v1/shipments", 201),
        ("GET", "/api/v1/anomalies/{anomaly_id}", 404),
        ("POST", "/api/v1/refunds", 200),
        ("GET", "/api/v1/parcels", 401),
    ]
    assert all(isinstance(e["duration_ms"], float) for e in events)
    text = repr(logs)
    signature = response.request.headers["X-Parcel-Monitor-Signature"]
    for secret in (TOKEN, "wrong-token-value", SECRET, signature, "body-only", "query-only"):
        assert secret not in text, secret


def test_every_answer_says_its_server_time(api: ApiServer) -> None:
    """``Server-Timing: app;dur=<ms>`` on answers, errors and console pages alike: what B10 reads."""
    with api.client() as http, api.client(token=None) as anonymous:
        answers = [http.get("/api/v1/parcels"), http.get("/api/v1/anomalies/7"), anonymous.get("/api/v1/parcels"),
                   anonymous.get("/login"), anonymous.get("/healthz")]  # fmt: skip
    assert [r.status_code for r in answers] == [200, 404, 401, 200, 200]
    for answer in answers:
        name, _, value = answer.headers["server-timing"].partition(";dur=")
        assert name == "app" and float(value) >= 0, answer.headers["server-timing"]


@pytest.mark.parametrize("path", sorted(p for _, p in ROUTES))
def test_the_docs_cover_every_route(path: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    written = path.replace("{anomaly_id}", "{id}").replace("{ticket_id}", "{id}")
    assert written in text, path
