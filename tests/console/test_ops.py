"""The console's 拦截 and 快递公司 pages and GET /api/v1/carriers over real HTTP, on SQLite and PostgreSQL.

Intercepts come from signed refund webhooks and the sandbox carrier's real answers; carrier
health from the HealthBook the poller and the intercept calls use; unknown codes from ingest.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from carriers.model import Status, TrackingEvent
from monitor.config import CarrierQuota, load
from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.polling.pacing import quota_day
from monitor.store.ops import BadCursor, intercept_page
from monitor.store.store import UC, Store
from monitor.store.views import read
from tests.api.server import ApiServer, running_api
from tests.console.test_actions import operator
from tests.console.test_sessions import PASSWORD
from tests.daemon.process import wait_for

#: (tracking no., shop): SB1 is refused by the carrier, SB2 accepted, SB3 left undecided, SB4 not picked up yet.
PARCELS = [("SB1", "旗舰店"), ("SB2", "旗舰店"), ("SB3", "二店"), ("SB4", "旗舰店")]


def _refund(api: ApiServer, number: str) -> None:
    body = json.dumps({"refund_id": f"RF-{number}", "order_id": f"O{number}", "type": "refund_only"}).encode()
    answer = api.signed_refund(body)
    assert answer.status_code == 200, answer.text


def _states(api: ApiServer) -> dict[str, str]:
    with api.client() as http:
        return {i["parcel"]["tracking_no"]: i["state"] for i in http.get("/api/v1/intercepts").json()["items"]}


@pytest.fixture
def desk(store: Store) -> Iterator[ApiServer]:
    """Four refunds: a refused intercept, an accepted one, a pending one, and a hold that later became a call."""
    with running_api(store) as api:
        batch = [{"order_id": f"O{n}", "carrier": "sandbox", "tracking_no": n, "shop": shop, "amount": "100.00",
                  "shipped_at": "2026-11-11T09:00:00+08:00"} for n, shop in PARCELS]  # fmt: skip
        with api.client() as http:
            assert http.post("/api/v1/shipments", json={"shipments": batch}).status_code == 201
        for number, _shop in PARCELS[:3]:
            api.scan(number, Status.PICKED_UP, api.clock.now() - timedelta(minutes=30))
        api.sandbox.stage_verdict("SB1", False, "已派送, 无法拦截")
        api.sandbox.stage_verdict("SB2", True)
        api.sandbox.expect_verdict_later("SB3")
        for number, _shop in PARCELS:
            _refund(api, number)
            wait_for(lambda n=number: _states(api).get(n) not in (None, "requested"))  # the call is answered
            api.clock.advance(timedelta(seconds=5))
        assert _states(api) == {"SB1": "failed", "SB2": "accepted", "SB3": "pending", "SB4": "held"}
        api.clock.advance(timedelta(seconds=75))  # SB4's refund was 80 s ago when the carrier picks it up anyway
        api.scan("SB4", Status.PICKED_UP, api.clock.now())
        wait_for(lambda: _states(api)["SB4"] == "accepted")
        People(store, api.clock).add("li.lei", PASSWORD, by=CLI, role="operator")
        yield api


def _unknown(api: ApiServer, number: str, at: datetime, code: str, text: str) -> None:
    """Feed one event of a code no mapping knows (no status), through the Monitor on the server's loop."""
    api.call(api.ctx.monitor.ingest([TrackingEvent("sandbox", number, at, None, raw_code=code, raw_text=text)]))


def _rows(html: str) -> list[tuple[str, str]]:
    """(tracking no., state) of each intercept row, in page order."""
    found = re.findall(r'<tr data-id="\d+" data-state="(\w+)".*?<a href="/parcel/sandbox/(\w+)">', html, re.S)
    return [(number, state) for state, number in found]


def _seconds(html: str, number: str) -> str:
    row = re.search(rf'/parcel/sandbox/{number}".*?<td class="num seconds">([^<]*)</td>', html, re.S)
    assert row, f"no row of {number}"
    return row.group(1).strip()


def test_intercepts_failed_first_then_newest_with_seconds_counts_and_filters(desk: ApiServer) -> None:
    with operator(desk) as http:
        page = http.get("/intercepts")
        assert page.status_code == 200 and "拦截失败" in page.text
        assert _rows(page.text) == [("SB1", "failed"), ("SB4", "accepted"), ("SB3", "pending"), ("SB2", "accepted")]
        counts = dict(re.findall(r'data-state="(\w+)"[^>]*>[^<]*<b>(\d+)</b>', page.text))
        assert (counts["failed"], counts["accepted"], counts["pending"], counts["held"]) == ("1", "2", "1", "0")
        assert _seconds(page.text, "SB1") == "0.0 秒"  # answered in the refund's own moment
        assert _seconds(page.text, "SB4") == "80.0 秒"  # held first: the carrier call came when it was picked up
        assert _seconds(page.text, "SB3") == "0.0 秒"  # undecided, but the carrier answered the call
        assert "已派送, 无法拦截" in page.text
        assert http.get("/parcel/sandbox/SB1").status_code == 200  # each row links to its parcel page
        assert _rows(http.get("/intercepts?state=failed").text) == [("SB1", "failed")]
        assert _rows(http.get("/intercepts?shop=二店").text) == [("SB3", "pending")]
        shop_counts = http.get("/intercepts?shop=二店").text
        assert re.search(r'data-state="pending"[^>]*>[^<]*<b>1</b>', shop_counts)
        assert _rows(http.get("/intercepts?carrier=kuaidi100").text) == []
        refused = http.get("/intercepts?state=lost")
        assert refused.status_code == 400 and "state: &#39;lost&#39;" in refused.text
        assert http.get("/intercepts?cursor=x1").status_code == 400
        english = http.get("/intercepts?lang=en").text
        assert "Failed" in english and "80.0 s" in english


