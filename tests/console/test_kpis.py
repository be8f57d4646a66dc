"""指标 over real HTTP (no browser): a store seeded over several days, the rollup run, the page and its CSV files.

The figures on the page must be the rollup's (``kpi_daily``) for the days that ended and the live
tables' for today only; the CSV is the table; a viewer sees it; the filters narrow it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from carriers.model import Status
from monitor.config import KpiSettings, load
from monitor.errors import ConfigError
from monitor.kpi.reports import fmt_rate, fmt_seconds, fmt_yuan, percentile
from monitor.kpi.rollup import rollup_kpis
from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.store.kpi import KpiSlice, open_kpi
from monitor.store.store import Store
from tests.api.server import CST, START, ApiServer, running_api
from tests.console.test_sessions import PASSWORD, log_in

D1, D2, D3, TODAY = (START.date() + timedelta(days=n) for n in range(4))  # 11-11 … 11-14
REFUND = b'{"refund_id": "R1", "order_id": "O-A1", "type": "refund_only"}'


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CST)


def ship(api: ApiServer, numbers: list[str], shop: str, when: datetime, carrier: str = "sandbox") -> None:
    batch = [{"order_id": f"O-{n}", "carrier": carrier, "tracking_no": n, "shop": shop, "amount": "300.00",
              "shipped_at": when.isoformat()} for n in numbers]  # fmt: skip
    with api.client() as http:
        assert http.post("/api/v1/shipments", json={"shipments": batch}).status_code == 201


def move_to(api: ApiServer, when: datetime) -> None:
    api.clock.advance(when - api.clock.now())
    api.tick()


@pytest.fixture
def desk(store: Store) -> Iterator[ApiServer]:
    """Three ended days and a morning: shipments, pickups in time and late, a stall, an intercept, a closed ticket."""
    with running_api(store) as api:
        ship(api, ["A1", "A2", "A3", "A4"], "旗舰店", START)  # due 11-12 10:00: three in time, A4 never
        for number in ("A1", "A2", "A3"):
            api.scan(number, Status.PICKED_UP, at(D1, 15))
        ship(api, ["B1", "B2"], "专营店", at(D2, 9))  # due 11-13 09:00: B1 in time, B2 never
        api.scan("B1", Status.PICKED_UP, at(D2, 12))
        move_to(api, at(D2, 11))  # A4's pickup is overdue: an anomaly and a ticket
        assert api.signed_refund(REFUND).status_code == 200  # A1 is intercepted
        assert api.call(api.ctx.monitor.drain(10))
        move_to(api, at(D2, 16))  # A2 and A3: 25 h after the pickup scan with no further one, stalled
        with api.client() as http:
            ticket = http.get("/api/v1/tickets", params={"state": "active"}).json()["items"][0]["id"]
            closed = http.patch(f"/api/v1/tickets/{ticket}", json={"state": "done", "outcome": "chased"})
            assert closed.status_code == 200, closed.text
        move_to(api, at(D3, 12))  # B2 overdue
        move_to(api, at(TODAY, 11))
        for day in (D1, D2, D3):
            rollup_kpis(api.store, api.clock, day, CST)
        ship(api, ["C1"], "旗舰店", at(TODAY, 10))  # today: counted live
        ship(api, ["C2"], "旗舰店", at(TODAY, 0) + timedelta(minutes=30))  # 16:30 UTC the day before: a local day
        people = People(store, api.clock)
        people.add("wang.fang", PASSWORD, by=CLI, role="viewer")
        api.ctx.kpi = KpiSettings(0.9, {"旗舰店": 0.98})
        yield api


@pytest.fixture
def viewer(desk: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=desk.url, timeout=30) as http:
        assert log_in(http, "wang.fang").status_code == 303
        yield http


class Tables(HTMLParser):
    """The text of every cell of every ``<table id="table-…">``, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and (found.get("id") or "").startswith("table-"):
            self._table = str(found["id"])[6:]
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def rolled_up(store: Store, shop: str | None = None) -> dict[tuple[date, str, str], KpiSlice]:
    with open_kpi(store) as kpi:
        return {(day, s.shop, s.carrier): s for day, s in kpi.daily(D1, D3, shop)}


def live_today(api: ApiServer) -> list[KpiSlice]:
    with open_kpi(api.store) as kpi:
        return kpi.live(at(TODAY, 0), at(TODAY + timedelta(days=1), 0), api.clock.now())


