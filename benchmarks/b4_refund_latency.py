"""B4 — refund-only request → intercept call at the carrier, while a rule sweep and event ingest run.

    .venv/bin/python benchmarks/b4_refund_latency.py                  # 1,000 refunds, 50,000 background parcels
    .venv/bin/python benchmarks/b4_refund_latency.py --refunds 200 --background 10000 --min-seconds 0
    .venv/bin/python benchmarks/b4_refund_latency.py --tiny           # seconds (CI: does the script still run?)
    .venv/bin/python benchmarks/b4_refund_latency.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The daemon runs as a child process (``parcel-monitor run``, through monitor/testing/daemon.py)
against SF's 丰桥 faked on loopback in a separate process: carriers/testing/sf.py's FakeSF,
with a route handler (``fake.on``) so that a route query answers every number asked as picked up
and in transit, an intercept is accepted at once, and the monotonic arrival time of each intercept
is recorded by waybill number. Latency = arrival at the fake − the moment the signed refund was sent.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import Report, open_database, percentile, say, temp_dir

GOAL_P99_MS = 200.0
CST = 8  # SF's acceptTime is local time in China


# -- the fake 丰桥, in its own process ---------------------------------------------------------


def serve_sf(conn: Any) -> None:
    """Child process: run the fake until told to stop; answer "stats" with intercept arrivals."""
    from carriers.testing.server import Reply
    from carriers.testing.sf import INTERCEPT, ROUTES, FakeSF, Seen, route_answer

    now = datetime.now(UTC)

    def accept_time(at: datetime) -> str:
        return f"{at + timedelta(hours=CST):%Y-%m-%d %H:%M:%S}"

    routes = [
        {"acceptAddress": "杭州市", "acceptTime": accept_time(now - timedelta(hours=3)),
         "remark": "顺丰速运 已收取快件", "opCode": "50"},
        {"acceptAddress": "杭州市", "acceptTime": accept_time(now - timedelta(hours=2)),
         "remark": "快件在【杭州西湖文三路营业点】完成分拣，准备发往 【杭州转运中心】", "opCode": "30"},
        {"acceptAddress": "杭州市", "acceptTime": accept_time(now - timedelta(hours=1)),
         "remark": "快件到达 【杭州转运中心】", "opCode": "31"},
    ]  # fmt: skip
    arrivals: dict[str, float] = {}
    numbers_asked: set[str] = set()
    route_queries = [0]

    def record_intercept(request: Any) -> None:
        """Note when each waybill's intercept arrived, before the signature checks (as the carrier sees it)."""
        form = request.form()
        if form.get("serviceCode") == INTERCEPT and request.path.endswith("/std/service"):
            with contextlib.suppress(KeyError, ValueError):
                arrivals.setdefault(json.loads(form["msgData"])["waybillNo"], request.at)

    def all_in_transit(fake: FakeSF, seen: Seen) -> Reply:
        """Every mailNo asked is picked up and in transit."""
        numbers = seen.msg()["trackingNumber"]
        route_queries[0] += 1
        numbers_asked.update(numbers)
        return route_answer({n: routes for n in numbers})

    with FakeSF() as fake:  # TCP_NODELAY and a 256-deep accept backlog are the kit's defaults
        fake.on(ROUTES, all_in_transit)
        fake.on_request = record_intercept
        conn.send(fake.url)
        while True:
            command = conn.recv()
            if command == "stats":
                conn.send({"arrivals": dict(arrivals), "route_queries": route_queries[0],
                           "numbers_asked": len(numbers_asked), "requests": len(fake.received)})  # fmt: skip
            elif command == "asked":
                conn.send(len(numbers_asked))
            elif command == "stop":
                conn.send("bye")
                return


class FakeProcess:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve_sf, args=(child,), daemon=True)
        self.proc.start()
        if not self.conn.poll(60):
            self.proc.kill()
            raise SystemExit("the fake SF process did not start")
        self.url: str = self.conn.recv()

    def ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self.proc.join(10)


# -- the daemon -----------------------------------------------------------------------------


