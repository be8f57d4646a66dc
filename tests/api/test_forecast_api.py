"""GET /api/v1/reports/pickup-forecast: the week ahead per shop, as `parcel-monitor report --forecast` shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carriers.model import Status
from monitor.config import KpiSettings
from monitor.kpi.forecast import build_forecast, forecast_json
from tests.api.server import START, ApiServer
from tests.api.test_reports_api import ship
from tests.test_forecast import SHOP, history

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def test_the_forecast_per_shop_against_its_target(api: ApiServer) -> None:
    history(api.store, START.date() - timedelta(days=1), days=30)  # 10 due a day, 9 in time
    ship(api, ["A1", "A2", "A3"], SHOP)  # due tomorrow 10:00
    api.scan("A1", Status.PICKED_UP, START + timedelta(hours=1))
    api.clock.advance(timedelta(hours=2))
    api.ctx.kpi = KpiSettings(0.85, {"专营店": 0.99})
    with api.client() as http:
        everything = http.get("/api/v1/reports/pickup-forecast").json()
        one = http.get("/api/v1/reports/pickup-forecast", params={"shop": "专营店"}).json()
        bad = http.get("/api/v1/reports/pickup-forecast", params={"shop": "\x00"})
    with api.client(token=None) as http:
        anonymous = http.get("/api/v1/reports/pickup-forecast")
    (s,) = everything["shops"]
    assert s["shop"] == SHOP and s["target"] == 0.85 and s["below_day"] is None
    assert s["pending"] == 2 and s["current"] == 0.9 and len(s["days"]) == 7
    tomorrow = s["days"][0]
    assert tomorrow["day"] == "2026-11-12" and (tomorrow["pending"], tomorrow["expected"]) == (2, 7)
    # 28 days of 10/9 + A1 early + of the 2 pending 0.9 × 3 - 1 + 7 more at 90 %, over 280 + 3 + 7
    assert tomorrow["point"] == round((252 + 1 + 1.7 + 0.9 * 7) / 290, 4) == 0.9
    assert everything == forecast_json(build_forecast(api.store, api.clock, api.ctx.timezone, 0.85))
    assert one["shops"] == []  # 专营店 shipped nothing
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "shop"
    assert anonymous.status_code == 401
