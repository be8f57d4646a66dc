"""B13 — the console's 拦截 and 快递公司 reads at volume (issue 13 items 5 and 7): index-bound, never a parcel scan.

    .venv/bin/python benchmarks/b13_ops_pages.py                  # 1,000,000 parcels, 20,000 intercepts
    .venv/bin/python benchmarks/b13_ops_pages.py --parcels 100000 --intercepts 5000
    .venv/bin/python benchmarks/b13_ops_pages.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/b13_ops_pages.py --tiny           # 2,000 parcels, 200 intercepts (CI)

The store: ``--parcels`` parcels from benchmarks/run.py's generator (five carriers, three shops),
``--intercepts`` refund-only intercepts on random parcels, each with its refund row and (for the
called ones) its outbox action; 10 % failed, the rest spread over the other states; usage rows
and health rows for the carriers; 50 unknown codes. Timed (``--samples`` each, in one read
connection, as the pages run them): the 拦截 page's first page (failed first), page 10 by
keyset, one state, one shop, the counts per state (all, and for one shop), and the 快递公司
page's read (health, today's usage, unknown codes; the count of parcels watched per carrier,
which the page keeps for a minute, is timed on its own). Prints p50 /
p95 in ms and each query's plan (``EXPLAIN QUERY PLAN`` / ``EXPLAIN``), then one JSON line.
No goal in the issue for these pages; the queue's (first page ≤ 200 ms p95) is the yardstick.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import Report, open_database, percentile, say, temp_dir
from sqlalchemy import Connection, event, insert
from sqlalchemy.engine import Engine

from benchmarks import run as b1
from monitor.store.db import make_engine, upgrade
from monitor.store.models import Action, CarrierHealth, CarrierUsage, Intercept, Refund, UnknownCode
from monitor.store.ops import carrier_standings, intercept_counts, intercept_page, unknown_codes, watched_counts

NOW = b1.NOW
GOAL_MS = 200.0
#: State shares of the intercepts that are not failed (failed: 10 %).
STATES = (("succeeded", 40), ("accepted", 15), ("pending", 5), ("requested", 3), ("held", 10), ("joined", 7),
          ("skipped", 10))  # fmt: skip
CHUNK = 10_000


def build(engine: Engine, parcels: int, intercepts: int, seed: int) -> None:
    """Load the parcels, then intercepts with their refunds and carrier calls, usage, health and unknown codes."""
    say(f"loading {parcels:,} parcels …")
    b1.load_parcels(engine, parcels, 0)
    rng = random.Random(seed)
    chosen = rng.sample(range(1, parcels + 1), min(parcels, intercepts))
    states = [s for s, share in STATES for _ in range(share)]
    refunds, rows, actions = [], [], []
    for n, parcel_id in enumerate(chosen, start=1):
        state = "failed" if rng.random() < 0.1 else rng.choice(states)
        at = NOW - timedelta(minutes=rng.randrange(1, 30 * 24 * 60))
        refunds.append({"refund_id": f"RF{n}", "order_id": f"B{parcel_id}", "type": "refund_only", "received_at": at})
        decided = at + timedelta(seconds=rng.uniform(0.2, 5)) if state in ("accepted", "succeeded", "failed") else None
        rows.append({"refund_id": f"RF{n}", "parcel_id": parcel_id, "state": state, "reason": "", "requested_at": at,
                     "decided_at": decided, "attempt": 1, "state_since": decided or at})  # fmt: skip
        if state in ("requested", "pending", "accepted", "succeeded", "failed"):
            done = decided or (at + timedelta(seconds=1) if state == "pending" else None)
            actions.append({"idempotency_key": f"intercept:parcel:{parcel_id}:1", "kind": "intercept",
                            "parcel_id": parcel_id, "refund_id": f"RF{n}", "rule": "refund", "target": "",
                            "state": "done" if done else "pending", "attempts": 1, "next_attempt_at": at,
                            "last_error": "", "created_at": at, "done_at": done})  # fmt: skip
    say(f"adding {len(rows):,} intercepts, {len(actions):,} carrier calls …")
    for table, batch in ((Refund, refunds), (Intercept, rows), (Action, actions)):
        for lo in range(0, len(batch), CHUNK):
            with engine.begin() as conn:
                conn.execute(insert(table.__table__), batch[lo : lo + CHUNK])
    with engine.begin() as conn:  # what the store writes with each intercept (migration 0016 fills old rows so)
        conn.exec_driver_sql(
            "UPDATE intercept SET shop = (SELECT parcel.shop FROM parcel WHERE parcel.id = intercept.parcel_id), "
            "carrier = (SELECT parcel.carrier FROM parcel WHERE parcel.id = intercept.parcel_id)"
        )
    day = NOW.date().isoformat()
    with engine.begin() as conn:
        conn.execute(
            insert(CarrierUsage.__table__), [{"carrier": c, "day": day, "requests": 1000} for c in b1.CARRIERS]
        )
        conn.execute(insert(CarrierHealth.__table__), [
            {"carrier": c, "state": "up", "failures": 0, "last_error": "", "alerted": "up", "updated_at": NOW,
             "last_success_at": NOW} for c in b1.CARRIERS
        ])  # fmt: skip
        conn.execute(insert(UnknownCode.__table__), [
            {"carrier": b1.CARRIERS[i % 5], "code": f"X{i}", "text_sample": "未知状态", "first_seen": NOW,
             "last_seen": NOW, "count": i + 1} for i in range(50)
        ])  # fmt: skip


def plan(conn: Connection, sql: str, params: Any) -> str:
    """Return the database's plan of one statement, one line per step."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
        return " | ".join(str(r[-1]) for r in rows)
    rows = conn.exec_driver_sql(f"EXPLAIN {sql}", params).all()
    return " | ".join(str(r[0]).strip() for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--intercepts", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--tiny", action="store_true", help="2,000 parcels, 200 intercepts, 10 samples (CI)")
    args = parser.parse_args()
    if args.tiny:
        args.parcels, args.intercepts, args.samples = 2_000, 200, 10
    with temp_dir("b13-") as tmp:
        db = open_database(args.database_url, Path(tmp))
        try:
            run(db.backend, db.url, args)
        finally:
            db.cleanup()


