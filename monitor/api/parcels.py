"""GET /api/v1/parcels and /api/v1/parcels/{carrier}/{tracking_no}: what we know of each parcel."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from carriers.model import Status
from monitor.api.context import Ctx, Cursor, Limit, cursor_id, text_path, text_query
from monitor.api.errors import ApiError
from monitor.api.schemas import (
    ActionOut,
    ActivityOut,
    AnomalyOut,
    EstimateOut,
    EventOut,
    InterceptOut,
    Page,
    ParcelDetail,
    ParcelLink,
    ParcelOut,
    TicketEventOut,
    TicketOut,
    errors,
)
from monitor.norms.estimate import estimate
from monitor.norms.model import NormBook
from monitor.store.views import Views

router = APIRouter(tags=["parcels"])


@router.get(
    "/parcels",
    summary="List parcels",
    description="Newest first; filter on any of carrier, shop, status and order. Page with `cursor`.",
    response_model=Page[ParcelOut],
    responses=errors(401, 422),
)
async def list_parcels(
    ctx: Ctx,
    limit: Limit = 100,
    cursor: Cursor = None,
    carrier: Annotated[str | None, text_query("Carrier code.", ["kuaidi100"])] = None,
    shop: Annotated[str | None, text_query("Shop name.")] = None,
    status: Annotated[Status | None, Query(description="Normalized status.")] = None,
    order_id: Annotated[str | None, text_query("The shop's order id.")] = None,
) -> Page[ParcelOut]:
    """Return one page of parcels."""
    before = cursor_id(cursor)
    wanted = status.value if status else None
    page = await ctx.read(
        lambda views: views.parcels(
            carrier=carrier, shop=shop, status=wanted, order_id=order_id, limit=limit, before=before
        )
    )
    return Page[ParcelOut].of([ParcelOut.of(r) for r in page.rows], page.next_cursor)


@router.get(
    "/parcels/{carrier}/{tracking_no}",
    summary="One parcel with its timeline",
    description=(
        "The parcel, its carrier scans (`timeline`, oldest first, with the carrier's own code and text), "
        "its anomalies, tickets (and every change to them: `ticket_events`), intercepts, outbox actions and what the "
        "monitor did (`activity`). "
        "Mobile numbers inside carrier texts are masked (`138****5678`)."
    ),
    response_model=ParcelDetail,
    responses=errors(401, 404, 422),
)
async def get_parcel(
    carrier: Annotated[str, text_path("Carrier code.")],
    tracking_no: Annotated[str, text_path("The carrier's tracking number.")],
    ctx: Ctx,
) -> ParcelDetail:
    """Return everything known about one parcel."""
    detail = await ctx.read(lambda views: _detail(views, carrier, tracking_no, ctx.monitor.norms, ctx.clock.now()))
    if detail is None:
        raise ApiError(404, "not_found", f"no parcel {carrier} {tracking_no}", field="tracking_no")
    return detail


def _detail(
    views: Views, carrier: str, tracking_no: str, norms: NormBook | None = None, now: datetime | None = None
) -> ParcelDetail | None:
    """Read one parcel and everything about it in one transaction; with ``norms`` and ``now``, its delivery window."""
    parcel = views.parcel(carrier, tracking_no)
    if parcel is None:
        return None
    replaces, replaced_by = views.replacement_links(parcel)
    window = estimate(norms, parcel, now) if norms is not None and now is not None else None
    return ParcelDetail(
        parcel=ParcelOut.of(parcel),
        estimated_delivery=EstimateOut(**asdict(window)) if window is not None else None,
        replaces=ParcelLink.of(replaces) if replaces is not None else None,
        replaced_by=[ParcelLink.of(r) for r in replaced_by],
        timeline=[EventOut.of(r) for r in views.events_of(parcel.id)],
        anomalies=[AnomalyOut.of(r) for r in views.anomalies_of(parcel.id)],
        tickets=[TicketOut.of(r) for r in views.tickets_of(parcel.id)],
        ticket_events=[TicketEventOut.of(r) for r in views.ticket_events_of(parcel.id)],
        intercepts=[InterceptOut.of(r) for r in views.intercepts_of(parcel.id)],
        actions=[ActionOut.of(r) for r in views.actions_of(parcel.id)],
        activity=[ActivityOut(**a) for a in views.activity_of(parcel.id)],
    )
