"""A worker process for tests/faults/test_claims.py: claim every kind of work in small batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.store.db import make_engine
from monitor.store.store import Store

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
BATCH = 3
LEASE = timedelta(minutes=5)


def claim_all(url: str, start: Any, out: Any) -> None:
    """Claim batches of actions, notifications and polls until none is left; report the ids claimed."""
    engine = make_engine(url)
    store = Store(engine)
    now = T0 + timedelta(seconds=1)
    with store.begin() as uow:  # connect before the race starts
        uow.actions("done")
    out.put("ready")
    start.wait()
    got: dict[str, list[int]] = {"actions": [], "notifications": [], "polls": []}
    busy = True
    while busy:
        with store.begin() as uow:
            actions = uow.claim_actions(now, BATCH, LEASE)
        with store.begin() as uow:
            notifications = uow.claim_notifications(now, now + LEASE, BATCH)
        with store.begin() as uow:
            polls = uow.claim_for_poll("kuaidi100", now, BATCH, now + LEASE, risk_until=now)
        got["actions"] += [r.id for r in actions]
        got["notifications"] += [r.id for r in notifications]
        got["polls"] += [r.id for r in polls]
        busy = bool(actions or notifications or polls)
    engine.dispose()
    out.put(got)
