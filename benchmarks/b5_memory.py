"""B5 — resident memory of the daemon with 1,000,000 parcels in the store.

    .venv/bin/python benchmarks/b5_memory.py                        # build 1,000,000 parcels, run the daemon 90 s
    .venv/bin/python benchmarks/b5_memory.py --parcels 100000 --seconds 70
    .venv/bin/python benchmarks/b5_memory.py --db /tmp/b5.db        # keep the database (built if missing) to rerun
    .venv/bin/python benchmarks/b5_memory.py --tiny                 # seconds (CI: does the script still run?)

The SQLite database is built with benchmarks/run.py's generator (ParcelFactory, in worker
processes): the same mix of parcels as B1 — about 1 % of them due across the time-driven rules,
the rest pending, picked up, in transit, out for delivery… with deadlines armed — moved in
time so that "now" is the moment the daemon starts, all of them on Kuaidi100, with their next
poll spread over the next day and 1 % due at once. The daemon (``parcel-monitor run``, child
process) polls a fake Kuaidi100 (carriers/testing/kuaidi100.py's Fleet, in another process) while VmRSS and
VmHWM are read from /proc/<pid>/status every second. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import Report, say, temp_dir

GOAL_MB = 200.0
CHUNK = 20_000
DUE_NOW = 0.01  # share of parcels whose next poll is due when the daemon starts


def build_chunk(job: tuple[int, int, int, float, int]) -> list[tuple[Any, ...]]:
    """Rows lo..hi from run.py's ParcelFactory, shifted to ``now`` and moved to Kuaidi100, as driver values."""
    from benchmarks import run as b12

    lo, hi, parcels, now_ts, seed = job
    now = datetime.fromtimestamp(now_ts, UTC)
    shift = now - b12.NOW
    factory = b12.ParcelFactory(b12.build_ruleset({}), parcels, 0, seed=b12.SEED + lo)
    dialect = b12._dialect("sqlite")
    procs = [(c.name, c.type.bind_processor(dialect)) for c in b12.PARCEL_COLUMNS]
    rng = random.Random(seed + lo)
    out = []
    for produced in factory.rows(lo, hi):
        row = b12.COLUMN_DEFAULTS | produced  # a column added since (links, poll state) takes its default
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value + shift
        row["carrier"] = "kuaidi100"
        if rng.random() < DUE_NOW:
            row["next_poll_at"] = now - timedelta(seconds=rng.uniform(0, 600))
        else:
            row["next_poll_at"] = now + timedelta(seconds=rng.uniform(0, 86_400))
        row["last_polled_at"] = row["next_poll_at"] - timedelta(hours=rng.choice((3, 6, 12, 24)))
        row["poll_step"] = rng.randrange(0, 4)
        row["created_at"] = row["updated_at"] = row["shipped_at"]
        out.append(tuple(row[n] if p is None or row[n] is None else p(row[n]) for n, p in procs))
    return out


def build_database(path: Path, parcels: int, now: datetime) -> float:
    from benchmarks import run as b12
    from monitor.store.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    names = ", ".join(c.name for c in b12.PARCEL_COLUMNS)
    sql = f"INSERT INTO parcel ({names}) VALUES ({', '.join(['?'] * len(b12.PARCEL_COLUMNS))})"
    jobs = [(lo, min(lo + CHUNK, parcels), parcels, now.timestamp(), 5) for lo in range(0, parcels, CHUNK)]
    raw = engine.raw_connection()
    start = time.perf_counter()
    try:
        raw.cursor().execute("PRAGMA synchronous=OFF")
        with multiprocessing.get_context("fork").Pool(max(1, os.cpu_count() or 1)) as pool:
            done = 0
            for rows in pool.imap(build_chunk, jobs):
                cur = raw.cursor()
                cur.executemany(sql, rows)
                cur.close()
                raw.commit()
                done += len(rows)
                if done % 100_000 == 0 or done == parcels:
                    say(f"  loaded {done:,} / {parcels:,} parcels ({done / (time.perf_counter() - start):,.0f}/s)")
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("ANALYZE")
        cur.close()
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - start


def status_kb(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0])
    return values


