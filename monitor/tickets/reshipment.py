"""Closing the loop on reshipments: a ticket closed as 已补发 starts watching the replacement parcel.

:func:`reship` runs inside the caller's transaction (the ticket's close): it builds the new
shipment through :class:`~monitor.intake.shipments.ShipmentBook` (same order, shop, provinces and
amount; shipped now on the injected clock), so its rule deadlines and first poll are armed like
any other's, links it to the original with ``parcel.replaces_parcel_id``, and writes a
``reshipped`` ticket event. The parcel API shows the link both ways (``replaces`` /
``replaced_by``). An unknown carrier, or a number already watched under another order, is a
:class:`~monitor.tickets.errors.InvalidChange` naming ``new_carrier`` / ``new_tracking_no``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import structlog

from monitor.errors import ShipmentError
from monitor.intake.shipments import Shipment, ShipmentBook
from monitor.rules.engine import parcel_keys
from monitor.store.store import UnitOfWork
from monitor.tickets.errors import InvalidChange

log = structlog.get_logger("monitor.tickets")

KIND = "reshipped"
#: ``TicketBook.record``: (uow, ticket id, kind, actor, from, to) -> event id.
Record = Callable[[UnitOfWork, int, str, str, str | None, str | None], int]


@dataclass(frozen=True, slots=True)
class Reshipment:
    """What a reshipment made: the replacement parcel and the ticket event saying so."""

    parcel_id: int
    #: None when the same reshipment was recorded before (a retried request).
    event_id: int | None
    created: bool


def reship(
    uow: UnitOfWork,
    book: ShipmentBook,
    ticket: Any,
    carrier: str,
    tracking_no: str,
    actor: str,
    carriers: Collection[str],
    record: Record | None = None,
) -> Reshipment:
    """Watch the replacement of ``ticket``'s parcel, sent with ``carrier`` as ``tracking_no``, linked to it.

    ``carriers`` are the carrier codes the monitor polls; ``record`` writes the ``reshipped``
    history row (``TicketBook.record``, so its listeners, the external sinks, see it), else the
    store does. Repeating the same reshipment (a retried request) finds the parcel it made and
    adds nothing.

    Raises:
        InvalidChange: ``new_carrier`` unknown, or ``new_tracking_no`` empty or watched under another order.
    """
    carrier, tracking_no = (carrier or "").strip(), (tracking_no or "").strip()
    if carrier not in carriers:
        known = ", ".join(sorted(carriers)) or "none"
        raise InvalidChange(f"unknown carrier {carrier!r} (configured: {known})", field="new_carrier", value=carrier)
    if not tracking_no:
        raise InvalidChange("the replacement's tracking number is required", field="new_tracking_no", value="")
    original = uow.parcel(ticket.parcel_id)
    if (carrier, tracking_no) == (original.carrier, original.tracking_no):
        raise InvalidChange("the replacement needs a new tracking number", field="new_tracking_no", value=tracking_no)
    watched = uow.parcel_watched(carrier, tracking_no)
    if watched is not None and watched.order_id != original.order_id:
        raise InvalidChange(f"{carrier} {tracking_no} is already watched under another order",
                            field="new_tracking_no", value=tracking_no)  # fmt: skip
    if watched is not None and watched.replaces_parcel_id == original.id:
        return Reshipment(parcel_id=watched.id, event_id=None, created=False)
    now = book.clock.now()
    created = watched is None
    if created:
        try:
            shipment = Shipment(order_id=original.order_id, carrier=carrier, tracking_no=tracking_no, shipped_at=now,
                                shop=original.shop, origin_province=original.origin_province,
                                destination_province=original.destination_province,
                                amount_fen=original.amount_fen)  # fmt: skip
            uow.insert_parcels([book.row(shipment)])
        except ShipmentError as err:
            raise InvalidChange(str(err), field="new_tracking_no", value=tracking_no) from None
        watched = uow.parcel_watched(carrier, tracking_no)
    assert watched is not None
    uow.link_replacement(watched.id, original.id)
    before, after = f"{original.carrier} {original.tracking_no}", f"{carrier} {tracking_no}"
    if record is not None:
        event_id = record(uow, ticket.id, KIND, actor, before, after)
    else:
        event_id = uow.add_ticket_event({"ticket_id": ticket.id, "at": now, "actor": actor, "kind": KIND,
                                         "from_value": before, "to_value": after, "body": ""})  # fmt: skip
    replacement = {"carrier": carrier, "tracking_no": tracking_no, "ticket_id": ticket.id}
    uow.record([
        {"at": now, "event": "reshipped", "parcel_id": original.id, "data": parcel_keys(original) | {
            "replacement": replacement}},
        {"at": now, "event": "reshipment_watched", "parcel_id": watched.id, "data": {
            "carrier": carrier, "tracking_no": tracking_no, "order_id": original.order_id,
            "replaces": {"carrier": original.carrier, "tracking_no": original.tracking_no}, "ticket_id": ticket.id}},
    ])  # fmt: skip
    log.info("ticket.reshipped", ticket_id=ticket.id, carrier=carrier, tracking_no=tracking_no, created=created)
    return Reshipment(parcel_id=watched.id, event_id=event_id, created=created)
