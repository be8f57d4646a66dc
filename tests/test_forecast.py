"""The pickup-rate forecast: arithmetic checked by hand, the alert once per crossing, the CLI.

The store scenario runs on SQLite and PostgreSQL: 29 rolled-up days of 10 pickups due, 9 in
time (``kpi_daily``), then today (Friday 2026-11-20, 12:00 CST) six real parcels through the
Monitor — two deadlines passed this morning (one in time), one picked up early, one pending
today, one picked up early and one pending tomorrow.
"""

from __future__ import annotations

import asyncio
import io
import json
from datetime import date, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from monitor.alerts.channels.console import RecordingChannel
from monitor.alerts.routing import Route, default_route
from monitor.cli import main
from monitor.clock import SystemClock
from monitor.kpi.forecast import build_forecast, forecast_json, project_shop, render_forecast
from monitor.kpi.watch import ForecastWatch
from monitor.replay.runner import replay
from monitor.replay.scenario import parse
from monitor.rules.ruleset import build_ruleset
from monitor.store.forecast import DayCounts, open_forecast
from monitor.store.kpi import KpiSlice, open_kpi
from monitor.store.store import Store
from tests.conftest import BACKENDS
from tests.test_reports import CST, Shop, t

TODAY = date(2026, 11, 20)
SHOP = "旗舰店"


def history(store: Store, last: date, days: int = 29, due: int = 10, in_time: int = 9) -> None:
    """Write ``days`` rolled-up days ending on ``last``, each with ``due`` pickups, ``in_time`` of them in time."""
    with open_kpi(store) as kpi:
        for n in range(days):
            day = last - timedelta(days=n)
            kpi.replace_day(day, [KpiSlice(SHOP, "sandbox", pickup_due=due, picked_up_in_time=in_time)], t(20, 0))


def friday(store: Store) -> Shop:
    history(store, TODAY - timedelta(days=1))
    shop = Shop(store, t(19, 8))
    shop.ship("A", t(19, 9))  # due today 09:00, picked up 08:00: in time
    shop.ship("B", t(19, 10))  # due today 10:00, never picked up: late
    shop.ship("C", t(19, 18))  # due today 18:00, picked up early
    shop.ship("D", t(19, 20))  # due today 20:00: pending
    shop.scan("A", t(20, 8), "picked_up")
    shop.ship("E", t(20, 10))  # due tomorrow 10:00: pending
    shop.ship("F", t(20, 11))  # due tomorrow 11:00, picked up early
    shop.scan("C", t(20, 11), "picked_up")
    shop.scan("F", t(20, 11, 30), "picked_up")
    shop.at(t(20, 12))
    return shop


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
def test_projection_by_hand(store: Store) -> None:
    shop = friday(store)
    with open_forecast(store) as fs:
        assert fs.last_rolled_up(TODAY) == TODAY - timedelta(days=1)
    forecast = build_forecast(store, shop.clock, CST, 0.895)
    (s,) = forecast.shops
    assert s.shop == SHOP and forecast.today == TODAY
    assert s.share == pytest.approx(252 / 280)  # the last 4 weeks: 28 days of 10 due, 9 in time
    assert s.current == pytest.approx(262 / 292)  # 29 days + this morning's A (in time) and B (late)
    tomorrow = s.days[0]
    assert tomorrow.day == date(2026, 11, 21) and len(s.days) == 7
    # window Oct 23 – Nov 21: 28 past days 280/252; today A B C D (in 1 + early 1, pending 1);
    # tomorrow E F (early 1, pending 1) and 10 - 2 = 8 more expected (every Saturday had 10 due)
    assert (tomorrow.known, tomorrow.pending, tomorrow.expected) == (286, 2, 8)
    # each day's parcels still ahead end at 90 %: of today's C (early) and D, 0.9 × 2 - 1 = 0.8 of D; tomorrow alike
    assert tomorrow.point == pytest.approx((255 + 0.8 + 0.8 + 0.9 * 8) / 294)
    assert tomorrow.low == pytest.approx((255 + 0.9 * 8) / 294)  # both pending late
    assert tomorrow.high == pytest.approx((255 + 2 + 0.9 * 8) / 294)  # both in time
    # 0.895 × 294 = 263.13 in time needed; 255 sure + 7.2 expected = 262.2: one pending parcel more
    assert tomorrow.needed == 1
    assert s.below is None
    assert all(d.low <= d.point <= d.high for d in s.days if d.point is not None)
    data = forecast_json(forecast)
    assert data["shops"][0]["days"][0] == {"day": "2026-11-21", "low": 0.8918, "point": 0.8973, "high": 0.8986,
                                           "known": 286, "pending": 2, "expected": 8, "needed": 1}  # fmt: skip
    text = render_forecast(forecast)
    assert "2026-11-21  89.2%  89.7%  89.9%" in text and "above target all week" in text


