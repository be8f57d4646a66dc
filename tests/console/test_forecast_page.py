"""预测: the console's forecast page shows build_forecast's figures — table, chart data, target — to any role."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from carriers.model import Status
from monitor.config import KpiSettings
from monitor.kpi.forecast import build_forecast
from monitor.kpi.reports import fmt_rate
from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.store.store import Store
from tests.api.server import START, ApiServer, running_api
from tests.api.test_reports_api import ship
from tests.console.test_sessions import PASSWORD, log_in
from tests.test_forecast import SHOP, history


@pytest.fixture
def desk(store: Store) -> Iterator[ApiServer]:
    with running_api(store) as api:
        history(store, START.date() - timedelta(days=1), days=30)  # 10 due a day, 9 in time
        ship(api, ["A1", "A2", "A3"], SHOP)
        api.scan("A1", Status.PICKED_UP, START + timedelta(hours=1))
        api.clock.advance(timedelta(hours=2))
        api.ctx.kpi = KpiSettings(0.95, {})
        People(store, api.clock).add("han.mei", PASSWORD, by=CLI, role="viewer")
        yield api


def test_the_page_shows_the_forecast_table_and_chart_data(desk: ApiServer) -> None:
    with httpx.Client(base_url=desk.url, timeout=30) as http:
        assert http.get("/forecast").status_code == 303  # to the login page first
        assert log_in(http, "han.mei").status_code == 303
        page = http.get("/forecast")
        bad = http.get("/forecast", params={"shop": "x\x01"})
        other = http.get("/forecast", params={"shop": "专营店"})
        english = http.get("/forecast", params={"lang": "en"})
    assert page.status_code == 200, page.text
    html = page.text
    (s,) = build_forecast(desk.store, desk.clock, desk.ctx.timezone, 0.95).shops
    assert s.below is not None  # 90 % a day against 95 %
    rows = re.findall(r"<tr[^>]*><td>(\d{4}-\d\d-\d\d)</td><td class=\"num\">([^<]*)</td><td class=\"num\">([^<]*)</td>"
                      r"<td class=\"num\">([^<]*)</td>", html)  # fmt: skip
    assert rows == [(d.day.isoformat(), fmt_rate(d.low), fmt_rate(d.point), fmt_rate(d.high)) for d in s.days]
    assert f"预计 {s.below.day.isoformat()} 降至 {fmt_rate(s.below.point)}" in html
    assert f"当前待揽收 2 件中按时揽收 {s.below.needed} 件" in html or "全部按时揽收也无法达标" in html
    data = json.loads(re.search(r'<script type="application/json" id="forecast-data">(.*?)</script>', html).group(1))
    (chart,) = data["shops"]
    assert chart["shop"] == SHOP and chart["target"] == 95.0
    assert chart["point"] == [round(d.point * 100, 2) for d in s.days]
    assert chart["low"][0] <= chart["point"][0] <= chart["high"][0]
    assert 'href="/forecast" class="here"' in html and "/console/static/vendor/echarts.min.js" in html
    assert "Projected" in english.text and "Needed in time" in english.text
    assert bad.status_code == 400 and "shop" in bad.text
    assert other.status_code == 200 and "这段时间没有数据" in other.text


def test_the_chart_script_is_served(desk: ApiServer) -> None:
    with httpx.Client(base_url=desk.url, timeout=30) as http:
        script = http.get("/console/static/forecast.js")
    assert script.status_code == 200 and "echarts.init" in script.text and 'stack: "range"' in script.text
