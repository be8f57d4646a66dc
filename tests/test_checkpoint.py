"""SQLite's WAL goes back into the database file by the daemon's checkpoint job, not inside a commit.

A commit that crosses ``wal_autocheckpoint`` writes the WAL back and syncs the file itself, and
whoever waits for the write lock waits for that too (at 1M parcels, half of a sweep's time).
"""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from monitor.alerts.channels.console import ConsoleChannel
from monitor.clock import SimulatedClock
from monitor.config import load
from monitor.daemon.assembly import build
from monitor.daemon.jobs import Jobs
from monitor.store.db import WAL_BACKSTOP_PAGES, checkpoint, make_engine, upgrade

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


async def _instant(_seconds: float) -> None:
    """The pacer's sleep: nothing here waits on the simulated clock."""


def _rows_in_file_alone(db: Path, tmp: Path) -> int:
    """Count the rows that the database file holds by itself, without its WAL (a copy of the file only)."""
    alone = tmp / "alone.db"
    shutil.copy(db, alone)
    with sqlite3.connect(alone) as conn:
        return conn.execute("SELECT count(*) FROM wal_probe").fetchone()[0]


def test_commits_leave_the_wal_to_the_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE wal_probe (id INTEGER PRIMARY KEY, body TEXT)"))
    with engine.connect() as conn:  # the backstop, far above what the old 10,000 pages let a commit reach
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == WAL_BACKSTOP_PAGES
    first = checkpoint(engine)  # the table's creation goes back first
    assert first is not None and not first.busy
    for _ in range(40):  # 40 commits of ~80 KB: ~800 pages of WAL, none of them written back by a commit
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO wal_probe (body) VALUES (:b)"), [{"b": "x" * 400}] * 200)
    assert _rows_in_file_alone(db, tmp_path) == 0  # every row is still only in the WAL
    done = checkpoint(engine)
    assert done is not None and not done.busy
    assert done.log_pages >= 40 and done.written == done.log_pages  # all of it written back
    assert _rows_in_file_alone(db, tmp_path) == 8_000
    engine.dispose()


def test_the_checkpoint_does_not_wait_for_a_writer_nor_hold_it_up(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    engine = make_engine(f"sqlite:///{db}", busy_timeout=30)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE wal_probe (id INTEGER PRIMARY KEY, body TEXT)"))
        conn.execute(text("INSERT INTO wal_probe (body) VALUES ('committed')"))
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock, as a sweep batch or a refund does
    writer.execute("INSERT INTO wal_probe (body) VALUES ('in flight')")
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(checkpoint(engine)))
    worker.start()
    worker.join(timeout=10)  # a checkpoint that waited for the lock would wait out the 30 s busy timeout
    assert not worker.is_alive(), "the checkpoint waited for the writer"
    writer.execute("COMMIT")  # and the writer was not held up by it
    writer.close()
    assert result and result[0] is not None
    assert _rows_in_file_alone(db, tmp_path) == 1  # the committed row went back; the one in flight was not there yet
    engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_the_daemon_job_checkpoints_sqlite_and_leaves_postgresql_to_its_server(database_url: str) -> None:
    async def main() -> object:
        async with httpx.AsyncClient() as http:
            settings = replace(load(None, {}), database_url=database_url, carriers={"sandbox": {}})
            console = {"console": ConsoleChannel(io.StringIO())}
            rt = build(settings, SimulatedClock(T0), http, {}, sleep=_instant, channels=console)
            try:
                upgrade(rt.engine)
                return await Jobs(rt).checkpoint()
            finally:
                rt.close()

    done = asyncio.run(main())
    if database_url.startswith("sqlite"):
        assert done is not None and not done.busy and done.written == done.log_pages
    else:
        assert done is None
