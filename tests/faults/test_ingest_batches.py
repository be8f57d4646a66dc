"""Ingest is idempotent and safe under concurrency on both backends (issue 14 item 4).

PostgreSQL stores a batch of ``COPY_ROWS`` or more events through ``COPY`` into a staging
table and one ``INSERT … SELECT … ON CONFLICT DO NOTHING``, and updates the parcels from a
second staging table; SQLite (and smaller batches) use executemany. Either way an event is
stored once, a repeated batch changes nothing, and the parcels end as the SQLite path folds
them — also when two replicas ingest overlapping batches of the same parcels at once (the
parcels are locked while a batch folds them, so neither overwrites the other's fold).
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from monitor.clock import SimulatedClock
from monitor.intake.ingest import Ingestor, fingerprint
from monitor.intake.shipments import Shipment
from monitor.rules.ruleset import build_ruleset
from monitor.service import Monitor
from monitor.store.db import make_engine, upgrade
from monitor.store.models import Parcel
from monitor.store.store import COPY_ROWS, Store
from tests.faults.ingest_worker import NOW, PARCELS, SCANS, T0, batches, event, ingest_all, number

ALL_SCANS = tuple(range(len(SCANS)))


def ship(store: Store) -> None:
    """Watch PARCELS parcels, shipped at T0, not scanned yet."""
    monitor = Monitor(store, build_ruleset({}), SimulatedClock(T0), {}, {})
    shipments = [Shipment(f"O{i}", *number(i), shipped_at=T0) for i in range(PARCELS)]
    assert monitor.add_shipments(shipments) == PARCELS


def snapshot(engine: Engine) -> tuple[dict[tuple[str, str], dict[str, Any]], set[tuple[str, str, str]]]:
    """Return every parcel's columns (but its id, typed) by (carrier, number), and every stored event's key."""
    with engine.connect() as conn:
        parcels = {
            (p["carrier"], p["tracking_no"]): {k: v for k, v in p.items() if k != "id"}
            for p in (dict(r._mapping) for r in conn.execute(select(Parcel.__table__)))
        }
        events = conn.exec_driver_sql(
            "SELECT p.carrier, p.tracking_no, e.fingerprint FROM tracking_event e JOIN parcel p ON p.id = e.parcel_id"
        ).all()
    keys = [tuple(e) for e in events]
    assert len(keys) == len(set(keys)), "an event was stored twice"
    return parcels, set(keys)  # type: ignore[arg-type]


def sqlite_reference(tmp_path: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], set[tuple[str, str, str]]]:
    """Ingest every scan once, parcel by parcel, on SQLite: what every other path must end with."""
    engine = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(engine)
    store = Store(engine)
    ship(store)
    ingestor = Ingestor(build_ruleset({}), SimulatedClock(NOW))
    for i in range(PARCELS):
        with store.begin() as uow:
            ingestor.apply(uow, [event(i, s) for s in ALL_SCANS])
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


def test_batches_exercise_the_copy_path() -> None:
    assert all(len(b) >= COPY_ROWS for b in batches(ALL_SCANS))


def test_a_repeated_batch_stores_each_event_once_and_folds_as_the_sqlite_path(
    engine: Engine, store: Store, tmp_path: Path
) -> None:
    ship(store)
    ingestor = Ingestor(build_ruleset({}), SimulatedClock(NOW))
    moved = []
    for _ in range(2):  # the same events twice, as a carrier repeats a timeline or a worker retries
        for batch in batches(ALL_SCANS):
            with store.begin() as uow:
                moved.append(len(ingestor.apply(uow, batch).changes))
    assert moved[: len(moved) // 2] == [30] * (PARCELS // 30)
    assert moved[len(moved) // 2 :] == [0] * (PARCELS // 30), "a repeated batch moved parcels again"
    parcels, events = snapshot(engine)
    want_parcels, want_events = sqlite_reference(tmp_path)
    assert len(events) == PARCELS * len(SCANS)
    assert events == want_events
    assert parcels == want_parcels
    some = parcels[number(7)]
    assert some["status"] == "out_for_delivery" and some["picked_up_at"] == event(7, 0).time
    assert fingerprint(event(7, 0)) in {f for c, n, f in events if (c, n) == number(7)}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_processes_ingesting_overlapping_batches_at_once_fold_every_event(
    database_url: str, engine: Engine, store: Store, tmp_path: Path
) -> None:
    """One process has each parcel's first and middle scans, the other the middle and last ones.

    Folded on a stale read, the last writer would lose the other's scans: a parcel's pickup
    time (first scan) or its status (last scan) would be wrong.
    """
    ship(store)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    halves = ((0, 1, 2), (1, 2, 3))
    workers = [ctx.Process(target=ingest_all, args=(database_url, scans, 1, start, out)) for scans in halves]
    for w in workers:
        w.start()
    assert [out.get(timeout=60) for _ in workers] == ["ready", "ready"]
    start.set()
    changes = [out.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    assert all(changes), f"one worker moved no parcel ({changes}): the race was not exercised"
    parcels, events = snapshot(engine)
    want_parcels, want_events = sqlite_reference(tmp_path)
    assert events == want_events
    wrong = sorted(key for key, p in parcels.items() if p != want_parcels[key])
    assert not wrong, f"{len(wrong)} parcels folded differently from SQLite, e.g. {wrong[:3]}"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_staging_tables_are_created_once_a_session_and_again_after_a_rollback(
    database_url: str, engine: Engine
) -> None:
    """One connection: a rolled-back first batch takes its staging tables with it; the next batch makes them again.

    Counted by the server's "already exists" notices: after the first commit, a batch sends
    no ``CREATE TEMP TABLE IF NOT EXISTS`` at all.
    """
    one = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        store = Store(one)
        ship(store)
        ingestor = Ingestor(build_ruleset({}), SimulatedClock(NOW))
        notices: list[str] = []
        with one.connect() as conn:
            conn.connection.driver_connection.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        work = batches(ALL_SCANS)
        with pytest.raises(RuntimeError), store.begin() as uow:
            assert ingestor.apply(uow, work[0]).changes
            raise RuntimeError("the batch fails after staging: its temp tables are rolled back")
        for batch in work:  # would fail with "relation does not exist" if the rolled-back tables counted
            with store.begin() as uow:
                assert ingestor.apply(uow, batch).changes
        assert [n for n in notices if "already exists" in n] == []
        with store.begin() as uow:  # the same session: the events' staging table, still there
            staged = uow.conn.exec_driver_sql(
                "SELECT relname FROM pg_class WHERE relpersistence = 't' AND position('stage' in relname) > 0"
            ).scalars()
            assert list(staged) == ["tracking_event_stage"]  # 30 parcels a batch: updated without staging
    finally:
        one.dispose()
    _, events = snapshot(engine)
    assert len(events) == PARCELS * len(SCANS)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_session_in_another_time_zone_reads_parcels_in_utc(database_url: str, engine: Engine) -> None:
    """The lookup reads driver rows; a session not set to UTC by the daemon still gets UTC times."""
    from sqlalchemy import create_engine, make_url

    from monitor.store.types import UTCDateTime

    ship(Store(engine))
    url = make_url(database_url)
    options = f"{url.query['options']} -c TimeZone=Asia/Shanghai"  # the test's schema, and another zone
    shanghai = create_engine(url.set(query={}), connect_args={"options": options})
    try:
        with shanghai.connect() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "Asia/Shanghai"
            found = Store(shanghai).begin
        with found() as uow:
            row = uow.parcels_by_keys([number(3)])[number(3)]
            with uow.looking_up_parcels([number(3)], for_update=True) as looked_up:
                pass
    finally:
        shanghai.dispose()
    assert row.shipped_at == T0 and row.shipped_at.tzinfo is UTC
    assert row.pickup_deadline.tzinfo is UTC and isinstance(Parcel.__table__.c.shipped_at.type, UTCDateTime)
    assert tuple(looked_up[number(3)]) == tuple(row) and looked_up[number(3)].pickup_deadline.tzinfo is UTC


def _event_rows(uow: Any, events: list[Any]) -> list[tuple[Any, ...]]:
    """The rows ``Ingestor.apply`` stores for ``events`` (EVENT_COLUMNS order)."""
    ids = {k: p.id for k, p in uow.parcels_by_keys((e.carrier, e.tracking_no) for e in events).items()}
    return [
        (ids[(e.carrier, e.tracking_no)], fingerprint(e), e.time, e.status.value, None, e.raw_code, e.raw_text,
         e.location, NOW)
        for e in events
    ]  # fmt: skip


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_server_inserts_a_batch_while_ingest_folds_it(database_url: str, engine: Engine) -> None:
    """The events' INSERT is sent before the block (ingest's fold) runs, and awaited only after it.

    Another session holds a lock the INSERT needs; from inside the block a third session sees
    the batch's INSERT waiting on it. A store that inserted first and then ran the block
    would wait at the block's start instead, and give up after ``lock_timeout``.
    """
    store = Store(engine)
    ship(store)
    batch = batches(ALL_SCANS)[0]
    with engine.connect() as blocker, engine.connect() as watcher:
        blocker.exec_driver_sql("LOCK TABLE tracking_event IN SHARE MODE")  # INSERT needs ROW EXCLUSIVE
        with store.begin() as uow:
            uow.conn.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
            pid = uow.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            rows = _event_rows(uow, batch)
            with uow.inserting_event_rows(rows):
                seen = _waits_on_a_lock(watcher, pid)
                blocker.rollback()  # the INSERT goes on; the block's end waits for it
        assert seen == [("Lock", "INSERT INTO tracking_event (")]
    _, events = snapshot(engine)
    assert len(events) == len(batch)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_failed_pipelined_insert_raises_sqlalchemys_error_and_rolls_the_batch_back(
    database_url: str, engine: Engine
) -> None:
    """The INSERT's error surfaces at the block's end as SQLAlchemy's ``IntegrityError``; the connection goes on."""
    from sqlalchemy.exc import IntegrityError

    one = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        store = Store(one)
        ship(store)
        batch = batches(ALL_SCANS)[0]
        ran = []
        with pytest.raises(IntegrityError, match="fingerprint") as caught, store.begin() as uow:
            rows = _event_rows(uow, batch)
            rows[7] = (*rows[7][:1], None, *rows[7][2:])  # a row the staging table takes and tracking_event refuses
            with uow.inserting_event_rows(rows):
                ran.append(True)
        assert ran == [True] and "NotNullViolation" in type(caught.value.orig).__name__
        with pytest.raises(RuntimeError), store.begin() as uow:  # the block fails: its batch goes too
            rows = _event_rows(uow, batch)
            with uow.inserting_event_rows(rows):
                raise RuntimeError("the fold failed")
        assert snapshot(one)[1] == set()
        with store.begin() as uow:  # the same connection, in a usable state
            uow.insert_event_rows(_event_rows(uow, batch))
        assert len(snapshot(one)[1]) == len(batch)
    finally:
        one.dispose()


