"""The console's actions over real HTTP (no browser): the queue's order, bulk all-or-nothing, the parcel's actions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.store.store import ACT, Store
from tests.api.server import ApiServer, running_api
from tests.console.test_sessions import PASSWORD, _hidden, log_in

#: pickup_overdue charges 5% of the order (5–30 yuan): SB2 30.00, SB1 15.00, SB3 5.00.
PARCELS = [("SB1", "300.00"), ("SB2", "1000.00"), ("SB3", "50.00")]


@pytest.fixture
def desk(store: Store) -> Iterator[ApiServer]:
    with running_api(store) as api:
        batch = [{"order_id": f"O{n}", "carrier": "sandbox", "tracking_no": n, "shop": "旗舰店", "amount": amount,
                  "shipped_at": "2026-11-11T09:00:00+08:00"} for n, amount in PARCELS]  # fmt: skip
        with api.client() as http:
            assert http.post("/api/v1/shipments", json={"shipments": batch}).status_code == 201
        api.clock.advance(timedelta(hours=25))
        assert api.tick() == 3
        People(store, api.clock).add("li.lei", PASSWORD, by=CLI, role="operator")
        yield api


@contextmanager
def operator(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        assert log_in(http, "li.lei").status_code == 303
        yield http


def ticket_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-id="(\d+)"', html)]


def api_ticket(api: ApiServer, number: str) -> dict:
    with api.client() as http:
        return http.get(f"/api/v1/parcels/sandbox/{number}").json()["tickets"][0]


def test_the_queue_is_the_api_queue_most_money_first_with_counts_and_sla(desk: ApiServer) -> None:
    with operator(desk) as http, desk.client() as api:
        page = http.get("/queue?view=unassigned")
        expected = [t["id"] for t in api.get("/api/v1/tickets?assignee=none&state=active").json()["items"]]
        assert ticket_ids(page.text) == expected and len(expected) == 3
        assert re.search(r'data-rule="pickup_overdue"[^>]*>[^<]*<b>3</b>', page.text)
        assert "剩 " in page.text or "超时 " in page.text
        assert ticket_ids(http.get("/queue?view=unassigned&shop=二店").text) == []
        assert ticket_ids(http.get("/queue?view=mine").text) == []


def test_bulk_assign_then_close_and_all_or_nothing(desk: ApiServer) -> None:
    with operator(desk) as http:
        page = http.get("/queue?view=unassigned")
        ids, csrf = ticket_ids(page.text), _hidden(page.text, "csrf")
        form = {"csrf": csrf, "action": "assign", "assignee": "li.lei", "ids": [str(i) for i in ids[:2]],
                "back": "/queue?view=unassigned"}  # fmt: skip
        answer = http.post("/queue/bulk", data=form)
        assert answer.status_code == 303 and "message=" in answer.headers["location"]
        assert ticket_ids(http.get("/queue?view=mine").text) == ids[:2]
        refused = http.post("/queue/bulk", data={"csrf": csrf, "action": "close", "outcome": "chased",
                                                 "ids": [str(ids[0]), "999999"]})  # fmt: skip
        assert "999999" in http.get(refused.headers["location"]).text  # refused, naming the unknown ticket
        assert ticket_ids(http.get("/queue?view=mine").text) == ids[:2]  # all or nothing: nothing closed
        http.post("/queue/bulk", data={"csrf": csrf, "action": "close", "outcome": "chased", "ids": [str(ids[0])]})
        assert ticket_ids(http.get("/queue?view=mine").text) == ids[1:2]
    with desk.client() as api:
        closed = api.get(f"/api/v1/tickets/{ids[0]}").json()
    assert (closed["state"], closed["outcome"]) == ("done", "chased")
    assert {e["actor"] for e in closed["events"] if e["kind"] != "opened"} == {"li.lei"}


def test_the_poll_brings_tickets_newer_than_the_page(desk: ApiServer) -> None:
    with operator(desk) as http:
        ids = sorted(ticket_ids(http.get("/queue?view=all").text))
        fresh = http.get(f"/queue/poll.json?view=all&after={ids[0]}").json()
        assert sorted(t["id"] for t in fresh["new"]) == ids[1:]
        assert fresh["counts"] == {"pickup_overdue": 3}


def test_the_parcel_page_and_its_actions_name_who_did_them(desk: ApiServer, store: Store) -> None:
    with operator(desk) as http:
        assert http.get("/parcel?q=OSB1").headers["location"] == "/parcel/sandbox/SB1"  # by order id
        page = http.get("/parcel/sandbox/SB1")
        assert page.status_code == 200 and 'id="timeline"' in page.text and "24小时未揽收" in page.text
        csrf = _hidden(page.text, "csrf")
        anomaly = int(re.search(r'id="anomalies".*?<tr data-id="(\d+)"', page.text, re.S).group(1))  # type: ignore[union-attr]
        keys = {"csrf": csrf, "carrier": "sandbox", "tracking_no": "SB1"}
        assert http.post(f"/anomaly/{anomaly}/acknowledge", data=keys).status_code == 303
        ticket = api_ticket(desk, "SB1")["id"]
        missing = http.post(f"/ticket/{ticket}/close", data=keys | {"outcome": "reshipped", "new_carrier": "sandbox"})
        assert "message=" in missing.headers["location"] and api_ticket(desk, "SB1")["state"] == "open"
        reshipped = {"outcome": "reshipped", "new_carrier": "sandbox", "new_tracking_no": "SBR1"}
        done = http.post(f"/ticket/{ticket}/close", data=keys | reshipped)
        assert done.status_code == 303
        assert (api_ticket(desk, "SB1")["state"], api_ticket(desk, "SB1")["outcome"]) == ("done", "reshipped")
        replacement = http.get("/parcel/sandbox/SBR1")
        assert replacement.status_code == 200 and "/parcel/sandbox/SB1" in replacement.text
        assert http.post(f"/anomaly/{anomaly}/resolve", data=keys).status_code == 303
    with desk.client() as api:
        state = api.get(f"/api/v1/anomalies/{anomaly}").json()["state"]
    assert state == "resolved"
    with store.begin() as uow:
        rows = list(uow.conn.execute(select(ACT.c.event, ACT.c.data).where(ACT.c.event == "anomaly_acknowledged")))
    assert [json.loads(r.data)["actor"]["login"] for r in rows] == ["li.lei"]