def test_intercept_pages_are_keyset_paged_failed_first(desk: ApiServer, store: Store) -> None:
    with read(store) as views:
        first = intercept_page(views.conn, limit=2)
        assert [r.row.tracking_no for r in first.rows] == ["SB1", "SB4"] and first.next_cursor is not None
        second = intercept_page(views.conn, limit=2, cursor=first.next_cursor)
        assert [r.row.tracking_no for r in second.rows] == ["SB3", "SB2"] and second.next_cursor is None
        one = intercept_page(views.conn, limit=1)
        assert one.next_cursor is not None and one.next_cursor.startswith("f")  # still among the failed ones
        rest = intercept_page(views.conn, limit=10, cursor=one.next_cursor)
        assert [r.row.tracking_no for r in rest.rows] == ["SB4", "SB3", "SB2"]
        with pytest.raises(BadCursor, match="cursor: 'o-1'"):
            intercept_page(views.conn, cursor="o-1")
    with operator(desk) as http:  # the page links its next page while there is one
        assert 'id="next-page"' not in http.get("/intercepts").text


def test_carriers_page_and_api_show_health_quota_last_success_watched_and_unknown_codes(desk: ApiServer) -> None:
    ctx = desk.ctx
    settings = load(None, {})
    ctx.config = dataclasses.replace(
        settings, polling=dataclasses.replace(settings.polling, quotas={"sandbox": CarrierQuota(None, 1000)})
    )
    day = quota_day(desk.clock.now(), ctx.timezone)  # type: ignore[arg-type]
    with desk.store.begin() as uow:
        uow.add_usage("sandbox", day, 250)
    for _ in range(3):  # three failed rounds in a row: down
        ctx.monitor.health.failed("kuaidi100", "CarrierUnavailable: HTTP 502")
    at = desk.clock.now() - timedelta(minutes=5)
    _unknown(desk, "SB2", at, "X99", "派件员 13812345678 已代收")
    _unknown(desk, "SB2", at, "X99", "派件员 13812345678 已代收")
    with operator(desk) as http:
        page = http.get("/carriers")
    assert page.status_code == 200
    sandbox = re.search(r'<tr data-carrier="sandbox" data-state="up".*?</tr>', page.text, re.S)
    assert sandbox and "正常" in sandbox.group(0) and "250 / 1000" in sandbox.group(0)
    assert re.search(r'class="num watched">4<', sandbox.group(0))  # none delivered: all four watched
    assert "从未" not in sandbox.group(0)  # the intercept calls went through: a last success
    kuaidi100 = re.search(r'<tr data-carrier="kuaidi100" data-state="down".*?</tr>', page.text, re.S)
    assert kuaidi100 and "中断" in kuaidi100.group(0) and "HTTP 502" in kuaidi100.group(0)
    code = re.search(r'<tr data-carrier="sandbox" data-code="X99">.*?</tr>', page.text, re.S)
    assert code and "138****5678" in code.group(0) and "13812345678" not in page.text
    assert re.search(r'<td class="num">1</td>', code.group(0))  # the carrier's repeat counts once
    with desk.client() as api:
        data = api.get("/api/v1/carriers").json()
        assert desk.client(token=None).get("/api/v1/carriers").status_code == 401
    by_code = {c["code"]: c for c in data["carriers"]}
    assert (by_code["sandbox"]["state"], by_code["sandbox"]["used_today"], by_code["sandbox"]["daily_quota"]) == (
        "up", 250, 1000)  # fmt: skip
    assert by_code["sandbox"]["last_success_at"] is not None and by_code["sandbox"]["watched"] == 4
    assert by_code["kuaidi100"]["state"] == "down" and by_code["kuaidi100"]["failing_since"] is not None
    assert [(u["carrier"], u["code"], u["count"]) for u in data["unknown_codes"]] == [("sandbox", "X99", 1)]


def test_ingest_persists_unknown_codes_once_per_batch(store: Store) -> None:
    with running_api(store) as api:
        body = {
            "order_id": "OU1",
            "carrier": "sandbox",
            "tracking_no": "SU1",
            "shipped_at": "2026-11-11T09:00:00+08:00",
        }
        with api.client() as http:
            assert http.post("/api/v1/shipments", json=body).status_code == 201
        start = api.clock.now()
        _unknown(api, "SU1", start, "Z1", "奇怪的状态 " + "长" * 100)
        api.clock.advance(timedelta(hours=1))
        _unknown(api, "SU1", api.clock.now(), "Z1", "又一次")
        _unknown(api, "SU1", start, "Z1", "奇怪的状态 " + "长" * 100)
        with store.begin() as uow:
            rows = list(uow.conn.execute(select(UC)))
    assert len(rows) == 1
    row = rows[0]
    assert (row.carrier, row.code, row.count) == ("sandbox", "Z1", 2)  # two scans; the repeat of the first is not new
    assert row.first_seen == start and row.last_seen == start + timedelta(hours=1)
    assert len(row.text_sample) == 80 and row.text_sample.startswith("奇怪的状态")
