"""GET /api/v1/tickets: internal tickets for ops staff and the warehouse."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from monitor.api.context import Ctx, Cursor, Limit, cursor_id
from monitor.api.schemas import Page, TicketOut, errors
from monitor.store.views import read

router = APIRouter(tags=["tickets"])


@router.get(
    "/tickets",
    summary="List tickets",
    description="Newest first. A ticket is opened by a rule (`rule`) or by a refund that held a shipment "
    "(`rule: refund`).",
    response_model=Page[TicketOut],
    responses=errors(401, 422),
)
async def list_tickets(
    ctx: Ctx,
    limit: Limit = 100,
    cursor: Cursor = None,
    state: Annotated[str | None, Query(description="Ticket state.", examples=["open"])] = None,
    carrier: Annotated[str | None, Query(description="Carrier code.")] = None,
) -> Page[TicketOut]:
    """Return one page of tickets."""
    with read(ctx.store) as views:
        page = views.tickets(state=state, carrier=carrier, limit=limit, before=cursor_id(cursor))
    return Page[TicketOut].of([TicketOut.of(r) for r in page.rows], page.next_cursor)
