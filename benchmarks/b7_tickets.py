"""B7 — the ticket queue: one user's open tickets by money at stake, and bulk-closing 500, at volume.

With ``--parcels`` parcels (default 1,000,000, loaded with the driver's executemany) and
``--tickets`` open tickets (default 50,000) on ``--users`` operators (default 20; stakes drawn
at random, seeded) plus as many closed tickets as history:

1. **List.** ``--queries`` times (default 400), a random operator's open tickets
   (``open``, ``processing``, ``reopened``), 50 at a time, most money at stake first, with the
   parcel's keys joined — the API's query, ``Views.tickets``. Goal: p95 ≤ 50 ms. For comparison
   the same page picked from the index (assignee_id, state, stake_fen) first, then joined
   (``list_two_step``).
2. **Bulk close.** ``--rounds`` times (default 5), 500 open tickets closed as done with an outcome
   in one all-or-nothing transaction through ``TicketBook.change_many`` (history rows included,
   and the ticket-sink queue when ``--sinks`` > 0). Goal: ≤ 1 s each.

``--tiny`` (20,000 parcels, 2,000 tickets) is for CI. ``--database-url`` runs on PostgreSQL
(a fresh schema, dropped afterwards). Prints the figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import Report, open_database, percentile, say, temp_dir
from sqlalchemy import text

from benchmarks import run as b1
from monitor.clock import SimulatedClock
from monitor.logging import configure
from monitor.store.db import make_engine, upgrade
from monitor.store.store import Store
from monitor.store.views import Views
from monitor.tickets.book import TicketBook, TicketChange
from monitor.tickets.sinks import SinkQueue

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
WORKING = ("open", "processing", "reopened")
RULES = ("stalled", "pickup_overdue", "lost_suspected", "carrier_exception", "delivery_overdue")
#: The page picked from the ticket index alone, then joined: 51 parcel lookups, not one per open ticket.
LIST_SQL = """
SELECT t.id, t.rule, t.title, t.state, t.stake_fen, t.due_at, t.created_at, p.carrier, p.tracking_no, p.order_id,
       a.login
FROM (SELECT id FROM ticket
      WHERE assignee_id = (SELECT id FROM account WHERE login = :who)
        AND state IN ('open', 'processing', 'reopened')
      ORDER BY stake_fen DESC, id LIMIT 51) page
JOIN ticket t ON t.id = page.id
JOIN parcel p ON p.id = t.parcel_id
LEFT JOIN account a ON a.id = t.assignee_id
ORDER BY t.stake_fen DESC, t.id
"""


PARCEL_SQL = (
    "INSERT INTO parcel (carrier, tracking_no, order_id, shop, shipped_at, pickup_deadline, presale, region_class, "
    "status, status_code, held, poll_step, amount_fen, created_at, updated_at) "
    "VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0})"
)


def load_parcels(store: Store, parcels: int, seed: int) -> float:
    """Insert delivered and in-transit parcels with the driver's executemany, 20,000 per transaction."""
    rng = random.Random(seed)
    sqlite = store.dialect == "sqlite"
    sql = PARCEL_SQL.format("?" if sqlite else "%s")
    start = time.perf_counter()
    raw = store.engine.raw_connection()
    try:
        if sqlite:
            raw.cursor().execute("PRAGMA synchronous=OFF")  # during the load only
        for lo in range(0, parcels, 20_000):
            rows = []
            for n in range(lo, min(lo + 20_000, parcels)):
                shipped = NOW - timedelta(minutes=rng.randrange(10 * 24 * 60))
                values = (shipped, shipped + timedelta(hours=24), shipped)
                at = [v.strftime("%Y-%m-%d %H:%M:%S.%f") for v in values] if sqlite else list(values)
                status = rng.choice(("delivered", "in_transit", "picked_up"))
                amount = rng.randrange(1000, 50_000)
                rows.append(("kuaidi100", f"YT{n:010d}", f"TB{n:010d}", "旗舰店", at[0], at[1], False,
                             "cross_province", status, "", False, 0, amount, at[2], at[2]))  # fmt: skip
            cur = raw.cursor()
            cur.executemany(sql, rows)
            cur.close()
            raw.commit()
            if (lo + 20_000) % 200_000 == 0:
                say(f"  {lo + 20_000:,} parcels")
    finally:
        raw.close()
    return time.perf_counter() - start