def test_oldest_good_days_leaving_the_window_cross_the_target() -> None:
    """Pure arithmetic: a perfect week about to leave the window drags the rate below target."""
    today = date(2026, 11, 20)
    days = {today - timedelta(days=n): DayCounts(10, 10 if n >= 25 else 9) for n in range(1, 30)}
    s = project_shop("s", days, today, target=0.915)
    assert s.current == pytest.approx(266 / 290) and s.current > 0.915  # above target today
    # no volume known ahead: every day expects 10 at the 4 weeks' share (4 perfect days of 28)
    share = (4 * 10 + 24 * 9) / 280
    assert s.share == pytest.approx(share)
    first = s.days[0]  # Nov 21: the window loses Oct 22 (perfect), keeps Oct 23–26 (perfect)
    assert first.point == pytest.approx((4 * 10 + 24 * 9 + 10 * share) / 290)
    assert s.below is not None and s.below.day == date(2026, 11, 21)
    assert s.below.needed is None  # nothing is pending: no parcel of today can help
    points = [d.point for d in s.days]
    assert points[:5] == sorted(points[:5], reverse=True) and points[4] < points[0]  # a perfect day leaves daily
    assert points[5] > points[4]  # then 90 % days leave, replaced by days at the 91.4 % share


def _route_with_resolved() -> Route:
    return Route(receiver="ops", group_wait=timedelta(0), repeat_interval=None, send_resolved=True)


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
def test_alert_once_per_crossing_then_resolved(store: Store) -> None:
    shop = friday(store)
    ops = RecordingChannel("ops")
    watch = ForecastWatch(store, shop.clock, CST, lambda _shop: 0.898, {"ops": ops}, _route_with_resolved())
    assert asyncio.run(watch.run()) == 1
    (alert,) = ops.sent
    assert (alert.rule, alert.state, alert.shop, alert.severity) == ("pickup_rate_forecast", "firing", SHOP, "warning")
    # 0.898 × 294 = 264.01 needed; 262.2 without the 2 pending: both must make it
    assert "11-21" in alert.detail and "待揽收 2 件中按时揽收 2 件" in alert.detail and "89.7%" in alert.detail
    shop.at(t(20, 13))
    assert asyncio.run(watch.run()) == 0  # still below: told once
    assert len(ops.sent) == 1
    shop.scan("D", t(20, 14), "picked_up")
    shop.scan("E", t(20, 14), "picked_up")
    assert asyncio.run(watch.run()) == 1  # back above target: resolved once
    assert [a.state for a in ops.sent] == ["firing", "resolved"]
    assert asyncio.run(watch.run()) == 0
    with store.begin() as uow:
        rows = uow.activity_after(0)
    lines = [json.loads(r.data) for r in rows if r.event == "pickup_rate_forecast"]
    assert [(x["status"], x.get("day"), x.get("needed")) for x in lines] == [("firing", "2026-11-21", 2),
                                                                             ("resolved", None, None)]  # fmt: skip
    with open_forecast(store) as fs:
        state = fs.states()[SHOP]
    assert (state.state, state.alerted, state.below_day) == ("ok", "ok", None)


def test_a_failed_send_is_tried_again(store: Store) -> None:
    class Down(RecordingChannel):
        async def notify(self, alerts: Any) -> Any:
            from monitor.alerts.model import Delivery

            return Delivery(sent=False, retryable=True, error="503")

    shop = friday(store)
    watch = ForecastWatch(store, shop.clock, CST, lambda _shop: 0.95, {"ops": Down("ops")}, default_route(["ops"]))
    assert asyncio.run(watch.run()) == 0
    ops = RecordingChannel("ops")
    watch.channels = {"ops": ops}
    assert asyncio.run(watch.run()) == 1 and ops.sent[0].state == "firing"


