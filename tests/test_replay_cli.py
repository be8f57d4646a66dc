"""`parcel-monitor replay` as a user runs it: exit codes, error messages, output and --summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

CLI = str(Path(sys.executable).with_name("parcel-monitor"))


def t(day: int, hour: int, minute: int = 0) -> str:
    """Return an ISO time on ``day`` November 2026, +08:00."""
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def ship(at: str, no: str = "SB1", **extra: Any) -> dict[str, Any]:
    return {"kind": "shipment", "at": at, "order_id": f"O-{no}", "carrier": "sandbox", "tracking_no": no} | extra


def scan(at: str, status: str, no: str = "SB1", **extra: Any) -> dict[str, Any]:
    return {"kind": "tracking", "at": at, "carrier": "sandbox", "tracking_no": no, "status": status} | extra


def line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


def replay_cli(tmp_path: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Write ``lines`` to a scenario file and run ``parcel-monitor replay`` on it (built-in config)."""
    scenario = tmp_path / "scenario.jsonl"
    scenario.write_text("".join(f"{text}\n" for text in lines), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARCEL_MONITOR_")}
    return subprocess.run(
        [CLI, "replay", str(scenario), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )


GOOD_SHIPMENT = line(ship(t(11, 9)))

BAD_LINES = {
    "invalid_json": (
        [GOOD_SHIPMENT, '{"kind": "tracking", "at": '],
        2,
        ["not valid JSON"],
    ),
    "unknown_kind": (
        [GOOD_SHIPMENT, line({"kind": "parcel", "at": t(11, 10)})],
        2,
        ["unknown kind 'parcel'"],
    ),
    "missing_required_key": (
        [GOOD_SHIPMENT, line({"kind": "tracking", "at": t(11, 10), "carrier": "sandbox", "status": "picked_up"})],
        2,
        ["missing required key 'tracking_no'"],
    ),
    "missing_at": (
        [GOOD_SHIPMENT, line({"kind": "end"})],
        2,
        ["missing required key 'at'"],
    ),
    "unknown_status": (
        [GOOD_SHIPMENT, line(scan(t(11, 10), "teleported"))],
        2,
        ["unknown status 'teleported'"],
    ),
    "unknown_reason": (
        [GOOD_SHIPMENT, line(scan(t(11, 10), "exception", reason="aliens"))],
        2,
        ["unknown reason 'aliens'"],
    ),
    "time_without_offset": (
        [GOOD_SHIPMENT, line(scan("2026-11-11T10:00:00", "picked_up"))],
        2,
        ["bad time", "2026-11-11T10:00:00", "no offset"],
    ),
    "time_not_a_time": (
        [GOOD_SHIPMENT, line(scan(t(11, 10), "picked_up", time="yesterday"))],
        2,
        ["bad time", "yesterday"],
    ),
    "out_of_time_order": (
        [GOOD_SHIPMENT, line(scan(t(11, 12), "picked_up")), line(scan(t(11, 11), "in_transit"))],
        3,
        ["out of time order"],
    ),
    "bad_province": (
        [GOOD_SHIPMENT, line(ship(t(11, 10), "SB2", destination_province="火星"))],
        2,
        ["destination_province", "火星"],
    ),
    "bad_refund_type": (
        [
            GOOD_SHIPMENT,
            line({"kind": "refund", "at": t(11, 10), "order_id": "O-SB1", "refund_id": "R1", "type": "refund"}),
        ],
        2,
        ["bad type 'refund'"],
    ),
    "bad_accepted": (
        [
            GOOD_SHIPMENT,
            line(
                {"kind": "intercept_result", "at": t(11, 10), "carrier": "sandbox"}
                | {
                    "tracking_no": "SB1",
                    "accepted": "yes",
                }
            ),
        ],
        2,
        ["accepted", "'yes'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_line_exits_2_naming_the_line_and_the_problem(tmp_path: Path, case: str) -> None:
    lines, number, problems = BAD_LINES[case]
    res = replay_cli(tmp_path, lines)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(f"error: {tmp_path / 'scenario.jsonl'}: line {number}: "), res.stderr
    for problem in problems:
        assert problem in res.stderr
    assert res.stdout == ""  # checked whole before anything runs


def test_bad_line_after_many_good_ones_still_stops_before_running(tmp_path: Path) -> None:
    lines = [GOOD_SHIPMENT, *(line(scan(t(12, h), "in_transit")) for h in range(10, 20)), "not json"]
    res = replay_cli(tmp_path, lines)
    assert res.returncode == 2
    assert ": line 12: not valid JSON" in res.stderr
    assert res.stdout == ""


def test_empty_scenario_exits_2(tmp_path: Path) -> None:
    res = replay_cli(tmp_path, [])
    assert res.returncode == 2
    assert "the scenario has no lines" in res.stderr


def test_good_scenario_exits_0_with_json_lines(tmp_path: Path) -> None:
    res = replay_cli(tmp_path, [GOOD_SHIPMENT, line({"kind": "end", "at": t(12, 9)})])
    assert res.returncode == 0, res.stderr
    out = [json.loads(text) for text in res.stdout.splitlines()]
    assert [(o["at"], o["event"], o.get("rule")) for o in out] == [
        (t(12, 5), "anomaly_opened", "pickup_at_risk"),
        (t(12, 5), "alert_sent", "pickup_at_risk"),
        (t(12, 9), "anomaly_opened", "pickup_overdue"),
        (t(12, 9), "anomaly_resolved", "pickup_at_risk"),
        (t(12, 9), "ticket_opened", "pickup_overdue"),
        (t(12, 9), "alert_sent", "pickup_overdue"),
    ]
    for o in out:
        assert list(o)[:5] == ["at", "event", "carrier", "tracking_no", "order_id"]
        assert (o["carrier"], o["tracking_no"], o["order_id"]) == ("sandbox", "SB1", "O-SB1")


def test_an_unknown_key_warns_with_its_line_and_the_line_is_used_without_it(tmp_path: Path) -> None:
    end = line({"kind": "end", "at": t(12, 9)})
    typo = replay_cli(tmp_path, [line(ship(t(11, 9), amout=199)), line(scan(t(11, 10), "pending", colour="blue")), end])
    assert typo.returncode == 0, typo.stderr
    scenario = tmp_path / "scenario.jsonl"
    assert typo.stderr.splitlines() == [
        f"warning: {scenario}: line 1: unknown key 'amout' for kind 'shipment' (did you mean 'amount'?); "
        "the line is used without it",
        f"warning: {scenario}: line 2: unknown key 'colour' for kind 'tracking'; the line is used without it",
    ]
    clean = replay_cli(tmp_path, [line(ship(t(11, 9))), line(scan(t(11, 10), "pending")), end])
    assert clean.stderr == "" and typo.stdout == clean.stdout
    opened = [json.loads(text) for text in typo.stdout.splitlines() if '"anomaly_opened"' in text]
    assert opened and all(o["compensation"] is None for o in opened)  # no amount: the typo'd one was not read


def test_strict_makes_an_unknown_key_an_error(tmp_path: Path) -> None:
    lines = [GOOD_SHIPMENT, line(ship(t(11, 9), "SB2", amout=199)), line({"kind": "end", "at": t(12, 9)})]
    res = replay_cli(tmp_path, lines, "--strict")
    assert res.returncode == 2
    assert res.stderr == (
        f"error: {tmp_path / 'scenario.jsonl'}: line 2: unknown key 'amout' for kind 'shipment' "
        "(did you mean 'amount'?)\n"
    )
    assert res.stdout == ""
    assert replay_cli(tmp_path, lines[:1] + lines[2:], "--strict").returncode == 0


def test_summary_counts_events_rules_and_the_24h_pickup_rate(tmp_path: Path) -> None:
    lines = [
        line(ship(t(11, 9), "A")),
        line(ship(t(11, 9), "B")),
        line(ship(t(11, 9), "C")),
        line(ship(t(11, 9), "D")),
        line(scan(t(11, 10), "picked_up", "A")),
        line(scan(t(11, 20), "picked_up", "B")),
        line(scan(t(12, 9), "picked_up", "C")),  # exactly at the deadline: in time
        line(scan(t(12, 11), "picked_up", "D")),  # two hours late
        line({"kind": "end", "at": t(12, 12)}),
    ]
    res = replay_cli(tmp_path, lines, "--summary")
    assert res.returncode == 0, res.stderr
    *body, last = [json.loads(text) for text in res.stdout.splitlines()]
    assert last == {
        "summary": True,
        "events": {"alert_sent": 4, "anomaly_opened": 4, "anomaly_resolved": 3, "ticket_opened": 2},
        "rules": {"pickup_at_risk": 2, "pickup_overdue": 1, "stalled": 1},
        "pickup_due": 4,
        "picked_up_on_time": 3,
        "pickup_rate_24h": 0.75,
    }
    assert dict(Counter(o["event"] for o in body)) == last["events"]
    assert all("summary" not in o for o in body)


def test_summary_counts_a_parcel_never_picked_up_as_due(tmp_path: Path) -> None:
    lines = [
        line(ship(t(11, 9), "A")),
        line(ship(t(11, 9), "B")),
        line(scan(t(11, 10), "picked_up", "A")),
        line({"kind": "end", "at": t(12, 9)}),
    ]
    res = replay_cli(tmp_path, lines, "--summary")
    summary = json.loads(res.stdout.splitlines()[-1])
    assert (summary["pickup_due"], summary["picked_up_on_time"], summary["pickup_rate_24h"]) == (2, 1, 0.5)


def test_summary_leaves_held_shipments_out_of_the_pickup_rate(tmp_path: Path) -> None:
    lines = [
        line(ship(t(11, 9), "A")),
        line(ship(t(11, 9), "B")),
        line(scan(t(11, 10), "picked_up", "A")),
        line({"kind": "refund", "at": t(11, 11), "order_id": "O-B", "refund_id": "R1", "type": "refund_only"}),
        line({"kind": "end", "at": t(12, 10)}),
    ]
    res = replay_cli(tmp_path, lines, "--summary")
    summary = json.loads(res.stdout.splitlines()[-1])
    assert (summary["pickup_due"], summary["picked_up_on_time"], summary["pickup_rate_24h"]) == (1, 1, 1.0)
    assert summary["events"]["shipment_held"] == 1


def test_summary_rate_is_null_when_nothing_is_due(tmp_path: Path) -> None:
    res = replay_cli(tmp_path, [GOOD_SHIPMENT, line({"kind": "end", "at": t(11, 10)})], "--summary")
    summary = json.loads(res.stdout.splitlines()[-1])
    assert (summary["pickup_due"], summary["pickup_rate_24h"]) == (0, None)


def test_a_line_after_the_end_line_is_an_error(tmp_path: Path) -> None:
    lines = [
        {
            "kind": "shipment",
            "at": "2026-11-11T09:00:00+08:00",
            "order_id": "O1",
            "carrier": "sandbox",
            "tracking_no": "S1",
        },
        {"kind": "end", "at": "2026-11-12T09:00:00+08:00"},
        {
            "kind": "tracking",
            "at": "2026-11-13T09:00:00+08:00",
            "carrier": "sandbox",
            "tracking_no": "S1",
            "status": "x",
        },
    ]
    path = tmp_path / "after-end.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    res = subprocess.run([CLI, "replay", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2
    assert "line 3: comes after the end line (line 2)" in res.stderr
    assert res.stdout == ""


# -- a month at scale: streamed, batched, the same output ----------------------------------------


def month(parcels: int, seed: int = 14, held: bool = False) -> list[str]:
    """Return a generated scenario: shipments, scans, stalls, exceptions and refunds, in time order.

    ``held``: also refunds before pickup (the shipment is held, then intercepted when picked up
    anyway) and intercepts the carrier rejects (an ``intercept_result`` before the refund).
    """
    import random
    from datetime import datetime, timedelta, timezone

    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    lines: list[tuple[datetime, int, dict[str, Any]]] = []
    for i in range(parcels):
        no = f"M{i:05d}"
        at = start + timedelta(minutes=rng.randrange(6 * 24 * 60))
        lines.append((at, len(lines), ship(at.isoformat(), no, amount=rng.randrange(20, 300))))
        fate = rng.random()
        if held and 0.8 < fate <= 0.85:  # refund-only before pickup: held, and intercepted once picked up
            early = at + timedelta(minutes=10)
            refund = {"kind": "refund", "at": early.isoformat(), "order_id": f"O-{no}", "refund_id": f"H{i}",
                      "type": "refund_only"}  # fmt: skip
            lines.append((early, len(lines), refund))
        if held and 0.85 < fate <= 0.9:  # the carrier will reject the intercept of the refund below
            verdict = {"kind": "intercept_result", "at": at.isoformat(), "carrier": "sandbox", "tracking_no": no,
                       "accepted": False, "reason": "已派送"}  # fmt: skip
            lines.append((at, len(lines), verdict))
        if fate < 0.1:  # never picked up
            continue
        for status, hours in (
            ("picked_up", (1, 30)),
            ("in_transit", (5, 20)),
            ("in_transit", (5, 90)),
            ("exception" if fate < 0.2 else "out_for_delivery", (3, 12)),
            ("delivered", (1, 5)),
        ):
            at += timedelta(hours=rng.uniform(*hours))
            extra = {"reason": "address"} if status == "exception" else {}
            lines.append((at, len(lines), scan(at.isoformat(), status, no, **extra)))
            if status == "picked_up" and (fate > 0.9 or (held and 0.85 < fate <= 0.9)):
                refund = {"kind": "refund", "at": (at + timedelta(hours=1)).isoformat(), "order_id": f"O-{no}",
                          "refund_id": f"R{i}", "type": "refund_only"}  # fmt: skip
                lines.append((at + timedelta(hours=1), len(lines), refund))
    lines.sort(key=lambda x: (x[0], x[1]))
    last = lines[-1][0] + timedelta(days=4)
    return [line(obj) for _, _, obj in lines] + [line({"kind": "end", "at": last.isoformat()})]


@pytest.mark.parametrize("route", ["default", "repeating"])
def test_batched_replay_prints_what_line_by_line_replay_prints(route: str) -> None:
    """Batches of lines (one transaction, no outbox run) must be invisible: the same output, line for line."""
    import asyncio
    import io

    from monitor.alerts.routing import parse_route
    from monitor.replay.runner import replay
    from monitor.replay.scenario import parse
    from monitor.rules.ruleset import build_ruleset

    steps = parse(month(60))
    alerting: dict[str, Any] = {}
    if route == "repeating":
        raw = {"receiver": "console", "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
        alerting = {"route": parse_route(raw, {"console"})}
    outs = []
    for batching in (True, False):
        out = io.StringIO()
        asyncio.run(replay(steps, build_ruleset(), out, summary=True, alerting=alerting, batching=batching))
        outs.append(out.getvalue().splitlines())
    batched, alone = outs
    assert len(alone) > 100 and batched == alone
    assert json.loads(alone[-1])["events"]["anomaly_opened"] > 10


def test_batched_replay_prints_the_same_with_held_parcels_and_rejected_intercepts() -> None:
    """Scans of parcels whose intercept is held, under way, rejected or over: batched, yet the same output.

    On the shipped configuration, as the CLI plays it (its rules and routes act at the line's own moment).
    """
    import asyncio
    import io

    from monitor import config
    from monitor.cli import alerting
    from monitor.replay.runner import replay
    from monitor.replay.scenario import parse

    settings = config.load(None, {})
    channels = [c.name for c in settings.channels]
    steps = parse(month(80, seed=15, held=True))
    outs = []
    for batching in (True, False):
        out = io.StringIO()
        coro = replay(steps, settings.rules, out, channels=channels, summary=True, alerting=alerting(settings),
                      batching=batching)  # fmt: skip
        asyncio.run(coro)
        outs.append(out.getvalue().splitlines())
    batched, alone = outs
    assert batched == alone
    events = json.loads(alone[-1])["events"]
    assert events["shipment_held"] > 0 and events["intercept_rejected"] > 0 and events["intercept_requested"] > 5


def test_a_quiet_stretch_costs_a_few_statements_per_batch_not_sixteen_per_line(tmp_path: Path) -> None:
    """Scans that open and resolve nothing go in as a batch: far fewer statements than lines."""
    import asyncio
    import io

    from sqlalchemy import event

    from monitor.replay.runner import Replay
    from monitor.replay.scenario import parse
    from monitor.rules.ruleset import build_ruleset
    from monitor.store.db import make_engine, upgrade
    from monitor.store.store import Store

    lines = [line(ship(t(11, 9), f"Q{i}")) for i in range(100)]
    lines += [line(scan(t(11, 10, i // 2), "picked_up", f"Q{i}")) for i in range(100)]
    lines += [line(scan(t(11, 18, i // 2), "in_transit", f"Q{i}")) for i in range(100)]
    lines.append(line({"kind": "end", "at": t(11, 20)}))
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    out = io.StringIO()
    run = Replay(parse(lines), build_ruleset(), ["console"], Store(engine), out)
    asyncio.run(run.run())
    run.close()
    engine.dispose()
    assert out.getvalue() == ""
    assert len(seen) < len(lines)  # line by line it was ~16 statements a line


def test_a_scenario_on_standard_input_is_checked_then_played(tmp_path: Path) -> None:
    """A stream that cannot be read twice is copied aside while it is checked: same output, same errors."""
    lines = [GOOD_SHIPMENT, line({"kind": "end", "at": t(12, 9)})]
    from_file = replay_cli(tmp_path, lines)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARCEL_MONITOR_")}
    piped = subprocess.run([CLI, "replay", "-"], input="".join(f"{x}\n" for x in lines), capture_output=True,
                           text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == from_file.stdout != ""
    bad = subprocess.run([CLI, "replay", "-"], input=f"{GOOD_SHIPMENT}\nnot json\n", capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "line 2: not valid JSON" in bad.stderr and bad.stdout == ""


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path: Path) -> None:
    lines = [GOOD_SHIPMENT, line({"kind": "end", "at": t(12, 9)})]
    plain = replay_cli(tmp_path, lines)
    assert plain.stderr == ""  # not a terminal, not asked: nothing on stderr
    asked = replay_cli(tmp_path, lines, "--progress")
    assert asked.returncode == 0 and "replay" in asked.stderr and asked.stdout == plain.stdout


def test_batched_replay_holds_a_shipment_whose_refund_came_first() -> None:
    """A refund-only request before its shipment: that shipment, batched with others, is still held.

    Batches ask for the refunds of new shipments only when a refund line of one of their orders
    was played; this one was, so the output is the line-by-line one, with the parcel held.
    """
    import asyncio
    import io

    from monitor.replay.runner import replay
    from monitor.replay.scenario import parse
    from monitor.rules.ruleset import build_ruleset

    lines = [line({"kind": "refund", "at": t(2, 8), "order_id": "O-SB3", "refund_id": "R3", "type": "refund_only"})]
    lines += [line(ship(t(2, 8, 4 + i), f"SB{i}")) for i in range(1, 6)]
    lines += [line(scan(t(2, 11, 10 + i), "picked_up", f"SB{i}")) for i in range(1, 6)]
    lines.append(line({"kind": "end", "at": t(3, 12)}))
    outs = []
    for batching in (True, False):
        out = io.StringIO()
        asyncio.run(replay(parse(lines), build_ruleset(), out, summary=True, batching=batching))
        outs.append(out.getvalue().splitlines())
    batched, alone = outs
    assert batched == alone
    events = [json.loads(x) for x in batched[:-1]]
    assert [e["tracking_no"] for e in events if e["event"] == "shipment_held"] == ["SB3"]


def test_replay_keeps_one_connection_rather_than_one_checkout_per_transaction() -> None:
    """A month's replay runs thousands of short transactions; each one checking a pooled connection out
    and back (with its reset) cost more than most of them, so the scratch store keeps one open; and
    each is a savepoint, committed in groups (a commit writes the pages it touched to the file)."""
    import asyncio
    import io

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    from monitor.replay.runner import GROUP, replay
    from monitor.replay.scenario import parse
    from monitor.rules.ruleset import build_ruleset

    checkouts: list[object] = []
    transactions: list[object] = []
    sqlite_saw: list[str] = []  # every statement SQLite itself ran, the driver's savepoints included

    def checked_out(dbapi_conn: Any, *args: object) -> None:
        checkouts.append(args)
        dbapi_conn.set_trace_callback(sqlite_saw.append)

    def began(conn: object) -> None:
        transactions.append(conn)

    event.listen(Pool, "checkout", checked_out)
    event.listen(Engine, "begin", began)
    try:
        out = io.StringIO()
        asyncio.run(replay(parse(month(40)), build_ruleset(), out, summary=True))
    finally:
        event.remove(Pool, "checkout", checked_out)
        event.remove(Engine, "begin", began)
    units = len(transactions) + sum(1 for s in sqlite_saw if s.startswith("SAVEPOINT"))
    commits = sum(1 for s in sqlite_saw if s.startswith("COMMIT"))
    assert json.loads(out.getvalue().splitlines()[-1])["events"]["anomaly_opened"] > 5
    assert units > 200, "a replay is many transactions"
    assert len(checkouts) <= 5, f"{len(checkouts)} pool checkouts for {units} transactions"
    assert commits * 10 <= units, f"{commits} commits for {units} transactions: grouped ({GROUP} a commit)"


def test_grouped_commits_undo_only_the_failed_transaction_and_reach_the_file_at_release(tmp_path: Path) -> None:
    """The scratch store's transactions are savepoints of one SQLite transaction: a failed one is undone alone."""
    from sqlalchemy import text

    from monitor.replay.runner import _KeptConnection
    from monitor.store.db import make_engine

    url = f"sqlite:///{tmp_path / 'scratch.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    store = _KeptConnection(engine, group=3)
    with store.begin() as uow:
        uow.conn.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(RuntimeError), store.begin() as uow:
        uow.conn.execute(text("INSERT INTO t VALUES (2)"))
        raise RuntimeError("a batch that acts: rolled back and played shorter")
    with store.begin() as uow:
        assert [r[0] for r in uow.conn.execute(text("SELECT x FROM t"))] == [1]
        uow.conn.execute(text("INSERT INTO t VALUES (3)"))
    other = make_engine(url)
    with other.connect() as conn:  # two transactions released, not yet committed: the file has none of it
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    store.release()
    with other.connect() as conn:
        assert sorted(r[0] for r in conn.execute(text("SELECT x FROM t"))) == [1, 3]
    other.dispose()
    engine.dispose()
