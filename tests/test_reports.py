"""Reports: figures checked against hand counts, built through the real Monitor on a simulated clock.

Every scenario runs on SQLite and PostgreSQL. The window is the last N local days
(Asia/Shanghai), today included, up to the clock's now.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from rich.cells import cell_len

from carriers.model import ExceptionReason, InterceptResult, Status, TrackingEvent
from carriers.sandbox import SandboxCarrier
from monitor.actions.intercepts import RefundRequest
from monitor.alerts.channels.console import RecordingChannel
from monitor.cli import main
from monitor.clock import SimulatedClock, SystemClock
from monitor.intake.shipments import Shipment
from monitor.kpi.reports import (
    InterceptFigures,
    PickupFigures,
    Report,
    build_report,
    percentile,
    render_report,
    render_table,
    report_json,
)
from monitor.replay.runner import ceil_minute
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.durations import Durations
from monitor.store.store import Store

CST = ZoneInfo("Asia/Shanghai")
#: Rules that would fire on every parcel left in transit: off where a test counts anomalies.
QUIET = {"rule": {name: {"enabled": False} for name in ("stalled", "lost_suspected", "delivery_overdue")}}


def t(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """Return a 2026 moment in China Standard Time (November unless told)."""
    return datetime(2026, month, day, hour, minute, tzinfo=CST)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Shop:
    """Drive the real Monitor on a simulated clock: ship, scan, refund, and let the rules run between."""

    def __init__(self, store: Store, start: datetime, rules: dict[str, Any] | None = None) -> None:
        self.store = store
        self.clock = SimulatedClock(start)
        self.carriers = {code: SandboxCarrier(self.clock) for code in ("sandbox", "sf")}
        channels = {"console": RecordingChannel("console")}
        self.monitor = Monitor(store, build_ruleset(rules), self.clock, self.carriers, channels)

    def at(self, moment: datetime) -> None:
        """Move the clock to ``moment``, firing time-driven rules at each minute something falls due."""
        previous = None
        while True:
            with self.store.begin() as uow:
                due = uow.earliest_due()
            if due is None:
                break
            step = ceil_minute(max(due, self.clock.now()))
            if step >= moment or step == previous:
                break
            self.clock.set(step)
            _run(self.monitor.tick())
            previous = step
        self.clock.set(moment)
        _run(self.monitor.tick())

    def ship(self, no: str, at: datetime, *, carrier: str = "sandbox", shop: str = "旗舰店", order: str | None = None,
             **extra: Any) -> None:  # fmt: skip
        self.at(at)
        shipment = Shipment(order or f"O-{no}", carrier, no, at, shop=shop, **extra)
        assert self.monitor.add_shipments([shipment]) == 1

    def scan(self, no: str, at: datetime, status: str, *, carrier: str = "sandbox", reason: str | None = None) -> None:
        self.at(at)
        why = ExceptionReason(reason) if reason else None
        _run(self.monitor.ingest([TrackingEvent(carrier, no, at, Status(status), reason=why)]))

    def refund(self, no: str, at: datetime, *, order: str | None = None, type_: str = "refund_only") -> None:
        self.at(at)
        _run(self.monitor.refund(RefundRequest(f"R-{no}", order or f"O-{no}", type_)))

    def answer_later(self, no: str, carrier: str = "sandbox") -> None:
        """Make the carrier leave the next intercept of ``no`` undecided."""
        self.carriers[carrier].expect_verdict_later(no)

    def verdict(self, no: str, at: datetime, accepted: bool, carrier: str = "sandbox") -> None:
        self.at(at)
        assert _run(self.monitor.intercept_verdict(carrier, no, InterceptResult(accepted=accepted)))

    def report(self, days: int = 7, shop: str | None = None, carrier: str | None = None) -> Report:
        return build_report(self.store, self.clock, days, CST, shop, carrier)


def pickup_of(report: Report) -> dict[tuple[str, str], PickupFigures]:
    return {(r.shop, r.carrier): r.figures for r in report.pickup}


# -- the 24-hour pickup rate -----------------------------------------------------------------


def pickup_shop(store: Store) -> Shop:
    """Ten parcels, eight picked up within 24 h; four more elsewhere, three in time; some not due."""
    shop = Shop(store, t(11, 8))
    for i in range(10):
        shop.ship(f"SB{i}", t(11, 9))  # due 12th 09:00
    shop.ship("HELD", t(11, 9))
    shop.refund("HELD", t(11, 10))  # refund-only before pickup: held, never due
    for i in range(8):
        shop.scan(f"SB{i}", t(11, 15), "picked_up")
    shop.scan("SB8", t(12, 10), "picked_up")  # an hour late; SB9 never
    shop.ship("CUSTOM", t(12, 10), pickup_deadline=t(14, 18))  # its own deadline, not passed
    for i in range(4):
        shop.ship(f"SF{i}", t(12, 20), carrier="sf", shop="专营店")  # due 13th 20:00
    for no in ("SF0", "SF1"):
        shop.scan(no, t(13, 8), "picked_up", carrier="sf")
    shop.ship("PRESALE", t(13, 10), presale=True)  # 72 h: due 16th 10:00
    shop.scan("SF2", t(13, 20), "picked_up", carrier="sf")  # exactly at the deadline: in time
    shop.scan("SF3", t(13, 20, 1), "picked_up", carrier="sf")  # a minute late
    shop.scan("CUSTOM", t(14, 9), "picked_up")
    shop.at(t(14, 12))
    return shop


def test_pickup_rate_counts_parcels_due_in_the_window(store: Store) -> None:
    report = pickup_shop(store).report(days=7)
    assert pickup_of(report) == {
        ("专营店", "sf"): PickupFigures(shipped=4, due=4, in_time=3),
        ("旗舰店", "sandbox"): PickupFigures(shipped=13, due=10, in_time=8),
    }
    assert pickup_of(report)[("旗舰店", "sandbox")].rate == 0.8
    assert pickup_of(report)[("专营店", "sf")].rate == 0.75
    assert report.pickup_total == PickupFigures(shipped=17, due=14, in_time=11)
    assert report_json(report)["pickup"]["total"] == {"shipped": 17, "due": 14, "in_time": 11, "late": 3,
                                                      "rate": 0.7857}  # fmt: skip


def test_pickup_rate_by_shop_and_by_carrier(store: Store) -> None:
    shop = pickup_shop(store)
    assert shop.report(shop="专营店").pickup_total == PickupFigures(4, 4, 3)
    assert shop.report(carrier="sandbox").pickup_total == PickupFigures(13, 10, 8)
    assert shop.report(shop="专营店", carrier="sandbox").pickup_total == PickupFigures(0, 0, 0)


def test_a_parcel_counts_on_the_day_its_pickup_fell_due(store: Store) -> None:
    shop = Shop(store, t(10, 8))
    shop.ship("BEFORE", t(10, 20))  # due 11th 20:00: outside a window starting on the 12th
    shop.ship("EDGE", t(11, 9))  # shipped before the window, due in it (12th 09:00), picked up late
    shop.scan("EDGE", t(12, 10), "picked_up")
    shop.ship("FRESH", t(14, 6))  # picked up, but its deadline (15th 06:00) is ahead: not due yet
    shop.scan("FRESH", t(14, 7), "picked_up")
    shop.at(t(14, 12))
    assert shop.report(days=3).pickup_total == PickupFigures(shipped=1, due=1, in_time=0)
    assert shop.report(days=4).pickup_total == PickupFigures(shipped=2, due=2, in_time=0)
    assert shop.report(days=1).pickup_total == PickupFigures(shipped=1, due=0, in_time=0)
    assert shop.report(days=1).pickup_total.rate is None


# -- intercepts ------------------------------------------------------------------------------


def intercept_shop(store: Store) -> Shop:
    shop = Shop(store, t(11, 8))
    for no in ("P1", "P2", "P3", "P4", "P6"):
        shop.ship(no, t(11, 9))
    shop.ship("P7", t(11, 9), carrier="sf", shop="专营店")
    for no in ("P1", "P2", "P3", "P4", "P6"):
        shop.scan(no, t(11, 12), "picked_up")
    shop.scan("P7", t(11, 12), "picked_up", carrier="sf")
    for no in ("P1", "P2", "P4"):
        shop.answer_later(no)
    shop.answer_later("P7", "sf")
    shop.refund("P1", t(12, 8))
    shop.verdict("P1", t(12, 8, 10), accepted=True)  # 600 s
    shop.ship("P5", t(12, 9))
    shop.refund("P2", t(12, 9))
    shop.verdict("P2", t(12, 10), accepted=False)  # 3600 s, failed
    shop.refund("P5", t(12, 10))  # not picked up: held
    shop.refund("P3", t(12, 11))  # the carrier accepts at once: 0 s
    shop.scan("P6", t(12, 12), "delivered")
    shop.refund("P6", t(12, 13))  # delivered: nothing to intercept
    shop.scan("P1", t(12, 15), "returning")  # succeeded
    shop.scan("P3", t(12, 18), "delivered")  # delivered anyway: failed
    shop.refund("P4", t(13, 8))  # still waiting for the carrier
    shop.refund("P7", t(13, 9))
    shop.verdict("P7", t(13, 9, 30), accepted=True, carrier="sf")  # 1800 s
    shop.scan("P7", t(13, 12), "returning", carrier="sf")  # succeeded
    shop.at(t(14, 12))
    return shop


def test_intercept_success_rate_and_latency(store: Store) -> None:
    report = intercept_shop(store).report()
    total = report.intercepts_total
    assert (total.requested, total.succeeded, total.failed, total.in_progress) == (5, 2, 2, 1)
    assert (total.held, total.skipped) == (1, 1)
    assert total.success_rate == 0.5
    assert total.latencies.exact == (0.0, 600.0, 1800.0, 3600.0)
    assert (total.latency(50), total.latency(90), total.latency(100)) == (600.0, 3600.0, 3600.0)
    by_carrier = {r.carrier: r.figures for r in report.intercepts}
    assert by_carrier["sandbox"] == InterceptFigures(4, 1, 2, 1, 1, Durations([0.0, 600.0, 3600.0]))
    assert by_carrier["sandbox"].success_rate == pytest.approx(1 / 3)
    assert by_carrier["sf"] == InterceptFigures(1, 1, 0, 0, 0, Durations([1800.0]))
    assert report_json(report)["intercepts"]["total"] == {
        "requested": 5, "succeeded": 2, "failed": 2, "in_progress": 1, "held": 1, "skipped": 1, "success_rate": 0.5,
        "latency_seconds": {"p50": 600.0, "p90": 3600.0, "max": 3600.0},
    }  # fmt: skip


def test_intercepts_count_on_the_day_they_were_requested(store: Store) -> None:
    shop = intercept_shop(store)
    today_and_yesterday = shop.report(days=2).intercepts_total  # 13th and 14th: P4 and P7
    assert (today_and_yesterday.requested, today_and_yesterday.succeeded, today_and_yesterday.in_progress) == (2, 1, 1)
    assert today_and_yesterday.latencies.exact == (1800.0,)


# -- anomalies -------------------------------------------------------------------------------


def anomaly_shop(store: Store) -> Shop:
    shop = Shop(store, t(5, 8), QUIET)
    shop.ship("OLD", t(5, 9), amount_fen=10_000)  # overdue on the 6th: before the window
    shop.ship("C", t(12, 9), amount_fen=20_000)
    shop.ship("D", t(12, 9), carrier="sf", shop="专营店", amount_fen=5_000)
    shop.scan("C", t(12, 10), "picked_up")
    shop.scan("D", t(12, 10), "picked_up", carrier="sf")
    shop.scan("C", t(12, 20), "exception", reason="address")  # carrier_exception, acknowledged below
    shop.ship("A", t(13, 8), amount_fen=10_000)  # never scanned: at risk 14th 04:00, overdue 08:00
    shop.ship("B", t(13, 9), amount_fen=100_000)  # at risk 14th 05:00, picked up 06:00
    shop.scan("D", t(13, 10), "returning", carrier="sf")  # returned, not asked for: 20% of ¥50
    shop.scan("B", t(14, 6), "picked_up")
    shop.at(t(14, 12))
    with store.begin() as uow:
        by_rule = {a.rule: a.id for a in uow.anomalies() if a.state != "resolved"}
    assert shop.monitor.acknowledge(by_rule["carrier_exception"])
    assert shop.monitor.resolve(by_rule["returned"])
    return shop


def test_anomalies_opened_in_the_window_by_rule(store: Store) -> None:
    report = anomaly_shop(store).report()
    rows = {r.rule: r.figures for r in report.anomalies}
    assert [r.rule for r in report.anomalies] == ["pickup_at_risk", "pickup_overdue", "carrier_exception", "returned"]
    assert rows["pickup_at_risk"].opened == 2 and rows["pickup_at_risk"].resolved == 2
    assert (rows["pickup_overdue"].opened, rows["pickup_overdue"].open, rows["pickup_overdue"].compensation_fen) == (
        1, 1, 500,  # 5% of ¥100, at least ¥5
    )  # fmt: skip
    assert (rows["carrier_exception"].acknowledged, rows["carrier_exception"].compensation_fen) == (1, 0)
    assert (rows["returned"].resolved, rows["returned"].compensation_fen) == (1, 1_000)  # 20% of ¥50
    total = report.anomalies_total
    assert (total.opened, total.open, total.acknowledged, total.resolved, total.compensation_fen) == (5, 1, 1, 3, 1500)


def test_anomalies_by_carrier(store: Store) -> None:
    report = anomaly_shop(store).report(carrier="sf")
    assert [(r.rule, r.figures.opened) for r in report.anomalies] == [("returned", 1)]
    assert report.anomalies_total.compensation_fen == 1_000


# -- output ----------------------------------------------------------------------------------


def test_render_table_aligns_chinese_by_display_width() -> None:
    text = render_table(["shop", "n"], [["旗舰店", 8], ["a", 10]])
    assert text.splitlines() == ["shop     n", "旗舰店   8", "a       10"]
    assert {cell_len(line) for line in text.splitlines()} == {10}


def test_render_table_prints_cells_as_written_without_colour() -> None:
    text = render_table(["shop", "rate"], [["[bold]旗舰店[/bold]", "95.0%"], [None, "—"]], "lr")
    shop = "[bold]旗舰店[/bold]"  # 19 columns: no markup read, 旗舰店 counted as 6
    assert text.splitlines() == ["shop" + " " * 15 + "   rate", shop + "  95.0%", " " * 19 + "      —"]
    assert "\x1b" not in text


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([30, 10, 20, 40], 50) == 20
    assert percentile([30, 10, 20, 40], 90) == 40
    assert percentile([5], 90) == 5
    assert percentile(list(range(1, 101)), 7) == 7  # the 7th of 100, not the 8th (0.07 * 100 > 7 in floats)


def test_rendered_report(store: Store) -> None:
    text = render_report(pickup_shop(store).report())
    assert "Last 7 day(s): 2026-11-08 – 2026-11-14 (Asia/Shanghai)" in text
    lines = text.splitlines()
    flagship = next(line for line in lines if line.startswith("旗舰店"))
    assert flagship.split() == ["旗舰店", "sandbox", "13", "10", "8", "2", "80.0%"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split() == ["total", "17", "14", "11", "3", "78.6%"]


def test_report_command(store: Store, database_url: str, tmp_path: Any) -> None:
    # The command reads the wall clock, so this scenario happens over the last three real days.
    begin = (SystemClock().now() - timedelta(days=3)).replace(second=0, microsecond=0)
    shop = Shop(store, begin)
    for i in range(5):
        shop.ship(f"SB{i}", begin + timedelta(hours=1))
    for i in range(4):
        shop.scan(f"SB{i}", begin + timedelta(hours=3), "picked_up")
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    runner = CliRunner()
    env = {"PARCEL_MONITOR_DATABASE_URL": None, "PARCEL_MONITOR_CONFIG": None}
    result = runner.invoke(main, ["report", "--config", str(config), "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["pickup"]["total"] == {"shipped": 5, "due": 5, "in_time": 4, "late": 1, "rate": 0.8}
    assert data["window"]["days"] == 7 and data["window"]["timezone"] == "Asia/Shanghai"
    result = runner.invoke(main, ["report", "--config", str(config), "--shop", "旗舰店"], env=env)
    assert result.exit_code == 0, result.output
    assert "80.0%" in result.stdout and "Intercepts" in result.stdout and "Anomalies" in result.stdout


def test_report_on_a_database_without_schema_creates_nothing(tmp_path: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["report", "--config", str(config)], env={"PARCEL_MONITOR_DATABASE_URL": None})
    assert result.exit_code == 0
    assert result.stderr.strip().endswith("nothing to report (`run`, `import` or `db upgrade` create it)")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "empty.db").exists()
