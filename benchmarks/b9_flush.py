"""B9 — the alert flush with a long history: a handful due among up to 1,000,000 notification rows.

The notification log grows by one row per anomaly and receiver and is never emptied, and so
does the outbox (one ``alert`` and one ``ticket`` action per anomaly, kept when done), so a
flush must cost what is due, not what exists. The tables are filled (driver executemany) to
10,000, then 100,000, then 1,000,000 notification rows — two receivers per anomaly, almost all
sent and their anomalies resolved, all in one group (``rule=stalled``); 200 anomalies stay
open — and at each size ``--calls`` flushes (default 20) of a real
:class:`~monitor.alerts.notifier.Notifier` with recording channels are timed, each with 5
notifications made due just before it (outside the timing). Two routes: the default one (no
repeats: the flush skips the repeat pass) and one with ``repeat_interval = 4h`` on every
receiver (the repeat pass runs each flush). Then ``--calls`` times the alert handler itself
(``Notifier.__call__``: queueing one new anomaly's notices, which asks when its group last
went out). The plans of the claim and of the repeat pass are printed (EXPLAIN QUERY PLAN /
EXPLAIN). Goal: per-call times flat in the number of rows (1M within 2× of 10k).

``--tiny`` (1,000 / 10,000 rows, 5 calls) is for CI; ``--database-url`` runs on PostgreSQL (a
fresh schema, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import Report, open_database, say, temp_dir
from sqlalchemy import event, text

from monitor.alerts.channels.console import RecordingChannel
from monitor.alerts.notifier import Notifier
from monitor.alerts.routing import Route
from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment, ShipmentBook
from monitor.logging import configure
from monitor.rules.ruleset import build_ruleset
from monitor.store.db import make_engine, upgrade
from monitor.store.models import Action, Anomaly, Notification
from monitor.store.store import Store

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
RECEIVERS = ("ops", "oncall")
OPEN = 200
DUE = 5
AN = Anomaly.__table__
N = Notification.__table__
A = Action.__table__
#: Anomalies the queueing calls add get ids from here (the fill gives 1… explicitly).
QUEUED_FROM = 10_000_000


def fill(store: Store, start: int, stop: int, parcels: list[int]) -> None:
    """Add anomalies ``start``… and their two notification rows each, up to ``stop`` rows in all."""
    past = NOW - timedelta(days=30)
    with store.begin() as uow:
        for lo in range(start // 2, stop // 2, 10_000):
            hi = min(lo + 10_000, stop // 2)
            anomalies = [
                {"id": i + 1, "parcel_id": parcels[i % len(parcels)], "rule": "stalled", "severity": "warning",
                 "state": "open" if i < OPEN else "resolved", "detail": "no_update", "opened_at": past,
                 "resolved_at": None if i < OPEN else past + timedelta(hours=1)}
                for i in range(lo, hi)
            ]  # fmt: skip
            uow.conn.execute(AN.insert(), anomalies)
            rows = [
                {"anomaly_id": i + 1, "receiver": r, "kind": "firing", "group_key": "rule=stalled",
                 "severity": "warning", "state": "sent", "due_at": past, "attempts": 1, "repeat_seconds": 4 * 3600,
                 "send_resolved": False, "created_at": past, "sent_at": NOW - timedelta(minutes=30)}
                for i in range(lo, hi) for r in RECEIVERS
            ]  # fmt: skip
            uow.conn.execute(N.insert(), rows)
            actions = [
                {"idempotency_key": f"{kind}:{i + 1}", "kind": kind, "parcel_id": parcels[i % len(parcels)],
                 "anomaly_id": i + 1, "rule": "stalled", "state": "done", "attempts": 1, "next_attempt_at": past,
                 "created_at": past, "done_at": past}
                for i in range(lo, hi) for kind in ("alert", "ticket")
            ]  # fmt: skip
            uow.conn.execute(A.insert(), actions)


_DUE_IDS: list[int] = []


def make_due(store: Store) -> None:
    """Make the firing notices of the first ``DUE`` open anomalies (to ``ops``) pending and due now."""
    with store.begin() as uow:
        if not _DUE_IDS:
            pick = N.select().with_only_columns(N.c.id).where(N.c.anomaly_id <= DUE, N.c.receiver == "ops")
            _DUE_IDS.extend(uow.conn.execute(pick).scalars())
        uow.conn.execute(N.update().where(N.c.id.in_(_DUE_IDS)).values(state="pending", due_at=NOW))


def time_flushes(notifier: Notifier, store: Store, calls: int) -> tuple[float, int]:
    """Return (median seconds per flush, messages sent in the last call)."""
    times, sent = [], 0
    for _ in range(calls):
        make_due(store)
        t0 = time.perf_counter()
        sent = asyncio.run(notifier.flush())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), sent


def time_queueing(notifier: Notifier, store: Store, calls: int, parcel_id: int) -> float:
    """Return the median seconds of the alert handler queueing one new anomaly's notices (``Notifier.__call__``).

    Each call gets a fresh open anomaly and its ``alert`` action (outside the timing); the
    notices it queues are marked sent and the anomaly resolved afterwards, so the flushes timed
    next find only theirs and the next call may open one on the same parcel.
    """
    times = []
    for _ in range(calls):
        with store.begin() as uow:
            anomaly_id = QUEUED_FROM + len(_QUEUED) + 1
            _QUEUED.append(anomaly_id)
            uow.conn.execute(AN.insert(), {"id": anomaly_id, "parcel_id": parcel_id, "rule": "stalled",
                                           "severity": "warning", "state": "open", "detail": "no_update",
                                           "opened_at": NOW})  # fmt: skip
            action = uow.conn.execute(A.insert().returning(*A.c), {
                "idempotency_key": f"alert:{anomaly_id}", "kind": "alert", "parcel_id": parcel_id,
                "anomaly_id": anomaly_id, "rule": "stalled", "state": "running", "attempts": 1,
                "next_attempt_at": NOW, "created_at": NOW}).one()  # fmt: skip
        t0 = time.perf_counter()
        asyncio.run(notifier(action))
        times.append(time.perf_counter() - t0)
        with store.begin() as uow:
            uow.conn.execute(N.update().where(N.c.anomaly_id == anomaly_id).values(state="sent", sent_at=NOW))
            uow.conn.execute(AN.update().where(AN.c.id == anomaly_id).values(state="resolved", resolved_at=NOW))
    return statistics.median(times)


_QUEUED: list[int] = []


def plans(store: Store, notifier: Notifier) -> list[str]:
    """Return the query plans of the statements one flush issues (the claim, and the repeat pass if any)."""
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "notification" in statement and statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            seen.append((statement, params))

    make_due(store)
    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        asyncio.run(notifier.flush())
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    out = []
    with store.engine.connect() as conn:
        for statement, params in seen[:1] if not notifier.repeats else seen[:2]:
            prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
            rows = conn.exec_driver_sql(prefix + statement, params).all()
            out.append(" ".join(statement.split())[:90] + " …")
            out.extend("    " + " | ".join(str(c) for c in (r[-1:] if store.dialect == "sqlite" else r)) for r in rows)
        conn.rollback()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="1,000 and 10,000 rows, 5 calls: for CI")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--database-url", help="PostgreSQL URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    sizes = [1_000, 10_000] if args.tiny else [10_000, 100_000, 1_000_000]
    calls = 5 if args.tiny else args.calls
    configure("console", "warning")
    report = Report("B9 flush")
    with temp_dir("b9-") as tmp:
        db = open_database(args.database_url, Path(tmp))
        engine = make_engine(db.url)
        try:
            upgrade(engine)
            store = Store(engine)
            clock = SimulatedClock(NOW)
            book = ShipmentBook(store, build_ruleset({}), clock)
            shipped = NOW - timedelta(days=31)
            shipments = [Shipment.parse({"order_id": f"O{i}", "carrier": "sandbox", "tracking_no": f"SB{i}"},
                                        default_shipped_at=shipped) for i in range(OPEN + 1)]  # fmt: skip
            book.add(shipments)
            with store.begin() as uow:
                found = uow.parcels_by_keys(("sandbox", s.tracking_no) for s in shipments)
            parcels = sorted(p.id for p in found.values())
            spare = parcels.pop()  # the queueing calls' anomalies: a parcel with no open one of the fill's
            channels = {r: RecordingChannel(r) for r in RECEIVERS}
            zero = timedelta(0)
            flat = Route("ops", group_wait=zero, group_interval=zero, repeat_interval=None, send_resolved=False)
            repeating = Route("ops", group_wait=zero, group_interval=zero, repeat_interval=timedelta(hours=4))
            quiet = Notifier(store, clock, channels, flat)
            loud = Notifier(store, clock, channels, repeating)
            filled = 0
            for size in sizes:
                say(f"B9: filling to {size:,} notification rows …")
                fill(store, filled, size, parcels)
                filled = size
                if db.backend == "postgresql":
                    with engine.begin() as conn:
                        conn.execute(text("ANALYZE notification; ANALYZE anomaly"))
                k = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
                seconds, sent = time_flushes(quiet, store, calls)
                report.add(f"flush_ms_{k}", round(seconds * 1000, 2),
                           f"{seconds * 1000:.2f} ms per flush ({sent} message sent)")  # fmt: skip
                seconds, _ = time_flushes(loud, store, calls)
                report.add(f"flush_repeating_ms_{k}", round(seconds * 1000, 2),
                           f"{seconds * 1000:.2f} ms per flush, with the repeat pass")  # fmt: skip
                seconds = time_queueing(quiet, store, calls, spare)
                report.add(f"queue_ms_{k}", round(seconds * 1000, 2),
                           f"{seconds * 1000:.2f} ms to queue one anomaly's notices (the alert handler)")  # fmt: skip
            for line in plans(store, quiet) + plans(store, loud):
                report.note(line)
            small, large = f"{sizes[0] // 1000}k", list(report.figures)[-1].rsplit("_", 1)[1]
            for name, what in (("flush_ms", "flush"), ("queue_ms", "queueing")):
                first, last = report.figures[f"{name}_{small}"], report.figures[f"{name}_{large}"]
                report.goal(f"{name} flat", last <= 2 * first + 1,
                            f"{what} at {sizes[-1]:,} rows within 2× of {sizes[0]:,}")  # fmt: skip
            store.close()
        finally:
            engine.dispose()
            db.cleanup()
    report.print()


if __name__ == "__main__":
    main()
