"""/api/v1/tickets over a real server: the queue's filters, order and paging, PATCH, bulk, comments, CSV, roles."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.people.passwords import Passwords
from monitor.store.store import Store
from monitor.tickets.assignment import Assigner
from monitor.tickets.settings import TicketSettings
from monitor.tickets.store import TicketRows
from tests.api.server import ApiServer, running_api, stored
from tests.tickets.conftest import CHEAP

#: (tracking_no, shop, order amount in yuan): pickup_overdue charges 5% (5–30 yuan), so the stakes are
#: SB1 15.00, SB2 30.00 (capped), SB3 5.00 (floor), SB4 none (no amount known), SB5 30.00 (capped).
PARCELS = [("SB1", "旗舰店", "300.00"), ("SB2", "旗舰店", "1000.00"), ("SB3", "二店", "50.00"), ("SB4", "二店", None),
           ("SB5", "旗舰店", "600.00")]  # fmt: skip
QUEUE = ["SB2", "SB5", "SB1", "SB3", "SB4"]


@dataclass
class Desk:
    """The API with five open tickets, an operator (li.lei), another (han) and a viewer (vic)."""

    api: ApiServer
    ids: dict[str, int]
    tokens: dict[str, str]

    def as_(self, login: str) -> httpx.Client:
        return self.api.client(self.tokens[login])


@pytest.fixture
def desk(store: Store) -> Iterator[Desk]:
    with running_api(store) as api:
        settings = TicketSettings.model_validate({"teams": [{"name": "ops", "members": ["li.lei", "han"]}]})
        api.ctx.monitor.tickets.settings = settings  # the [tickets] section the daemon would pass in
        api.ctx.monitor.tickets.assigner = Assigner(settings)
        batch = [
            {"order_id": f"O{n}", "carrier": "sandbox", "tracking_no": n, "shipped_at": "2026-11-11T09:00:00+08:00",
             "shop": shop} | ({"amount": amount} if amount else {})
            for n, shop, amount in PARCELS
        ]  # fmt: skip
        with api.client() as http:
            assert http.post("/api/v1/shipments", json={"shipments": batch}).status_code == 201
        api.clock.advance(timedelta(hours=25))
        assert api.tick() == 5
        people = People(store, api.clock, Passwords(CHEAP))
        tokens = {}
        for login, role in (("li.lei", "operator"), ("han", "operator"), ("vic", "viewer")):
            people.add(login, "secret-password", by=CLI, role=role)
            tokens[login] = people.issue_token(login, by=CLI).token
        with api.client() as http:
            items = http.get("/api/v1/tickets").json()["items"]
        yield Desk(api, {t["parcel"]["tracking_no"]: t["id"] for t in items}, tokens)


def numbers(page: dict) -> list[str]:
    return [t["parcel"]["tracking_no"] for t in page["items"]]


def test_the_queue_is_sorted_by_money_at_stake_and_pages_with_a_keyset(desk: Desk) -> None:
    with desk.api.client() as http:
        seen, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = http.get("/api/v1/tickets", params=params).json()
            seen += numbers(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == QUEUE  # stake desc, ties oldest first, no stake last; no row twice or skipped
        first = http.get("/api/v1/tickets", params={"limit": 1}).json()["items"][0]
        assert (first["stake"], first["state"], first["assignee"], first["rule"]) == (
            30.0,
            "open",
            None,
            "pickup_overdue",
        )
        assert numbers(http.get("/api/v1/tickets", params={"shop": "二店"}).json()) == ["SB3", "SB4"]
        assert numbers(http.get("/api/v1/tickets", params={"rule": "stalled"}).json()) == []
        assert len(http.get("/api/v1/tickets", params={"carrier": "sandbox", "state": "open"}).json()["items"]) == 5
        for cursor in ("abc", "4748504257.1", "1.2147483648", "12"):  # stake and id are 32-bit columns
            bad = http.get("/api/v1/tickets", params={"cursor": cursor})
            assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor", cursor
        bad = http.get("/api/v1/tickets", params={"state": "closed"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"


def test_filters_on_assignee_team_state_and_overdue(desk: Desk) -> None:
    with desk.as_("li.lei") as http:
        assert http.patch(f"/api/v1/tickets/{desk.ids['SB1']}", json={"assignee": "li.lei"}).status_code == 200
        assert http.patch(f"/api/v1/tickets/{desk.ids['SB3']}", json={"team": "ops", "state": "processing"}).is_success
        assert numbers(http.get("/api/v1/tickets", params={"assignee": "me"}).json()) == ["SB1"]
        assert numbers(http.get("/api/v1/tickets", params={"assignee": "li.lei"}).json()) == ["SB1"]
        assert numbers(http.get("/api/v1/tickets", params={"assignee": "none"}).json()) == ["SB2", "SB5", "SB3", "SB4"]
        assert numbers(http.get("/api/v1/tickets", params={"team": "ops"}).json()) == ["SB3"]
        assert numbers(http.get("/api/v1/tickets", params={"state": "processing"}).json()) == ["SB3"]
        assert numbers(http.get("/api/v1/tickets", params={"overdue": "true"}).json()) == []
        with desk.api.store.begin() as uow:  # the SLA code sets due_at; here one deadline has passed, one not
            TicketRows(uow).update(desk.ids["SB5"], due_at=desk.api.clock.now() - timedelta(minutes=1))
            TicketRows(uow).update(desk.ids["SB2"], due_at=desk.api.clock.now() + timedelta(minutes=1))
        assert numbers(http.get("/api/v1/tickets", params={"overdue": "true"}).json()) == ["SB5"]


def test_filters_on_the_severity_of_the_anomaly_behind_the_ticket(desk: Desk) -> None:
    from sqlalchemy import update

    from monitor.store.models import Anomaly, Ticket

    with desk.api.store.begin() as uow:  # SB3's anomaly configured as a warning (all five are critical by default)
        anomaly = uow.conn.execute(Ticket.__table__.select().where(Ticket.__table__.c.id == desk.ids["SB3"])).one()
        uow.conn.execute(update(Anomaly.__table__).where(Anomaly.__table__.c.id == anomaly.anomaly_id)
                         .values(severity="warning"))  # fmt: skip
    with desk.as_("li.lei") as http:
        assert numbers(http.get("/api/v1/tickets", params={"severity": "critical"}).json()) == ["SB2", "SB5", "SB1",
                                                                                                 "SB4"]  # fmt: skip
        assert numbers(http.get("/api/v1/tickets", params={"severity": "warning"}).json()) == ["SB3"]
        assert numbers(http.get("/api/v1/tickets", params={"severity": "info"}).json()) == []
        exported = http.get("/api/v1/tickets.csv", params={"severity": "warning"})
        assert (
            exported.status_code == 200 and len(list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))) == 1
        )
        refused = http.get("/api/v1/tickets", params={"severity": "urgent"})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "severity", refused.text


def test_patch_closes_with_an_outcome_and_refuses_what_the_lifecycle_does_not_allow(desk: Desk) -> None:
    ticket = desk.ids["SB2"]
    with desk.as_("li.lei") as http:
        missing = http.patch(f"/api/v1/tickets/{ticket}", json={"state": "done"})
        assert missing.status_code == 422 and missing.json()["error"]["field"] == "outcome"
        done = http.patch(f"/api/v1/tickets/{ticket}", json={"state": "done", "outcome": "claim_filed", "note": "理赔"})
        assert done.status_code == 200
        body = done.json()
        assert (body["state"], body["outcome"], body["outcome_label"], body["note"]) == (
            "done",
            "claim_filed",
            "已理赔",
            "理赔",
        )
        assert [(e["actor"], e["kind"], e["to_value"]) for e in body["events"]][-2:] == [
            ("li.lei", "state", "done"),
            ("li.lei", "outcome", "claim_filed"),
        ]
        illegal = http.patch(f"/api/v1/tickets/{ticket}", json={"state": "processing"})
        assert illegal.status_code == 409
        error = illegal.json()["error"]
        assert error["code"] == "illegal_transition" and error["field"] == "state" and error["allowed"] == ["reopened"]
        assert "from done to processing" in error["message"]
        for body, field in (
            ({"assignee": "ghost"}, "assignee"),
            ({"assignee": "vic"}, "assignee"),  # a viewer works no tickets
            ({"team": "nope"}, "team"),
            ({"outcome": "lost"}, "outcome"),
            ({"stat": "done"}, "stat"),
            ({"note": "x" * 1001}, "note"),
        ):
            answer = http.patch(f"/api/v1/tickets/{desk.ids['SB1']}", json=body)
            assert answer.status_code == 422 and answer.json()["error"]["field"] == field, (body, answer.text)
        assert http.patch("/api/v1/tickets/999", json={"state": "processing"}).status_code == 404


def test_bulk_is_all_or_nothing_naming_the_bad_index(desk: Desk) -> None:
    ids = [desk.ids[n] for n in QUEUE]
    with desk.as_("li.lei") as http:
        assert http.patch(f"/api/v1/tickets/{ids[1]}", json={"state": "cancelled"}).is_success
        before = stored(desk.api.store)
        states = [t["state"] for t in http.get("/api/v1/tickets").json()["items"]]
        unknown = http.post("/api/v1/tickets/bulk", json={"ids": [ids[0], ids[2], 99999], "assignee": "han"})
        assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "ids[2]"
        illegal = http.post("/api/v1/tickets/bulk", json={"ids": [ids[0], ids[1]], "state": "processing"})
        assert illegal.status_code == 409 and illegal.json()["error"]["field"] == "ids[1].state"
        twice = http.post("/api/v1/tickets/bulk", json={"ids": [ids[0], ids[0]], "state": "processing"})
        assert twice.status_code == 422 and twice.json()["error"]["field"] == "ids[1]"
        many = http.post("/api/v1/tickets/bulk", json={"ids": list(range(1, 502)), "state": "processing"})
        assert many.status_code == 422 and many.json()["error"]["field"] == "ids"
        assert stored(desk.api.store) == before  # nothing changed, not even history
        assert [t["state"] for t in http.get("/api/v1/tickets").json()["items"]] == states
        ok = http.post("/api/v1/tickets/bulk", json={"ids": [ids[0], ids[2], ids[3]], "outcome": "nothing_needed"})
        assert ok.status_code == 200 and ok.json()["changed"] == 3
        assert {t["state"] for t in ok.json()["tickets"]} == {"done"}


def test_a_viewer_changes_nothing_on_every_write_route(desk: Desk) -> None:
    ticket = desk.ids["SB1"]
    writes = [
        ("PATCH", f"/api/v1/tickets/{ticket}", {"state": "processing"}),
        ("POST", f"/api/v1/tickets/{ticket}/comments", {"body": "看一下"}),
        ("POST", "/api/v1/tickets/bulk", {"ids": [ticket], "state": "cancelled"}),
    ]
    spec = desk.api.client().get("/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/api/v1/tickets")}
    assert {(m, p) for m, p in routes if m != "GET"} == {
        ("PATCH", "/api/v1/tickets/{ticket_id}"),
        ("POST", "/api/v1/tickets/{ticket_id}/comments"),
        ("POST", "/api/v1/tickets/bulk"),
    }  # every write route is in the list above
    before = stored(desk.api.store)
    with desk.as_("vic") as http:
        for method, path, body in writes:
            answer = http.request(method, path, json=body)
            assert answer.status_code == 403 and answer.json()["error"]["field"] == "role", path
        assert http.get(f"/api/v1/tickets/{ticket}").status_code == 200  # reading is fine
    assert stored(desk.api.store) == before


def test_comments_and_history_show_in_the_parcel_timeline(desk: Desk) -> None:
    ticket = desk.ids["SB1"]
    with desk.as_("han") as http:
        answer = http.post(f"/api/v1/tickets/{ticket}/comments", json={"body": "已联系快递员, 等回复"})
        assert answer.status_code == 201
        assert (answer.json()["actor"], answer.json()["kind"]) == ("han", "comment")
        assert http.post(f"/api/v1/tickets/{ticket}/comments", json={"body": " "}).json()["error"]["field"] == "body"
        assert http.post("/api/v1/tickets/999/comments", json={"body": "x"}).status_code == 404
        assert http.patch(f"/api/v1/tickets/{ticket}", json={"assignee": "han", "state": "processing"}).is_success
        parcel = http.get("/api/v1/parcels/sandbox/SB1").json()
    timeline = [(e["actor"], e["kind"], e["to_value"], e["body"]) for e in parcel["ticket_events"]]
    assert timeline[0][:3] == ("rules", "opened", "open")
    assert timeline[1:] == [
        ("han", "comment", None, "已联系快递员, 等回复"),
        ("han", "assigned", "han", ""),
        ("han", "state", "processing", ""),
    ]
    assert parcel["tickets"][0]["assignee"] == "han"


def test_the_csv_has_a_bom_the_queue_order_and_no_formulas(desk: Desk) -> None:
    with desk.as_("li.lei") as http:
        http.patch(f"/api/v1/tickets/{desk.ids['SB1']}", json={"note": '=HYPERLINK("http://x")'})
        answer = http.get("/api/v1/tickets.csv")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert answer.content.startswith("\ufeff".encode())
        rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert [r["tracking_no"] for r in rows] == QUEUE
        sb1 = next(r for r in rows if r["tracking_no"] == "SB1")
        assert (sb1["shop"], sb1["stake_yuan"], sb1["note"]) == ("旗舰店", "15.00", '\'=HYPERLINK("http://x")')
        assert sb1["created_at"].endswith("+08:00")
        shop = list(csv.DictReader(io.StringIO(http.get("/api/v1/tickets.csv", params={"shop": "二店"}).text)))
        assert [r["tracking_no"] for r in shop] == ["SB3", "SB4"]


def test_marking_a_ticket_reshipped_watches_the_replacement_linked_both_ways(desk: Desk) -> None:
    ticket = desk.ids["SB1"]
    with desk.as_("li.lei") as http:
        missing = http.patch(f"/api/v1/tickets/{ticket}", json={"outcome": "reshipped", "new_carrier": "sandbox"})
        assert missing.status_code == 422 and missing.json()["error"]["field"] == "new_tracking_no"
        stray = http.patch(f"/api/v1/tickets/{ticket}", json={"outcome": "chased", "new_tracking_no": "SBR1"})
        assert stray.status_code == 422 and stray.json()["error"]["field"] == "outcome"
        unknown = http.patch(f"/api/v1/tickets/{ticket}",
                             json={"outcome": "reshipped", "new_carrier": "yto", "new_tracking_no": "YT1"})  # fmt: skip
        assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "new_carrier"
        assert http.get(f"/api/v1/tickets/{ticket}").json()["state"] == "open"  # a refused change changed nothing
        bulk = http.post("/api/v1/tickets/bulk", json={"ids": [ticket], "outcome": "reshipped"})
        assert bulk.status_code == 422
        reshipped = {"outcome": "reshipped", "new_carrier": "sandbox", "new_tracking_no": "SBR1"}
        done = http.patch(f"/api/v1/tickets/{ticket}", json=reshipped)
        assert done.status_code == 200, done.text
        assert (done.json()["state"], done.json()["outcome"]) == ("done", "reshipped")
        assert "reshipped" in [e["kind"] for e in done.json()["events"]]
        new = http.get("/api/v1/parcels/sandbox/SBR1").json()
        old = http.get("/api/v1/parcels/sandbox/SB1").json()
    assert new["parcel"]["order_id"] == old["parcel"]["order_id"] == "OSB1" and new["parcel"]["status"] == "pending"
    assert new["replaces"]["tracking_no"] == "SB1"
    assert [p["tracking_no"] for p in old["replaced_by"]] == ["SBR1"]
    with desk.api.store.begin() as uow:  # watched like any shipment: due for its first poll
        (row,) = [p for p in uow.parcels_of_order("OSB1") if p.tracking_no == "SBR1"]
    assert row.next_poll_at is not None and row.pickup_due is not None
