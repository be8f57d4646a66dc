"""The schema: migrations build exactly the models, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from monitor.store import models  # noqa: F401 - registers the tables
from monitor.store.db import upgrade


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine)
    assert {"parcel", "tracking_event", "anomaly", "action", "ticket", "intercept", "refund", "activity"} <= set(
        inspect(engine).get_table_names()
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_mode(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
