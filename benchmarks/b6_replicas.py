"""B6 — three replicas on one PostgreSQL: claims/s, polls per parcel, intercepts and alerts once, kill -9 takeover.

    .venv/bin/python benchmarks/b6_replicas.py                       # 300,000 parcels, 1,000 refunds (minutes)
    .venv/bin/python benchmarks/b6_replicas.py --parcels 50000 --refunds 500
    .venv/bin/python benchmarks/b6_replicas.py --tiny                # seconds (CI: does the script still run?)
    .venv/bin/python benchmarks/b6_replicas.py --database-url postgresql+psycopg://user@host:5432/db

PostgreSQL only: a schema of its own in ``--database-url`` (default the local server's ``test``
database), migrated, loaded with COPY straight into the parcel table and dropped at the end.
``--parcels`` Kuaidi100 parcels are due for a poll at once (shipped 3 h ago, not picked up yet;
one in 1,000 answers a 疑难 scan, which opens ``carrier_exception``; one in 1,000 was shipped
25 h ago and is unknown to the carrier, so the sweep opens ``pickup_overdue``), plus
``--refunds`` SF parcels in transit, not due. Three ``parcel-monitor run`` child processes
(monitor/testing/daemon.py) share the database; each polls its own local Kuaidi100
(carriers/testing/kuaidi100.py ``Fleet``, the three in one separate process), so every
query is known by replica, number and time. 丰桥 (carriers/testing/sf.py ``FakeSF``) takes
the intercepts and answers route queries as in transit; alerts go to a signed webhook
(monitor/testing/receivers.py ``FakeWebhook``). While they poll, signed refund-only requests
(docs/api.md) arrive at the replicas in turn, one order in ten twice (at another replica).

Phase A: the three drain the due parcels; claims/s is distinct numbers asked / seconds from the
first query to the last. Then the intercepts and alerts are counted once the outbox is quiet.
Phase B: a few rounds' worth of parcels are made due again, replica 1 is SIGKILLed while its
round is in flight, and the others' first queries of its leased parcels give the takeover time
(goal ≤ 2 × the lease). Reference: the claim statement alone (``UnitOfWork.claim_for_poll``,
3 processes, same round size) on the same table. The script exits 0 whatever the figures;
1 when it breaks.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import random
import threading
import time
import traceback
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import PG_URL, Report, cpu_count, cpu_seconds, open_database, percentile, say, temp_dir

GOAL_CLAIMS = 2_000.0
GOAL_TAKEOVER = 2.0  # × the lease
REPLICAS = 3
CST = 8  # SF's acceptTime is local time in China
WEBHOOK_SECRET = "whsec_b6_51d0"
K100 = "ZT6"  # Kuaidi100 numbers: ZT6 + 9 digits
SF_PREFIX = "SF16"


def kind_of(number: str) -> str:
    """What the carrier says of a Kuaidi100 number: most picked up and moving, a few in trouble."""
    i = int(number[len(K100) :])
    return "exception" if i % 1000 == 1 else "unknown" if i % 1000 == 2 else "moving"


# -- the fleets: three local Kuaidi100s, in their own process ---------------------------------


def serve_fleets(conn: Any, delay: float, replicas: int) -> None:
    """Child process: one Fleet per replica; answer commands about who asked what, when (epoch seconds)."""
    from carriers.testing.kuaidi100 import Fleet, Scan

    base = datetime.now(UTC)

    def script(number: str, _now: datetime) -> list[Scan] | None:
        if not number.startswith(K100):
            return None
        kind = kind_of(number)
        if kind == "unknown":
            return None
        scans: list[Scan] = [(base - timedelta(hours=2), "1", "【杭州市】快递员已揽收"),
                             (base - timedelta(hours=1), "0", "快件已到达【杭州转运中心】")]  # fmt: skip
        if kind == "exception":
            scans.append((base - timedelta(minutes=20), "2", "【杭州市】快件异常，疑难件"))
        return scans

    asked: list[dict[str, list[float]]] = [defaultdict(list) for _ in range(replicas)]
    fleets = [Fleet(script, delay=delay) for _ in range(replicas)]
    for k, fleet in enumerate(fleets):

        def seen(request: Any, k: int = k) -> None:
            number = json.loads(request.form().get("param", "{}")).get("num", "")
            asked[k][number].append(time.time())

        fleet.on_request = seen
        fleet.start()
    conn.send([f.url for f in fleets])
    while True:
        command, *args = conn.recv()
        if command == "asked":  # every query since epoch seconds `args[0]`: per replica, number -> times
            since = args[0]
            conn.send([{n: [t for t in ts if t >= since] for n, ts in list(a.items()) if ts and ts[-1] >= since}
                       for a in asked])  # fmt: skip
        elif command == "count":  # queries at replica args[0] since args[1]
            k, since = args
            conn.send(sum(1 for ts in list(asked[k].values()) for t in ts if t >= since))
        elif command == "stop":
            for fleet in fleets:
                fleet.stop()
            conn.send("bye")
            return


class Fleets:
    def __init__(self, delay: float, replicas: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve_fleets, args=(child, delay, replicas), daemon=True)
        self.proc.start()
        if not self.conn.poll(60):
            self.proc.kill()
            raise RuntimeError("the fake Kuaidi100 process did not start")
        self.urls: list[str] = self.conn.recv()
        self._lock = threading.Lock()

    def ask(self, *command: Any) -> Any:
        with self._lock:
            self.conn.send(command)
            return self.conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self.proc.join(10)


# -- 丰桥 and the alert receiver, in this process ---------------------------------------------


class Carriers:
    """FakeSF answering routes as in transit and accepting intercepts; a webhook receiver for alerts."""

    def __init__(self) -> None:
        from carriers.testing.sf import INTERCEPT, ROUTES, FakeSF
        from monitor.testing.receivers import FakeWebhook

        self.sf = FakeSF()
        self.sf.dedupe = True  # a requestID seen before is answered A1007, as 丰桥 does
        self.sf.on(ROUTES, self._routes)
        self.sf.on(INTERCEPT, lambda fake, seen: fake.reply("intercept_accepted"))
        self.receiver = FakeWebhook(WEBHOOK_SECRET)
        # Alerts are counted as the receiver judged them when they arrived (signature and 300 s freshness),
        # not by FakeWebhook.documents(), which re-checks freshness at counting time: after a phase of many
        # minutes that aged the early alerts out of the count (74 of 600 "alerted" at 300,000 parcels).
        self.accepted: list[dict[str, Any]] = []
        self.rejected = 0
        answer = self.receiver.answer

        def judged(request: Any) -> Any:
            if request.path == self.receiver.path:
                if self.receiver.verified(request):
                    self.accepted.append(request.json())
                else:
                    self.rejected += 1
            return answer(request)

        self.receiver.answer = judged  # type: ignore[method-assign]
        self.now = datetime.now(UTC)

    def __enter__(self) -> Carriers:
        self.sf.start()
        self.receiver.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sf.stop()
        self.receiver.stop()

    def _routes(self, fake: Any, seen: Any) -> Any:
        from carriers.testing.sf import route_answer

        def local(at: datetime) -> str:
            return f"{at + timedelta(hours=CST):%Y-%m-%d %H:%M:%S}"

        routes = [
            {"acceptAddress": "杭州市", "acceptTime": local(self.now - timedelta(hours=3)),
             "remark": "顺丰速运 已收取快件", "opCode": "50"},
            {"acceptAddress": "杭州市", "acceptTime": local(self.now - timedelta(hours=1)),
             "remark": "快件到达 【杭州转运中心】", "opCode": "31"},
        ]  # fmt: skip
        return route_answer({n: routes for n in seen.msg()["trackingNumber"]})

    def intercepts(self) -> dict[str, set[str]]:
        """Waybill number -> the requestIDs of the checked intercept calls."""
        calls: dict[str, set[str]] = defaultdict(set)
        for seen in self.sf.seen:
            if seen.form.get("serviceCode") == "EXP_RECE_WANTED_INTERCEPT":
                calls[json.loads(seen.form["msgData"])["waybillNo"]].add(seen.form["requestID"])
        return calls

    def alerts(self) -> Counter[int]:
        """Anomaly id -> firing alerts received (carrier-health alerts, without an anomaly, left out)."""
        counts: Counter[int] = Counter()
        for document in list(self.accepted):
            for alert in document.get("alerts", []):
                if alert.get("state") == "firing" and alert.get("anomaly_id"):
                    counts[alert["anomaly_id"]] += 1
        return counts


# -- the database -----------------------------------------------------------------------------


def load(url: str, parcels: int, refunds: int, now: datetime, seed: int) -> float:
    """COPY the parcels straight into the parcel table: Kuaidi100 ones due now, SF ones in transit."""
    from benchmarks.run import COLUMN_DEFAULTS, PARCEL_COLUMNS, STATE_DEFAULTS
    from monitor.clock import SimulatedClock
    from monitor.intake.shipments import Shipment, ShipmentBook
    from monitor.rules.ruleset import build_ruleset
    from monitor.rules.timeline import ParcelState, Schedule, deadlines
    from monitor.store.db import make_engine

    rng = random.Random(seed)
    rules = build_ruleset({})
    book = ShipmentBook(None, rules, SimulatedClock(now))  # type: ignore[arg-type]  # row() needs no store
    names = [c.name for c in PARCEL_COLUMNS]

    def rows() -> Any:
        for i in range(parcels):
            number = f"{K100}{i:09d}"
            hours = 25.0 if kind_of(number) == "unknown" else 3.0
            shipment = Shipment(order_id=f"B6K{i:09d}", carrier="kuaidi100", tracking_no=number,
                                shipped_at=now - timedelta(hours=hours), shop="旗舰店", origin_province="浙江",
                                destination_province="广东", amount_fen=9_900)  # fmt: skip
            row = COLUMN_DEFAULTS | STATE_DEFAULTS | book.row(shipment)
            row["next_poll_at"] = now - timedelta(seconds=rng.uniform(0, 60))
            yield tuple(row[n] for n in names)
        t = rules.thresholds("sf", "")
        for i in range(refunds):
            shipped = now - timedelta(hours=4)
            shipment = Shipment(order_id=f"B6S{i:07d}", carrier="sf", tracking_no=f"{SF_PREFIX}{i:011d}",
                                shipped_at=shipped, shop="旗舰店", origin_province="浙江",
                                destination_province="广东", amount_fen=8_800)  # fmt: skip
            row = COLUMN_DEFAULTS | STATE_DEFAULTS | book.row(shipment)
            state = ParcelState(status="in_transit", status_code="31", last_event_at=now - timedelta(hours=1),
                                picked_up_at=now - timedelta(hours=3))  # fmt: skip
            schedule = Schedule(shipped, row["pickup_deadline"], None, row["region_class"], held=False)
            row |= {"status": state.status, "status_code": state.status_code, "last_event_at": state.last_event_at,
                    "picked_up_at": state.picked_up_at, **deadlines(state, schedule, t),
                    "next_poll_at": now + timedelta(hours=3), "last_polled_at": now}  # fmt: skip
            yield tuple(row[n] for n in names)

    engine = make_engine(url, statement_timeout=0)  # a 300,000-row COPY can outlast 30 s
    start = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()  # type: ignore[union-attr]
        with cur.copy(f"COPY parcel ({', '.join(names)}) FROM STDIN") as copy:
            for n, row in enumerate(rows(), start=1):
                copy.write_row(row)
                if n % 100_000 == 0:
                    say(f"  {n:,} parcels copied")
        raw.commit()
        cur.execute("ANALYZE parcel")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - start


def query(url: str, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    from monitor.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def claim_worker(job: tuple[str, int, float, float]) -> tuple[int, float, float]:
    """Reference: claim due Kuaidi100 parcels in rounds of ``size`` until none is left; (claimed, first, last)."""
    from monitor.store.db import make_engine
    from monitor.store.store import Store

    url, size, lease_s, at = job
    engine = make_engine(url)
    store = Store(engine)
    now = datetime.fromtimestamp(at, UTC)
    claimed, first, last = 0, time.time(), time.time()
    try:
        while True:
            with store.begin() as uow:
                rows = uow.claim_for_poll("kuaidi100", now, size, now + timedelta(seconds=lease_s),
                                          risk_until=now + timedelta(hours=6))  # fmt: skip
            if not rows:
                return claimed, first, last
            claimed += len(rows)
            last = time.time()
    finally:
        engine.dispose()


# -- the replicas -----------------------------------------------------------------------------


def write_config(path: Path, url: str, fleet_url: str, sf_url: str, webhook_url: str, args: argparse.Namespace) -> None:
    from carriers.testing.sf import PARTNER, RETURN_ADDRESS_TOML

    path.write_text(f"""
