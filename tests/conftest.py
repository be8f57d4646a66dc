"""Shared fixtures: a real database per test — a SQLite file, and the PostgreSQL server.

PostgreSQL tests get a schema of their own on the server named by
``PARCEL_MONITOR_TEST_PG`` (default: the local server, database ``test``). Where no server
answers they are skipped with the reason — except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Engine, create_engine, text

from monitor.store.db import make_engine, upgrade
from monitor.store.store import Store

PG_URL = os.environ.get("PARCEL_MONITOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _pg_reason() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as err:  # noqa: BLE001 - any failure means "no server here"
        return f"no PostgreSQL server at {PG_URL}: {type(err).__name__}"


@pytest.fixture(scope="session")
def pg_available() -> None:
    """Skip (or, in CI, fail) when no PostgreSQL server answers."""
    reason = _pg_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL: {reason}")
        pytest.skip(reason)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield an empty database URL on the backend named by the test's ``backend`` param."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    request.getfixturevalue("pg_available")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Yield a migrated engine."""
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> Store:
    """Return a store on a migrated database."""
    return Store(engine)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses a database on both backends."""
    if "database_url" in metafunc.fixturenames and "database_url" not in [
        m.args[0] for m in metafunc.definition.iter_markers("parametrize")
    ]:
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def _own_data_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the default SQLite file (and what child processes inherit) out of the real data directory."""
    monkeypatch.setenv("PARCEL_MONITOR_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Undo a test's logging set-up (a CLI run configures a level filter) so later log captures see every event."""
    yield
    structlog.reset_defaults()