def write_config(path: Path, database_url: str, sf_url: str, rate: float) -> None:
    from carriers.testing.sf import PARTNER, RETURN_ADDRESS_TOML

    path.write_text(
        f"""
[database]
url = "{database_url}"

[carriers.sf]
partner_id = "{PARTNER}"
check_word_env = "B4_SF_CHECK_WORD"
base_url = "{sf_url}"
{RETURN_ADDRESS_TOML}
[polling]
tick_seconds = 1

[polling.carriers.sf]
requests_per_second = {rate:g}

[log]
format = "json"
level = "debug"
""",
        encoding="utf-8",
    )


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Job:
    name: str
    end: float  # unix seconds
    ms: float

    @property
    def start(self) -> float:
        return self.end - self.ms / 1000


@dataclass
class DaemonLog:
    jobs: list[Job] = field(default_factory=list)
    swept: list[tuple[float, int]] = field(default_factory=list)  # (unix time, anomalies opened)
    events: Counter[str] = field(default_factory=Counter)


def read_log(lines: list[str]) -> DaemonLog:
    out = DaemonLog()
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        event = rec.get("event", "")
        out.events[event] += 1
        at = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp() if "timestamp" in rec else 0
        if event == "job.done":
            out.jobs.append(Job(rec.get("job", ""), at, float(rec.get("ms", 0))))
        elif event == "rules.swept":
            out.swept.append((at, int(rec.get("opened", 0))))
            began = datetime.fromisoformat(rec["at"]).timestamp() if "at" in rec else at
            # the rule steps of a sweep, from its clock reading to its log line (its outbox run follows)
            out.jobs.append(Job("sweep rules", at, (at - began) * 1000))
    return out


def outbox_counts(url: str) -> dict[str, int]:
    """Outbox rows by kind and state once the daemon stopped, and anomalies opened."""
    from sqlalchemy import func, select

    from monitor.store.db import make_engine
    from monitor.store.models import Action, Anomaly

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            A = Action.__table__
            rows = conn.execute(select(A.c.kind, A.c.state, func.count()).group_by(A.c.kind, A.c.state)).all()
            counts = {f"{kind}/{state}": n for kind, state, n in rows}
            counts["anomalies"] = conn.execute(select(func.count()).select_from(Anomaly.__table__)).scalar_one()
            return counts
    finally:
        engine.dispose()


def shipments(prefix: str, order_prefix: str, start: int, count: int, shipped: datetime) -> list[dict[str, Any]]:
    return [
        {"order_id": f"{order_prefix}{i:07d}", "carrier": "sf", "tracking_no": f"{prefix}{i:010d}",
         "shipped_at": shipped.isoformat(), "shop": "旗舰店", "origin_province": "浙江",
         "destination_province": "广东", "amount": "88.00"}
        for i in range(start, start + count)
    ]  # fmt: skip


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