[database]
url = "{url}"

[carriers.kuaidi100]
customer_env = "B6_K100_CUSTOMER"
key_env = "B6_K100_KEY"
company = "zhongtong"
base_url = "{fleet_url}"
timeout_seconds = 10

[carriers.sf]
partner_id = "{PARTNER}"
check_word_env = "B6_SF_CHECK_WORD"
base_url = "{sf_url}"
timeout_seconds = 10
{RETURN_ADDRESS_TOML}
[[alerts.channels]]
type = "webhook"
name = "hook"
webhook = "{webhook_url}"
secret_env = "B6_WEBHOOK_SECRET"

[polling]
tick_seconds = {args.tick}
round_limit = 5000

[polling.carriers.kuaidi100]
requests_per_second = {args.rate:g}

[log]
format = "json"
level = "warning"
""", encoding="utf-8")  # fmt: skip


class Replicas:
    def __init__(self, tmp: Path, url: str, fleets: Fleets, carriers: Carriers, args: argparse.Namespace) -> None:
        from carriers.testing.kuaidi100 import CUSTOMER, KEY
        from carriers.testing.sf import CHECK_WORD
        from monitor.testing.daemon import Daemon

        env = {"B6_K100_CUSTOMER": CUSTOMER, "B6_K100_KEY": KEY, "B6_SF_CHECK_WORD": CHECK_WORD,
               "B6_WEBHOOK_SECRET": WEBHOOK_SECRET}  # fmt: skip
        extra = ["--speed", f"{args.speed:g}"] if args.speed != 1 else []
        self.daemons = []
        for k, fleet_url in enumerate(fleets.urls):
            config = tmp / f"replica{k + 1}.toml"
            write_config(config, url, fleet_url, carriers.sf.url, carriers.receiver.url, args)
            self.daemons.append(Daemon(["--config", str(config), "--no-migrate", *extra], env, cwd=tmp))
        for daemon in self.daemons:
            daemon.wait_started(120)
        self.alive = list(range(len(self.daemons)))

    def stop(self) -> list[int | None]:
        codes: list[int | None] = []
        for k, daemon in enumerate(self.daemons):
            if k not in self.alive:
                codes.append(None)
                continue
            try:
                codes.append(daemon.terminate(60))
            except Exception:  # noqa: BLE001 - one that will not stop is killed
                daemon.kill()
                codes.append(-9)
        return codes


def send_refunds(replicas: Replicas, refunds: int, per_second: float, out: dict[str, Any], seed: int) -> None:
    """Post signed refund-only requests to the replicas in turn (one order in ten twice, at another replica)."""
    import httpx

    from monitor.testing.daemon import sign_refund

    rng = random.Random(seed)
    sends = [(i, 1) for i in range(refunds)] + [(i, 2) for i in rng.sample(range(refunds), refunds // 10)]
    sends.sort(key=lambda s: (s[0] + (rng.randrange(refunds // 4 + 1) if s[1] == 2 else 0), s[1]))
    decisions: Counter[str] = Counter()
    errors: list[str] = []
    answered: list[float] = []
    began = time.monotonic()
    with httpx.Client(timeout=30) as client:
        for n, (i, attempt) in enumerate(sends):
            pause = began + n / per_second - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body = json.dumps({"refund_id": f"B6RF{i:07d}-{attempt}", "order_id": f"B6S{i:07d}",
                               "type": "refund_only"}).encode()  # fmt: skip
            daemon = replicas.daemons[replicas.alive[(n + attempt) % len(replicas.alive)]]
            for _ in range(20):
                ts = str(int(time.time()))
                headers = {"Content-Type": "application/json", "X-Parcel-Monitor-Timestamp": ts,
                           "X-Parcel-Monitor-Signature": sign_refund(body, ts)}  # fmt: skip
                sent = time.monotonic()
                try:
                    answer = client.post(daemon.base + "/api/v1/refunds", content=body, headers=headers)
                    answered.append(time.monotonic() - sent)
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                if answer.status_code == 200:
                    decisions.update(d["decision"] for d in answer.json()["decisions"])
                else:
                    errors.append(f"{answer.status_code} {answer.text[:120]}")
                break
    answered.sort()
    ms = {f"p{q}": round(percentile(answered, q) * 1000, 1) for q in (50, 99)}
    out.update(decisions=dict(decisions), errors=errors, sent=len(sends), seconds=time.monotonic() - began,
               answer_ms=ms)  # fmt: skip


def wait_until(predicate: Any, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def doubled(
    asked: list[dict[str, list[float]]], within: float, orphans: frozenset[str] = frozenset(), lease_end: float = 0.0
) -> tuple[int, int, Counter[int]]:
    """(numbers asked twice within a lease, of which by two replicas, asks-per-number histogram).

    Two asks less than ``within`` s apart are a double, except for a killed replica's ``orphans``:
    their lease ran from the claim (before the dead replica's ask), so a second ask is a double
    only before ``lease_end`` (the earliest their lease could end: phase B's start + the lease).
    """
    times: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for k, per in enumerate(asked):
        for number, ts in per.items():
            times[number] += [(t, k) for t in ts]
    close = across = 0
    histogram: Counter[int] = Counter()
    for number, seen in times.items():
        seen.sort()
        histogram[len(seen)] += 1
        pairs = [(a, b) for a, b in itertools.pairwise(seen) if b[0] - a[0] < within]
        if pairs and number in orphans:
            pairs = [(a, b) for a, b in pairs if b[0] < lease_end]
        close += bool(pairs)
        across += any(a[1] != b[1] for a, b in pairs)
    return close, across, histogram


# -- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, report: Report, tmp: Path) -> None:
    from monitor.polling.poller import ROUND_SHARE, round_lease
    from monitor.store.db import make_engine, upgrade

    db = open_database(args.database_url, tmp)
    fleets = Fleets(args.delay, REPLICAS)
    replicas: Replicas | None = None
    try:
        engine = make_engine(db.url)
        upgrade(engine)
        engine.dispose()
        now = datetime.now(UTC)
        say(f"loading {args.parcels:,} Kuaidi100 parcels (due) and {args.refunds:,} SF parcels (in transit)")
        load_s = load(db.url, args.parcels, args.refunds, now, args.seed)
        total = args.parcels + args.refunds
        report.add("load_s", round(load_s, 1), f"COPY {total:,} parcels in {load_s:.1f} s ({total / load_s:,.0f}/s)")
        wanted = min(max(int(args.rate * args.tick * ROUND_SHARE), 1), 5000)
        lease = round_lease(wanted, args.rate).total_seconds() / args.speed  # wall seconds
        report.add("round", {"parcels": wanted, "lease_s": round(lease, 1)},
                   f"a round claims {wanted:,} parcels, leased {lease:.1f} s (wall)")  # fmt: skip
        with Carriers() as carriers:
            say(f"starting {REPLICAS} replicas")
            t_start = time.time()
            replicas = Replicas(tmp, db.url, fleets, carriers, args)
            report.add("replicas_ready_s", round(time.time() - t_start, 1),
                       f"{REPLICAS} replicas ready {time.time() - t_start:.1f} s after launch")  # fmt: skip
            refunds: dict[str, Any] = {}
            feeder = threading.Thread(target=send_refunds, args=(replicas, args.refunds, args.refund_rate, refunds,
                                                                 args.seed), daemon=True)  # fmt: skip
            feeder.start()

            # -- phase A: drain the due parcels
            def polled() -> int:
                rows = query(db.url, "SELECT count(*) FROM parcel WHERE carrier = 'kuaidi100' "
                                     "AND last_polled_at IS NOT NULL")  # fmt: skip
                return int(rows[0][0])

            last_report = [time.monotonic()]

            def drained() -> bool:
                done = polled()
                if time.monotonic() - last_report[0] > 10:
                    last_report[0] = time.monotonic()
                    say(f"  {done:,} / {args.parcels:,} parcels polled ({time.time() - t_start:.0f} s)")
                return done >= args.parcels

            pids = [d.proc.pid for d in replicas.daemons]
            cpu0 = [cpu_seconds(pid) for pid in pids], cpu_seconds(fleets.proc.pid), time.monotonic()
            finished = wait_until(drained, args.max_seconds, every=1.0)
            cpu1 = [cpu_seconds(pid) for pid in pids], cpu_seconds(fleets.proc.pid), time.monotonic()
            feeder.join(300)
            phase_a = fleets.ask("asked", t_start)
            first = min((ts[0] for per in phase_a for ts in per.values()), default=t_start)
            last = max((ts[-1] for per in phase_a for ts in per.values()), default=t_start)
            distinct = {n for per in phase_a for n in per}
            queries = sum(len(ts) for per in phase_a for ts in per.values())
            rate = len(distinct) / max(last - first, 1e-9)
            by_replica = [sum(len(ts) for ts in per.values()) for per in phase_a]
            report.add("claims_per_s", round(rate, 1),
                       f"{rate:,.0f} claims/s across {REPLICAS} replicas ({len(distinct):,} numbers, {queries:,} "
                       f"queries in {last - first:.1f} s; per replica {', '.join(f'{q:,}' for q in by_replica)})"
                       + ("" if finished else f"; NOT drained after {args.max_seconds:g} s"))  # fmt: skip
            close, across, histogram = doubled(phase_a, lease)
            report.add("polls_per_parcel", dict(sorted(histogram.items())),
                       "queries per number: " + ", ".join(f"{n}× {c:,}" for n, c in sorted(histogram.items()))
                       + f"; never asked {args.parcels - len(distinct):,}")  # fmt: skip
            report.add(
                "doubled",
                {"within_lease": close, "by_two_replicas": across},
                f"numbers asked twice within the lease ({lease:.0f} s): {close:,} ({across:,} by two replicas)",
            )
            wall = cpu1[2] - cpu0[2]
            replica_cpu = sum(cpu1[0]) - sum(cpu0[0])
            fake_cpu = cpu1[1] - cpu0[1]
            report.add("cpu", {"replicas_s": round(replica_cpu, 1), "fakes_s": round(fake_cpu, 1),
                               "wall_s": round(wall, 1), "machine_cores": cpu_count()},
                       f"CPU while draining: replicas {replica_cpu:.1f} s ({replica_cpu / wall:.2f} cores, "
                       f"{replica_cpu / max(len(distinct), 1) * 1000:.2f} ms per claim), "
                       f"fake Kuaidi100s {fake_cpu:.1f} s ({fake_cpu / wall:.2f} cores), "
                       f"over {wall:.1f} s on {cpu_count()} cores")  # fmt: skip

            # -- refunds, intercepts and alerts once the outbox is quiet
            def anomalies() -> list[Any]:
                return query(db.url, "SELECT id, rule, state FROM anomaly")

            def settled() -> bool:
                intercepted = len(carriers.intercepts()) >= args.refunds
                active = {a.id for a in anomalies() if a.state != "resolved"}
                return intercepted and active <= set(carriers.alerts())

            quiet = wait_until(settled, args.settle_seconds)
            calls = carriers.intercepts()
            per_parcel = Counter(len(ids) for ids in calls.values())
            errors = refunds.get("errors", [])
            report.add("refunds", refunds, f"{refunds.get('sent', 0):,} refunds sent in "
                       f"{refunds.get('seconds', 0):.1f} s (one after another; answered p50 / p99 "
                       f"{refunds.get('answer_ms', {}).get('p50')} / {refunds.get('answer_ms', {}).get('p99')} ms): "
                       f"{refunds.get('decisions')}; errors {len(errors)}"
                       + (f" (first: {errors[0]})" if errors else ""))  # fmt: skip
            report.add("intercepts_per_parcel", {"0": args.refunds - len(calls), **{str(k): v for k, v in
                                                                                    per_parcel.items()}},
                       f"intercept calls per refunded parcel at 丰桥: none {args.refunds - len(calls):,}, "
                       + ", ".join(f"{n}× {c:,}" for n, c in sorted(per_parcel.items())))  # fmt: skip
            alerts = carriers.alerts()
            rows = anomalies()
            by_rule = Counter(a.rule for a in rows)
            alert_hist = Counter(alerts.get(a.id, 0) for a in rows if a.state != "resolved")
            report.add("alerts_per_anomaly", {str(k): v for k, v in sorted(alert_hist.items())},
                       f"{len(rows):,} anomalies ({dict(by_rule)}); firing alerts per active anomaly: "
                       + ", ".join(f"{n}× {c:,}" for n, c in sorted(alert_hist.items()))
                       + f"; documents refused by the receiver (bad signature or stale): {carriers.rejected}"
                       + ("" if quiet else f" (outbox not quiet after {args.settle_seconds:g} s)"))  # fmt: skip

            # -- phase B: kill -9 one replica mid-round; how long until the others have its leased work
            marker = datetime.now(UTC) - timedelta(hours=1)
            again = min(args.parcels, max(wanted * REPLICAS * 2, 100))
            t_b = time.time()
            query(db.url, "UPDATE parcel SET next_poll_at = :now, last_polled_at = :marker WHERE id IN "
                          "(SELECT id FROM parcel WHERE carrier = 'kuaidi100' ORDER BY id LIMIT :n)",
                  now=datetime.now(UTC) - timedelta(seconds=5), marker=marker, n=again)  # fmt: skip
            started = wait_until(lambda: fleets.ask("count", 0, t_b) >= max(2, wanted // 10), 60, every=0.05)
            t_kill = time.time()
            replicas.daemons[0].kill()
            replicas.alive.remove(0)
            say(
                f"phase B: {again:,} parcels due again; replica 1 killed {t_kill - t_b:.1f} s later"
                + ("" if started else " (its round had not started)")
            )
            time.sleep(0.5)
            asked_by_dead = fleets.ask("asked", t_b)[0]
            unwritten = query(db.url, "SELECT tracking_no, next_poll_at FROM parcel WHERE carrier = 'kuaidi100' "
                                      "AND last_polled_at = :marker", marker=marker)  # fmt: skip
            leases = {r.next_poll_at for r in unwritten if r.tracking_no in asked_by_dead}
            orphans = {r.tracking_no for r in unwritten if r.next_poll_at in leases}

            def taken_over() -> bool:
                seen = fleets.ask("asked", t_kill)
                return orphans <= {n for per in seen[1:] for n in per}

            done = wait_until(taken_over, 3 * lease + 30, every=0.5) if orphans else False
            after = fleets.ask("asked", t_kill)
            firsts = [min(t for per in after[1:] for t in per.get(n, [])) for n in orphans
                      if any(n in per for per in after[1:])]  # fmt: skip
            takeover = max(firsts) - t_kill if firsts and done else float("nan")
            asked_before = len(orphans & set(asked_by_dead))
            report.add("killed_lease", {"parcels": len(orphans), "asked_before_kill": asked_before},
                       f"replica 1 held {len(orphans):,} leased parcels when killed "
                       f"({asked_before:,} already asked, answers never written)")  # fmt: skip
            report.add("takeover_s", round(takeover, 1),
                       f"its leased parcels all asked by another replica {takeover:.1f} s after the kill "
                       f"(first {min(firsts) - t_kill if firsts else float('nan'):.1f} s); "
                       f"lease {lease:.1f} s: {takeover / lease:.2f}× the lease")  # fmt: skip
            phase_b = fleets.ask("asked", t_b)
            close_b, across_b, _ = doubled(phase_b, lease, frozenset(orphans), t_b + lease)
            report.add(
                "doubled_after_kill",
                {"within_lease": close_b, "by_two_replicas": across_b},
                f"phase B numbers asked twice within the lease: {close_b:,} ({across_b:,} by two replicas)",
            )
            codes = replicas.stop()
            replicas = None
            report.add("exit_codes", codes, f"replica exit codes after SIGTERM: {codes} (None: the killed one)")

        # -- reference: the claim statement alone, 3 processes
        query(db.url, "UPDATE parcel SET next_poll_at = :now, last_polled_at = NULL WHERE carrier = 'kuaidi100'",
              now=datetime.now(UTC) - timedelta(seconds=5))  # fmt: skip
        at = time.time()
        with multiprocessing.get_context("spawn").Pool(REPLICAS) as pool:
            results = pool.map(claim_worker, [(db.url, wanted, 60.0, at)] * REPLICAS)
        claimed = sum(r[0] for r in results)
        span = max(r[2] for r in results) - min(r[1] for r in results)
        ref = claimed / max(span, 1e-9)
        report.add("claim_sql_per_s", round(ref, 1),
                   f"reference: claim_for_poll alone, {REPLICAS} processes, rounds of {wanted:,}: {ref:,.0f} claims/s "
                   f"({claimed:,} in {span:.1f} s)")  # fmt: skip
        report.goal("claims", rate >= GOAL_CLAIMS, f"≥ {GOAL_CLAIMS:,.0f} claims/s across {REPLICAS} replicas")
        report.goal("doubled", close == 0 and close_b == 0, "0 parcels asked twice within the lease")
        report.goal("intercepts", set(per_parcel) == {1} and len(calls) == args.refunds,
                    "exactly 1 intercept per refunded parcel")  # fmt: skip
        report.goal("alerts", set(alert_hist) == {1}, "exactly 1 alert per anomaly")
        report.goal("takeover", takeover <= GOAL_TAKEOVER * lease, f"takeover ≤ {GOAL_TAKEOVER:g} × the lease")
    finally:
        if replicas is not None:
            replicas.stop()
        fleets.stop()
        db.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parcels", type=int, default=300_000, help="Kuaidi100 parcels due (default 300,000)")
    parser.add_argument("--refunds", type=int, default=1_000, help="SF parcels refunded (default 1,000)")
    parser.add_argument(
        "--rate",
        type=float,
        default=1_000.0,
        help="[polling.carriers.kuaidi100] requests_per_second of each replica (default 1,000)",
    )
    parser.add_argument("--tick", type=int, default=1, help="[polling] tick_seconds (default 1)")
    parser.add_argument("--delay", type=float, default=0.01, help="the fake Kuaidi100's answer time (default 0.01 s)")
    parser.add_argument("--refund-rate", type=float, default=20.0, help="refunds sent per second (default 20)")
    parser.add_argument("--speed", type=float, default=1.0, help="the replicas' clock speed (default 1)")
    parser.add_argument("--max-seconds", type=float, default=1_800.0, help="most time to drain the due parcels")
    parser.add_argument("--settle-seconds", type=float, default=120.0, help="most time for intercepts and alerts")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--database-url", default=PG_URL, help=f"PostgreSQL only (default {PG_URL})")
    parser.add_argument("--tiny", action="store_true",
                        help="600 parcels, 20 refunds, clock ×10 (the lease in seconds): CI")  # fmt: skip
    args = parser.parse_args(argv)
    if args.tiny:
        args.parcels, args.refunds, args.rate, args.speed = 600, 20, 100.0, 10.0
        args.max_seconds, args.settle_seconds = 60.0, 30.0
    if not args.database_url.startswith("postgresql"):
        print("B6 runs on PostgreSQL only (replicas share one database): give a postgresql+psycopg:// URL")
        return 2
    from monitor.logging import configure

    configure("json", "warning")
    report = Report("B6 replicas")
    report.note(f"setup: {REPLICAS} replicas (parcel-monitor run), PostgreSQL, {args.parcels:,} Kuaidi100 parcels due "
                f"(fake answering in {args.delay * 1000:g} ms, one per replica), {args.refunds:,} SF parcels refunded "
                f"at {args.refund_rate:g}/s, each replica at {args.rate:g} req/s, tick {args.tick} s, "
                f"clock ×{args.speed:g}")  # fmt: skip
    report.note(f"goal: ≥ {GOAL_CLAIMS:,.0f} claims/s; 0 doubled polls; exactly 1 intercept per parcel and 1 alert "
                f"per anomaly; takeover after kill -9 ≤ {GOAL_TAKEOVER:g} × the lease")  # fmt: skip
    try:
        with temp_dir("parcel-monitor-b6-") as tmp:
            run(args, report, Path(tmp))
    except Exception:  # noqa: BLE001 - the script broke: say so and exit 1
        traceback.print_exc()
        print("B6: the script failed")
        return 1
    report.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
