"""The CLI: `routes learn`, `routes show`, and `replay --warmup-until` / `--learn-from`."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.store.db import make_engine, upgrade
from monitor.store.store import Store
from monitor.testing.history import Journey, write_journeys
from tests.helpers import CLI

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "slow-route.jsonl"
H = timedelta(hours=1)


def cli(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARCEL_MONITOR_")}
    if url:
        env["PARCEL_MONITOR_DATABASE_URL"] = url
    return subprocess.run([CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8",
                          timeout=120, check=False)  # fmt: skip


def seeded(tmp_path: Path) -> str:
    """A database with 35 parcels delivered 浙江→四川 by sf in the last weeks (of the wall clock: the CLI's)."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    items = []
    for i in range(35):
        shipped = now - timedelta(days=10) + i * H
        at = shipped + (1 + i / 10) * H
        scans = [(at, "picked_up"), (at + 4 * H, "in_transit"), (at + 10 * H, "in_transit")]
        scans += [(at + 16 * H, "out_for_delivery"), (at + 19 * H, "delivered")]
        items.append(Journey("sf", "浙江", "四川", "cross_province", shipped, scans))
    with Store(engine).begin() as uow:
        write_journeys(uow, items)
    engine.dispose()
    return url


def test_routes_learn_then_show(tmp_path: Path) -> None:
    url = seeded(tmp_path)
    shown = cli("routes", "show", url=url)
    assert shown.returncode == 0 and "no route norms learned yet" in shown.stdout
    learned = cli("routes", "learn", url=url)
    assert learned.returncode == 0, learned.stderr
    assert "from 35 delivered parcel(s)" in learned.stdout and "window 60 days" in learned.stdout
    table = cli("routes", "show", "--carrier", "sf", url=url).stdout.splitlines()
    assert table[0].split() == ["carrier", "level", "route", "phase", "p50", "h", "p90", "h", "p95", "h", "p99", "h",
                                "samples"]  # fmt: skip
    route_rows = [line.split() for line in table if " route " in line and "浙江→四川" in line]
    assert {r[3] for r in route_rows} == {"ship_to_pickup", "pickup_to_first_transit", "transit_gap",
                                          "ofd_to_delivered", "total"}  # fmt: skip
    pickup = next(r for r in route_rows if r[3] == "ship_to_pickup")
    assert (pickup[4], pickup[-1]) == ("2.7", "35")  # median of 1.0 … 4.4 h
    chain = json.loads(cli("routes", "show", "--from", "浙江", "--to", "新疆", "--format", "json", url=url).stdout)
    assert [(n["level"], n["phase"]) for n in chain][:2] == [("carrier", "ship_to_pickup"),
                                                             ("carrier", "pickup_to_first_transit")]  # fmt: skip
    assert cli("routes", "show", "--carrier", "zto", url=url).stdout.startswith("no route norms learned yet")
    bad = cli("routes", "show", "--from", "火星", "--to", "四川", url=url)
    assert bad.returncode == 2 and "--from: unknown province '火星'" in bad.stderr


def lines_of(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_replay_warmup_warns_earlier_than_the_fixed_threshold() -> None:
    """The slow-route example: learned on 40 parcels, the norm warns ~65 h before the 72 h stall line."""
    warm = lines_of(cli("replay", str(EXAMPLE), "--summary", "--warmup-until", "2026-10-25T00:00:00+08:00"))
    expected = EXAMPLE.with_name("slow-route.warmup.expected.jsonl").read_text("utf-8").splitlines()
    assert warm == [json.loads(x) for x in expected if x.strip()]
    plain = lines_of(cli("replay", str(EXAMPLE), "--summary"))
    assert plain[-1]["rules"] == {"stalled": 1}  # without norms: only the fixed line, 72 h after the last scan
    warm = warm[:-1]  # the summary
    slow = {x["tracking_no"]: x["at"] for x in warm if x["event"] == "anomaly_opened" and x["rule"] == "slow_for_route"}
    stalled = [x for x in warm if x["event"] == "anomaly_opened" and x["rule"] == "stalled"]
    assert set(slow) == {"SF150000000101", "SF150000000102"}  # the one that recovers and the one that stalls
    (stall,) = stalled
    gained = datetime.fromisoformat(stall["at"]) - datetime.fromisoformat(slow[stall["tracking_no"]])
    assert gained > 60 * H
    resolved = {(x["tracking_no"], x["resolution"]) for x in warm if x["event"] == "anomaly_resolved"}
    assert resolved == {("SF150000000101", "auto"), ("SF150000000102", "escalated")}
    assert all(x["order_id"] >= "TB202600000100" for x in warm)  # the history is learned from, never played out


def test_replay_learn_from_another_file(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    checked = tmp_path / "checked.jsonl"
    rows = [json.loads(x) for x in EXAMPLE.read_text("utf-8").splitlines() if x.strip()]
    cut = datetime.fromisoformat("2026-10-25T00:00:00+08:00")
    before = [r for r in rows if datetime.fromisoformat(r["at"]) < cut]
    after = [r for r in rows if datetime.fromisoformat(r["at"]) >= cut]
    history.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in before), "utf-8")
    checked.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in after), "utf-8")
    proc = cli("replay", str(checked), "--summary", "--learn-from", str(history))
    assert "warm-up: learned" in proc.stderr
    assert lines_of(proc)[-1]["rules"] == {"slow_for_route": 2, "stalled": 1}
    bad = cli("replay", str(checked), "--warmup-until", "yesterday")
    assert bad.returncode == 2 and "--warmup-until" in bad.stderr
    none = cli("replay", str(checked), "--warmup-until", "2026-01-01T00:00:00+08:00")
    assert none.returncode == 2 and "the warm-up has no lines before" in none.stderr
