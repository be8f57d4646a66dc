"""The sweep's set-based inserts store exactly what row-by-row inserts store, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment, ShipmentBook
from monitor.rules.ruleset import build_ruleset
from monitor.store.store import Store

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def parcels(store: Store, count: int) -> list[int]:
    book = ShipmentBook(store, build_ruleset({}), SimulatedClock(NOW))
    book.add([Shipment(f"O{i}", "sandbox", f"SB{i}", NOW - timedelta(hours=1)) for i in range(count)])
    with store.begin() as uow:
        found = uow.parcels_by_keys(("sandbox", f"SB{i}") for i in range(count))
    return sorted(p.id for p in found.values())


def stored(store: Store, prefix: str) -> list[dict[str, Any]]:
    """The outbox rows whose key starts with ``prefix``, in order, without their id and key."""
    with store.begin() as uow:
        rows = [r._asdict() for r in uow.actions() if r.idempotency_key.startswith(prefix)]
    return [{k: v for k, v in r.items() if k not in ("id", "idempotency_key")} for r in rows]


def test_set_based_outbox_rows_are_the_row_by_row_ones(store: Store) -> None:
    """Columns equal in every row (kind, rule, times), varying ones, a None, a single row: all stored alike.

    On SQLite a column equal in every row is bound once beside the JSON of the rows, not repeated in
    each row (every ``->>`` parses its row's array): the rows carry only what varies.
    """
    ids = parcels(store, 3)
    later = [NOW + timedelta(minutes=i) for i in range(3)]

    def action(kind: str, parcel_id: int, rule: str = "stalled", attempt: datetime = NOW) -> dict[str, Any]:
        return {"kind": kind, "parcel_id": parcel_id, "anomaly_id": None, "rule": rule,
                "next_attempt_at": attempt, "created_at": NOW}  # fmt: skip

    rules = ("stalled", "lost_suspected", "stalled")
    shapes = {
        "same": [action("ticket", p) for p in ids],
        "times": [action("alert", ids[0], r, t) for r, t in zip(rules, later, strict=True)],
        "one": [action("alert", ids[1])],
    }
    sent: list[Any] = []

    def saw(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if "json_each" in statement and statement.startswith("INSERT INTO action"):
            sent.append(params)

    event.listen(store.engine, "before_cursor_execute", saw)
    try:
        for name, rows in shapes.items():
            with store.begin() as uow:
                uow.enqueue_set([r | {"idempotency_key": f"set:{name}:{i}"} for i, r in enumerate(rows)])
                uow.enqueue([r | {"idempotency_key": f"row:{name}:{i}"} for i, r in enumerate(rows)])
    finally:
        event.remove(store.engine, "before_cursor_execute", saw)
    for name in shapes:
        assert stored(store, f"set:{name}:") == stored(store, f"row:{name}:"), name
        assert len(stored(store, f"set:{name}:")) == len(shapes[name])
    if store.dialect == "sqlite":
        same, times, one = (json.loads(p[-1]) for p in sent)
        assert [len(r) for r in same] == [2, 2, 2]  # only the key and the parcel vary
        assert [len(r) for r in times] == [3, 3, 3]  # the key, the rule and the attempt time
        assert one == [[]] and "stalled" in sent[2][:-1]  # one row: every column bound once
