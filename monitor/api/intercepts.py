"""GET /api/v1/intercepts: every parcel a refund-only request stopped, held or skipped."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from monitor.api.context import Ctx, Cursor, Limit, cursor_id, text_query
from monitor.api.schemas import InterceptOut, InterceptState, Page, errors

router = APIRouter(tags=["intercepts"])


@router.get(
    "/intercepts",
    summary="List intercepts",
    description=(
        "Newest first. States: `held` (not picked up, warehouse told), `requested` (carrier call queued), "
        "`pending` (carrier has not decided), `accepted`, `rejected`, `succeeded` (heading back), "
        "`failed` (rejected, or delivered anyway), `skipped` (already delivered or returning)."
    ),
    response_model=Page[InterceptOut],
    responses=errors(401, 422),
)
async def list_intercepts(
    ctx: Ctx,
    limit: Limit = 100,
    cursor: Cursor = None,
    state: Annotated[InterceptState | None, Query(description="Intercept state.")] = None,
    carrier: Annotated[str | None, text_query("Carrier code.")] = None,
) -> Page[InterceptOut]:
    """Return one page of intercepts."""
    before = cursor_id(cursor)
    wanted = state.value if state else None
    page = await ctx.read(lambda views: views.intercepts(state=wanted, carrier=carrier, limit=limit, before=before))
    return Page[InterceptOut].of([InterceptOut.of(r) for r in page.rows], page.next_cursor)
