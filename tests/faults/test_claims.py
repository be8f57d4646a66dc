"""Claims under concurrency: two real processes claiming from one database never get the same row.

Outbox actions, notifications and due polls are each claimed with one conditional statement
(issue 10 items 6 and 10). Here two worker processes claim small batches of each as fast as they
can from one SQLite file (and one PostgreSQL schema); every row must be claimed exactly once.
"""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest

from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.store import Store
from tests.faults.claim_worker import LEASE, T0, claim_all

ROWS = 300


def fill(store: Store) -> None:
    """Queue ROWS actions, ROWS notifications and ROWS parcels due for polling, all due at T0."""
    monitor = Monitor(store, build_ruleset({}), SimulatedClock(T0), {}, {})
    shipped = T0 - timedelta(hours=1)
    monitor.add_shipments([Shipment(f"O{i}", "kuaidi100", f"ZT{i:05d}", shipped) for i in range(ROWS)])
    with store.begin() as uow:
        keys = [("kuaidi100", f"ZT{i:05d}") for i in range(ROWS)]
        ids = sorted(p.id for p in uow.parcels_by_keys(keys).values())
        uow.set_next_poll(ids, T0)
        anomaly = {"rule": "stalled", "severity": "warning", "state": "open", "opened_at": T0}
        anomaly_ids = uow.insert_anomalies([{"parcel_id": pid, **anomaly} for pid in ids])
        action = {"kind": "ticket", "state": "pending", "next_attempt_at": T0, "created_at": T0}
        uow.enqueue([{"idempotency_key": f"claim-test:{pid}", "parcel_id": pid, **action} for pid in ids])
        notice = {"receiver": "ops", "kind": "firing", "group_key": "rule=stalled", "severity": "warning"}
        for anomaly_id in anomaly_ids:
            uow.insert_notification({"anomaly_id": anomaly_id, **notice, "due_at": T0, "created_at": T0})


def test_two_processes_claiming_at_once_never_get_the_same_row(database_url: str, store: Store) -> None:
    fill(store)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=claim_all, args=(database_url, start, out)) for _ in range(2)]
    for w in workers:
        w.start()
    assert [out.get(timeout=60) for _ in workers] == ["ready", "ready"]
    start.set()
    results = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    for kind in ("actions", "notifications", "polls"):
        first, second = (r[kind] for r in results)
        assert first and second, f"{kind}: one worker claimed everything; the race was not exercised"
        assert not set(first) & set(second), f"{kind} claimed by both processes: {sorted(set(first) & set(second))}"
        assert len(first) + len(second) == ROWS and len(set(first) | set(second)) == ROWS


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_notification_claim_comes_back_after_its_lease_and_a_stale_sender_changes_nothing(store: Store) -> None:
    fill(store)
    now = T0 + timedelta(seconds=1)
    with store.begin() as uow:
        mine = uow.claim_notifications(now, now + LEASE)
        assert len(mine) == ROWS
        assert uow.claim_notifications(now, now + LEASE) == []  # nobody else gets them while leased
    later = now + LEASE + timedelta(seconds=1)  # the first sender died: its claims come back
    with store.begin() as uow:
        theirs = uow.claim_notifications(later, later + LEASE)
        assert [r.id for r in theirs] == [r.id for r in mine]
        ids = [r.id for r in mine]
        assert uow.settle_notifications(ids, now + LEASE, state="sent", sent_at=later) == 0  # the stale claim
        assert uow.settle_notifications(ids, later + LEASE, state="sent", sent_at=later) == ROWS
        assert {n.state for n in uow.notifications()} == {"sent"}
