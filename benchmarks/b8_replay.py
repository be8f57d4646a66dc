"""B8 — a month's backtest: ``parcel-monitor replay`` on a generated scenario of N parcels.

For each size (``--parcels``, default 1,000 / 10,000 / 100,000) a scenario is written to a
temporary file: a shipment per parcel spread over 28 days of November 2026 and its scans in
time order — picked up within hours, two or three hub scans, out for delivery, delivered —
with about 3 % never picked up, 6 % stalling past the transit threshold before going on,
2 % carrier exceptions and 3 % refund-only requests: about 7.5 lines per parcel (seeded, so
every run and every checkout replays the same file). Then ``parcel-monitor replay FILE
--summary`` runs as a child process on the shipped default configuration (SQLite in a
temporary file); its wall time, lines per second and peak RSS (the child's ``VmHWM``, read
every 50 ms) are printed. The reference is reading the file and ``json.loads`` of every line.

``--checkout DIR`` replays with the code of another source tree (e.g. ``git archive HEAD``
unpacked) to compare before and after; ``--tiny`` (200 parcels) is for CI. ``--keep DIR`` writes
the scenarios (``month-N.jsonl``, reused when there) and the replays' output (``out-N.jsonl``,
``out-N-<checkout dir name>.jsonl``) to DIR and leaves them: two checkouts' outputs compare with ``diff``.
Goal (issue 14): 100,000 parcels in ≤ 60 s and ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from common import Report, say, temp_dir

CST = timezone(timedelta(hours=8))
START = datetime(2026, 11, 1, 8, 0, tzinfo=CST)
PROVINCES = ("浙江省", "江苏省", "上海市", "广东省", "北京市", "四川省", "新疆维吾尔自治区")
CLI = str(Path(sys.executable).with_name("parcel-monitor"))


def scenario(parcels: int, seed: int = 8) -> list[tuple[datetime, int, dict[str, Any]]]:
    """Return the lines of a month with ``parcels`` parcels, as (at, order, object), in time order."""
    rng = random.Random(seed)
    lines: list[tuple[datetime, int, dict[str, Any]]] = []
    n = 0

    def add(at: datetime, obj: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        lines.append((at, n, {"kind": obj.pop("kind"), "at": at.isoformat(), **obj}))

    for i in range(parcels):
        no, order = f"SB{i:07d}", f"O{i:07d}"
        shipped = START + timedelta(seconds=rng.randrange(28 * 86400))
        origin, destination = rng.choice(PROVINCES[:3]), rng.choice(PROVINCES)
        add(shipped, {"kind": "shipment", "order_id": order, "carrier": "sandbox", "tracking_no": no,
                      "origin_province": origin, "destination_province": destination,
                      "amount": rng.randrange(20, 500)})  # fmt: skip
        scan = {"carrier": "sandbox", "tracking_no": no}
        fate = rng.random()
        if fate < 0.03:  # never picked up
            continue
        at = shipped + timedelta(minutes=rng.randrange(30, 20 * 60))
        add(at, {"kind": "tracking", **scan, "status": "picked_up", "location": "揽收网点"})
        if fate < 0.06:  # a refund-only request while in transit
            add(at + timedelta(hours=2), {"kind": "refund", "order_id": order, "refund_id": f"R{i}",
                                          "type": "refund_only"})  # fmt: skip
        hubs = 2 + (rng.random() < 0.5)
        for h in range(hubs):
            gap = timedelta(hours=rng.uniform(6, 20))
            if 0.06 <= fate < 0.12 and h == 1:  # stalls past the transit threshold, then moves on
                gap = timedelta(hours=rng.uniform(80, 130))
            at += gap
            add(at, {"kind": "tracking", **scan, "status": "in_transit", "location": f"转运中心{h}"})
        if 0.12 <= fate < 0.14:
            at += timedelta(hours=rng.uniform(4, 12))
            add(at, {"kind": "tracking", **scan, "status": "exception", "reason": "address"})
        at += timedelta(hours=rng.uniform(4, 12))
        add(at, {"kind": "tracking", **scan, "status": "out_for_delivery"})
        at += timedelta(hours=rng.uniform(1, 6))
        add(at, {"kind": "tracking", **scan, "status": "delivered"})
    lines.sort(key=lambda x: (x[0], x[1]))
    return lines


def write(path: Path, parcels: int) -> int:
    """Write the scenario to ``path``; return its line count (the end line included)."""
    lines = scenario(parcels)
    last = lines[-1][0]
    with path.open("w", encoding="utf-8") as f:
        for _, _, obj in lines:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        f.write(json.dumps({"kind": "end", "at": (last + timedelta(days=2)).isoformat()}) + "\n")
    return len(lines) + 1


def reference(path: Path) -> float:
    """Time reading the file and ``json.loads`` of each line."""
    t0 = time.perf_counter()
    with path.open(encoding="utf-8") as f:
        for text in f:
            json.loads(text)
    return time.perf_counter() - t0


def replay(path: Path, checkout: Path | None, out: Path) -> tuple[float, float, int, int]:
    """Run the CLI on ``path``; return (wall seconds, CPU seconds, peak RSS in bytes, exit code)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARCEL_MONITOR_")}
    cmd = [CLI, "replay", str(path), "--summary"]
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
        cmd = [sys.executable, "-c", "from monitor.cli import main; main()", "replay", str(path), "--summary"]
    t0 = time.perf_counter()
    peak = 0
    with out.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL, env=env, cwd=out.parent)
        while True:
            peak = max(peak, _high_water(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_utime + usage.ru_stime, peak, proc.returncode


def _high_water(pid: int) -> int:
    """Return the child's peak resident memory so far, in bytes (``VmHWM``; 0 once it is gone).

    Not ``wait4``'s ``ru_maxrss``: that counts the child from the fork, when it was still a copy of
    this process — which holds the whole generated scenario (~450 MB at 100k parcels) — and
    reported that instead of the replay's own peak. ``VmHWM`` starts again at the ``exec``.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parcels", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--tiny", action="store_true", help="200 parcels, for CI")
    ap.add_argument("--checkout", type=Path, help="replay with the code of this source tree")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="write the scenarios and outputs here and keep them")
    args = ap.parse_args()
    sizes = [200] if args.tiny else args.parcels
    report = Report("B8 replay")
    with _workdir(args.keep) as tmp:
        for parcels in sizes:
            path = Path(tmp) / f"month-{parcels}.jsonl"
            if args.keep is not None and path.exists():  # the same seeded file: written once
                lines = sum(1 for _ in path.open(encoding="utf-8"))
            else:
                say(f"B8: writing {parcels:,} parcels …")
                lines = write(path, parcels)
            ref = reference(path)
            say(f"B8: replaying {lines:,} lines …")
            tag = f"-{args.checkout.resolve().name}" if args.checkout is not None else ""
            out = Path(tmp) / f"out-{parcels}{tag}.jsonl"  # --keep: each checkout's output beside the others'
            seconds, cpu, rss, code = replay(path, args.checkout, out)
            if code != 0:
                raise SystemExit(f"replay of {parcels} parcels exited {code}")
            summary = json.loads(out.read_text().splitlines()[-1])
            k = f"{parcels // 1000}k" if parcels >= 1000 else str(parcels)
            report.add(f"lines_{k}", lines)
            report.add(f"seconds_{k}", round(seconds, 2), f"{seconds:.2f} s (reference: read + json.loads {ref:.2f} s)")
            report.add(f"cpu_seconds_{k}", round(cpu, 2), f"{cpu:.2f} s of CPU (wall time varies on a shared machine)")
            report.add(f"lines_per_s_{k}", round(lines / seconds), f"{lines / seconds:,.0f}")
            report.add(f"peak_rss_mb_{k}", round(rss / 2**20), f"{rss / 2**20:.0f} MB")
            report.add(f"events_{k}", summary["events"])
            if parcels == 100_000:
                report.goal("100k", seconds <= 60 and rss <= 200 * 2**20, "100k parcels ≤ 60 s and ≤ 200 MB")
    report.print()


@contextlib.contextmanager
def _workdir(keep: Path | None) -> Iterator[str]:
    """Yield the directory for scenarios and outputs: ``keep`` (made if missing, left), else a temporary one."""
    if keep is None:
        with temp_dir("b8-") as tmp:
            yield tmp
        return
    keep.mkdir(parents=True, exist_ok=True)
    yield str(keep.resolve())


if __name__ == "__main__":
    main()
