"""B3 — the poller against a fake Kuaidi100 answering in 50 ms: throughput, CPU, rate quota, per-number cap.

    .venv/bin/python benchmarks/b3_poller.py                       # 30,000 parcels, 320 req/s, 60 s, both pinnings
    .venv/bin/python benchmarks/b3_poller.py --duration 20 --parcels 10000 --pin no
    .venv/bin/python benchmarks/b3_poller.py --schedule daemon     # rounds started by a 10 s ticker, as the daemon does
    .venv/bin/python benchmarks/b3_poller.py --profile             # one more run under cProfile
    .venv/bin/python benchmarks/b3_poller.py --tiny                # seconds (CI: does the script still run?)

The fake (carriers/testing/kuaidi100.py's Fleet, every number picked up then in transit, 50 ms per
answer) runs in a separate process so that it does not share the poller's core. The poller
runs in this process with the real Kuaidi100 adapter, a real SQLite file (or ``--database-url``
PostgreSQL), the real clock and ``asyncio.sleep``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import inspect
import io
import multiprocessing
import os
import pstats
import resource
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import Report, open_database, say, temp_dir

GOAL_RATE = 300.0
GOAL_CORES = 1.0
GOAL_OVERSHOOT = 0.01
CAP = 48  # Kuaidi100 locks a number asked more than 48 times in 24 h


# -- the fake carrier, in its own process ---------------------------------------------------


def serve_fleet(conn: Any, delay: float, core: int | None, nodelay: bool) -> None:
    """Child process: run Fleet until told to stop; answer "stats" with what it saw."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    from carriers.testing.kuaidi100 import Fleet, Scan

    picked_up = datetime.now(UTC) - timedelta(hours=3)
    moved = picked_up + timedelta(hours=2)

    def in_transit(_number: str, _now: datetime) -> list[Scan]:
        return [(picked_up, "103", "【杭州市】快递员已揽收"), (moved, "0", "快件已到达【杭州转运中心】")]

    arrivals: list[float] = []
    # clock None: `asked` on the real clock; nodelay off: Nagle + delayed ACK add ~40 ms per kept-alive answer
    with Fleet(in_transit, clock=None, delay=delay, nodelay=nodelay) as fleet:
        fleet.on_request = lambda request: arrivals.append(request.at)
        conn.send(fleet.base_url)
        while True:
            command = conn.recv()
            if command == "stats":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                conn.send({
                    "requests": fleet.requests,
                    "bad_signatures": fleet.bad_signatures,
                    "numbers": len(fleet.asked),
                    "connections": fleet.connections,
                    "most_in_24h": fleet.most_in_24h(),
                    "arrivals": list(arrivals),
                    "cpu_s": usage.ru_utime + usage.ru_stime,
                })  # fmt: skip
            elif command == "stop":
                conn.send("bye")
                return


class FakeProcess:
    def __init__(self, delay: float, core: int | None, nodelay: bool = True) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve_fleet, args=(child, delay, core, nodelay), daemon=True)
        self.proc.start()
        if not self.conn.poll(60):
            self.proc.kill()
            raise SystemExit("the fake Kuaidi100 process did not start")
        self.base_url: str = self.conn.recv()

    def stats(self) -> dict[str, Any]:
        self.conn.send("stats")
        return self.conn.recv()

    def stop(self) -> None:
        self.conn.send("stop")
        self.conn.recv()
        self.proc.join(10)


# -- windows --------------------------------------------------------------------------------


def worst_window(times: list[float], width: float) -> int:
    """Most arrivals inside any window [t, t + width) starting at an arrival."""
    worst = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


# -- one run --------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    pinned: bool
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rounds: list[tuple[float, float, int, int]] = field(default_factory=list)  # start, seconds, claimed, requests
    skipped_ticks: int = 0
    fake: dict[str, Any] = field(default_factory=dict)
    usage_counted: int = 0
    add_s: float = 0.0
    profile: str = ""
    lags: list[float] = field(default_factory=list)