def add_people_and_tickets(store: Store, users: int, tickets: int, closed: int, seed: int) -> list[int]:
    """Add operators ``op00`` … and tickets on the first parcels; return the operators' numbers."""
    rng = random.Random(seed)
    created = NOW - timedelta(days=3)
    with store.begin() as uow:
        uow.conn.execute(
            text("INSERT INTO account (login, display_name, mobile, role, disabled, password_hash, created_at, "
                 "updated_at) VALUES (:login, :name, '', 'operator', false, 'x', :at, :at)"),
            [{"login": f"op{i:02d}", "name": f"Operator {i}", "at": created} for i in range(users)],
        )  # fmt: skip
        ids = [r[0] for r in uow.conn.execute(text("SELECT id FROM account ORDER BY id"))]
        numbers = list(range(users))
        parcels = [r[0] for r in uow.conn.execute(text("SELECT id FROM parcel ORDER BY id LIMIT :n"),
                                                  {"n": tickets + closed})]  # fmt: skip
    rows = []
    for n, parcel_id in enumerate(parcels):
        open_ = n < tickets
        state = rng.choice(WORKING) if open_ else rng.choice(("done", "cancelled"))
        at = created + timedelta(minutes=rng.randrange(3 * 24 * 60))
        rows.append({
            "key": f"bench:{parcel_id}", "parcel_id": parcel_id, "rule": rng.choice(RULES), "title": "bench",
            "state": state, "created_at": at, "updated_at": at, "assignee_id": rng.choice(ids),
            "team": "ops", "shop": "旗舰店", "carrier": "kuaidi100", "stake_fen": rng.randrange(500, 10_000),
            "due_at": at + timedelta(hours=8), "closed_at": None if open_ else at + timedelta(hours=2),
            "outcome": None if open_ or state == "cancelled" else "chased",
        })  # fmt: skip
    sql = text(
        "INSERT INTO ticket (idempotency_key, parcel_id, rule, title, state, created_at, updated_at, assignee_id, "
        "team, shop, carrier, stake_fen, due_at, closed_at, outcome, note, reopened_count) VALUES (:key, :parcel_id, "
        ":rule, :title, :state, :created_at, :updated_at, :assignee_id, :team, :shop, :carrier, :stake_fen, :due_at, "
        ":closed_at, :outcome, '', 0)"
    )
    for i in range(0, len(rows), 10_000):
        with store.begin() as uow:
            uow.conn.execute(sql, [_bind(r, uow.dialect) for r in rows[i : i + 10_000]])
    with store.engine.begin() as conn:
        b1.analyze_own_tables(conn)  # as a long-running store's statistics would be
    return numbers


def _bind(row: dict[str, Any], dialect: str) -> dict[str, Any]:
    """Times as the UTCDateTime column stores them (ISO text on SQLite)."""
    if dialect != "sqlite":
        return row
    return {k: (v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v)
            for k, v in row.items()}  # fmt: skip


def through_views(conn: Any, who: int) -> int:
    """The ticket list of the API (``Views.tickets``): one page of a user's active tickets by stake."""
    return len(Views(conn).tickets(state="active", assignee=f"op{who:02d}", limit=50).rows)


def two_step(conn: Any, who: int) -> int:
    """The same page picked from the ticket index first (:data:`LIST_SQL`), for comparison."""
    return min(len(conn.execute(text(LIST_SQL), {"who": f"op{who:02d}"}).all()), 50)