def _waits_on_a_lock(watcher: Any, pid: int) -> list[tuple[str, str]]:
    """Poll (≤ 10 s) until backend ``pid`` waits on a lock; return its (wait type, first words of its query)."""
    seen: list[Any] = []
    for _ in range(200):  # the server takes a moment to reach the lock
        seen = watcher.exec_driver_sql(
            "SELECT wait_event_type, left(query, 28) FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).all()
        watcher.rollback()
        if seen and seen[0][0] == "Lock":
            break
        time.sleep(0.05)
    return [tuple(r) for r in seen]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_server_looks_a_batch_up_while_ingest_fingerprints_it(database_url: str, engine: Engine) -> None:
    """The lookup is sent before the block (ingest's fingerprints) runs and read after it, with the same rows.

    Another session holds one of the parcels' row lock, which the lookup's ``FOR NO KEY
    UPDATE`` waits for; inside the block a third session sees the lookup waiting.
    """
    store = Store(engine)
    ship(store)
    keys = [number(i) for i in range(40)]
    with store.begin() as uow:
        expected = {k: tuple(r) for k, r in uow.parcels_by_keys(keys).items()}
    with engine.connect() as blocker, engine.connect() as watcher:
        blocker.exec_driver_sql("SELECT id FROM parcel WHERE tracking_no = %s FOR UPDATE", (number(7)[1],))
        with store.begin() as uow:
            uow.conn.exec_driver_sql("SET LOCAL lock_timeout = '20s'")
            pid = uow.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with uow.looking_up_parcels(keys, for_update=True) as found:
                seen = _waits_on_a_lock(watcher, pid)
                assert found == {}  # filled when the block ends
                blocker.rollback()
        assert seen == [("Lock", "SELECT parcel.id, parcel.car")]
    assert {k: tuple(r) for k, r in found.items()} == expected and len(found) == 40
