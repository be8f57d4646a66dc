"""The scenarios in examples/ replay to exactly their expected output, through the real CLI.

Each ``examples/NAME.jsonl`` has ``examples/NAME.expected.jsonl`` beside it, produced by
``parcel-monitor replay NAME.jsonl --summary`` and checked by hand against DESIGN.md. The
explicit tests below say which facts of each scenario matter to a merchant, so a change
that breaks one fails with a readable message rather than a diff of a hundred lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CLI = str(Path(sys.executable).with_name("parcel-monitor"))
SCENARIOS = sorted(p for p in EXAMPLES.glob("*.jsonl") if not p.name.endswith(".expected.jsonl"))


def expected_path(scenario: Path) -> Path:
    return scenario.with_name(scenario.name.removesuffix(".jsonl") + ".expected.jsonl")


@cache
def replay(name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the real CLI on one example; return its event lines and its summary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARCEL_MONITOR_")}
    proc = subprocess.run(
        [CLI, "replay", str(EXAMPLES / name), "--summary"],
        cwd=ROOT,  # picks up config/default.toml: tmall preset, one console channel
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"replay {name} exited {proc.returncode}: {proc.stderr}"
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert lines and lines[-1].get("summary") is True, "the last line must be the summary"
    return lines[:-1], lines[-1]


def events(lines: list[dict[str, Any]], event: str, **match: Any) -> list[dict[str, Any]]:
    return [x for x in lines if x["event"] == event and all(x.get(k) == v for k, v in match.items())]


def opened(lines: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return events(lines, "anomaly_opened", rule=rule)


def by_order(lines: list[dict[str, Any]], order_id: str) -> list[tuple[str, str | None]]:
    return [(x["event"], x.get("rule")) for x in lines if x["order_id"] == order_id]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_replay_matches_expected_output(scenario: Path) -> None:
    """Every output line, in order, equals the checked-in expected line."""
    expected_file = expected_path(scenario)
    assert expected_file.exists(), f"{expected_file.name} is missing: generate it with replay --summary"
    expected = [json.loads(x) for x in expected_file.read_text("utf-8").splitlines() if x.strip()]
    lines, summary = replay(scenario.name)
    actual = [*lines, summary]
    for number, (got, want) in enumerate(zip(actual, expected, strict=False), start=1):
        assert got == want, f"{expected_file.name} line {number} differs"
    assert len(actual) == len(expected), f"{len(actual)} lines replayed, {len(expected)} expected"


def test_every_example_has_a_readme_entry() -> None:
    readme = (EXAMPLES / "README.md").read_text("utf-8")
    for scenario in SCENARIOS:
        assert scenario.name in readme, f"examples/README.md does not describe {scenario.name}"


# -- ordinary day ----------------------------------------------------------------------------


def test_ordinary_day_one_pickup_miss_and_one_cleared_exception() -> None:
    lines, summary = replay("ordinary-day.jsonl")
    assert summary["rules"] == {"pickup_at_risk": 1, "pickup_overdue": 1, "carrier_exception": 1}
    # The late YTO parcel: warned 4 h before the deadline, overdue at 24 h, cleared by the late scan.
    assert by_order(lines, "TB20260310000107") == [
        ("anomaly_opened", "pickup_at_risk"),
        ("alert_sent", "pickup_at_risk"),
        ("anomaly_opened", "pickup_overdue"),
        ("anomaly_resolved", "pickup_at_risk"),
        ("ticket_opened", "pickup_overdue"),
        ("alert_sent", "pickup_overdue"),
        ("anomaly_resolved", "pickup_overdue"),
    ]
    (overdue,) = opened(lines, "pickup_overdue")
    assert overdue["at"] == "2026-03-11T14:00:00+08:00"  # shipped 03-10 14:00 + 24 h
    assert overdue["compensation"] == 6.4  # 5 % of 128 yuan
    # The address problem clears when the courier reaches the buyer: the anomaly resolves itself.
    (exc,) = opened(lines, "carrier_exception")
    assert exc["order_id"] == "TB20260310000108"
    (cleared,) = events(lines, "anomaly_resolved", anomaly_id=exc["anomaly_id"])
    assert (cleared["resolution"], cleared["at"]) == ("auto", "2026-03-12T14:00:00+08:00")
    # Nothing is left open at the end of an ordinary day, and 9 of 10 were picked up in 24 h.
    assert {x["anomaly_id"] for x in events(lines, "anomaly_resolved")} == {
        x["anomaly_id"] for x in events(lines, "anomaly_opened")
    }
    assert (summary["pickup_due"], summary["picked_up_on_time"], summary["pickup_rate_24h"]) == (10, 9, 0.9)


# -- 双11 peak -------------------------------------------------------------------------------


def test_double_11_pickup_misses() -> None:
    lines, summary = replay("double-11-peak.jsonl")
    overdue = opened(lines, "pickup_overdue")
    assert len(overdue) == 5
    resolved = {x["anomaly_id"]: x["resolution"] for x in events(lines, "anomaly_resolved")}
    late = sorted(x["order_id"] for x in overdue if resolved.get(x["anomaly_id"]) == "auto")
    never = sorted(x["order_id"] for x in overdue if x["anomaly_id"] not in resolved)
    assert late == ["TB20261111000017", "TB20261111000018", "TB20261111000019"]  # scanned late
    assert never == ["TB20261111000021", "TB20261111000022"]  # still open: never left the warehouse
    # Compensation is 5 % of the order, clamped to 5–30 yuan.
    assert {x["order_id"]: x["compensation"] for x in overdue} == {
        "TB20261111000017": 5.95,
        "TB20261111000018": 5.0,
        "TB20261111000019": 30.0,
        "TB20261111000021": 5.0,
        "TB20261111000022": 30.0,
    }
    # Picked up 22 h after shipment: warned, then cleared, never overdue.
    assert by_order(lines, "TB20261111000020") == [
        ("anomaly_opened", "pickup_at_risk"),
        ("alert_sent", "pickup_at_risk"),
        ("anomaly_resolved", "pickup_at_risk"),
    ]
    assert (summary["pickup_due"], summary["picked_up_on_time"], summary["pickup_rate_24h"]) == (30, 25, 0.8333)


def test_double_11_stall_thresholds_by_region() -> None:
    lines, _ = replay("double-11-peak.jsonl")
    stalls = {x["order_id"]: x for x in opened(lines, "stalled")}
    # last in-transit scan + 48 h (江浙沪皖), + 72 h (cross-province), + 120 h (新疆)
    last_scan = {
        "TB20261111000023": ("2026-11-11T20:00:00+08:00", 48),
        "TB20261111000024": ("2026-11-11T22:00:00+08:00", 72),
        "TB20261111000027": ("2026-11-12T06:00:00+08:00", 120),
    }
    assert set(stalls) == set(last_scan)
    for order_id, (scan, hours) in last_scan.items():
        assert when(stalls[order_id]["at"]) == when(scan) + timedelta(hours=hours), order_id
    # 60 h silent to 河南 and 100 h silent to 新疆 are within their thresholds: no anomaly.
    assert by_order(lines, "TB20261111000025") == []
    assert by_order(lines, "TB20261111000026") == []
    # Every stall cleared when the next scan arrived.
    resolved = {x["anomaly_id"] for x in events(lines, "anomaly_resolved", rule="stalled", resolution="auto")}
    assert resolved == {x["anomaly_id"] for x in stalls.values()}


def test_double_11_presale_promise_and_lost_parcel() -> None:
    lines, _ = replay("double-11-peak.jsonl")
    # The presale parcel has its own pickup deadline (3 days): picked up after 62 h, no anomaly.
    assert by_order(lines, "TB20261111000028") == []
    # JD's next-day promise broken by the peak: delivery_overdue at the promised minute, cleared on delivery.
    assert by_order(lines, "TB20261111000029") == [
        ("anomaly_opened", "delivery_overdue"),
        ("alert_sent", "delivery_overdue"),
        ("anomaly_resolved", "delivery_overdue"),
    ]
    assert opened(lines, "delivery_overdue")[0]["at"] == "2026-11-12T23:59:00+08:00"
    # The carrier reports the parcel lost: exception + lost_suspected + a reshipment suggestion.
    (lost,) = opened(lines, "lost_suspected")
    assert (lost["order_id"], lost["compensation"]) == ("TB20261111000030", 100.0)  # 20 % of 1599, capped at 100
    (suggestion,) = events(lines, "reshipment_suggested")
    assert (suggestion["order_id"], suggestion["reason"]) == ("TB20261111000030", "lost")
    assert [x["order_id"] for x in opened(lines, "carrier_exception")] == ["TB20261111000030"]


# -- refund-only interceptions ---------------------------------------------------------------


def test_refund_only_interceptions() -> None:
    lines, summary = replay("refund-only-interceptions.jsonl")
    counts = Counter(x["event"] for x in lines)
    assert counts["intercept_succeeded"] == 1
    assert counts["intercept_skipped"] == 1
    assert counts["shipment_held"] == 1
    assert counts["intercept_rejected"] == 1
    # Before pickup: hold the shipment, a ticket to the warehouse, and no pickup anomaly later.
    assert by_order(lines, "TB20260618000201") == [("shipment_held", None), ("ticket_opened", "refund")]
    # In transit, accepted, the parcel heads back: success, and no "returned" anomaly for our own intercept.
    assert [e for e, _ in by_order(lines, "TB20260618000202")] == [
        "intercept_requested",
        "intercept_accepted",
        "intercept_succeeded",
    ]
    assert opened(lines, "returned") == []
    # The carrier rejects the intercept: it fails at once and ops get a ticket.
    (rejected,) = events(lines, "intercept_rejected")
    assert (rejected["order_id"], rejected["reason"]) == ("TB20260618000203", "快件已在派送中，网点无法拦截")
    # Accepted but delivered anyway: failure when the delivery scan arrives.
    failed = {x["order_id"]: x["at"] for x in opened(lines, "intercept_failed")}
    assert failed == {"TB20260618000203": "2026-06-19T09:00:00+08:00", "TB20260618000204": "2026-06-19T10:20:00+08:00"}
    # Already delivered: nothing to intercept, and the monitor says so.
    (skipped,) = events(lines, "intercept_skipped")
    assert (skipped["order_id"], skipped["reason"]) == ("TB20260618000205", "delivered")
    # Return-and-refund is not ours to intercept: no line at all.
    assert by_order(lines, "TB20260618000206") == []
    # The held parcel is not due for pickup; the other five were picked up in time.
    assert (summary["pickup_due"], summary["pickup_rate_24h"]) == (5, 1.0)