def bench_list(store: Store, users: list[int], queries: int, report: Report, seed: int) -> None:
    for label, run in (("list", through_views), ("list_two_step", two_step)):
        measure(store, label, run, users, queries, report, seed)


def measure(store: Store, label: str, run: Any, users: list[int], queries: int, report: Report, seed: int) -> None:
    rng = random.Random(seed)
    timings = []
    with store.engine.connect() as conn:
        for _ in range(20):  # warm the cache and the plan
            run(conn, users[0])
        for _ in range(queries):
            who = rng.choice(users)
            start = time.perf_counter()
            got = run(conn, who)
            timings.append((time.perf_counter() - start) * 1000)
            assert got == 50, f"expected a full page, got {got}"
        explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
        plan = conn.execute(text(explain + LIST_SQL), {"who": "op00"}).all()
    timings.sort()
    p95 = percentile(timings, 95)
    report.add(f"{label}_p50_ms", round(percentile(timings, 50), 2))
    report.add(f"{label}_p95_ms", round(p95, 2))
    report.add(f"{label}_max_ms", round(timings[-1], 2))
    if label == "list":
        report.goal("list_p95", p95 <= 50, f"list one user's open tickets by stake p95 ≤ 50 ms ({p95:.1f} ms)")
    else:
        report.note(f"plan of {label}: " + " | ".join(str(r[-1]) for r in plan))


def bench_close(store: Store, rounds: int, sinks: int, report: Report) -> None:
    book = TicketBook(None, SimulatedClock(NOW))
    if sinks:
        book.listen(SinkQueue([f"sink{i}" for i in range(sinks)]))
    with store.engine.connect() as conn:
        sql = "SELECT id FROM ticket WHERE state IN ('open', 'processing', 'reopened') ORDER BY id LIMIT :n"
        open_ids = [r[0] for r in conn.execute(text(sql), {"n": rounds * 500})]
    timings = []
    for r in range(rounds):
        batch = open_ids[r * 500 : (r + 1) * 500]
        start = time.perf_counter()
        with store.begin() as uow:
            changed = book.change_many(uow, batch, TicketChange(state="done", outcome="chased"), "bench")
        timings.append(time.perf_counter() - start)
        assert changed == len(batch) == 500, changed
    timings.sort()
    report.add("bulk_close_500_s", [round(t, 3) for t in timings], ", ".join(f"{t:.3f}" for t in timings) + " s")
    report.goal("bulk_close", timings[-1] <= 1.0, f"bulk-close 500 tickets ≤ 1 s (worst {timings[-1]:.3f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=50_000, help="open tickets (default 50,000)")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sinks", type=int, default=1, help="ticket sinks queued per history row (default 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--tiny", action="store_true", help="20,000 parcels and 2,000 tickets, for CI")
    args = parser.parse_args(argv)
    if args.tiny:
        args.parcels, args.tickets, args.queries, args.rounds = 20_000, 2_000, 100, 2
    configure("console", "warning")
    with temp_dir("b7-") as tmp:
        db = open_database(args.database_url, Path(tmp))
        try:
            engine = make_engine(db.url)
            upgrade(engine)
            store = Store(engine)
            report = Report(f"B7 tickets ({db.backend}, {args.parcels:,} parcels, {args.tickets:,} open tickets)")
            say(f"loading {args.parcels:,} parcels …")
            seconds = load_parcels(store, args.parcels, args.seed)
            report.add("load_parcels_s", round(seconds, 1))
            start = time.perf_counter()
            users = add_people_and_tickets(store, args.users, args.tickets, args.tickets, args.seed)
            report.add("load_tickets_s", round(time.perf_counter() - start, 1))
            bench_list(store, users, args.queries, report, args.seed)
            bench_close(store, args.rounds, args.sinks, report)
            engine.dispose()
            report.print()
        finally:
            db.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
