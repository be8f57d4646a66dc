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


def test_migration_0016_gives_existing_intercepts_their_parcels_shop_and_carrier(engine: Engine) -> None:
    """A store upgraded from 0015 keeps its intercepts findable by shop and carrier (the 拦截 filters)."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import insert, text

    from monitor.store.db import alembic_config
    from monitor.store.models import Parcel

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0015")
    at = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    with engine.begin() as conn:
        times = {"shipped_at": at, "pickup_deadline": at, "created_at": at, "updated_at": at}
        keys = {"id": 7, "carrier": "sf", "tracking_no": "SF7", "order_id": "O7", "shop": "旗舰店"}
        conn.execute(insert(Parcel.__table__).values(**keys, **times))
        conn.execute(text("INSERT INTO intercept (refund_id, parcel_id, state, reason, requested_at, attempt, "
                          "state_since) VALUES ('R7', 7, 'failed', '', :at, 1, :at)"),
                     {"at": "2026-11-20 02:00:00.000000"})  # fmt: skip
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT shop, carrier FROM intercept WHERE refund_id = 'R7'")).one() == (
            "旗舰店",
            "sf",
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_anomalys_open_tickets_are_found_by_index_not_by_every_open_ticket(engine: Engine) -> None:
    """Resolving anomalies reads their tickets by ``ix_ticket_anomaly`` (migration 0020).

    Before, SQLite read ``ix_ticket_state_due`` for every open ticket, a cost that grows with
    each ticket left open (7 % of a 100,000-parcel replay by its end).
    """
    from monitor.tickets.store import _OF_ANOMALIES

    params = {"ids": [1, 2, 3], "states": ["open", "processing"]}
    sql = _OF_ANOMALIES.params(**params).compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "USING INDEX ix_ticket_anomaly (anomaly_id=? AND state=?)" in plan, plan
