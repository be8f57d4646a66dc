"""B10 — the ops console's pages at volume: the work queue, one parcel and the KPIs (issue 13, "Speed").

    .venv/bin/python benchmarks/b10_console.py                    # 1,000,000 parcels, 20,000 open anomalies
    .venv/bin/python benchmarks/b10_console.py --parcels 100000 --anomalies 5000
    .venv/bin/python benchmarks/b10_console.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/b10_console.py --tiny             # ~2,000 parcels, seconds (CI)

The store: ``--parcels`` parcels from benchmarks/run.py's generator (B1's mix, five carriers,
three shops, loaded by worker processes with the driver's executemany), ``--anomalies`` open
anomalies on random parcels and as many resolved ones as history, a ticket for each (the open
ones active: 40 % unassigned, the rest spread over ``--users`` operators; the resolved ones done
or cancelled), their ticket history, the monitor's activity rows, carrier scans (~5 per parcel
with an anomaly and per 20th parcel), and 30 days of ``kpi_daily`` rollup per shop and carrier.
On SQLite the file is kept in ``--cache-dir`` (default: the system's temporary folder), named by
its sizes, and reused by the next run (``--rebuild`` to build again; migrations added since are
applied to it). PostgreSQL (``--database-url``) gets a fresh schema, dropped at the end.

Timed: the real API app (``monitor.api.create_app``, console included) on uvicorn in a thread
of this process, on a store with the daemon's 4 database threads and a simulated clock at the
data's "now". An operator logs in through ``/login`` (console session cookie); then
``--samples`` requests of each page, interleaved: ``/queue`` (views mine, unassigned, all, and
all with a rule + carrier filter), ``/parcel/{carrier}/{tracking_no}`` (half on parcels with an
anomaly, half on any parcel) and ``/kpis``. **Server time** is the ``Server-Timing: app;dur=``
the access log middleware adds to every answer (request in → headers out, no network).
Goals: queue first page p95 ≤ 200 ms, parcel page ≤ 100 ms, KPI page ≤ 300 ms. Then one more
pass with the SQL statements of each page timed, printing the slowest statement of each page
and its plan (``EXPLAIN QUERY PLAN`` / ``EXPLAIN``). Prints the figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from common import Report, open_database, percentile, say
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine

from benchmarks import run as b1
from monitor.api import ApiContext, create_app
from monitor.clock import SimulatedClock
from monitor.config import ApiSettings
from monitor.kpi.window import WINDOW
from monitor.logging import configure
from monitor.metrics import Metrics
from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.db import make_engine, upgrade
from monitor.store.durations import Durations
from monitor.store.models import Account, Activity, Anomaly, KpiDaily, Ticket, TicketEvent, TrackingEventRow
from monitor.store.store import Store

#: The data's "now" (B1's sweep moment): the simulated clock of the app stands here.
NOW = b1.NOW
#: Bump when the data the builder writes changes, so an old cached file is not reused.
BUILD = 3  # 3: kpi_daily's times to close and latencies as the rollup writes them (Durations: histograms past 64)
MIGRATIONS = Path(__file__).resolve().parents[1] / "monitor" / "store" / "migrations" / "versions"
LOGIN = "op00"
PASSWORD = "bench-password-b10"
RULES = {"pickup_overdue": "critical", "stalled": "warning", "lost_suspected": "critical",
         "carrier_exception": "warning", "delivery_overdue": "info"}  # fmt: skip
GOALS_MS = {"queue": 200.0, "parcel": 100.0, "kpis": 300.0}
#: What is timed: a label, the goal it counts against, and how to pick the next path.
PAGES = ("queue mine", "queue unassigned", "queue all", "queue filtered", "parcel (anomaly)", "parcel (any)", "kpis",
         "kpis (new minute)", "kpis (first view after idle)")  # fmt: skip
#: Today's KPI figures are one count shared by every view, at most a minute old (monitor/kpi/window.py):
#: "kpis" is a team's screens within the minute (charts kept); "kpis (new minute)" moves the app's clock
#: past the minute and first does what the daemon's kpi_today job does in the background (recount today,
#: untimed; its own time is printed as "today's count"), so the view builds the charts again from it;
#: "kpis (first view after idle)" moves the clock with no job run, so the view counts today itself (as the
#: first view does after nobody looked for `WINDOW.WANTED`, when the job stopped counting, or with no daemon).
LOCATIONS = b1.LOCATIONS
CHUNK = 10_000


# -- building the store ---------------------------------------------------------------------


@dataclass
class Built:
    """What the timing needs to know about the data: parcels to open, and the filters to try."""

    anomaly_parcels: list[tuple[str, str]] = field(default_factory=list)
    parcels: int = 0


def _insert(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (values converted by the columns' own types) in transactions of :data:`CHUNK`."""
    for lo in range(0, len(rows), CHUNK):
        with engine.begin() as conn:
            conn.execute(insert(table), rows[lo : lo + CHUNK])


