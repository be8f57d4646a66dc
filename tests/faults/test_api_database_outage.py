"""A database that is down, locked or slow answers 503 database_unavailable, and /healthz answers at once.

Issue 10 item 7 (the API half): handlers run their database work on the store's threads, so a
locked table stalls only the requests that need it; the error is the API's one shape, not
500 internal_error.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from carriers.testing.server import closed_port
from monitor.store.db import make_engine
from monitor.store.store import Store
from tests.api.server import ApiServer, running_api

SHIPMENT = {
    "order_id": "O1",
    "carrier": "sandbox",
    "tracking_no": "SB1",
    "shipped_at": "2026-11-11T09:00:00+08:00",
}
#: How long the app's engine waits for a lock before giving up (seconds).
LOCK_WAIT = 4.0


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"].isdigit()


def healthz_while(api: ApiServer, request: Any) -> tuple[httpx.Response, float, httpx.Response]:
    """Start ``request(http)`` (which waits on the database), then time /healthz while it waits."""
    with ThreadPoolExecutor(1) as pool, api.client() as http, api.client(token=None) as probe:
        pending = pool.submit(request, http)
        time.sleep(0.3)  # the request is now waiting on the lock
        started = time.perf_counter()
        health = probe.get("/healthz")
        took = time.perf_counter() - started
        assert not pending.done(), "the request did not wait on the lock: the test proves nothing"
        return health, took, pending.result(timeout=30)


def test_a_database_that_does_not_answer_is_503_and_healthz_is_200() -> None:
    engine = create_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none", connect_args={"connect_timeout": 2}
    )
    with running_api(Store(engine, threads=2)) as api, api.client() as http:
        answers = [
            http.get("/api/v1/parcels"),
            http.get("/api/v1/anomalies/1"),
            http.get("/api/v1/reports"),
            http.post("/api/v1/shipments", json=SHIPMENT),
            http.post("/api/v1/anomalies/1/acknowledge"),
        ]
        health = http.get("/healthz")
    for answer in answers:
        assert_unavailable(answer)
        assert "nobody" not in answer.text and "127.0.0.1" not in answer.text
    assert (health.status_code, health.json()) == (200, {"status": "ok", "reason": None})


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_locked_table_on_postgresql_is_503_and_healthz_does_not_wait(database_url: str, engine: Any) -> None:
    app_engine = make_engine(database_url, lock_timeout=LOCK_WAIT, statement_timeout=LOCK_WAIT * 2)
    locker = engine.connect()
    try:
        with running_api(Store(app_engine, threads=2)) as api:
            with api.client() as http:
                assert http.post("/api/v1/shipments", json=SHIPMENT).status_code == 201
            tx = locker.begin()
            locker.execute(
                text("ALTER TABLE parcel ADD COLUMN held_by_test integer")
            )  # ACCESS EXCLUSIVE until rollback
            health, took, listed = healthz_while(api, lambda http: http.get("/api/v1/parcels"))
            tx.rollback()
            with api.client() as http:
                after = http.get("/api/v1/parcels")
    finally:
        locker.close()
        app_engine.dispose()
    assert health.status_code == 200 and took < 1.5, took
    assert_unavailable(listed)
    assert after.status_code == 200 and len(after.json()["items"]) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_write_lock_on_the_sqlite_file_is_503_and_healthz_does_not_wait(database_url: str, engine: Any) -> None:
    app_engine = make_engine(database_url, busy_timeout=LOCK_WAIT)
    locker = engine.raw_connection()
    try:
        with running_api(Store(app_engine, threads=2)) as api:
            locker.execute("BEGIN EXCLUSIVE")
            health, took, posted = healthz_while(api, lambda http: http.post("/api/v1/shipments", json=SHIPMENT))
            locker.rollback()
            with api.client() as http:
                after = http.post("/api/v1/shipments", json=SHIPMENT)
    finally:
        locker.close()
        app_engine.dispose()
    assert health.status_code == 200 and took < 1.5, took
    assert_unavailable(posted)
    assert after.status_code == 201