def download(http: httpx.Client, chart: str, **params: str) -> list[list[str]]:
    answer = http.get("/kpis.csv", params={"chart": chart, **params})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith(f'attachment; filename="kpi-{chart}-')
    assert answer.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads UTF-8
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def test_the_pickup_table_and_csv_are_the_rollups_figures_with_the_shops_target(
    desk: ApiServer, viewer: httpx.Client
) -> None:
    page = viewer.get("/kpis", params={"days": 7})
    assert page.status_code == 200 and "24小时揽收及时率" in page.text
    header, *rows = tables(page.text)["pickup"]
    assert header == ["日期", "店铺", "快递公司", "发货", "应揽收", "24小时内揽收", "揽收及时率", "目标"]
    daily = rolled_up(desk.store)
    target = {"旗舰店": "98.0%", "专营店": "90.0%"}
    expected = [
        [d.isoformat(), shop, carrier, str(s.shipped), str(s.pickup_due), str(s.picked_up_in_time),
         fmt_rate(s.picked_up_in_time / s.pickup_due if s.pickup_due else None), target[shop]]
        for (d, shop, carrier), s in sorted(daily.items()) if s.shipped or s.pickup_due
    ]  # fmt: skip
    (today,) = live_today(desk)
    expected.append([TODAY.isoformat(), "旗舰店", "sandbox", "2", "0", "0", "—", "98.0%"])
    assert rows == expected
    # the figures themselves, as seeded: A1–A3 in time of four due on 11-12, B1 of two on 11-13
    assert [r[4:7] for r in rows if r[4] != "0"] == [["4", "3", "75.0%"], ["2", "1", "50.0%"]]
    assert today.shipped == 2
    sheet = download(viewer, "pickup", days="7")
    assert sheet[0] == ["日期", "店铺", "快递公司", "发货", "应揽收", "24小时内揽收", "揽收及时率 (%)", "目标 (%)"]
    assert [r[:6] for r in sheet[1:]] == [r[:6] for r in rows]
    assert [r[6:] for r in sheet[1:] if r[4] != "0"] == [["75.00", "98.00"], ["50.00", "90.00"]]
    data = json.loads(re.search(r'<script type="application/json" id="kpi-data">(.*?)</script>', page.text,
                                re.S).group(1))  # type: ignore[union-attr]  # fmt: skip
    assert data["days"][0] == (TODAY - timedelta(days=6)).isoformat() and data["days"][-1] == TODAY.isoformat()
    pickup = next(c for c in data["charts"] if c["name"] == "pickup")
    targets = {s["name"]: s["data"][0] for s in pickup["series"] if s["dashed"]}
    assert targets == {"目标 · 专营店": 90.0, "目标 · 旗舰店": 98.0}
    line = next(s for s in pickup["series"] if s["name"] == "旗舰店 · sandbox")
    assert line["data"][data["days"].index(D2.isoformat())] == 75.0


def test_the_other_charts_are_the_rollups_figures(desk: ApiServer, viewer: httpx.Client) -> None:
    found = tables(viewer.get("/kpis", params={"days": "7"}).text)
    daily = rolled_up(desk.store)
    per_day: dict[date, KpiSlice] = {}
    for (d, _, _), s in daily.items():
        per_day.setdefault(d, KpiSlice("", "")).add(s)
    for s in live_today(desk):
        per_day.setdefault(TODAY, KpiSlice("", "")).add(s)

    stalls = [[d.isoformat(), str(s.shipped), str(s.anomalies.get("stalled", {}).get("opened", 0))]
              for d, s in sorted(per_day.items()) if s.shipped or s.anomalies.get("stalled")]  # fmt: skip
    assert [r[:3] for r in found["stall"][1:]] == stalls
    # A1–A3 stalled on 11-12, when B1 and B2 shipped: a flow ratio, so a quiet day can pass 100 %
    assert ["2026-11-12", "2", "3", "150.0%"] in found["stall"] and ["2026-11-13", "0", "1", "—"] in found["stall"]

    assert found["anomalies"][0] == ["日期", "24小时未揽收", "物流轨迹停滞", "合计"]
    assert found["anomalies"][1:] == [["2026-11-12", "1", "3", "4"], ["2026-11-13", "1", "1", "2"]]

    (requested,) = [(d, s) for d, s in per_day.items() if s.intercepts_requested]
    d, s = requested
    assert s.intercept_latencies, "the rollup holds the intercept's latency"
    assert found["intercepts"][1:] == [[d.isoformat(), "1", str(s.intercepts_succeeded), str(s.intercepts_failed),
                                        "—", fmt_seconds(s.intercept_latencies.min),
                                        fmt_seconds(s.intercept_latencies.min)]]  # fmt: skip

    assert found["stake"][0] == ["日期", "24小时未揽收", "物流轨迹停滞", "合计"]
    fen = {d: [s.anomalies.get(rule, {}).get("compensation_fen", 0) for rule in ("pickup_overdue", "stalled")]
           for d, s in per_day.items()}  # fmt: skip
    stake = [[d.isoformat(), *map(fmt_yuan, f), fmt_yuan(sum(f))] for d, f in sorted(fen.items()) if any(f)]
    assert found["stake"][1:] == stake
    assert stake[0] == ["2026-11-12", "¥15.00", "¥45.00", "¥60.00"]  # 5 % of 300 yuan, once overdue, thrice stalled

    ((d, closing),) = [(d, s) for d, s in per_day.items() if any(f["closed"] for f in s.tickets.values())]
    seconds = [x for f in closing.tickets.values() for x in f["close_seconds"].exact]
    row = next(r for r in found["tickets"][1:] if r[0] == d.isoformat())
    assert row[2:] == ["1", fmt_seconds(percentile(seconds, 50)), fmt_seconds(percentile(seconds, 90))]
    assert fmt_seconds(seconds[0]) == "5h00m"  # opened 11:00, closed 16:00

    sheet = download(viewer, "anomalies", days="7")
    assert sheet == [["日期", "24小时未揽收", "物流轨迹停滞", "合计"], ["2026-11-12", "1", "3", "4"],
                     ["2026-11-13", "1", "1", "2"]]  # fmt: skip
    assert download(viewer, "stake", days="7")[1] == ["2026-11-12", "15.00", "45.00", "60.00"]
    assert download(viewer, "tickets", days="7")[1][3] == "18000"