def build(engine: Engine, parcels: int, anomalies: int, users: int, seed: int) -> float:
    """Load parcels (B1's generator), then anomalies, tickets, history, scans and the KPI rollup."""
    start = time.perf_counter()
    say(f"loading {parcels:,} parcels …")
    with indexes_after(engine, "parcel"):
        b1.load_parcels(engine, parcels, 0)
    rng = random.Random(seed)
    store = Store(engine)
    clock = SimulatedClock(NOW - timedelta(days=30))
    People(store, clock).add(LOGIN, PASSWORD, by=CLI, role="operator", display_name="Operator 0")
    with engine.connect() as conn:
        hashed = conn.execute(text("SELECT password_hash FROM account WHERE login = :l"), {"l": LOGIN}).scalar_one()
        top = conn.execute(text("SELECT max(id) FROM parcel")).scalar_one()
        chosen = rng.sample(range(1, top + 1), min(top, 2 * anomalies))
        keys = {}
        for lo in range(0, len(chosen), 500):
            part = ", ".join(map(str, chosen[lo : lo + 500]))
            sql = f"SELECT id, carrier, tracking_no, shop, amount_fen FROM parcel WHERE id IN ({part})"
            keys |= {r.id: r for r in conn.execute(text(sql))}
    at = clock.now()
    _insert(engine, Account.__table__, [
        {"login": f"op{i:02d}", "display_name": f"Operator {i}", "mobile": "", "role": "operator", "disabled": False,
         "password_hash": hashed, "created_at": at, "updated_at": at} for i in range(1, users)
    ])  # fmt: skip
    with engine.connect() as conn:
        operators = [r[0] for r in conn.execute(text("SELECT id FROM account ORDER BY id"))]
    say(f"adding {anomalies:,} open and {anomalies:,} resolved anomalies with tickets …")
    anomaly_rows, ticket_rows = [], []
    for n, parcel_id in enumerate(chosen):
        parcel = keys[parcel_id]
        is_open = n < anomalies
        rule = rng.choice(list(RULES))
        opened = NOW - timedelta(minutes=rng.randrange(10, (3 if is_open else 28) * 24 * 60))
        comp = None if rng.random() < 0.3 else rng.randrange(500, 3_000)
        resolved = None if is_open else opened + timedelta(hours=rng.uniform(1, 48))
        anomaly_rows.append({
            "id": n + 1, "parcel_id": parcel_id, "rule": rule, "severity": RULES[rule],
            "state": rng.choice(("open", "open", "acknowledged")) if is_open else "resolved", "compensation_fen": comp,
            "detail": "bench", "opened_at": opened, "acknowledged_at": None, "resolved_at": resolved,
            "resolution": None if is_open else "delivered",
        })  # fmt: skip
        assignee = None if is_open and rng.random() < 0.4 else rng.choice(operators)
        state = rng.choice(("open", "processing", "reopened", "open")) if is_open else rng.choice(("done", "cancelled"))
        ticket_rows.append({
            "id": n + 1, "idempotency_key": f"anomaly:{n + 1}", "parcel_id": parcel_id, "anomaly_id": n + 1,
            "rule": rule, "title": f"{rule} {parcel.tracking_no}", "state": state, "created_at": opened,
            "assignee_id": assignee, "team": "ops", "shop": parcel.shop, "carrier": parcel.carrier,
            "stake_fen": comp if comp is not None else parcel.amount_fen, "due_at": opened + timedelta(hours=8),
            "outcome": None if is_open or state == "cancelled" else "chased", "note": "",
            "closed_at": resolved, "reopened_count": 1 if state == "reopened" else 0, "updated_at": resolved or opened,
        })  # fmt: skip
    _insert(engine, Anomaly.__table__, anomaly_rows)
    _insert(engine, Ticket.__table__, ticket_rows)
    say("adding ticket history, activity and carrier scans …")
    history, activity = [], []
    for t in ticket_rows:
        history.append({"ticket_id": t["id"], "at": t["created_at"], "actor": "rules", "kind": "opened",
                        "from_value": None, "to_value": "open", "body": ""})  # fmt: skip
        if t["assignee_id"] is not None:
            history.append({"ticket_id": t["id"], "at": t["created_at"] + timedelta(minutes=5), "actor": "system",
                            "kind": "assigned", "from_value": None, "to_value": "op", "body": ""})  # fmt: skip
        if t["closed_at"] is not None:
            history.append({"ticket_id": t["id"], "at": t["closed_at"], "actor": LOGIN, "kind": "state",
                            "from_value": "open", "to_value": t["state"], "body": ""})  # fmt: skip
        parcel = keys[t["parcel_id"]]
        data = {"carrier": parcel.carrier, "tracking_no": parcel.tracking_no, "rule": t["rule"],
                "anomaly_id": t["anomaly_id"]}  # fmt: skip
        activity.append({"at": t["created_at"], "event": "anomaly_opened", "parcel_id": t["parcel_id"],
                         "data": json.dumps(data, ensure_ascii=False)})  # fmt: skip
        if t["closed_at"] is not None:
            activity.append({"at": t["closed_at"], "event": "anomaly_resolved", "parcel_id": t["parcel_id"],
                             "data": json.dumps(data | {"resolution": "delivered"}, ensure_ascii=False)})  # fmt: skip
    _insert(engine, TicketEvent.__table__, history)
    _insert(engine, Activity.__table__, activity)
    scanned = sorted(set(chosen) | set(range(1, top + 1, 20)))
    scans = []
    for parcel_id in scanned:
        when = NOW - timedelta(hours=rng.uniform(30, 120))
        for k in range(rng.randrange(3, 8)):
            when += timedelta(hours=rng.uniform(2, 10))
            scans.append({"parcel_id": parcel_id, "fingerprint": f"{parcel_id:010x}{k:02x}", "time": when,
                          "status": "in_transit", "reason": None, "raw_code": "1002", "location": rng.choice(LOCATIONS),
                          "raw_text": f"快件已到达【{rng.choice(LOCATIONS)}】", "received_at": when})  # fmt: skip
    _insert(engine, TrackingEventRow.__table__, scans)
    _insert(engine, KpiDaily.__table__, kpi_rows(rng, anomalies))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # ids were given: move the sequences past them
            for table in ("anomaly", "ticket"):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
        b1.analyze_own_tables(conn)  # as a long-running store's statistics would be
    return time.perf_counter() - start


