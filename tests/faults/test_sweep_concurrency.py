"""The set-based sweep under concurrency: two real processes sweeping one PostgreSQL at once.

Each sweep batch opens its anomalies with one ``INSERT … SELECT … ON CONFLICT DO NOTHING
RETURNING`` (the partial unique index "one active anomaly per parcel and rule" is the conflict
target) and queues the outbox rows of exactly what that RETURNING gave. Two sweeps at once (a
second replica whose singleton lock failed, an operator's ``sweep`` beside the daemon) and a
sweep meeting an anomaly another transaction is opening must still leave one active anomaly
per parcel and rule, each with its activity line and every outbox row its rule asks for.
SQLite has one daemon per file by design, so these run on PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store
from tests.faults.sweep_worker import T0, hold_an_anomaly, sweep_worker

PARCELS = 1_500

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def overdue(store: Store, count: int) -> list[int]:
    """Add ``count`` parcels shipped 30 h before T0, never picked up: pickup_overdue (and at risk) due."""
    monitor = Monitor(store, build_ruleset({}), SimulatedClock(T0 - timedelta(hours=30)), {}, {})
    shipped = T0 - timedelta(hours=30)
    monitor.add_shipments([Shipment(f"O{i}", "zto", f"ZT{i:06d}", shipped, amount_fen=9_900) for i in range(count)])
    with store.begin() as uow:
        return sorted(p.id for p in uow.parcels_by_keys([("zto", f"ZT{i:06d}") for i in range(count)]).values())


def check_once(store: Store, parcels: list[int], actions: tuple[str, ...]) -> list[Any]:
    """Assert one active pickup_overdue per parcel, none at risk, each with one activity line and its actions."""
    with store.begin() as uow:
        active = [a for a in uow.anomalies() if a.state != "resolved"]
        per_key = Counter((a.parcel_id, a.rule) for a in active)
        doubled = {k: n for k, n in per_key.items() if n > 1}
        assert not doubled, f"parcel and rule with more than one active anomaly: {doubled}"
        assert {a.rule for a in active} == {"pickup_overdue"}  # at risk is suppressed by overdue
        assert sorted(a.parcel_id for a in active) == parcels
        queued = Counter((r.anomaly_id, r.kind) for r in uow.actions())
        swept = [a for a in active if a.detail == "deadline_passed"]
        lost = [(a.id, kind) for a in swept for kind in actions if queued[(a.id, kind)] != 1]
        assert not lost, f"anomalies without exactly one outbox row of a kind their rule asks for: {lost[:10]}"
        lines = Counter(r.data for r in uow.activity_after(0, limit=1_000_000) if r.event == "anomaly_opened")
        assert sum(lines.values()) == len(swept) and all(n == 1 for n in lines.values())
        left = uow.conn.exec_driver_sql(
            "SELECT count(*) FROM parcel WHERE pickup_due IS NOT NULL OR pickup_risk_due IS NOT NULL"
        ).scalar_one()
        assert left == 0, f"{left} parcels still have a pickup deadline armed after the sweeps"
        return active


def test_two_sweeps_at_once_open_each_anomaly_once_with_its_outbox_rows(database_url: str, store: Store) -> None:
    parcels = overdue(store, PARCELS)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=sweep_worker, args=(database_url, start, out)) for _ in range(2)]
    for w in workers:
        w.start()
    assert [out.get(timeout=60) for _ in workers] == ["ready", "ready"]
    start.set()
    opened = [out.get(timeout=180) for _ in workers]
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    assert sum(opened) == PARCELS, f"the two sweeps opened {opened}"
    check_once(store, parcels, build_ruleset({}).spec("pickup_overdue").actions)


def test_a_sweep_meeting_an_anomaly_another_transaction_is_opening_leaves_it_to_that_one(
    database_url: str, store: Store
) -> None:
    parcels = overdue(store, 5)
    ctx = multiprocessing.get_context("spawn")
    opened, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=hold_an_anomaly, args=(database_url, parcels[2], opened, release))
    holder.start()
    assert opened.wait(60), "the other process did not open its anomaly"
    monitor = Monitor(store, build_ruleset({}), SimulatedClock(T0), {}, {})
    result: list[int] = []
    sweeper = threading.Thread(target=lambda: result.append(monitor.engine.sweep()))
    sweeper.start()
    sweeper.join(2)
    assert sweeper.is_alive(), "the sweep did not wait for the other transaction's anomaly on the unique index"
    release.set()
    holder.join(30)
    sweeper.join(60)
    assert holder.exitcode == 0 and result == [4]
    active = check_once(store, parcels, build_ruleset({}).spec("pickup_overdue").actions)
    theirs = [a for a in active if a.parcel_id == parcels[2]]
    assert [a.detail for a in theirs] == ["elsewhere"]
    with store.begin() as uow:
        assert [r for r in uow.actions() if r.anomaly_id == theirs[0].id] == []  # its actions are its opener's
