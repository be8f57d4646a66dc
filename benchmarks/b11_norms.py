"""B11 — route norms: how well they learn, what the learned rule buys, and what it costs.

* Accuracy: generated delivery history with known per-route log-normal phases (6 routes, 3
  carriers); the learned p95 of every (route, phase) against the closed-form truth, at 200 and
  at 1,000 samples per route (goal: within 10 % at ≥ 200 samples).
* Warning gained: for parcels that later went ``stalled`` (a transit scan, then nothing), the
  hours from ``slow_for_route`` (last scan + learned p95) to the fixed stall line (48/72/120 h).
* False alarms: healthy parcels drawn from the same distributions, how many get a
  slow_for_route (a gap longer than the learned quantile), per 1,000 parcels, at p95 and p99.
* Learning time: ``learn()`` over N finished parcels (default 1,000,000, 6 scans each) on this
  backend (goal ≤ 30 s).
* Sweep: one ``RuleEngine.sweep()`` over in-flight parcels (1 % due for ``stalled``) with the
  learned norms armed vs none, opening the same anomalies (goal: ≤ +20 %); and the cost per
  slow_for_route opened (1 % due for it alone) against a stalled one.

``--tiny`` (2,000 parcels) is for CI; ``--database-url`` runs on PostgreSQL (a fresh schema,
dropped afterwards); ``--parcels`` sets the learning size; ``--learn-only`` measures the learning
time alone.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import Report, open_database, say, temp_dir

from monitor.clock import SimulatedClock
from monitor.intake.ingest import Ingestor
from monitor.logging import configure
from monitor.norms.learn import learn
from monitor.norms.model import NormBook
from monitor.norms.settings import NormSettings
from monitor.rules.engine import RuleEngine
from monitor.rules.ruleset import build_ruleset
from monitor.rules.timeline import ParcelState
from monitor.store.db import make_engine, upgrade
from monitor.store.models import Parcel
from monitor.store.store import Store
from monitor.testing.history import Pace, write_history

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
H = timedelta(hours=1)
P = Parcel.__table__


def paces() -> list[Pace]:
    """Six routes of three carriers, each phase log-normal (median hours, sigma)."""

    def pace(carrier: str, o: str, d: str, region: str, k: float, sigma: float) -> Pace:
        hours = {"ship_to_pickup": 2, "pickup_to_first_transit": 4, "transit_gap": 6, "ofd_to_delivered": 3}
        return Pace(carrier, o, d, region, {phase: (h * k, sigma) for phase, h in hours.items()})

    return [
        pace("sf", "浙江", "上海", "same_region", 0.6, 0.25), pace("sf", "浙江", "四川", "cross_province", 1.0, 0.3),
        pace("zto", "广东", "北京", "cross_province", 1.2, 0.35), pace("zto", "广东", "新疆", "remote", 2.0, 0.4),
        pace("yto", "江苏", "浙江", "same_region", 0.8, 0.3), pace("yto", "江苏", "甘肃", "remote", 1.8, 0.35),
    ]  # fmt: skip


def fresh(database_url: str | None, tmp: Path, name: str) -> tuple[Store, Any]:
    db = open_database(database_url, tmp, name)
    engine = make_engine(db.url)
    upgrade(engine)
    return Store(engine), db


def accuracy(report: Report, database_url: str | None, tmp: Path, tiny: bool) -> NormBook:
    routes = paces()
    book = NormBook()
    for per_route in (200, 1_000) if not tiny else (200,):
        store, db = fresh(database_url, tmp, f"acc{per_route}.db")
        try:
            with store.begin() as uow:
                write_history(uow, routes, per_route, NOW - timedelta(days=55), timedelta(days=50), seed=per_route)
            learn(store, NOW)
            book = NormBook.load(store)
        finally:
            store.engine.dispose()
            db.cleanup()
        errors = []
        for p in routes:
            for phase in p.phases:
                norm = book.find(p.carrier, p.origin, p.dest, p.region, phase)
                assert norm is not None and norm.level == "route"
                errors.append(abs(norm.p95 / p.truth(phase) - 1))
        worst, mean = max(errors), sum(errors) / len(errors)
        within = sum(e <= 0.10 for e in errors)
        text = f"{worst:.1%} worst, {mean:.1%} mean, {within}/{len(errors)} (route, phase) within 10 %"
        report.add(f"p95_error_max_at_{per_route}", round(worst * 100, 2), f"{text} at {per_route} parcels/route")
        if per_route == 200:
            report.goal("p95_within_10pct_at_200", worst <= 0.10, "learned p95 within 10 % of the truth at 200 samples")
    return book


def warning_and_false_alarms(report: Report, book: NormBook, tiny: bool) -> None:
    """Walk parcels through the real ``deadlines()`` (via Ingestor.columns) with the learned gaps."""
    rules = build_ruleset()
    rng = random.Random(7)
    n = 500 if tiny else 5_000
    gained: list[float] = []
    for p in paces():
        ing = Ingestor(rules, SimulatedClock(NOW), book)
        for _ in range(n // 6):
            last = NOW - timedelta(hours=rng.uniform(0, 10))
            row = _row(p, last)
            cols = ing.columns(row, ParcelState("in_transit", "", None, last, last - 5 * H, None))
            if cols["slow_due"] is not None:
                gained.append((cols["stall_due"] - cols["slow_due"]) / H)
    gained.sort()
    report.add("warning_gained_hours_median", round(gained[len(gained) // 2], 1),
               f"{gained[len(gained) // 2]:.1f} h median, {gained[0]:.1f}–{gained[-1]:.1f} h, for {len(gained)} "
               "parcels that later stalled (slow_for_route before the 48/72/120 h stall line)")  # fmt: skip
    for q in ("p95", "p99"):
        quantile_book = NormBook(book.all(), NormSettings(quantile=q))
        flagged = alarms = 0
        total = 0
        for p in paces():
            gaps = quantile_book.gaps(p.carrier, p.origin, p.dest, p.region)
            for _ in range(n // 6):
                total += 1
                drawn = [("pickup_to_first_transit", p.draw(rng, "pickup_to_first_transit"))]
                drawn += [("transit_gap", p.draw(rng, "transit_gap")) for _ in range(p.transit_scans + 1)]
                drawn += [("ofd_to_delivered", p.draw(rng, "ofd_to_delivered"))]
                late = sum(1 for phase, d in drawn if d.total_seconds() > gaps[phase])
                alarms += late
                flagged += late > 0
        report.add(f"false_alarms_per_1000_at_{q}", round(alarms * 1000 / total, 1),
                   f"{alarms * 1000 / total:.0f} alarms per 1,000 healthy parcels at {q} "
                   f"({flagged * 1000 / total:.0f} parcels per 1,000 with at least one; 5 silences each)")  # fmt: skip


def _row(p: Pace, last: datetime) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(carrier=p.carrier, shop="", shipped_at=last - 10 * H, pickup_deadline=last + 14 * H,
                           promised_delivery=None, region_class=p.region, held=False, origin_province=p.origin,
                           destination_province=p.dest)  # fmt: skip


def learning_time(report: Report, database_url: str | None, tmp: Path, parcels: int) -> None:
    store, db = fresh(database_url, tmp, "learn.db")
    try:
        routes = paces()
        say(f"  loading {parcels:,} finished parcels")
        started = time.perf_counter()
        written = 0
        per_batch = 50_000
        while written < parcels:
            per_route = max(1, min(per_batch, parcels - written) // len(routes))
            with store.begin() as uow:
                written += write_history(uow, routes, per_route, NOW - timedelta(days=58), timedelta(days=55),
                                         seed=written)  # fmt: skip
        load = time.perf_counter() - started
        if db.backend == "postgresql":
            with store.begin() as uow:
                uow.conn.exec_driver_sql("ANALYZE parcel")
                uow.conn.exec_driver_sql("ANALYZE tracking_event")
        cpu = time.process_time()
        result = learn(store, NOW)
        cpu = time.process_time() - cpu
        report.add("learn_parcels", result.parcels, f"{result.parcels:,} delivered parcels ({load:.0f} s to load)")
        report.add("learn_samples", result.samples, f"{result.samples:,} samples, {result.norms} norms")
        report.add("learn_seconds", result.seconds, f"{result.seconds:.1f} s on {db.backend}")
        # SQLite learns in this process: its CPU time against the wall shows how much the machine's load took
        where = "in this process" if db.backend == "sqlite" else "this client only; the work is the server's"
        report.add("learn_cpu_seconds", round(cpu, 2), f"{cpu:.1f} s CPU ({where}); load average "
                   f"{os.getloadavg()[0]:.1f} at the end")  # fmt: skip
        if parcels >= 1_000_000:
            report.goal("learn_1m_within_30s", result.seconds <= 30, f"learning over 1M parcels ≤ 30 s ({db.backend})")
    finally:
        store.engine.dispose()
        db.cleanup()


def _past_stall(p: Pace) -> timedelta:
    """A silence past the route's stall line (48/72 h; 120 h remote)."""
    return 130 * H if p.region == "remote" else 80 * H


