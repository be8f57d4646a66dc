"""GET /api/v1/tickets: internal tickets for ops staff and the warehouse."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from monitor.api.context import Ctx, Cursor, Limit, cursor_id, text_query
from monitor.api.schemas import Page, TicketOut, errors

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
    state: Annotated[str | None, text_query("Ticket state.", ["open"])] = None,
    carrier: Annotated[str | None, text_query("Carrier code.")] = None,
) -> Page[TicketOut]:
    """Return one page of tickets."""
    before = cursor_id(cursor)
    page = await ctx.read(lambda views: views.tickets(state=state, carrier=carrier, limit=limit, before=before))
    return Page[TicketOut].of([TicketOut.of(r) for r in page.rows], page.next_cursor)