def loopback_rtt(url: str, samples: int = 300) -> list[float]:
    """A trivial request to the same fake (a 404 for another path): connect, send, answer, close."""
    import httpx

    base = url.rsplit("/std/service", 1)[0]
    times = []
    with httpx.Client(timeout=5) as client:
        for _ in range(samples):
            t = time.monotonic()
            client.post(base + "/ping", content=b"x")
            times.append(time.monotonic() - t)
    return sorted(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refunds", type=int, default=1_000)
    parser.add_argument("--background", type=int, default=50_000, help="shipments shipped 30 h ago (default 50,000)")
    parser.add_argument(
        "--rate",
        type=float,
        default=40.0,
        help="[polling.carriers.sf] requests_per_second (10 numbers each; default 40)",
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=70.0,
        help="spread the refunds over at least this long, so a sweep (every 60 s) falls inside",
    )
    parser.add_argument(
        "--open-loop",
        action="store_true",
        help="send each refund on schedule (threads) instead of after the previous answer",
    )
    parser.add_argument("--wait", type=float, default=900.0, help="how long to wait for the last intercept")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument("--tiny", action="store_true", help="20 refunds, 500 background shipments, no wait: CI")
    args = parser.parse_args(argv)
    if args.tiny:
        args.refunds, args.background, args.min_seconds, args.wait = 20, 500, 0.0, 60.0

    import httpx

    from carriers.testing.sf import CHECK_WORD
    from monitor.testing.daemon import TOKEN, Daemon, signed_refund

    report = Report("B4 refund latency")
    report.note(f"setup: {args.refunds:,} refunds, {args.background:,} background shipments shipped 30 h ago, "
                f"SF polled at {args.rate:g} req/s × 10 numbers, tick 1 s, "
                f"refunds spread over ≥ {args.min_seconds:g} s "
                f"({'open loop: on schedule' if args.open_loop else 'one after another'}), "
                f"database {'sqlite (temp file)' if not args.database_url else 'postgresql'}; "
                f"{len(os.sched_getaffinity(0))} cores shared by daemon, fake and this client")  # fmt: skip
    report.note(f"goal: p99 of refund sent → intercept received by the carrier ≤ {GOAL_P99_MS:.0f} ms")
    fake = FakeProcess()
    say(f"fake 丰桥 at {fake.url} (pid {fake.proc.pid})")
    rtt = loopback_rtt(fake.url)
    with temp_dir("parcel-monitor-b4-") as tmp:
        db = open_database(args.database_url, Path(tmp))
        daemon = None
        try:
            config = Path(tmp) / "monitor.toml"
            write_config(config, db.url, fake.url, args.rate)
            daemon = Daemon(["--config", str(config)], {"B4_SF_CHECK_WORD": CHECK_WORD}, cwd=Path(tmp))
            daemon.wait_started(60)
            started_at = time.time()
            say(f"daemon pid {daemon.proc.pid} on {daemon.base}")
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=daemon.base, headers=headers, timeout=600) as client:
                now = datetime.now(UTC)
                targets = shipments("SFB4T", "B4T", 0, args.refunds, now - timedelta(hours=2))
                for i in range(0, len(targets), 10_000):
                    r = client.post("/api/v1/shipments", json={"shipments": targets[i : i + 10_000]})
                    assert r.status_code in (200, 201), r.text
                say(f"{args.refunds:,} target shipments posted; waiting until they are in transit")
                wait_for(lambda: fake.ask("asked") >= args.refunds, 300, "the targets to be polled")

                def in_transit() -> bool:
                    count, cursor = 0, None
                    while True:
                        params: dict[str, Any] = {"status": "in_transit", "carrier": "sf", "limit": 500}
                        if cursor:
                            params["cursor"] = cursor
                        page = client.get("/api/v1/parcels", params=params).json()
                        count += len(page["items"])
                        cursor = page.get("next_cursor")
                        if not cursor:
                            return count >= args.refunds

                wait_for(in_transit, 300, "the targets to be in transit")
                say("targets in transit; posting the background shipments")
                t_bg = time.monotonic()
                shipped = datetime.now(UTC) - timedelta(hours=30)
                for i in range(0, args.background, 10_000):
                    batch = shipments("SFB4B", "B4B", i, min(10_000, args.background - i), shipped)
                    r = client.post("/api/v1/shipments", json={"shipments": batch})
                    assert r.status_code in (200, 201), r.text
                bg_post_s = time.monotonic() - t_bg
                say(f"{args.background:,} background shipments posted in {bg_post_s:.1f} s; sending refunds")
                asked_before = fake.ask("asked")
                cpu0, wall0, unix0 = cpu_seconds(daemon.proc.pid), time.monotonic(), time.time()
                sends: dict[str, float] = {}
                answered: list[float] = []
                decisions: Counter[str] = Counter()
                spacing = args.min_seconds / args.refunds if args.refunds else 0

                def send(i: int) -> None:
                    body = {"refund_id": f"B4RF{i:07d}", "order_id": f"B4T{i:07d}", "type": "refund_only"}
                    sent = time.monotonic()
                    sends[f"SFB4T{i:010d}"] = sent
                    r = signed_refund(client, body)
                    answered.append(time.monotonic() - sent)
                    if r.status_code != 200:
                        decisions[f"HTTP {r.status_code}"] += 1
                    else:
                        decisions.update([d["decision"] for d in r.json()["decisions"]] or ["none"])

                pool = ThreadPoolExecutor(64) if args.open_loop else None
                for i in range(args.refunds):
                    due = wall0 + i * spacing
                    if time.monotonic() < due:
                        time.sleep(due - time.monotonic())
                    if pool is not None:  # open loop: refunds arrive on time whether or not earlier ones were answered
                        pool.submit(send, i)
                    else:  # one after another: the next is sent when the previous is answered
                        send(i)
                    if (i + 1) % 100 == 0:
                        say(f"  {i + 1:,} refunds sent ({time.monotonic() - wall0:.0f} s)")
                if pool is not None:
                    pool.shutdown(wait=True)
                sent_s = time.monotonic() - wall0
                say("waiting for the intercepts to reach the fake")
                try:
                    wait_for(lambda: len(fake.ask("stats")["arrivals"]) >= args.refunds, args.wait, "the intercepts", 1)
                except SystemExit as missing:
                    say(str(missing))
                end_mono, end_unix = time.monotonic(), time.time()
                cpu1 = cpu_seconds(daemon.proc.pid)
                asked_after = fake.ask("asked")
            stats = fake.ask("stats")
        finally:
            status = daemon.terminate(120) if daemon is not None else None
            outbox = outbox_counts(db.url) if daemon is not None else {}
            db.cleanup()
    fake.stop()
    log = read_log(daemon.errors + daemon.lines)

    arrivals: dict[str, float] = stats["arrivals"]
    latencies = sorted((arrivals[n] - t) for n, t in sends.items() if n in arrivals)
    missing = len(sends) - len(latencies)
    p = {q: percentile(latencies, q) * 1000 for q in (50, 90, 99)}
    worst = latencies[-1] * 1000 if latencies else float("nan")
    resp = sorted(answered)
    window = (unix0, end_unix)

    def overlaps(job: Job) -> bool:
        return job.start < window[1] and job.end > window[0]

    sweeps = [j for j in log.jobs if j.name in ("sweep", "sweep rules")]
    sweeps_in = [j for j in sweeps if overlaps(j)]
    polls_in = [j for j in log.jobs if j.name == "poll" and overlaps(j)]
    dispatch_in = [j for j in log.jobs if j.name == "dispatch" and overlaps(j)]
    rtt_ms = {"p50": round(percentile(rtt, 50) * 1000, 2), "p99": round(percentile(rtt, 99) * 1000, 2)}
    report.add("loopback_rtt_ms", rtt_ms,
               f"bare loopback round trip to the fake (new connection, trivial request): "
               f"p50 {percentile(rtt, 50) * 1000:.2f} ms, p99 {percentile(rtt, 99) * 1000:.2f} ms")  # fmt: skip
    report.add("background_post_s", round(bg_post_s, 1), f"{args.background:,} background shipments posted in "
               f"{bg_post_s:.1f} s")  # fmt: skip
    report.add("intercepts_received", len(latencies), f"{len(latencies):,} of {len(sends):,} intercepts reached the "
               f"fake ({missing:,} missing after {end_mono - wall0:.0f} s)")  # fmt: skip
    report.add("latency_ms", {"p50": round(p[50], 1), "p90": round(p[90], 1), "p99": round(p[99], 1),
                              "max": round(worst, 1)},
               f"refund sent → intercept at the carrier: p50 {p[50]:.1f} ms, p90 {p[90]:.1f} ms, "
               f"p99 {p[99]:.1f} ms, max {worst:.1f} ms")  # fmt: skip
    report.add("refund_response_ms", {"p50": round(percentile(resp, 50) * 1000, 1),
                                      "p99": round(percentile(resp, 99) * 1000, 1),
                                      "max": round(resp[-1] * 1000, 1) if resp else None},
               f"refund HTTP answer: p50 {percentile(resp, 50) * 1000:.1f} ms, "
               f"p99 {percentile(resp, 99) * 1000:.1f} ms,"
               f" max {resp[-1] * 1000 if resp else float('nan'):.1f} ms")  # fmt: skip
    report.add("decisions", dict(decisions), "decisions answered: " + ", ".join(f"{k} {v:,}" for k, v in
                                                                               decisions.most_common()))  # fmt: skip
    report.add("measurement_s", round(end_mono - wall0, 1),
               f"measurement {end_mono - wall0:.1f} s (refunds sent over {sent_s:.1f} s); daemon CPU "
               f"{cpu1 - cpu0:.1f} s = {(cpu1 - cpu0) / (end_mono - wall0):.2f} cores")  # fmt: skip
    report.add("ingest_during", asked_after - asked_before,
               f"{asked_after - asked_before:,} more numbers polled during the measurement "
               f"({stats['route_queries']:,} route queries in all); {len(polls_in)} poll rounds, "
               f"{len(dispatch_in)} dispatch runs overlapped it")  # fmt: skip
    report.add(
        "sweeps_during",
        [{"start_s": round(j.start - unix0, 1), "ms": j.ms} for j in sweeps_in],
        f"{len(sweeps_in)} sweep(s) overlapped the measurement: "
        + ", ".join(f"{j.name} at +{j.start - unix0:.1f} s for {j.ms / 1000:.2f} s" for j in sweeps_in)
        + f" (all sweeps: {', '.join(f'+{j.start - started_at:.0f} s {j.ms / 1000:.2f} s' for j in sweeps)}"
        + " since daemon start)",
    )
    if log.swept:
        report.add(
            "anomalies_swept",
            sum(n for _, n in log.swept),
            "anomalies opened by sweeps: " + ", ".join(f"{n:,} at +{t - started_at:.0f} s" for t, n in log.swept),
        )
    longest = sorted(log.jobs, key=lambda j: -j.ms)[:5]
    report.add(
        "longest_jobs",
        [{"job": j.name, "ms": j.ms, "start_s": round(j.start - unix0, 1)} for j in longest],
        "longest jobs (event loop held or awaited): "
        + ", ".join(f"{j.name} {j.ms / 1000:.2f} s at +{j.start - unix0:.0f} s" for j in longest),
    )
    # which slow refunds waited behind a job
    slow = [(n, arrivals[n] - t) for n, t in sends.items() if n in arrivals and (arrivals[n] - t) * 1000 > GOAL_P99_MS]
    if slow:
        by_job: Counter[str] = Counter()
        for n, lat in slow:
            t_send = unix0 + (sends[n] - wall0)
            hit = [j.name for j in log.jobs if j.start < t_send + lat and j.end > t_send]
            by_job.update(set(hit) or {"none"})
        report.add("slow_refunds", len(slow), f"{len(slow):,} refunds over {GOAL_P99_MS:.0f} ms; jobs running while "
                   "they waited: " + ", ".join(f"{k} {v:,}" for k, v in by_job.most_common()))  # fmt: skip
    # latency by phase: before the first sweep that overlapped, during its rule steps, after (its outbox backlog)
    rule_steps = [j for j in sweeps_in if j.name == "sweep rules"]
    if rule_steps:
        first = rule_steps[0]
        phases: dict[str, list[float]] = {"before the sweep": [], "during the sweep's rule steps": [],
                                          "after them (outbox backlog being run)": []}  # fmt: skip
        for n, t in sends.items():
            if n not in arrivals:
                continue
            t_unix = unix0 + (t - wall0)
            lat = arrivals[n] - t
            key = (
                "before the sweep"
                if t_unix + lat < first.start
                else "during the sweep's rule steps"
                if t_unix < first.end
                else "after them (outbox backlog being run)"
            )
            phases[key].append(lat)
        summary = {}
        for k, v in phases.items():
            v.sort()
            summary[k] = {"n": len(v), "p50": round(percentile(v, 50) * 1000, 1) if v else None,
                          "p99": round(percentile(v, 99) * 1000, 1) if v else None}  # fmt: skip
        report.add(
            "latency_by_phase",
            summary,
            "latency by phase: "
            + "; ".join(f"{k}: {v['n']} refunds, p50 {v['p50']} ms, p99 {v['p99']} ms" for k, v in summary.items()),
        )
    slowest = sorted(((arrivals[n] - t, n, t) for n, t in sends.items() if n in arrivals), reverse=True)[:8]
    report.add(
        "slowest",
        [{"ms": round(lat * 1000), "sent_s": round(t - wall0, 1)} for lat, _, t in slowest],
        "slowest refunds (ms @ seconds into the measurement): "
        + ", ".join(f"{lat * 1000:.0f} @ {t - wall0:.1f}" for lat, _, t in slowest),
    )
    if outbox:
        report.add(
            "outbox_at_end",
            outbox,
            "outbox when the daemon stopped: " + ", ".join(f"{k} {v:,}" for k, v in sorted(outbox.items())),
        )
    report.add("daemon_exit", status, f"daemon exit status after SIGTERM: {status}")
    report.goal("p99", bool(latencies) and missing == 0 and p[99] <= GOAL_P99_MS, f"p99 ≤ {GOAL_P99_MS:.0f} ms")
    out = Path(os.environ.get("B4_LOG", "")) if os.environ.get("B4_LOG") else None
    if out:
        out.write_text("\n".join(daemon.errors + daemon.lines), encoding="utf-8")
    report.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
