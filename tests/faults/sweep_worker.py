"""Worker processes for tests/faults/test_sweep_concurrency.py: a sweep, and a transaction opening an anomaly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.clock import SimulatedClock
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.db import make_engine
from monitor.store.store import Store

T0 = datetime(2026, 11, 12, 4, 0, tzinfo=UTC)


def sweep_worker(url: str, start: Any, out: Any) -> None:
    """Child process: sweep at T0 once the race starts; report how many anomalies this process opened."""
    engine = make_engine(url)
    store = Store(engine)
    monitor = Monitor(store, build_ruleset({}), SimulatedClock(T0), {}, {})
    with store.begin() as uow:  # connect before the race starts
        uow.anomalies()
    out.put("ready")
    start.wait()
    out.put(monitor.engine.sweep())
    engine.dispose()


def hold_an_anomaly(url: str, parcel_id: int, opened: Any, release: Any) -> None:
    """Child process: open a pickup_overdue anomaly for one parcel and keep the transaction open until released."""
    engine = make_engine(url)
    store = Store(engine)
    with store.begin() as uow:
        row = {"parcel_id": parcel_id, "rule": "pickup_overdue", "severity": "critical", "state": "open"}
        uow.insert_anomalies([row | {"detail": "elsewhere", "opened_at": T0}])
        opened.set()
        release.wait(60)
    engine.dispose()