async def run_rounds(poller: Any, duration: float, tick: float, schedule: str, run: Run) -> None:
    """Back-to-back rounds ("loop"), or a round every ``tick`` seconds skipped while one runs ("daemon")."""
    t0 = time.monotonic()

    async def one_round() -> None:
        started = time.monotonic()
        stats = await poller.poll_round()
        claimed = sum(s.claimed for s in stats)
        requests = sum(s.requests for s in stats)
        run.rounds.append((started - t0, time.monotonic() - started, claimed, requests))

    lag = asyncio.create_task(watch_loop(run.lags))
    try:
        await _rounds(one_round, duration, tick, schedule, run, t0)
    finally:
        lag.cancel()


async def watch_loop(lags: list[float], every: float = 0.01) -> None:
    """Measure how late the event loop wakes a 10 ms sleeper: the time it was blocked by synchronous work."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(every)
        lags.append(time.monotonic() - before - every)


async def _rounds(one_round: Any, duration: float, tick: float, schedule: str, run: Run, t0: float) -> None:
    if schedule == "loop":
        while time.monotonic() - t0 < duration:
            await one_round()
        return
    # the daemon: APScheduler's IntervalTrigger fires every tick; Jobs.guarded skips a tick while a round runs
    running: asyncio.Task[None] | None = asyncio.create_task(one_round())  # the daemon's first poll at start
    next_tick = t0 + tick
    while next_tick - t0 < duration:
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick += tick
        if running is not None and not running.done():
            run.skipped_ticks += 1
            continue
        running = asyncio.create_task(one_round())
    if running is not None:
        await running


# -- profiling ------------------------------------------------------------------------------

#: Where a py-spy sample is counted: the first pattern found walking from the leaf frame to the root.
CATEGORIES = (
    ("event loop idle (waiting in epoll)", ("selectors.py",)),
    ("failed 'import sniffio' (httpcore, per request)", ("<frozen importlib",)),
    ("database (monitor.store, SQLAlchemy, sqlite3/psycopg)", ("sqlalchemy/", "sqlite3", "psycopg", "monitor/store/")),
    ("HTTP client (httpx, httpcore, h11, anyio)", ("httpx/", "httpcore/", "h11/", "anyio/", "socket.py", "ssl.py")),
    ("Kuaidi100 adapter (sign, JSON, mapping)", ("carriers/",)),
    (
        "ingest, rules, intercepts, outbox",
        (
            "monitor/ingest",
            "monitor/rules",
            "monitor/actions",
            "monitor/service",
            "monitor/alerts",
            "monitor/shipments",
        ),
    ),
    ("poller (rounds, pacing, cadence, health)", ("monitor/polling",)),
    ("asyncio machinery", ("asyncio/",)),
)
#: Which part of a round a sample belongs to: the first of these frames found from the root.
PHASES = (
    ("asking the carrier (adapter.track)", "track ("),
    ("writing answers (Poller._write: ingest, act, next polls)", "_write ("),
    ("rescheduling failed requests", "_reschedule_failed ("),
    ("claiming parcels, usage (poll_carrier outside ask)", "poll_carrier ("),
)


def start_py_spy(binary: str, seconds: float, tmp: Path) -> tuple[Any, Path] | None:
    """Sample this process (idle included) with py-spy until stopped; None when py-spy is not there."""
    import shutil
    import subprocess

    found = shutil.which(binary) or (binary if Path(binary).is_file() else None)
    if not found:
        say(f"  py-spy not found ({binary}); falling back to no profile")
        return None
    out = tmp / "py-spy.txt"
    proc = subprocess.Popen([found, "record", "--pid", str(os.getpid()), "--rate", "200", "--idle", "--format", "raw",
                             "--duration", str(int(seconds)), "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(1.0)  # let it attach
    return proc, out


def stop_py_spy(proc: Any, out: Path) -> str:
    import signal

    proc.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
    _, err = proc.communicate(timeout=60)
    if not out.exists():
        return f"py-spy wrote nothing: {err.decode(errors='replace')[-400:]}"
    return summarize_stacks(out.read_text(encoding="utf-8", errors="replace"))


def summarize_stacks(raw: str) -> str:
    """Share of samples per category (leaf-first) and per phase of a round (root-first)."""
    by_category: dict[str, int] = {}
    by_phase: dict[str, int] = {}
    by_leaf: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if any("start_py_spy" in f for f in frames):
            continue  # the pause while py-spy attaches, before the run
        total += count
        category = "other"
        for frame in reversed(frames):
            hit = next((name for name, pats in CATEGORIES if any(p in frame for p in pats)), None)
            if hit:
                category = hit
                break
        by_category[category] = by_category.get(category, 0) + count
        phase = "outside a round (loop, lag watcher)"
        if "selectors.py" in frames[-1]:
            phase = "idle"
        else:
            for name, mark in PHASES:
                if any(mark in f for f in frames):
                    phase = name
                    break
        by_phase[phase] = by_phase.get(phase, 0) + count
        if category != "event loop idle (waiting in epoll)":
            leaf = frames[-1].split(" (")[0] + " (" + frames[-1].split(" (")[-1]
            by_leaf[leaf] = by_leaf.get(leaf, 0) + count
    if not total:
        return "py-spy: no samples"
    lines = [f"py-spy, {total:,} samples (idle included):", "  by what runs (leaf-first):"]
    lines += [f"    {n / total:6.1%}  {k}" for k, n in sorted(by_category.items(), key=lambda kv: -kv[1])]
    lines.append("  by phase of a round:")
    lines += [f"    {n / total:6.1%}  {k}" for k, n in sorted(by_phase.items(), key=lambda kv: -kv[1])]
    lines.append("  hottest leaf frames (busy samples):")
    lines += [f"    {n / total:6.1%}  {k}" for k, n in sorted(by_leaf.items(), key=lambda kv: -kv[1])[:12]]
    return "\n".join(lines)


def one_run(args: argparse.Namespace, label: str, pinned: bool, profile: str = "") -> Run:
    import httpx

    from carriers.kuaidi100 import Kuaidi100Carrier, Kuaidi100Settings
    from carriers.testing.kuaidi100 import COMPANY, CUSTOMER, KEY
    from monitor.clock import SystemClock
    from monitor.config import CarrierQuota, PollingSettings
    from monitor.daemon.main import POLL_IN_FLIGHT
    from monitor.intake.shipments import Shipment
    from monitor.polling import Poller
    from monitor.polling.health import HealthBook
    from monitor.polling.pacing import quota_day
    from monitor.rules.ruleset import build_ruleset
    from monitor.service import Monitor
    from monitor.store.db import make_engine, upgrade
    from monitor.store.store import Store

    run = Run(label, pinned)
    cores = sorted(os.sched_getaffinity(0))
    fake = FakeProcess(args.delay, cores[-1] if pinned and len(cores) > 1 else None, nodelay=not args.no_nodelay)
    say(f"[{label}] fake Kuaidi100 at {fake.base_url} (pid {fake.proc.pid}), delay {args.delay * 1000:.0f} ms")
    with temp_dir("parcel-monitor-b3-") as tmp:
        db = open_database(args.database_url, Path(tmp))
        engine = make_engine(db.url)
        try:
            upgrade(engine)
            clock = SystemClock()
            store = Store(engine)
            ruleset = build_ruleset({})
            tick = args.tick or max(1, round(args.round_seconds))
            wanted = int(args.rate * tick)
            polling = PollingSettings(tick_seconds=tick, round_limit=max(5_000, wanted),
                                      quotas={"kuaidi100": CarrierQuota(requests_per_second=args.rate)})  # fmt: skip

            async def main() -> None:
                # the daemon's client (monitor/daemon/main.py): its transport and pool, 10 s timeout
                pool, keep = (args.http_pool,) * 2 if args.http_pool else (POLL_IN_FLIGHT + 16, POLL_IN_FLIGHT)
                timeout = httpx.Timeout(10.0)
                if args.transport == "daemon":
                    from monitor.daemon.transport import daemon_client

                    client = daemon_client(max_connections=pool, max_keepalive_connections=keep, timeout=timeout,
                                           follow_redirects=False)  # fmt: skip
                else:
                    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=keep)
                    client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, limits=limits)
                async with client as http:
                    settings = Kuaidi100Settings(customer=CUSTOMER, key=KEY, company=COMPANY, base_url=fake.base_url)
                    adapter = Kuaidi100Carrier(settings, http, sleep=asyncio.sleep)
                    adapters = {"kuaidi100": adapter}
                    monitor = Monitor(store, ruleset, clock, adapters, {})
                    health = HealthBook(store, clock, {}, None)
                    extra: dict[str, Any] = {}
                    if "act_after_write" in inspect.signature(Poller).parameters:
                        extra["act_after_write"] = False  # as monitor/daemon/assembly.py builds it
                    poller = Poller(store, clock, adapters, monitor, polling, sleep=asyncio.sleep, health=health,
                                    max_in_flight=args.max_in_flight, **extra)  # fmt: skip
                    started = time.perf_counter()
                    shipped = clock.now() - timedelta(hours=4)
                    for lo in range(0, args.parcels, 5_000):
                        monitor.add_shipments([
                            Shipment(order_id=f"B3O{i}", carrier="kuaidi100", tracking_no=f"ZT{i:011d}",
                                     shipped_at=shipped, shop="旗舰店", origin_province="浙江",
                                     destination_province="广东", amount_fen=9_900)
                            for i in range(lo, min(lo + 5_000, args.parcels))
                        ])  # fmt: skip
                    run.add_s = time.perf_counter() - started
                    say(f"[{label}] {args.parcels:,} parcels added in {run.add_s:.1f} s; polling {args.duration:g} s "
                        f"at {args.rate:g} req/s, tick {tick} s ({args.schedule})")  # fmt: skip
                    if pinned:
                        os.sched_setaffinity(0, {cores[0]})
                    spy = start_py_spy(args.py_spy, args.duration + 15, Path(tmp)) if profile == "py-spy" else None
                    profiler = cProfile.Profile() if profile == "cprofile" else None
                    wall0, cpu0 = time.monotonic(), time.process_time()
                    if profiler:
                        profiler.enable()
                    try:
                        await run_rounds(poller, args.duration, tick, args.schedule, run)
                    finally:
                        if profiler:
                            profiler.disable()
                        run.wall_s, run.cpu_s = time.monotonic() - wall0, time.process_time() - cpu0
                        run.wall0 = wall0  # type: ignore[attr-defined]
                        if pinned:
                            os.sched_setaffinity(0, set(cores))
                    if spy is not None:
                        run.profile = stop_py_spy(*spy)
                    if profiler:
                        out = io.StringIO()
                        stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
                        stats.print_stats(25)
                        out.write("\n--- by cumulative time ---\n")
                        stats.sort_stats("cumulative").print_stats(35)
                        run.profile = out.getvalue()
                    with store.begin() as uow:
                        run.usage_counted = uow.usage("kuaidi100", quota_day(clock.now(), poller.timezone))

            asyncio.run(main())
        finally:
            engine.dispose()
            db.cleanup()
    run.fake = fake.stats()
    fake.stop()
    return run


def report_run(report: Report, run: Run, args: argparse.Namespace) -> dict[str, bool]:
    key = run.label
    fake = run.fake
    arrivals = sorted(t - run.wall0 for t in fake["arrivals"])  # type: ignore[attr-defined]
    requests = fake["requests"]
    rate = requests / run.wall_s
    cores = run.cpu_s / run.wall_s
    per_request_ms = run.cpu_s / requests * 1000 if requests else float("nan")
    # the rate quota, seen from the carrier: whole run, worst 10 s and worst 1 s windows
    w10 = worst_window(arrivals, 10.0)
    w1 = worst_window(arrivals, 1.0)
    over_mean = max(0.0, rate / args.rate - 1)
    over_10 = max(0.0, w10 / (10 * args.rate) - 1)
    over_1 = max(0.0, w1 / args.rate - 1)
    # steady state: between the end of the first and the start of the last second of traffic
    steady = [t for t in arrivals if arrivals[0] + 1 <= t <= arrivals[-1] - 1] if arrivals else []
    steady_rate = len(steady) / (steady[-1] - steady[0]) if len(steady) > 1 else float("nan")
    report.add(f"{key}.requests", requests, f"{requests:,} requests to the fake, {fake['numbers']:,} numbers, "
               f"{fake['bad_signatures']} bad signatures")  # fmt: skip
    report.add(
        f"{key}.wall_s",
        round(run.wall_s, 2),
        f"{run.wall_s:.1f} s of rounds ({len(run.rounds)} rounds"
        + (f", {run.skipped_ticks} ticks skipped while a round ran" if args.schedule == "daemon" else "")
        + ")",
    )
    report.add(
        f"{key}.requests_per_s",
        round(rate, 1),
        f"{rate:.1f} req/s (server count / wall); between first and last second {steady_rate:.1f} req/s",
    )
    report.add(f"{key}.cpu_s", round(run.cpu_s, 2), f"{run.cpu_s:.1f} s CPU in the poller process")
    report.add(f"{key}.cores", round(cores, 3), f"{cores:.2f} cores ({per_request_ms:.2f} ms CPU per request); "
               f"fake process {fake['cpu_s']:.1f} s CPU")  # fmt: skip
    report.add(
        f"{key}.mean_rate_vs_quota",
        round(rate / args.rate, 4),
        f"{rate:.1f} / {args.rate:g} = {rate / args.rate:.1%} of the quota (overshoot {over_mean:.2%})",
    )
    report.add(
        f"{key}.worst_10s_window", w10, f"{w10:,} requests vs 10·R = {10 * args.rate:,.0f} (overshoot {over_10:.2%})"
    )
    report.add(f"{key}.worst_1s_window", w1, f"{w1:,} requests vs R = {args.rate:g} (overshoot {over_1:.2%})")
    report.add(
        f"{key}.usage_counted",
        run.usage_counted,
        f"carrier_usage counted {run.usage_counted:,} requests today (fake saw {requests:,})",
    )
    report.add(
        f"{key}.most_in_24h",
        fake["most_in_24h"],
        f"most queries of one number in 24 h: {fake['most_in_24h']} (cap {CAP})",
    )
    lags = sorted(run.lags)
    if lags:
        from common import percentile

        blocked = sum(lag for lag in lags if lag > 0.005)
        report.add(f"{key}.loop_lag_ms", {"p50": round(percentile(lags, 50) * 1000, 1),
                                          "p99": round(percentile(lags, 99) * 1000, 1),
                                          "max": round(lags[-1] * 1000, 1)},
                   f"event loop lag (10 ms sleeper woken late): p50 {percentile(lags, 50) * 1000:.1f} ms, "
                   f"p99 {percentile(lags, 99) * 1000:.1f} ms, max {lags[-1] * 1000:.0f} ms; "
                   f"{blocked / run.wall_s:.0%} of the run in stalls over 5 ms")  # fmt: skip
    durations = [r[1] for r in run.rounds]
    if durations:
        report.add(
            f"{key}.round_s",
            [round(d, 2) for d in durations],
            "round seconds "
            + ", ".join(f"{d:.2f}" for d in durations)
            + f" (claimed {', '.join(str(r[2]) for r in run.rounds)})",
        )
    return {
        "rate": rate >= GOAL_RATE,
        "cores": cores <= GOAL_CORES,
        "overshoot": over_mean < GOAL_OVERSHOOT and over_10 < GOAL_OVERSHOOT,
        "cap": fake["most_in_24h"] <= CAP,
    }


def stub_sniffio() -> None:
    """What ``pip install sniffio`` changes: httpcore's per-call ``import sniffio`` then hits sys.modules."""
    import sys
    import types

    try:
        import sniffio  # noqa: F401
    except ImportError:
        module = types.ModuleType("sniffio")
        module.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
        sys.modules["sniffio"] = module


