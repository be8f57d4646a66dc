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
