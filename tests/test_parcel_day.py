"""``parcel_day``: the shipped and pickup days the 指标 page and the forecast count, kept by triggers.

No code writes the table (migration 0019), so these tests write ``parcel`` the ways the
service does — the shipment book, ingest, a hold, the purge, a bulk insert of many rows in
one statement — and read ``parcel_day`` back on both backends.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, insert, text

from monitor.store.db import alembic_config, upgrade
from monitor.store.kpi import open_kpi
from monitor.store.models import Parcel
from monitor.store.store import Store
from tests.conftest import BACKENDS
from tests.test_reports import Shop, t

COPIED = "shop, carrier, shipped_at, pickup_deadline, held, picked_up_at"


def days(store: Store) -> dict[int, tuple[Any, ...]]:
    with store.begin() as uow:
        rows = uow.conn.execute(text(f"SELECT parcel_id, {COPIED} FROM parcel_day ORDER BY parcel_id")).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def parcels(store: Store) -> dict[int, tuple[Any, ...]]:
    with store.begin() as uow:
        rows = uow.conn.execute(text(f"SELECT id, {COPIED} FROM parcel ORDER BY id")).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def row_version(store: Store, parcel_id: int) -> Any:
    """PostgreSQL: the transaction that wrote the row's current version (unchanged: nothing wrote it)."""
    with store.begin() as uow:
        version = text("SELECT xmin::text FROM parcel_day WHERE parcel_id = :p")
        return uow.conn.execute(version, {"p": parcel_id}).scalar()


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
def test_shipments_scans_holds_and_the_purge_keep_parcel_day_equal_to_parcel(store: Store) -> None:
    shop = Shop(store, t(19, 8))
    shop.ship("A", t(19, 9))
    shop.ship("B", t(19, 10), shop="二号店")
    shop.ship("C", t(19, 11))
    assert days(store) == parcels(store) and len(days(store)) == 3
    (a, b, c) = sorted(days(store))
    assert (bool(days(store)[a][4]), days(store)[a][5]) == (False, None)

    shop.scan("A", t(19, 12), "picked_up")
    assert days(store)[a][5] is not None and days(store) == parcels(store)  # picked_up_at followed

    shop.refund("C", t(19, 13))  # refund-only before pickup: the parcel is held
    assert bool(days(store)[c][4]) is True and days(store) == parcels(store)

    before = row_version(store, a) if store.dialect == "postgresql" else None
    shop.scan("A", t(19, 18), "in_transit")  # a scan that changes no copied column
    shop.scan("A", t(20, 2), "out_for_delivery")
    assert days(store) == parcels(store)
    if before is not None:
        assert row_version(store, a) == before, "a transit scan rewrote parcel_day"

    with open_kpi(store) as kpi:
        kpi.delete_parcels([b], ["O-B"])
    assert sorted(days(store)) == [a, c] and days(store) == parcels(store)


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
def test_a_bulk_insert_and_a_bulk_delete_are_followed_row_for_row(store: Store) -> None:
    """One multi-row statement each way: on PostgreSQL the per-statement triggers over transition tables."""
    at = t(19, 9)
    rows = [
        {"carrier": "sf", "tracking_no": f"SF{i}", "order_id": f"O{i}", "shop": f"店{i % 3}", "shipped_at": at,
         "pickup_deadline": at + timedelta(hours=24 + i), "held": i % 5 == 0, "created_at": at, "updated_at": at}
        for i in range(200)
    ]  # fmt: skip
    with store.begin() as uow:
        uow.conn.execute(insert(Parcel.__table__), rows)
        uow.insert_parcels(rows[:10])  # already known: ON CONFLICT DO NOTHING inserts nothing
    assert len(days(store)) == 200 and days(store) == parcels(store)
    with store.begin() as uow:
        uow.conn.execute(text("UPDATE parcel SET pickup_deadline = shipped_at, shop = 'x' WHERE id % 2 = 0"))
        uow.conn.execute(text("DELETE FROM parcel WHERE id % 3 = 0"))
    assert len(days(store)) == 200 - len([i for i in range(1, 201) if i % 3 == 0])
    assert days(store) == parcels(store)


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
def test_a_rolled_back_write_leaves_parcel_day_as_it_was(store: Store) -> None:
    shop = Shop(store, t(19, 8))
    shop.ship("A", t(19, 9))
    before = days(store)
    with pytest.raises(RuntimeError), store.begin() as uow:
        uow.conn.execute(text("UPDATE parcel SET held = true, shop = 'y'"))
        raise RuntimeError("rolled back")
    assert days(store) == before == parcels(store)


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
def test_upgrading_a_store_with_parcels_fills_parcel_day_and_downgrading_removes_it(engine: Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0018")
    at = t(19, 9)
    with engine.begin() as conn:
        assert "parcel_day" not in {r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()" if engine.dialect.name == "postgresql"
            else "SELECT name FROM sqlite_master WHERE type = 'table'"))}  # fmt: skip
        conn.execute(text("INSERT INTO parcel (carrier, tracking_no, order_id, shop, shipped_at, pickup_deadline, "
                          "region_class, status, status_code, held, poll_step, created_at, updated_at, presale) "
                          "VALUES ('sf', 'SF1', 'O1', '旗舰店', :at, :at, 'cross_province', 'pending', '', true, 0, "
                          ":at, :at, false)"),
                     {"at": at if engine.dialect.name == "postgresql" else "2026-11-19 01:00:00.000000+00:00"})
    upgrade(engine)
    store = Store(engine)
    assert days(store) == parcels(store) and len(days(store)) == 1
    with store.begin() as uow:  # and the triggers are there: a new parcel is copied
        uow.conn.execute(insert(Parcel.__table__).values(
            carrier="sf", tracking_no="SF2", order_id="O2", shop="旗舰店", shipped_at=at, pickup_deadline=at,
            created_at=at, updated_at=at))  # fmt: skip
    assert len(days(store)) == 2 and days(store) == parcels(store)
