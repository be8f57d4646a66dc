"""Helpers of the ticket tests: ship parcels, feed scans, read tickets and their history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from carriers.model import ExceptionReason, Status, TrackingEvent
from monitor.clock import SimulatedClock
from monitor.intake.shipments import Shipment
from monitor.people.accounts import People
from monitor.people.model import CLI
from monitor.service import Monitor
from monitor.store.store import Store
from monitor.tickets.store import TicketRows
from tests.helpers import cst

START = cst(11, 9)
MakeMonitor = Callable[..., Monitor]


def add_people(people: People, *logins: str, role: str = "operator") -> None:
    """Add accounts (password irrelevant here)."""
    for login in logins:
        people.add(login, "secret-password", by=CLI, role=role)


def ship(monitor: Monitor, *numbers: str, shop: str = "旗舰店", amount_fen: int = 19_900) -> None:
    """Ship parcels on the sandbox carrier at START."""
    monitor.add_shipments(
        [
            Shipment(f"O{n}", "sandbox", n, START, shop=shop, amount_fen=amount_fen, origin_province="浙江",
                     destination_province="广东")
            for n in numbers
        ]
    )  # fmt: skip


def scan(monitor: Monitor, number: str, status: Status, at: Any, reason: str | None = None) -> None:
    """Feed one carrier event through the Monitor (and run the outbox)."""
    event = TrackingEvent(
        "sandbox", number, at, status, raw_code=status.value, reason=ExceptionReason(reason) if reason else None
    )
    asyncio.run(monitor.ingest([event]))


def overdue(monitor: Monitor, clock: SimulatedClock) -> None:
    """Pass the pickup deadline of everything shipped at START and sweep: pickup_overdue opens tickets."""
    clock.set(START + timedelta(hours=24, minutes=1))
    asyncio.run(monitor.tick())


def tickets(store: Store) -> list[Any]:
    """Return every ticket, oldest first."""
    with store.begin() as uow:
        return uow.tickets()


def history(store: Store, ticket_id: int) -> list[tuple[str, str, str | None, str | None]]:
    """Return a ticket's history as (actor, kind, from, to)."""
    with store.begin() as uow:
        return [(e.actor, e.kind, e.from_value, e.to_value) for e in TicketRows(uow).events_of(ticket_id)]