def write_config(path: Path, db: Path, fake_url: str, rate: float) -> None:
    path.write_text(
        f"""
[database]
url = "sqlite:///{db}"

[carriers.kuaidi100]
company = "zhongtong"
customer_env = "B5_K100_CUSTOMER"
key_env = "B5_K100_KEY"
base_url = "{fake_url}"

[polling.carriers.kuaidi100]
requests_per_second = {rate:g}

[log]
format = "json"
level = "debug"
""",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=90.0, help="how long the daemon runs (default 90)")
    parser.add_argument("--rate", type=float, default=50.0, help="Kuaidi100 requests_per_second (default 50)")
    parser.add_argument("--db", default=None, help="SQLite file to build (or reuse if it exists); default: temporary")
    parser.add_argument("--tiny", action="store_true", help="3,000 parcels, 2 s of daemon: CI")
    args = parser.parse_args(argv)
    if args.tiny:
        args.parcels, args.seconds = 3_000, 2.0

    from b3_poller import FakeProcess

    from carriers.testing.kuaidi100 import CUSTOMER, KEY
    from monitor.testing.daemon import Daemon

    report = Report("B5 daemon memory")
    report.note(f"setup: {args.parcels:,} parcels (run.py's mix, all Kuaidi100, {DUE_NOW:.0%} due for a poll at start, "
                f"about 1 % due for a rule), SQLite, daemon run {args.seconds:g} s, Kuaidi100 at {args.rate:g} req/s "
                f"against a fake answering in 50 ms")  # fmt: skip
    report.note(f"goal: resident memory (VmRSS, and its peak VmHWM) ≤ {GOAL_MB:.0f} MB")
    with temp_dir("parcel-monitor-b5-") as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "b5.db"
        if db.exists():
            say(f"reusing {db}")
            report.note(f"database reused from {db} (already run against: state differs from a fresh build)")
        else:
            say(f"building {args.parcels:,} parcels in {db}")
            build_s = build_database(db, args.parcels, datetime.now(UTC))
            report.add("build_s", round(build_s, 1), f"built in {build_s:.1f} s")
        size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
        report.add("db_mb", round(size / 2**20), f"database {size / 2**20:,.0f} MB on disk")
        fake = FakeProcess(0.05, None)
        config = Path(tmp) / "monitor.toml"
        write_config(config, db, fake.base_url, args.rate)
        env = {"B5_K100_CUSTOMER": CUSTOMER, "B5_K100_KEY": KEY}
        started = time.monotonic()
        daemon = Daemon(["--config", str(config)], env, cwd=Path(tmp))
        samples: list[tuple[float, dict[str, int]]] = []
        pid = daemon.proc.pid
        try:
            while daemon.port is None and time.monotonic() - started < 120 and daemon.proc.poll() is None:
                samples.append((time.monotonic() - started, status_kb(pid)))
                time.sleep(0.2)
            ready = time.monotonic() - started
            say(f"daemon pid {pid} ready after {ready:.1f} s; sampling for {args.seconds:g} s")
            while time.monotonic() - started < ready + args.seconds and daemon.proc.poll() is None:
                samples.append((time.monotonic() - started, status_kb(pid)))
                time.sleep(1.0)
            last = status_kb(pid)
        finally:
            status = daemon.terminate(120)
            stats = fake.stats()
            fake.stop()
    jobs: dict[str, list[float]] = {}
    swept = 0
    for line in daemon.errors:
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("event") == "job.done":
                jobs.setdefault(rec["job"], []).append(rec.get("ms", 0))
            elif rec.get("event") == "rules.swept":
                swept += rec.get("opened", 0)
    mb = lambda kb: kb / 1024  # noqa: E731
    after = [(t, s) for t, s in samples if t >= ready]
    start_rss = mb(after[0][1]["VmRSS"]) if after else float("nan")
    tail = [mb(s["VmRSS"]) for t, s in after if t >= ready + args.seconds * 2 / 3] or [mb(last["VmRSS"])]
    steady = statistics.median(tail) if tail else float("nan")
    peak = mb(max(last["VmHWM"], *(s.get("VmHWM", 0) for _, s in samples)))
    most = mb(max(s["VmRSS"] for _, s in samples))
    report.add("ready_s", round(ready, 1), f"daemon ready (banner) {ready:.1f} s after start")
    report.add("rss_start_mb", round(start_rss, 1), f"VmRSS at ready: {start_rss:.1f} MB")
    report.add("rss_steady_mb", round(steady, 1), f"VmRSS steady (median of the last third): {steady:.1f} MB")
    report.add("rss_max_sampled_mb", round(most, 1), f"largest VmRSS sampled: {most:.1f} MB")
    report.add("rss_peak_mb", round(peak, 1), f"VmHWM (peak resident): {peak:.1f} MB")
    report.add(
        "rss_anon_file_mb",
        {"anon": round(mb(last.get("RssAnon", 0)), 1), "file": round(mb(last.get("RssFile", 0)), 1)},
        f"at the end: RssAnon {mb(last.get('RssAnon', 0)):.1f} MB, RssFile {mb(last.get('RssFile', 0)):.1f} MB",
    )
    timeline = [(round(t), round(mb(s["VmRSS"]))) for t, s in after[:: max(1, len(after) // 15)]]
    report.add("timeline", timeline, "VmRSS timeline (s since start, MB): "
               + ", ".join(f"{t}:{m}" for t, m in timeline))  # fmt: skip
    report.add(
        "work",
        {k: len(v) for k, v in jobs.items()} | {"anomalies": swept, "polled": stats["requests"]},
        "work done: "
        + ", ".join(f"{k} ×{len(v)} (longest {max(v) / 1000:.1f} s)" for k, v in jobs.items())
        + f"; {swept:,} anomalies opened by sweeps; {stats['requests']:,} Kuaidi100 queries",
    )
    report.add("daemon_exit", status, f"daemon exit status after SIGTERM: {status}")
    report.goal("rss", peak <= GOAL_MB and steady <= GOAL_MB, f"VmRSS and VmHWM ≤ {GOAL_MB:.0f} MB")
    report.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
