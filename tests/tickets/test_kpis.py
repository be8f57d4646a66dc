"""Ticket KPIs: opened/closed per day, time to close per rule, outcomes, overdue — report, API, daily rollup."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from click.testing import CliRunner
from sqlalchemy import update

from monitor.cli import main
from monitor.clock import SimulatedClock, SystemClock
from monitor.kpi.reports import build_report, render_report, report_json
from monitor.kpi.rollup import rollup_kpis
from monitor.store.kpi import KD
from monitor.store.store import Store, UnitOfWork
from tests.api.server import START, running_api

CST = timezone(timedelta(hours=8))
DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=CST)
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=CST)


def ticket(
    uow: UnitOfWork, n: int, rule: str, opened: datetime, *, closed: datetime | None = None, outcome: str | None = None,
    state: str | None = None, due: timedelta | None = None, shop: str = "旗舰店",
) -> None:  # fmt: skip
    """Add a parcel and one ticket on it."""
    number = f"K{n}"
    uow.insert_parcels([{"carrier": "sf", "tracking_no": number, "order_id": f"O{n}", "shop": shop,
                         "shipped_at": opened, "pickup_deadline": opened + timedelta(hours=24), "created_at": opened,
                         "updated_at": opened}])  # fmt: skip
    parcel = uow.parcels_by_keys([("sf", number)])[("sf", number)]
    uow.insert_ticket(
        {
            "idempotency_key": f"t:{number}",
            "parcel_id": parcel.id,
            "rule": rule,
            "title": rule,
            "state": state or ("done" if closed else "open"),
            "created_at": opened,
            "updated_at": closed or opened,
            "closed_at": closed,
            "outcome": outcome,
            "shop": shop,
            "carrier": "sf",
            "due_at": opened + due if due else None,
        }
    )


def seed(store: Store, base: datetime = DAY1) -> None:
    """Day 1: 3 stalled (closed in 1 h, 2 h, 10 h), 1 intercept_failed cancelled; day 2: 2 lost_suspected open.

    Overdue: the 10 h stalled ticket (8 h deadline) went overdue on day 1; one lost_suspected (4 h) is overdue now.
    """
    with store.begin() as uow:
        ticket(uow, 1, "stalled", base, closed=base + timedelta(hours=1), outcome="chased", due=timedelta(hours=8))
        ticket(uow, 2, "stalled", base, closed=base + timedelta(hours=2), outcome="chased", due=timedelta(hours=8))
        ticket(uow, 3, "stalled", base, closed=base + timedelta(hours=10), outcome="buyer_contacted",
               due=timedelta(hours=8))  # fmt: skip
        ticket(uow, 4, "intercept_failed", base, closed=base + timedelta(minutes=20), state="cancelled",
               due=timedelta(minutes=30))  # fmt: skip
        day2 = base + timedelta(days=1)
        ticket(uow, 5, "lost_suspected", day2, due=timedelta(hours=4))
        ticket(uow, 6, "lost_suspected", day2, closed=day2 + timedelta(hours=3), outcome="reshipped",
               due=timedelta(hours=4))  # fmt: skip


def rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in data["tickets"]["rows"]}


def test_figures_per_rule_and_per_day(store: Store) -> None:
    seed(store)
    data = report_json(build_report(store, SimulatedClock(NOW), 7, CST))
    by_rule = rows(data)
    assert by_rule["stalled"] == {"rule": "stalled", "opened": 3, "closed": 3, "went_overdue": 1, "overdue_now": 0,
                                  "close_seconds": {"p50": 7200.0, "p90": 36000.0},
                                  "outcomes": {"buyer_contacted": 1, "chased": 2}}  # fmt: skip
    assert by_rule["intercept_failed"]["outcomes"] == {"cancelled": 1}
    assert by_rule["lost_suspected"]["overdue_now"] == 1 and by_rule["lost_suspected"]["went_overdue"] == 1
    assert by_rule["lost_suspected"]["outcomes"] == {"reshipped": 1}
    days = {d["day"]: (d["opened"], d["closed"]) for d in data["tickets"]["days"]}
    assert days["2026-11-02"] == (4, 4) and days["2026-11-03"] == (2, 1) and days["2026-11-04"] == (0, 0)
    total = data["tickets"]["total"]
    assert (total["opened"], total["closed"], total["overdue_now"]) == (6, 5, 1)
    text = render_report(build_report(store, SimulatedClock(NOW), 7, CST))
    stalled = next(line for line in text.splitlines() if line.startswith("stalled") and "chased" in line)
    assert stalled.split()[:7] == ["stalled", "3", "3", "1", "0", "2h00m", "10h00m"]


def test_filters_by_shop(store: Store) -> None:
    seed(store)
    with store.begin() as uow:
        ticket(uow, 9, "stalled", DAY1, shop="二店")
    data = report_json(build_report(store, SimulatedClock(NOW), 7, CST, shop="二店"))
    assert data["tickets"]["total"]["opened"] == 1


def test_the_rollup_keeps_the_figures_after_a_purge(store: Store) -> None:
    seed(store)
    clock = SimulatedClock(NOW)
    before = report_json(build_report(store, clock, 7, CST))["tickets"]
    for day in (DAY1.date(), (DAY1 + timedelta(days=1)).date()):
        rollup_kpis(store, clock, day, CST)
    with store.begin() as uow:
        stored = {r.day: json.loads(r.ticket_figures) for r in uow.conn.execute(KD.select())}
        assert stored[DAY1.date()]["stalled"]["close_seconds"] == [3600.0, 7200.0, 36000.0]
        # what a purge does: the day's rows become the only record, and its tickets go
        uow.conn.execute(update(KD).values(purged_at=NOW))
        uow.conn.exec_driver_sql("UPDATE ticket SET created_at = created_at - INTERVAL '30 days'"
                                 if uow.dialect == "postgresql" else
                                 "UPDATE ticket SET created_at = datetime(created_at, '-30 days')")  # fmt: skip
        uow.conn.exec_driver_sql("UPDATE ticket SET closed_at = NULL, due_at = NULL")
    after = report_json(build_report(store, clock, 7, CST))["tickets"]
    overdue_now = {r["rule"]: r.pop("overdue_now") for r in before["rows"] + after["rows"]}
    assert overdue_now  # the figure of the moment is live; the rest comes from kpi_daily
    for data in (before, after):
        data["total"].pop("overdue_now")
    assert after["days"] == before["days"] and after["rows"] == before["rows"]


def test_the_reports_api(store: Store) -> None:
    seed(store, START - timedelta(days=2))
    with running_api(store) as api, api.client() as http:
        section = http.get("/api/v1/reports/tickets", params={"days": 7}).json()
        assert section["tickets"]["total"]["opened"] == 6 and set(section) == {"window", "filters", "tickets"}
        assert http.get("/api/v1/reports").json()["tickets"]["total"]["closed"] == 5


def test_the_report_command(store: Store, database_url: str, tmp_path: Any) -> None:
    seed(store, (SystemClock().now() - timedelta(days=2)).replace(second=0, microsecond=0))  # the command's clock
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    env = {"PARCEL_MONITOR_DATABASE_URL": None, "PARCEL_MONITOR_CONFIG": None}
    result = CliRunner().invoke(main, ["report", "--config", str(config)], env=env)
    assert result.exit_code == 0, result.output
    assert "Tickets, by rule" in result.stdout and "Tickets per day" in result.stdout
    assert "reshipped 1" in result.stdout


def test_many_times_to_close_roll_up_as_a_histogram(store: Store) -> None:
    """Past 64 in a cell the rollup keeps a histogram: the report's p50/p90 stay within 2 %, old lists still read."""
    minutes = [7 * n + n * n % 13 for n in range(1, 101)]  # 100 tickets closed on day 1, 7 min to ~12 h after opening
    with store.begin() as uow:
        for n, m in enumerate(minutes):
            ticket(uow, 100 + n, "stalled", DAY1, closed=DAY1 + timedelta(minutes=m), outcome="chased")
    seconds = sorted(m * 60.0 for m in minutes)
    exact = {"p50": seconds[49], "p90": seconds[89]}  # nearest rank of 100
    clock = SimulatedClock(NOW)
    rollup_kpis(store, clock, DAY1.date(), CST)
    with store.begin() as uow:
        (stored,) = [json.loads(r.ticket_figures) for r in uow.conn.execute(KD.select())]
        assert isinstance(stored["stalled"]["close_seconds"], dict) and stored["stalled"]["close_seconds"]["n"] == 100
        assert (stored["stalled"]["close_seconds"]["min"], stored["stalled"]["close_seconds"]["max"]) == (
            seconds[0], seconds[-1])  # fmt: skip
        uow.conn.execute(update(KD).values(purged_at=NOW))  # the day's row is now the only record
        uow.conn.exec_driver_sql("DELETE FROM ticket")

    def figures() -> dict[str, float]:
        row = rows(report_json(build_report(store, clock, 7, CST)))["stalled"]
        assert row["closed"] == 100
        return row["close_seconds"]

    from_histogram = figures()
    for pct, want in exact.items():
        assert abs(from_histogram[pct] - want) <= want * 0.02, (pct, from_histogram[pct], want)
    with store.begin() as uow:  # a row the rollup wrote before the histogram: every value, as a list
        old = {"stalled": {"opened": 100, "closed": 100, "went_overdue": 0, "close_seconds": seconds,
                           "outcomes": {"chased": 100}}}  # fmt: skip
        uow.conn.execute(update(KD).values(ticket_figures=json.dumps(old)))
    assert figures() == from_histogram