def _past_p95(p: Pace) -> timedelta:
    """A silence past every route's learned p95 transit gap (≤ 23 h here), before any stall line."""
    return 30 * H


def _sweep_once(database_url: str | None, tmp: Path, label: str, book: NormBook | None, parcels: int,
                due_silence: Callable[[Pace], timedelta], steady: bool) -> tuple[float, int]:  # fmt: skip
    """One timed sweep over ``parcels`` in flight, 1 % of them silent for ``due_silence(pace)``.

    ``steady``: the due parcels' slow_for_route already fired in an earlier sweep (hours before the stall
    line, as in a running daemon), so their ``slow_due`` is cleared and this sweep opens the same
    anomalies as one without norms.
    """
    rules = build_ruleset()
    store, db = fresh(database_url, tmp, f"sweep-{label}.db")
    try:
        ing = Ingestor(rules, SimulatedClock(NOW), book)
        rng = random.Random(3)
        rows = []
        routes = paces()
        for i in range(parcels):
            p = routes[i % len(routes)]
            due = i % 100 == 0  # 1 %: silent long enough to be due; the rest scanned within the last hours
            last = NOW - (due_silence(p) if due else rng.uniform(0, 4) * H)
            r = _row(p, last)
            cols = ing.columns(r, ParcelState("in_transit", "", None, last, last - 5 * H, None))
            if due and steady:
                cols["slow_due"] = None
            rows.append({"carrier": p.carrier, "tracking_no": f"S{i:08d}", "order_id": f"SO{i:08d}", "shop": "",
                         "shipped_at": r.shipped_at, "pickup_deadline": r.pickup_deadline,
                         "origin_province": p.origin, "destination_province": p.dest, "region_class": p.region,
                         "presale": False, "held": False, "poll_step": 0, "created_at": NOW, "updated_at": NOW,
                         **cols})  # fmt: skip
        with store.begin() as uow:
            for lo in range(0, len(rows), 5_000):
                uow.conn.execute(P.insert(), rows[lo : lo + 5_000])
        engine = RuleEngine(store, rules, SimulatedClock(NOW))
        started = time.perf_counter()
        opened = engine.sweep()
        return time.perf_counter() - started, opened
    finally:
        store.engine.dispose()
        db.cleanup()


