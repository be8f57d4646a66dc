"""Every benchmark script still runs (issue 14 item 7): each one at ``--tiny`` size, as a child process.

The figures stay out of CI: a script exits non-zero only when it breaks, never when a goal is
missed. The scripts are found by a glob, so a new benchmark is covered without touching this
file, and one without ``--tiny`` fails here (argparse refuses the flag). A script that takes
``--database-url`` runs once more on PostgreSQL; one that says "PostgreSQL only" runs only
there. The runs are started together, a few at a time (most of their time is spent waiting on
child processes and sockets), so the whole file stays near a minute on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
#: Modules in benchmarks/ that are not scripts.
HELPERS = {"common.py", "__init__.py"}
#: How many runs at once, and how long one may take.
AT_ONCE = 3
TIMEOUT = 240


def scripts() -> list[Path]:
    return sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in HELPERS)


def runs() -> list[tuple[str, str]]:
    """(script name, backend) for every run: SQLite by default, PostgreSQL where the script takes a URL."""
    out = []
    for script in scripts():
        text = script.read_text(encoding="utf-8")
        if "PostgreSQL only" not in text:
            out.append((script.name, "sqlite"))
        if "--database-url" in text:
            out.append((script.name, "postgresql"))
    return out


@dataclass
class Result:
    code: int
    output: str
    seconds: float


class Runner:
    """Start every run on a small pool at the first request; each test waits for its own."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(AT_ONCE)
        self._futures: dict[tuple[str, str], Future[Result]] = {}
        self._lock = threading.Lock()

    def start(self, all_runs: list[tuple[str, str]]) -> None:
        with self._lock:
            for run in all_runs:
                if run not in self._futures:
                    self._futures[run] = self._pool.submit(self._run, *run)

    def result(self, name: str, backend: str) -> Result:
        return self._futures[(name, backend)].result()

    @staticmethod
    def _run(name: str, backend: str) -> Result:
        command = [sys.executable, str(BENCHMARKS / name), "--tiny"]
        if backend == "postgresql":
            command += ["--database-url", PG_URL]
        started = time.monotonic()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
        except subprocess.TimeoutExpired as err:
            return Result(-1, f"timed out after {TIMEOUT} s\n{err.stdout or ''}\n{err.stderr or ''}", TIMEOUT)
        return Result(done.returncode, done.stdout + "\n" + done.stderr, time.monotonic() - started)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


RUNS = runs()


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    runner = Runner()
    runner.start(RUNS)
    yield runner
    runner.close()


def test_every_script_is_covered() -> None:
    names = {name for name, _ in RUNS}
    assert names == {p.name for p in scripts()}
    assert {"run.py", "chaos.py", "b6_replicas.py"} <= names  # the glob finds the scripts (not an empty list)


@pytest.mark.parametrize(("name", "backend"), RUNS, ids=[f"{n}-{b}" for n, b in RUNS])
def test_benchmark_runs_tiny(runner: Runner, name: str, backend: str, request: pytest.FixtureRequest) -> None:
    if backend == "postgresql":
        request.getfixturevalue("pg_available")  # skipped without a server (failed in CI)
    result = runner.result(name, backend)
    tail = result.output[-6000:]
    assert result.code == 0, f"{name} --tiny ({backend}) exited {result.code} after {result.seconds:.0f} s:\n{tail}"
    assert "all goals met:" in result.output or "|" in result.output, f"{name} printed no figures:\n{tail}"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_analyze_keeps_to_its_own_schema_while_another_run_holds_a_table(database_url: str) -> None:
    """CI runs a few PostgreSQL benchmarks at once; a bare ``ANALYZE`` visits every schema's tables.

    Two runs doing that deadlocked on each other's tables. Here another schema's table is held
    in the lock ANALYZE needs; this run's statistics refresh must finish without waiting on it.
    """
    from sqlalchemy import create_engine, text

    from benchmarks.run import analyze_own_tables

    theirs = f"t_{uuid.uuid4().hex[:12]}"
    admin, own = create_engine(PG_URL), create_engine(database_url)
    try:
        with admin.begin() as conn, own.begin() as mine:
            conn.execute(text(f'CREATE SCHEMA "{theirs}"'))
            for schema, c in ((theirs, conn), (None, mine)):
                table = f'"{schema}".parcel' if schema else "parcel"
                c.execute(text(f"CREATE TABLE {table} (id int)"))
                c.execute(text(f"INSERT INTO {table} SELECT generate_series(1, 100)"))
        with admin.connect() as holder:
            holder.execute(text(f'LOCK TABLE "{theirs}".parcel IN SHARE UPDATE EXCLUSIVE MODE'))  # another ANALYZE
            with own.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '3s'"))  # a bare ANALYZE fails here, naming their table
                analyze_own_tables(conn)
                analysed = conn.execute(
                    text("SELECT reltuples FROM pg_class WHERE oid = 'parcel'::regclass")
                ).scalar_one()
            holder.rollback()
        assert analysed == 100  # statistics of this schema's own table were refreshed
    finally:
        own.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{theirs}" CASCADE'))
        admin.dispose()
