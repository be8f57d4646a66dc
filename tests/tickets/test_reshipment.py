"""Reshipment: closing a ticket as 已补发 watches the replacement, linked both ways, monitored like any parcel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from carriers.model import Status
from monitor.intake.shipments import Shipment
from monitor.store.store import ACT, TE, P, Store, UnitOfWork
from monitor.tickets.errors import InvalidChange
from monitor.tickets.reshipment import reship
from tests.api.server import START, ApiServer, running_api


def ship_and_ticket(api: ApiServer, number: str = "LOST1", order: str = "TB1") -> Any:
    """Ship a parcel on the sandbox carrier and open a ticket on it; return the ticket row."""
    shipped = START - timedelta(days=5)
    api.ctx.monitor.add_shipments([Shipment(order, "sandbox", number, shipped, shop="旗舰店", amount_fen=19900,
                                            origin_province="浙江", destination_province="新疆")])  # fmt: skip
    with api.store.begin() as uow:
        parcel = uow.parcels_by_keys([("sandbox", number)])[("sandbox", number)]
        ticket_id, _ = uow.insert_ticket(
            {
                "idempotency_key": f"t:{number}",
                "parcel_id": parcel.id,
                "rule": "lost_suspected",
                "title": "疑似丢件",
                "state": "processing",
                "created_at": START,
                "updated_at": START,
                "shop": "旗舰店",
                "carrier": "sandbox",
            }
        )
        return next(t for t in uow.tickets() if t.id == ticket_id)


def do_reship(api: ApiServer, ticket: Any, carrier: str, number: str) -> Any:
    with api.store.begin() as uow:
        return reship(uow, api.ctx.monitor.shipments, ticket, carrier, number, "wang", api.ctx.adapters)


def test_the_replacement_is_watched_linked_both_ways_and_monitored(store: Store) -> None:
    with running_api(store) as api:
        ticket = ship_and_ticket(api)
        api.clock.advance(timedelta(minutes=7))
        made = do_reship(api, ticket, "kuaidi100", "ZT-NEW-1")
        assert made.created and made.event_id is not None
        with api.client() as http:
            new = http.get("/api/v1/parcels/kuaidi100/ZT-NEW-1").json()
            old = http.get("/api/v1/parcels/sandbox/LOST1").json()
        assert new["replaces"] == {"carrier": "sandbox", "tracking_no": "LOST1", "status": "pending"}
        assert old["replaced_by"] == [{"carrier": "kuaidi100", "tracking_no": "ZT-NEW-1", "status": "pending"}]
        assert old["replaces"] is None and new["replaced_by"] == []
        parcel = new["parcel"]
        assert (parcel["order_id"], parcel["shop"]) == ("TB1", "旗舰店")
        with store.begin() as uow:
            row = uow.parcels_by_keys([("kuaidi100", "ZT-NEW-1")])[("kuaidi100", "ZT-NEW-1")]
            full = uow.parcel(row.id)
            (event,) = uow.conn.execute(select(TE).where(TE.c.ticket_id == ticket.id)).all()
        assert full.shipped_at == api.clock.now() and full.amount_fen == 19900
        assert (full.origin_province, full.destination_province) == ("浙江", "新疆")
        assert full.pickup_due is not None and full.next_poll_at is not None  # armed like any shipment
        assert (event.kind, event.actor, event.from_value, event.to_value) == (
            "reshipped",
            "wang",
            "sandbox LOST1",
            "kuaidi100 ZT-NEW-1",
        )
        # monitored like any other: the rules fire on it (no pickup scan in 24 h) and scans apply
        api.clock.advance(timedelta(hours=25))
        api.tick()
        with store.begin() as uow:
            rules = {a.rule for a in uow.anomalies() if a.parcel_id == row.id}
        assert "pickup_overdue" in rules
        api.scan("ZT-NEW-1", Status.PICKED_UP, api.clock.now(), carrier="kuaidi100")
        with api.client() as http:
            assert http.get("/api/v1/parcels/kuaidi100/ZT-NEW-1").json()["parcel"]["status"] == "picked_up"


def test_repeating_the_reshipment_adds_nothing(store: Store) -> None:
    with running_api(store) as api:
        ticket = ship_and_ticket(api)
        first = do_reship(api, ticket, "kuaidi100", "ZT-NEW-1")
        again = do_reship(api, ticket, "kuaidi100", "ZT-NEW-1")
        assert (again.parcel_id, again.event_id, again.created) == (first.parcel_id, None, False)
        with store.begin() as uow:
            assert uow.conn.execute(select(func.count()).select_from(TE)).scalar_one() == 1


@pytest.mark.parametrize(
    ("carrier", "number", "field"),
    [("nosuch", "X1", "new_carrier"), ("sandbox", "OTHER1", "new_tracking_no"), ("kuaidi100", " ", "new_tracking_no"),
     ("sandbox", "LOST1", "new_tracking_no")],
)  # fmt: skip
def test_bad_replacements_name_the_field(store: Store, carrier: str, number: str, field: str) -> None:
    with running_api(store) as api:
        ticket = ship_and_ticket(api)
        ship_and_ticket(api, "OTHER1", order="TB2")  # already watched under another order
        before = counts(store)
        with pytest.raises(InvalidChange) as caught:
            do_reship(api, ticket, carrier, number)
        assert caught.value.field == field
        assert counts(store) == before


def counts(store: Store) -> tuple[int, int, int]:
    def count(uow: UnitOfWork, table: Any) -> int:
        return int(uow.conn.execute(select(func.count()).select_from(table)).scalar_one())

    with store.begin() as uow:
        return count(uow, P), count(uow, TE), count(uow, ACT)