def test_past_days_come_from_the_rollup_not_the_parcels(desk: ApiServer, viewer: httpx.Client) -> None:
    ship(desk, ["L1", "L2"], "旗舰店", at(D2, 20))  # imported late: the live tables know, the rollup not yet

    def shipped_on_d2() -> str:
        rows = tables(viewer.get("/kpis?days=7").text)["pickup"]
        return next(r[3] for r in rows if r[:3] == [D2.isoformat(), "旗舰店", "sandbox"])

    assert shipped_on_d2() == "0"  # A1–A4 shipped on 11-11 and fell due on 11-12
    rollup_kpis(desk.store, desk.clock, D2, CST)
    assert shipped_on_d2() == "2"


def test_filters_by_shop_and_carrier_and_the_window(desk: ApiServer, viewer: httpx.Client) -> None:
    rows = tables(viewer.get("/kpis", params={"days": 7, "shop": "专营店"}).text)["pickup"][1:]
    assert {r[1] for r in rows} == {"专营店"} and len(rows) == 2
    assert download(viewer, "pickup", days="7", shop="专营店")[1:] == [
        ["2026-11-12", "专营店", "sandbox", "2", "0", "0", "", "90.00"],
        ["2026-11-13", "专营店", "sandbox", "0", "2", "1", "50.00", "90.00"],
    ]
    other = tables(viewer.get("/kpis", params={"days": 7, "carrier": "sf"}).text)
    assert all(len(t) == 2 and t[1] == [t[1][0]] for t in other.values())  # header and "no figures" only
    assert tables(viewer.get("/kpis", params={"days": 7, "shop": "专营店"}).text)["stake"][1:] == [
        ["2026-11-13", "¥15.00", "¥15.00", "¥30.00"]
    ]
    # the default window is 30 days; the page offers every shop and carrier it knows in any case
    page = viewer.get("/kpis", params={"shop": "专营店"})
    assert page.status_code == 200 and '<option value="旗舰店"' in page.text
    assert f"{(TODAY - timedelta(days=29)).isoformat()} – {TODAY.isoformat()}" in page.text
    seven = viewer.get("/kpis", params={"days": 7, "lang": "en"})
    assert "24-hour pickup rate" in seven.text and "Due for pickup" in seven.text


def test_bad_filters_are_refused_naming_the_field(viewer: httpx.Client) -> None:
    for days in ("6", "91", "x", "-7"):
        answer = viewer.get("/kpis", params={"days": days})
        assert answer.status_code == 400 and "days" in answer.text and days in answer.text
        assert viewer.get("/kpis.csv", params={"days": days, "chart": "pickup"}).status_code == 400
    answer = viewer.get("/kpis.csv", params={"chart": "nope"})
    assert answer.status_code == 404 and "chart" in answer.text and "'nope'" in answer.text
    assert viewer.get("/kpis", params={"shop": "x" * 65}).status_code == 400