def sweep(report: Report, database_url: str | None, tmp: Path, book: NormBook, parcels: int) -> None:
    """The same sweep (same parcels, same 1 % due for ``stalled``) without norms and with them armed.

    Fair: the rule's cost is the extra deadline it sweeps, so both runs open the same anomalies (with norms,
    the due parcels' slow_for_route fired in an earlier sweep). A third run has 1 % due for slow_for_route
    only (silent 30 h: past every route's learned p95, before the 48 h stall line): the cost per anomaly
    it opens, against a stalled one.
    """
    off, n_off = _sweep_once(database_url, tmp, "off", None, parcels, _past_stall, steady=True)
    on, n_on = _sweep_once(database_url, tmp, "on", book, parcels, _past_stall, steady=True)
    slow, n_slow = _sweep_once(database_url, tmp, "slow", book, parcels, _past_p95, steady=False)
    per = {k: t * 1000 / max(n, 1) for k, t, n in (("off", off, n_off), ("on", on, n_on), ("slow", slow, n_slow))}
    report.add("sweep_off_seconds", round(off, 3), f"{off:.2f} s, {n_off:,} stalled (no norms), "
               f"{per['off']:.2f} ms per anomaly")  # fmt: skip
    report.add("sweep_on_seconds", round(on, 3), f"{on:.2f} s, {n_on:,} stalled (slow_for_route armed on every "
               f"parcel; the due ones fired it earlier), {per['on']:.2f} ms per anomaly")  # fmt: skip
    report.add("sweep_on_ratio", round(on / off, 3), f"{on / off:.2f}× over {parcels:,} in-flight parcels, "
               "same due parcels, same anomalies")  # fmt: skip
    report.add("sweep_slow_seconds", round(slow, 3), f"{slow:.2f} s, {n_slow:,} slow_for_route opened, "
               f"{per['slow']:.2f} ms per anomaly ({per['slow'] / per['off']:.2f}× a stalled one)")  # fmt: skip
    report.goal("sweep_within_20pct", on <= off * 1.2 or not parcels >= 100_000, "sweep with slow_for_route ≤ +20 %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="2,000 parcels: for CI")
    ap.add_argument("--parcels", type=int, default=1_000_000, help="finished parcels to learn from")
    ap.add_argument("--sweep-parcels", type=int, default=100_000, help="in-flight parcels of the sweep")
    ap.add_argument("--database-url", help="PostgreSQL URL (default: temporary SQLite files)")
    ap.add_argument("--learn-only", action="store_true", help="only the learning time (no accuracy, no sweep)")
    args = ap.parse_args()
    configure("console", "warning")
    report = Report("B11 route norms")
    with temp_dir("b11-") as tmp:
        if args.learn_only:
            say("B11: learning time")
            learning_time(report, args.database_url, Path(tmp), 2_000 if args.tiny else args.parcels)
            report.print()
            return
        say("B11: accuracy")
        book = accuracy(report, args.database_url, Path(tmp), args.tiny)
        say("B11: warning gained, false alarms")
        warning_and_false_alarms(report, book, args.tiny)
        say("B11: learning time")
        learning_time(report, args.database_url, Path(tmp), 2_000 if args.tiny else args.parcels)
        say("B11: sweep on/off")
        sweep(report, args.database_url, Path(tmp), book, 2_000 if args.tiny else args.sweep_parcels)
    report.print()


if __name__ == "__main__":
    main()