def main(argv: list[str] | None = None) -> int:
    from monitor.daemon.main import POLL_IN_FLIGHT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parcels", type=int, default=30_000)
    parser.add_argument("--rate", type=float, default=320.0, help="requests_per_second quota R (default 320)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of rounds D (default 60)")
    parser.add_argument("--delay", type=float, default=0.05, help="the fake's answer time (default 0.05 s)")
    parser.add_argument("--round-seconds", type=float, default=10.0, help="wanted length of a round (default 10)")
    parser.add_argument("--tick", type=int, default=0, help="tick_seconds (default: --round-seconds)")
    parser.add_argument(
        "--pin",
        choices=("both", "no", "yes"),
        default="both",
        help="run unpinned, pinned to one core (the fake on the other), or both (default)",
    )
    parser.add_argument(
        "--schedule",
        choices=("loop", "daemon"),
        default="loop",
        help="back-to-back rounds (default), or a ticker skipping ticks while a round runs",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "py-spy", "cprofile", "none"),
        default="auto",
        help="add a profiled run: py-spy if found, else cProfile; auto = only when a goal is missed",
    )
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy binary (default: py-spy on PATH)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--tiny", action="store_true", help="300 parcels, 2 s of rounds at 100 req/s, unpinned: CI")
    what_if = parser.add_argument_group("what-if (defaults are what the daemon does)")
    what_if.add_argument("--max-in-flight", type=int, default=POLL_IN_FLIGHT,
                         help=f"Poller(max_in_flight=…) (default {POLL_IN_FLIGHT})")  # fmt: skip
    what_if.add_argument(
        "--http-pool",
        type=int,
        default=0,
        help=f"N connections, N kept alive (default the daemon's: {POLL_IN_FLIGHT + 16}, {POLL_IN_FLIGHT} kept alive)",
    )
    what_if.add_argument(
        "--transport",
        choices=["daemon", "httpcore"],
        default="daemon",
        help="the daemon's HTTP/1.1 transport (monitor/daemon/transport.py), or httpx's default one (httpcore)",
    )
    what_if.add_argument(
        "--stub-sniffio",
        action="store_true",
        help="register a 'sniffio' module, as installing sniffio would (httpcore imports it per call)",
    )
    what_if.add_argument(
        "--no-nodelay",
        action="store_true",
        help="leave Nagle on in the fake (TCP_NODELAY off: +40 ms per kept-alive answer)",
    )
    args = parser.parse_args(argv)
    if args.tiny:
        args.parcels, args.rate, args.duration, args.round_seconds = 300, 100.0, 2.0, 1.0
        args.pin, args.profile = "no", "none"
    if args.stub_sniffio:
        stub_sniffio()
    from monitor.logging import configure

    configure("json", "warning")  # per-round info lines would measure the terminal
    report = Report("B3 poller")
    report.note(
        f"setup: {args.parcels:,} parcels, R = {args.rate:g} req/s, D = {args.duration:g} s, fake delay "
        f"{args.delay * 1000:.0f} ms, schedule {args.schedule}, "
        f"database {'sqlite (temp file)' if not args.database_url else args.database_url.split('@')[-1]}, "
        f"{len(os.sched_getaffinity(0))} cores; max_in_flight {args.max_in_flight}, http pool "
        f"{args.http_pool or f'{POLL_IN_FLIGHT + 16}, keep-alive {POLL_IN_FLIGHT}'}, transport {args.transport}"
        f"{', sniffio stubbed' if args.stub_sniffio else ''}{', fake with Nagle' if args.no_nodelay else ''}"
    )
    report.note(f"goal: ≥ {GOAL_RATE:.0f} req/s on ≤ {GOAL_CORES:g} core, rate overshoot < {GOAL_OVERSHOOT:.0%}, "
                f"no number asked more than {CAP} times in 24 h")  # fmt: skip
    runs = {"both": [("unpinned", False), ("pinned", True)], "no": [("unpinned", False)],
            "yes": [("pinned", True)]}[args.pin]  # fmt: skip
    verdicts: dict[str, bool] = {}
    for label, pinned in runs:
        run = one_run(args, label, pinned)
        for k, v in report_run(report, run, args).items():
            verdicts[k] = verdicts.get(k, True) and v
    report.goal("rate", verdicts["rate"], f"≥ {GOAL_RATE:.0f} requests/s (every run)")
    report.goal("cores", verdicts["cores"], f"≤ {GOAL_CORES:g} core (every run)")
    report.goal("overshoot", verdicts["overshoot"], f"quota overshoot < {GOAL_OVERSHOOT:.0%} (mean and worst 10 s)")
    report.goal("cap", verdicts["cap"], f"no per-number cap breach (most in 24 h ≤ {CAP})")
    if args.profile in ("py-spy", "cprofile") or (args.profile == "auto" and not all(verdicts.values())):
        import shutil

        kind = args.profile
        if kind == "auto":
            kind = "py-spy" if shutil.which(args.py_spy) or Path(args.py_spy).is_file() else "cprofile"
        run = one_run(args, "profiled", pinned=False, profile=kind)
        report.note(f"profiled run ({kind}): {run.fake['requests']:,} requests in {run.wall_s:.1f} s, "
                    f"{run.cpu_s:.1f} s CPU")  # fmt: skip
        report.note(run.profile)
    report.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