def test_report_forecast_command(store: Store, database_url: str, tmp_path: Any) -> None:
    # The command reads the wall clock, so the history ends yesterday, real time.
    now = SystemClock().now()
    history(store, now.astimezone(CST).date() - timedelta(days=1), days=30)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[kpi]\npickup_rate_target = 0.92\n', encoding="utf-8")
    env = {"PARCEL_MONITOR_DATABASE_URL": None, "PARCEL_MONITOR_CONFIG": None}
    result = CliRunner().invoke(main, ["report", "--forecast", "--config", str(config), "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (s,) = data["shops"]
    assert s["shop"] == SHOP and s["target"] == 0.92 and s["below_day"] == s["days"][0]["day"]
    assert [d["point"] for d in s["days"]] == [0.9] * 7  # 10 due a day at 90 %, nothing else known
    result = CliRunner().invoke(main, ["report", "--forecast", "--config", str(config)], env=env)
    assert result.exit_code == 0, result.output
    assert "24-hour pickup rate forecast" in result.stdout and "below target on" in result.stdout


def test_replay_tells_of_the_crossing_once_at_its_hour() -> None:
    """``replay --forecast``: the hourly projection runs on the scenario's clock; one line per crossing."""
    lines: list[dict[str, Any]] = []
    for i in range(4):
        lines.append({"at": "2026-03-10T09:00:00+08:00", "kind": "shipment", "order_id": f"O{i}", "carrier": "sf",
                      "tracking_no": f"SF{i}", "shop": SHOP})  # fmt: skip
    for i in range(3):  # SF3 is never picked up: 3 of 4 in time when the deadlines pass at 09:00 on the 11th
        lines.append({"at": "2026-03-10T10:00:00+08:00", "kind": "tracking", "carrier": "sf", "tracking_no": f"SF{i}",
                      "status": "picked_up"})  # fmt: skip
    lines.append({"at": "2026-03-12T12:00:00+08:00", "kind": "end"})
    out = io.StringIO()
    steps = parse([json.dumps(line, ensure_ascii=False) for line in lines])
    asyncio.run(replay(steps, build_ruleset(None), out, forecast=lambda _shop: 0.95))
    told = [json.loads(x) for x in out.getvalue().splitlines() if '"pickup_rate_forecast"' in x]
    assert [(x["at"], x["status"], x["shop"], x["day"], x["point"]) for x in told] == [
        ("2026-03-11T09:00:00+08:00", "firing", SHOP, "2026-03-12", 0.75)
    ]
    plain = io.StringIO()
    asyncio.run(replay(parse([json.dumps(line, ensure_ascii=False) for line in lines]), build_ruleset(None), plain))
    assert "pickup_rate_forecast" not in plain.getvalue()  # opt-in: the checked example outputs stay as they are


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
def test_a_receiver_that_failed_is_tried_again_alone(store: Store) -> None:
    """Two receivers, one down: the next run sends to the one that did not take it, never twice to the other."""

    class Flaky(RecordingChannel):
        down = True

        async def notify(self, alerts: Any) -> Any:
            from monitor.alerts.model import Delivery

            if self.down:
                return Delivery(sent=False, retryable=True, error="503")
            return await super().notify(alerts)

    shop = friday(store)
    ops, oncall = RecordingChannel("ops"), Flaky("oncall")
    watch = ForecastWatch(store, shop.clock, CST, lambda _shop: 0.95, {"ops": ops, "oncall": oncall},
                          default_route(["ops", "oncall"]))  # fmt: skip
    assert asyncio.run(watch.run()) == 0  # ops took it, oncall did not
    assert [a.state for a in ops.sent] == ["firing"] and oncall.sent == []
    assert asyncio.run(watch.run()) == 0  # still down: ops is not told again
    oncall.down = False
    assert asyncio.run(watch.run()) == 1
    assert [a.state for a in ops.sent] == ["firing"] and [a.state for a in oncall.sent] == ["firing"]
    assert asyncio.run(watch.run()) == 0  # told everyone: nothing more
    assert len(ops.sent) == 1 and len(oncall.sent) == 1
    with open_forecast(store) as fs:
        assert fs.states()[SHOP].told == "*"


def test_a_crash_after_the_claim_loses_nothing(store: Store) -> None:
    """Claimed, then the process died before any receiver answered: the next run still tells them."""

    class Dies(RecordingChannel):
        async def notify(self, alerts: Any) -> Any:
            raise RuntimeError("killed while sending")

    shop = friday(store)
    watch = ForecastWatch(store, shop.clock, CST, lambda _shop: 0.95, {"ops": Dies("ops")}, default_route(["ops"]))
    with pytest.raises(RuntimeError):
        asyncio.run(watch.run())
    with open_forecast(store) as fs:
        state = fs.states()[SHOP]
    assert (state.alerted, state.told) == ("below", "")  # claimed, nobody told
    ops = RecordingChannel("ops")
    watch.channels = {"ops": ops}
    assert asyncio.run(watch.run()) == 1 and [a.state for a in ops.sent] == ["firing"]
