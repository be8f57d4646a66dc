"""B12 — pickup-rate forecast accuracy: mean absolute error per horizon day on a held-out month.

Generated history with a known pattern: one shop ships ``--volume`` parcels a day times a
weekday factor (Mon 1.0 … Fri 1.2, Sat 0.8, Sun 0.7) with ±10 % noise, between 09:00 and
21:00 local, each due for pickup 24 h later. Pickup behaviour: a parcel is picked up in time
with a daily probability that drifts slowly (96 % ± 1.5 %) and dips to 88 % for one week in
the middle of the held-out month (a carrier's bad week); an in-time pickup comes 0.5–23 h after
shipping, a late one 24.5–48 h after, and 3 % of the late ones never. Eight weeks of warm-up
history, then every day of the held-out month at 10:00 the real :func:`build_forecast` runs
on a store holding exactly what was known then: ended days in ``kpi_daily`` (the rollup's
final figures), and the parcels shipped by then, their pickup scans only if they came by then.
Each forecast of day T+k (k = 1…7) is compared with the true 30-day rate at the end of that day.

Printed: mean absolute error of the point, in percentage points, per horizon day; how often
the truth fell in the low–high range; the same MAE for the naive forecast "the rate stays as
it is now"; and the time one forecast takes. Goals (for the figures' note, not CI): MAE ≤ 0.5 pp
at day 1 and ≤ 1.5 pp at day 7, the range covering the truth ≥ 90 % of the time.

``--tiny`` (volume 20, 10 forecast days) is for CI; ``--database-url`` runs on PostgreSQL (a
fresh schema, dropped afterwards).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from common import Report, open_database, say, temp_dir
from sqlalchemy import delete

from monitor.clock import SimulatedClock
from monitor.kpi.forecast import HORIZON_DAYS, WINDOW_DAYS, build_forecast
from monitor.logging import configure
from monitor.store.db import make_engine, upgrade
from monitor.store.kpi import KpiSlice, open_kpi
from monitor.store.store import P, Store

TZ = ZoneInfo("Asia/Shanghai")
SHOP = "bench"
WEEKDAY = (1.0, 1.1, 1.05, 1.0, 1.2, 0.8, 0.7)
WARM_UP_DAYS = 56
FIRST = date(2026, 8, 3)  # a Monday
AT_HOUR = 10


@dataclass(frozen=True, slots=True)
class Parcel:
    shipped_at: datetime
    deadline: datetime
    picked_up_at: datetime | None


def generate(days: int, volume: int, dip: tuple[date, date], seed: int = 12) -> list[Parcel]:
    """Ship and pick up ``days`` days of parcels by the pattern of the module docstring."""
    rnd = random.Random(seed)
    parcels: list[Parcel] = []
    drift = 0.0
    for n in range(days):
        day = FIRST + timedelta(days=n)
        drift = max(-0.015, min(0.015, drift + rnd.uniform(-0.004, 0.004)))
        p = 0.88 if dip[0] <= day <= dip[1] else 0.96 + drift
        count = round(volume * WEEKDAY[day.weekday()] * rnd.uniform(0.9, 1.1))
        start = datetime(day.year, day.month, day.day, 9, tzinfo=TZ)
        for _ in range(count):
            shipped = start + timedelta(minutes=rnd.uniform(0, 12 * 60))
            if rnd.random() < p:
                picked: datetime | None = shipped + timedelta(hours=rnd.uniform(0.5, 23))
            elif rnd.random() < 0.03:
                picked = None
            else:
                picked = shipped + timedelta(hours=rnd.uniform(24.5, 48))
            parcels.append(Parcel(shipped, shipped + timedelta(hours=24), picked))
    return parcels


def by_day(parcels: list[Parcel]) -> dict[date, tuple[int, int]]:
    """Return the final (due, in time) of each local deadline day."""
    found: dict[date, list[int]] = {}
    for p in parcels:
        figures = found.setdefault(p.deadline.astimezone(TZ).date(), [0, 0])
        figures[0] += 1
        figures[1] += p.picked_up_at is not None and p.picked_up_at <= p.deadline
    return {d: (v[0], v[1]) for d, v in found.items()}


def truth(days: dict[date, tuple[int, int]], x: date) -> float:
    """Return the true 30-day rate at the end of day ``x``."""
    window = [days.get(x - timedelta(days=n), (0, 0)) for n in range(WINDOW_DAYS)]
    return sum(w[1] for w in window) / sum(w[0] for w in window)


def known_at(store: Store, parcels: list[Parcel], now: datetime) -> None:
    """Leave in the parcel table only what was known at ``now``: shipped by then, scans that came by then."""
    today = now.astimezone(TZ).date()
    start = datetime(today.year, today.month, today.day, tzinfo=TZ)
    rows = [
        {"carrier": "sandbox", "tracking_no": f"B{i}", "order_id": f"O{i}", "shop": SHOP, "shipped_at": p.shipped_at,
         "pickup_deadline": p.deadline, "picked_up_at": p.picked_up_at if p.picked_up_at and p.picked_up_at <= now
         else None, "created_at": p.shipped_at, "updated_at": now}
        for i, p in enumerate(parcels) if p.shipped_at <= now and p.deadline >= start
    ]  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(delete(P))
        if rows:
            conn.execute(P.insert(), rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="volume 20, 10 forecast days: for CI")
    ap.add_argument("--volume", type=int, default=400, help="parcels on a Monday (default 400)")
    ap.add_argument("--database-url", help="PostgreSQL URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    volume, held_out = (20, 10) if args.tiny else (args.volume, 30)
    configure("console", "warning")
    report = Report("B12 forecast accuracy")
    total_days = WARM_UP_DAYS + held_out + HORIZON_DAYS + 1
    month = FIRST + timedelta(days=WARM_UP_DAYS)
    dip = (month + timedelta(days=held_out // 2 - 3), month + timedelta(days=held_out // 2 + 3))
    say(f"B12: generating {total_days} days of parcels (volume {volume}) …")
    parcels = generate(total_days, volume, dip)
    final = by_day(parcels)
    errors: dict[int, list[float]] = {k: [] for k in range(1, HORIZON_DAYS + 1)}
    naive: dict[int, list[float]] = {k: [] for k in range(1, HORIZON_DAYS + 1)}
    inside: dict[int, list[bool]] = {k: [] for k in range(1, HORIZON_DAYS + 1)}
    took: list[float] = []
    with temp_dir("b12-") as tmp:
        db = open_database(args.database_url, Path(tmp))
        engine = make_engine(db.url)
        try:
            upgrade(engine)
            store = Store(engine)
            rolled_at = datetime(2026, 1, 1, tzinfo=TZ)
            with open_kpi(store) as kpi:  # the rollup's final figures; a forecast reads only days before its today
                for day, (due, in_time) in sorted(final.items()):
                    kpi.replace_day(day, [KpiSlice(SHOP, "sandbox", pickup_due=due, picked_up_in_time=in_time)],
                                    rolled_at)  # fmt: skip
            for n in range(held_out):
                today = month + timedelta(days=n)
                now = datetime(today.year, today.month, today.day, AT_HOUR, tzinfo=TZ)
                known_at(store, parcels, now)
                started = time.perf_counter()
                forecast = build_forecast(store, SimulatedClock(now), TZ, 0.95)
                took.append(time.perf_counter() - started)
                (shop,) = forecast.shops
                current = shop.current or 0.0
                for d in shop.days:
                    k = (d.day - today).days
                    real = truth(final, d.day)
                    assert d.point is not None and d.low is not None and d.high is not None
                    errors[k].append(abs(d.point - real) * 100)
                    naive[k].append(abs(current - real) * 100)
                    inside[k].append(d.low - 1e-9 <= real <= d.high + 1e-9)
        finally:
            engine.dispose()
            db.cleanup()
    report.add("backend", db.backend)
    report.add("parcels", len(parcels), f"{len(parcels):,} over {total_days} days ({WARM_UP_DAYS} warm-up)")
    report.add(
        "forecast_days", held_out, f"{held_out} (a forecast at {AT_HOUR}:00 each day; bad week {dip[0]} – {dip[1]})"
    )
    mae = {k: round(statistics.fmean(v), 3) for k, v in errors.items()}
    base = {k: round(statistics.fmean(v), 3) for k, v in naive.items()}
    cover = {k: round(sum(v) / len(v), 3) for k, v in inside.items()}
    for k in errors:
        report.add(f"mae_pp_day{k}", mae[k], f"{mae[k]:.3f} pp (naive 'stays as now': {base[k]:.3f} pp), "
                   f"truth in range {cover[k]:.0%}")  # fmt: skip
    overall = sum(sum(v) for v in inside.values()) / sum(len(v) for v in inside.values())
    report.add(
        "in_range_share", round(overall, 3), f"{overall:.1%} of {sum(len(v) for v in inside.values())} forecasts"
    )
    report.add("forecast_ms_median", round(statistics.median(took) * 1000, 2))
    report.goal("mae_day1", mae[1] <= 0.5, "MAE day 1 ≤ 0.5 pp")
    report.goal("mae_day7", mae[HORIZON_DAYS] <= 1.5, "MAE day 7 ≤ 1.5 pp")
    report.goal("coverage", overall >= 0.9, "truth in the range ≥ 90 %")
    report.print()


if __name__ == "__main__":
    main()
