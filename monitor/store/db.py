"""Open the database: SQLite (WAL) by default, PostgreSQL by URL; migrate it with Alembic.

Every connection waits a bounded time: SQLite's busy timeout, PostgreSQL's
``statement_timeout`` and ``lock_timeout``, so a locked or slow database fails a job's
statement (retried at its next run) instead of holding a store thread for ever.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from monitor.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
#: Defaults of ``[database]``: seconds a statement may wait on SQLite's write lock, run on
#: PostgreSQL, and wait there for a row or table lock (0 = no limit).
BUSY_TIMEOUT = 5.0
STATEMENT_TIMEOUT = 30.0
LOCK_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for a plain ``postgresql://`` URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """Render a database URL for messages and logs, its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all: show only its scheme
        return url.split(":", 1)[0] + ":…"


def make_engine(
    url: str,
    *,
    busy_timeout: float = BUSY_TIMEOUT,
    statement_timeout: float = STATEMENT_TIMEOUT,
    lock_timeout: float = LOCK_TIMEOUT,
    **kwargs: Any,
) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout, PostgreSQL statement and lock timeouts."""
    url = normalize_url(url)
    connect_args = dict(kwargs.pop("connect_args", {}))
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout, **connect_args}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if "connect_timeout" not in make_url(url).query:
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _pg_timeouts(statement_timeout, lock_timeout))
    return engine


def _pg_timeouts(statement_timeout: float, lock_timeout: float) -> Any:
    """Return a connect hook setting the session's timeouts (set per connection, so URL options stay untouched)."""

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"SET statement_timeout = {int(statement_timeout * 1000)}")
        cur.execute(f"SET lock_timeout = {int(lock_timeout * 1000)}")
        # times come back in UTC, as UTCDateTime returns them, so the driver-level reads need no conversion
        cur.execute("SET TIME ZONE 'UTC'")
        cur.close()
        dbapi_conn.commit()

    return on_connect


def check_reachable(engine: Engine, url: str) -> None:
    """Connect once; a database that does not exist or cannot be reached is one ConfigError line."""
    try:
        with engine.connect():
            pass
    except OperationalError as err:
        engine.dispose()
        reason = " ".join(line.strip() for line in str(err.orig or err).splitlines() if line.strip())
        raise ConfigError(f"database.url: cannot open {safe_url(url)}: {reason}") from None


@contextlib.contextmanager
def exclusive(url: str) -> Iterator[None]:
    """Hold ``<db>.lock`` for the block, so a second daemon on one SQLite file is refused at start.

    SQLite has one daemon by design (replicas share PostgreSQL, where nothing is held). The
    lock is a ``flock``: the kernel drops it when the process dies, kill -9 included.
    """
    parsed = make_url(normalize_url(url))
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        yield
        return
    path = Path(f"{parsed.database}.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # e.g. a missing directory: opening the database will say so
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise ConfigError(
                f"database.url: {safe_url(url)} is in use by another parcel-monitor (pid {holder}); "
                "run one daemon per SQLite file, or share PostgreSQL between replicas"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


#: WAL pages after which a commit checkpoints by itself (~400 MB at 4 KiB pages): only a backstop. The
#: daemon checkpoints every :data:`CHECKPOINT_SECONDS` off the commit path (:func:`checkpoint`); before, a
#: commit that crossed ~40 MB wrote the pages back and synced the file itself — at 1M parcels 3.0 of the
#: sweep's 6.1 s were such commits, and a refund's transaction waited behind them. A command that runs
#: without the daemon (``import``, ``replay``) checkpoints at this backstop and when its last connection closes.
WAL_BACKSTOP_PAGES = 100_000
#: The WAL file is cut back to this after a checkpoint let it restart, so the backstop's size is not kept on disk.
WAL_SIZE_LIMIT = 64 * 1024 * 1024
#: How often the daemon checkpoints SQLite's WAL in the background (seconds).
CHECKPOINT_SECONDS = 10


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
    cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cur.close()


@dataclass(frozen=True, slots=True)
class Checkpointed:
    """What one background checkpoint did: WAL pages written back of those in the log, and whether it was cut short."""

    log_pages: int
    written: int
    busy: bool


def checkpoint(engine: Engine) -> Checkpointed | None:
    """Write SQLite's WAL back into the database file, off any commit; None on PostgreSQL (its checkpointer does it).

    ``PASSIVE``: it takes no lock that a writer or reader waits for, and copies what no open read
    still needs — the rest goes at the next run. Runs outside a transaction, on a connection of its own.
    """
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        busy, log_pages, written = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # type: ignore[union-attr]
    return Checkpointed(max(log_pages, 0), max(written, 0), bool(busy))


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at our migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (idempotent)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # a migration may rewrite a big table: no statement limit
            conn.execute(text("SET LOCAL statement_timeout = 0"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def is_migrated(engine: Engine) -> bool:
    """Tell whether the schema exists at all."""
    return inspect(engine).has_table("alembic_version")