@contextmanager
def indexes_after(engine: Engine, table: str) -> Iterator[None]:
    """Drop ``table``'s secondary indexes for a bulk load and build them again after it, as a DBA loads.

    The generator's rows come in random time order, so keeping the time indexes during the load
    would cost a random B-tree insert per row and index (a daemon inserts shipments in time order).
    Unique indexes stay: they are constraints.
    """
    if engine.dialect.name == "sqlite":
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
    else:
        sql = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t AND schemaname = current_schema()"
    with engine.begin() as conn:
        found = [(n, d) for n, d in conn.execute(text(sql), {"t": table}) if "UNIQUE" not in d.upper()]
        found = [(n, d) for n, d in found if not n.endswith("_pkey")]
        for name, _ in found:
            conn.execute(text(f'DROP INDEX "{name}"'))
    try:
        yield
    finally:
        started = time.perf_counter()
        with engine.begin() as conn:
            for _, ddl in found:
                conn.execute(text(ddl))
        say(f"  {len(found)} indexes of {table} built again in {time.perf_counter() - started:.1f} s")


def kpi_rows(rng: random.Random, anomalies: int) -> list[dict[str, Any]]:
    """30 local days of the daily rollup for every shop and carrier, figures in the rollup's own shapes."""
    rows = []
    today = (NOW + timedelta(hours=8)).date()
    cells = [(shop, carrier) for shop in b1.SHOPS for carrier in b1.CARRIERS]
    per_cell = max(1, anomalies // 10 // len(cells))  # anomalies opened per cell and day
    for back in range(1, 31):
        day: date = today - timedelta(days=back)
        for shop, carrier in cells:
            shipped = rng.randrange(1_500, 2_500)
            due = shipped - rng.randrange(0, 50)
            opened = {rule: {"opened": per_cell, "open": 0, "acknowledged": 0, "resolved": per_cell,
                             "compensation_fen": per_cell * 1_200} for rule in RULES}  # fmt: skip
            figures = {rule: {"opened": per_cell, "closed": per_cell, "went_overdue": per_cell // 10,
                              "close_seconds": Durations(round(rng.uniform(600, 86_400), 3)
                                                         for _ in range(per_cell)).to_json(),
                              "outcomes": {"chased": per_cell}} for rule in RULES}  # fmt: skip
            rows.append({
                "day": day, "shop": shop, "carrier": carrier, "shipped": shipped, "pickup_due": due,
                "picked_up_in_time": int(due * rng.uniform(0.9, 0.99)), "delivered": int(shipped * 0.95),
                "anomalies_opened": json.dumps(opened), "intercepts_requested": 20, "intercepts_succeeded": 17,
                "intercepts_failed": 2, "intercepts_held": 1, "intercepts_skipped": 0,
                "intercept_latencies": json.dumps(Durations(round(rng.uniform(1, 40), 3) for _ in range(20)).to_json()),
                "ticket_figures": json.dumps(figures), "rolled_up_at": NOW,
            })  # fmt: skip
    return rows


def sample_parcels(engine: Engine, rng: random.Random, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Random parcels with an open anomaly, and random parcels of any kind, as (carrier, tracking_no)."""
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT parcel_id FROM anomaly WHERE state != 'resolved'"))]
        top = conn.execute(text("SELECT max(id) FROM parcel")).scalar_one()
        wanted = rng.sample(ids, min(n, len(ids))) + [rng.randint(1, top) for _ in range(n)]
        found: dict[int, tuple[str, str]] = {}
        for lo in range(0, len(wanted), 500):
            part = wanted[lo : lo + 500]
            stmt = text(f"SELECT id, carrier, tracking_no FROM parcel WHERE id IN ({', '.join(map(str, part))})")
            found |= {r.id: (r.carrier, r.tracking_no) for r in conn.execute(stmt)}
    keys = [found[i] for i in wanted if i in found]
    return keys[: min(n, len(ids))], keys[min(n, len(ids)) :]


# -- the app ------------------------------------------------------------------------------


class Server:
    """The real app (API and console) on uvicorn, in a thread with its own event loop, as the daemon serves it."""

    def __init__(self, engine: Engine) -> None:
        self.store = Store(engine, threads=4)  # the daemon's default [database] threads
        clock = self.clock = SimulatedClock(NOW)
        monitor = Monitor(self.store, build_ruleset({}), clock, {}, {})
        ctx = ApiContext(monitor=monitor, store=self.store, clock=clock, settings=ApiSettings(token="b10-token"),
                         adapters={}, metrics=Metrics(self.store))  # fmt: skip
        self.timezone = ctx.timezone
        config = uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0, log_config=None, access_log=False,
                                lifespan="off")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise SystemExit("the app did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.store.close()


def log_in(http: httpx.Client) -> None:
    """Log in as the operator through the login form, as a browser does (double-submit CSRF, session cookie)."""
    form = http.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if form.status_code != 200 or token is None:
        raise SystemExit(f"GET /login answered {form.status_code} without a CSRF field")
    answer = http.post("/login", data={"csrf": token.group(1), "login": LOGIN, "password": PASSWORD, "next": "/queue"})
    if answer.status_code != 303 or "pm_session" not in http.cookies:
        raise SystemExit(f"POST /login answered {answer.status_code}: {answer.text[:300]}")


class Statements:
    """Time every SQL statement the engine runs while switched on (one profiling pass, not the timed one)."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.seen: list[tuple[float, str, Any]] = []
        self._local = threading.local()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        self._local.start = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if self.on:
            self.seen.append(((time.perf_counter() - self._local.start) * 1000, statement, params))

    @contextmanager
    def recording(self) -> Iterator[list[tuple[float, str, Any]]]:
        self.seen = []
        self.on = True
        try:
            yield self.seen
        finally:
            self.on = False


def explain(engine: Engine, statement: str, params: Any) -> str:
    """The plan of one captured statement, on one line."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            if sqlite:
                cur.execute("EXPLAIN QUERY PLAN " + statement, params)
                return " | ".join(str(r[-1]) for r in cur.fetchall())
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            return "\n    ".join(str(r[0]) for r in cur.fetchall())
        finally:
            cur.close()


# -- timing -------------------------------------------------------------------------------


def paths(
    rng: random.Random, anomaly: list[tuple[str, str]], anyone: list[tuple[str, str]], clock: SimulatedClock,
    refresh: Callable[[], None],
) -> dict[str, Callable[[], str]]:  # fmt: skip
    def new_minute() -> str:
        clock.advance(timedelta(seconds=61))
        refresh()
        return "/kpis"

    def first_view_after_idle() -> str:
        clock.advance(timedelta(seconds=61))
        return "/kpis"

    def parcel(keys: list[tuple[str, str]]) -> Callable[[], str]:
        return lambda: "/parcel/{}/{}".format(*rng.choice(keys))

    return {
        "queue mine": lambda: "/queue?view=mine",
        "queue unassigned": lambda: "/queue?view=unassigned",
        "queue all": lambda: "/queue?view=all",
        "queue filtered": lambda: f"/queue?view=all&rule={rng.choice(list(RULES))}&carrier={rng.choice(b1.CARRIERS)}",
        "parcel (anomaly)": parcel(anomaly),
        "parcel (any)": parcel(anyone),
        "kpis": lambda: "/kpis",
        "kpis (new minute)": new_minute,
        "kpis (first view after idle)": first_view_after_idle,
    }


def server_ms(answer: httpx.Response) -> float:
    name, _, value = answer.headers.get("server-timing", "").partition(";dur=")
    if name != "app":
        raise SystemExit(f"{answer.request.url.path}: no Server-Timing header ({dict(answer.headers)})")
    return float(value)


def check(label: str, answer: httpx.Response) -> None:
    """A page that did not render is a broken benchmark (exit 1), not a slow page."""
    if answer.status_code != 200:
        raise SystemExit(f"{label}: {answer.request.url} answered {answer.status_code}: {answer.text[:500]}")
    if label.startswith("queue") and label != "queue filtered" and "<tr data-id=" not in answer.text:
        raise SystemExit(f"{label}: {answer.request.url} shows no ticket")


def bench(base: str, server: Server, engine: Engine, samples: int, seed: int, report: Report) -> None:
    rng = random.Random(seed)
    anomaly, anyone = sample_parcels(engine, rng, samples)
    clock, store = server.clock, server.store
    counts: list[float] = []

    def refresh() -> None:  # the daemon's kpi_today job (monitor/daemon/jobs.py), run here between views
        started = time.perf_counter()
        WINDOW.recount(store, clock.now(), server.timezone)
        counts.append((time.perf_counter() - started) * 1000)

    pick = paths(rng, anomaly, anyone, clock, refresh)
    statements = Statements(engine)
    with httpx.Client(base_url=base, timeout=120, follow_redirects=False) as http:
        log_in(http)
        kpis = http.get("/kpis")
        built = kpis.status_code == 200
        pages = [p for p in PAGES if not p.startswith("kpis") or built]
        if not built:
            report.note(f"/kpis: not built (answered {kpis.status_code}); not timed")
        for label in pages:  # warm: the first request of a page compiles its templates and statements
            for _ in range(3):
                check(label, http.get(pick[label]()))
        timed: dict[str, list[float]] = {label: [] for label in pages}
        client: dict[str, list[float]] = {label: [] for label in pages}
        order = [label for label in pages for _ in range(samples)]
        rng.shuffle(order)
        say(f"timing {len(order):,} requests ({samples} per page, interleaved) …")
        for n, label in enumerate(order, start=1):
            if n % 200 == 0:
                say(f"  {n:,} / {len(order):,} requests")
            path = pick[label]()  # before the clock starts: the new minute's count is the daemon's job, not the view's
            started = time.perf_counter()
            answer = http.get(path)
            client[label].append((time.perf_counter() - started) * 1000)
            check(label, answer)
            timed[label].append(server_ms(answer))
        for label in pages:
            figures(report, label, sorted(timed[label]), sorted(client[label]))
        if counts:
            counts.sort()
            p50, p95 = round(percentile(counts, 50), 1), round(percentile(counts, 95), 1)
            what = "today's count (the daemon's kpi_today job, off the request path)"
            report.add("todays_count_ms", {"p50": p50, "p95": p95}, f"{what}: p50 {p50} / p95 {p95} ms")
        for label in pages:  # one profiled request per page: where its time goes
            path = pick[label]()  # (the new minute's count runs here, as the daemon's job: not the page's SQL)
            with statements.recording() as seen:
                total = server_ms(http.get(path))
            seen.sort(key=lambda s: -s[0])
            sql_ms = sum(s[0] for s in seen)
            report.note(f"{label}: {len(seen)} statements, {sql_ms:.1f} ms of SQL in {total:.1f} ms server time")
            for ms, statement, params in seen[:1]:
                one_line = " ".join(statement.split())
                report.note(f"  slowest {ms:.1f} ms: {one_line[:300]}{' …' if len(one_line) > 300 else ''}")
                report.note(f"  plan: {explain(engine, statement, params)}")


def figures(report: Report, label: str, server: list[float], client: list[float]) -> None:
    goal = GOALS_MS[label.split()[0]]
    key = re.sub(r"[^a-z]+", "_", label).strip("_")
    p50, p95, top = percentile(server, 50), percentile(server, 95), server[-1]
    report.add(f"{key}_ms", {"p50": p50, "p95": p95, "max": top, "client_p95": round(percentile(client, 95), 1)},
               f"p50 {p50:.1f} / p95 {p95:.1f} / max {top:.1f} ms server time "
               f"(client p95 {percentile(client, 95):.1f} ms; goal p95 ≤ {goal:.0f} ms)")  # fmt: skip
    report.goal(f"{key}_p95", p95 <= goal, f"{label} p95 ≤ {goal:.0f} ms ({p95:.1f} ms)")


# -- main ---------------------------------------------------------------------------------


def schema_key() -> str:
    """A digest of the migrations: a cached file built before one changed (or was added) is built again."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--anomalies", type=int, default=20_000, help="open anomalies, each with a ticket")
    parser.add_argument("--users", type=int, default=20, help="operators the assigned tickets are spread over")
    parser.add_argument("--samples", type=int, default=200, help="requests timed per page (default 200)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL URL (default: a cached SQLite file)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "parcel-monitor-b10")
    parser.add_argument("--rebuild", action="store_true", help="build the SQLite file again even if cached")
    parser.add_argument("--tiny", action="store_true", help="2,000 parcels, 200 anomalies, 20 samples: CI")
    args = parser.parse_args(argv)
    if args.tiny:
        args.parcels, args.anomalies, args.samples = 2_000, 200, 20
    configure("console", "warning")  # the access log's info lines would time the terminal
    with tempfile.TemporaryDirectory(prefix="b10-") as tmp:
        db = open_database(args.database_url, Path(tmp))
        name = f"{db.backend}, {args.parcels:,} parcels, {args.anomalies:,} open anomalies"
        report = Report(f"B10 console pages ({name})")
        try:
            url, fresh = db.url, True
            if db.backend == "sqlite" and not args.tiny:
                args.cache_dir.mkdir(parents=True, exist_ok=True)
                path = (
                    args.cache_dir
                    / f"b10-v{BUILD}-{schema_key()}-{args.parcels}-{args.anomalies}-{args.users}-{args.seed}.db"
                )
                done = path.with_suffix(".built")
                if args.rebuild or not done.exists():
                    for stale in (path, done, Path(f"{path}-wal"), Path(f"{path}-shm")):
                        stale.unlink(missing_ok=True)
                else:
                    fresh = False
                url = f"sqlite:///{path}"
            engine = make_engine(url)
            upgrade(engine)  # on a cached file: the migrations added since it was built
            if fresh:
                seconds = build(engine, args.parcels, args.anomalies, args.users, args.seed)
                report.add("build_s", round(seconds, 1))
                if db.backend == "sqlite" and not args.tiny:
                    done.write_text(f"built in {seconds:.1f} s\n", encoding="utf-8")
            else:
                report.note(f"store: reused {url.removeprefix('sqlite:///')} (--rebuild to build it again)")
            server = Server(engine)
            with server as base:
                bench(base, server, engine, args.samples, args.seed, report)
            engine.dispose()
            report.print()
        finally:
            db.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