def test_the_page_needs_a_session_and_a_viewer_may_see_it(desk: ApiServer) -> None:
    with httpx.Client(base_url=desk.url, timeout=30) as http:
        assert http.get("/kpis").status_code == 303
        assert http.get("/kpis.csv?chart=pickup").headers["location"].startswith("/login?next=")
        assert log_in(http, "wang.fang").status_code == 303
        page = http.get("/kpis")
        assert page.status_code == 200 and 'href="/kpis" class="here"' in page.text
        assert '<script src="/console/static/vendor/echarts.min.js"' in page.text
        assert http.get("/console/static/kpis.js").status_code == 200


def test_a_shop_name_cannot_break_out_of_the_embedded_figures(store: Store) -> None:
    with running_api(store) as api:
        ship(api, ["X1"], "</script><script>alert(1)</script>", START)
        People(store, api.clock).add("wang.fang", PASSWORD, by=CLI, role="viewer")
        with httpx.Client(base_url=api.url, timeout=30) as http:
            log_in(http, "wang.fang")
            page = http.get("/kpis").text
            sheet = download(http, "pickup")
    assert "<script>alert(1)" not in page
    assert sheet[1][1] == "</script><script>alert(1)</script>"


def test_the_targets_come_from_the_kpi_table_of_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text('[kpi]\npickup_rate_target = 0.9\n\n[kpi.shops."旗舰店"]\npickup_rate_target = 0.98\n',
                    encoding="utf-8")  # fmt: skip
    kpi = load(path, {}).kpi
    assert (kpi.pickup_target("旗舰店"), kpi.pickup_target("专营店")) == (0.98, 0.9)
    assert load(None, {}).kpi.pickup_target("旗舰店") == 0.95  # the default
    path.write_text('[kpi.shops."旗舰店"]\npickup_rate_target = 98\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"kpi\.shops\.旗舰店\.pickup_rate_target: expected a share .* got 98"):
        load(path, {})


def test_today_is_at_most_a_minute_old_and_a_rollup_shows_at_once(desk: ApiServer, viewer: httpx.Client) -> None:
    """Views within a minute reuse the window's figures (a wall screen does not recount today per view)."""

    def shipped_today() -> str:
        rows = tables(viewer.get("/kpis", params={"days": 7}).text)["pickup"]
        return next(r[3] for r in rows if r[0] == TODAY.isoformat() and r[1] == "旗舰店")

    assert shipped_today() == "2"
    ship(desk, ["C3"], "旗舰店", desk.clock.now())
    assert shipped_today() == "2", "a view within the minute reuses the figures"
    move_to(desk, desk.clock.now() + timedelta(seconds=61))
    assert shipped_today() == "3", "after a minute today is counted again"
    ship(desk, ["D9"], "专营店", at(D3, 8))  # a late import of an ended day, then its rollup
    rollup_kpis(desk.store, desk.clock, D3, CST)
    rows = tables(viewer.get("/kpis", params={"days": 7}).text)["pickup"]
    assert [r[3] for r in rows if r[0] == D3.isoformat() and r[1] == "专营店"] == ["1"], "a new rollup shows at once"


def test_todays_count_is_shared_by_every_view_and_kept_fresh_by_the_daemons_job(
    desk: ApiServer, viewer: httpx.Client
) -> None:
    """One live count serves every filter; the daemon's job recounts it so views count nothing, only while watched."""
    from types import SimpleNamespace

    from monitor.daemon.jobs import Jobs

    jobs = Jobs(SimpleNamespace(store=desk.store, clock=desk.clock, settings=SimpleNamespace(timezone=CST)))  # type: ignore[arg-type]

    def shipped_today(**params: str) -> str:
        rows = tables(viewer.get("/kpis", params={"days": 7, **params}).text)["pickup"]
        return next(r[3] for r in rows if r[0] == TODAY.isoformat() and r[1] == "旗舰店")

    assert desk.call(jobs.kpi_today()) is False, "nobody has looked at the page: nothing is counted"
    assert shipped_today() == "2"
    ship(desk, ["C3"], "旗舰店", desk.clock.now())
    assert shipped_today(shop="旗舰店") == "2", "another filter within the minute reads the same count"
    desk.clock.advance(timedelta(seconds=40))
    assert desk.call(jobs.kpi_today()) is True  # watched, and the count is half a minute old: recount
    ship(desk, ["C4"], "旗舰店", desk.clock.now())
    desk.clock.advance(timedelta(seconds=30))  # 70 s after the view's count, 30 s after the job's
    assert shipped_today() == "3", "the view shows the job's count (C3, not yet C4) and counts nothing itself"
    desk.clock.advance(timedelta(seconds=61))  # no job ran: the view counts itself, today is never older than 60 s
    assert shipped_today() == "4"
    desk.clock.advance(timedelta(minutes=11))
    assert desk.call(jobs.kpi_today()) is False, "nobody looked for ten minutes: the job stops counting"