def run(backend: str, url: str, args: argparse.Namespace) -> None:
    engine = make_engine(url)
    upgrade(engine)
    start = time.perf_counter()
    build(engine, args.parcels, args.intercepts, args.seed)
    with engine.begin() as conn:
        b1.analyze_own_tables(conn)  # as a long-running store's statistics would be
    report = Report(f"B13 console 拦截 / 快递公司 reads ({backend})")
    report.add("parcels", args.parcels, f"{args.parcels:,}")
    report.add("intercepts", args.intercepts, f"{args.intercepts:,}")
    report.add("build_s", round(time.perf_counter() - start, 1))
    shop = b1.SHOPS[0]
    day = NOW.date().isoformat()
    with engine.connect() as conn:
        cursor = None
        for _ in range(9):
            cursor = intercept_page(conn, limit=100, cursor=cursor).next_cursor
        tenth = cursor
        cases: dict[str, Callable[[], Any]] = {
            "first_page": lambda: intercept_page(conn, limit=100),
            "page_10": lambda: intercept_page(conn, limit=100, cursor=tenth),
            "state_accepted": lambda: intercept_page(conn, state="accepted", limit=100),
            "shop": lambda: intercept_page(conn, shop=shop, limit=100),
            "counts": lambda: intercept_counts(conn),
            "counts_shop": lambda: intercept_counts(conn, shop=shop),
            "carriers": lambda: (carrier_standings(conn, list(b1.CARRIERS), day, watched), unknown_codes(conn)),
            "watched_counts": lambda: watched_counts(conn),  # kept for a minute by the page: no goal
        }
        watched = watched_counts(conn)
        statements: dict[str, list[tuple[float, str, Any]]] = {}
        current: list[str] = []

        def before(conn_: Any, cursor_: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            context._b13_start = time.perf_counter()

        def after(conn_: Any, cursor_: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            if current:
                spent = time.perf_counter() - context._b13_start
                statements.setdefault(current[0], []).append((spent, statement, parameters))

        for name, fn in cases.items():
            fn()  # warm
            times = []
            for _ in range(args.samples):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            p50, p95 = percentile(times, 50), percentile(times, 95)
            report.add(
                f"{name}_ms", {"p50": round(p50, 2), "p95": round(p95, 2)}, f"p50 {p50:.2f} ms, p95 {p95:.2f} ms"
            )
            if name != "watched_counts":
                report.goal(f"{name}_p95", p95 <= GOAL_MS, f"{name} p95 ≤ {GOAL_MS:.0f} ms")
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        for name, fn in cases.items():
            current[:] = [name]
            fn()
        current.clear()
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        for name, timed in statements.items():
            spent, sql, params = max(timed, key=lambda item: item[0])
            report.note(f"plan of {name}'s slowest statement ({spent * 1000:.2f} ms): {plan(conn, sql, params)}")
    engine.dispose()
    report.print()


if __name__ == "__main__":
    main()
