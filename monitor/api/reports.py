"""GET /api/v1/reports: the figures a shop is judged by, over the last N local days.

The same numbers as ``parcel-monitor report``: the 24-hour pickup rate per shop and
carrier (the Tmall 新灯塔 formula), intercept success rate and latency, anomalies by rule.
Days whose parcels were purged come from the daily KPI table, the rest from live rows,
so the figures do not change when retention deletes old parcels.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from monitor.api.context import Ctx, text_path, text_query
from monitor.api.errors import ApiError
from monitor.api.schemas import errors
from monitor.reports import build_report, report_json

router = APIRouter(tags=["reports"])

Days = Annotated[int, Query(ge=1, le=366, description="How many local days back, today included.", examples=[7])]
Shop = Annotated[str | None, text_query("Only this shop.", ["旗舰店"])]
Carrier = Annotated[str | None, text_query("Only this carrier code.", ["sf"])]
Name = Annotated[str, text_path("`pickup-rate`, `intercepts`, `anomalies` or `tickets`.", max_length=32)]
SECTIONS = {"pickup-rate": "pickup", "intercepts": "intercepts", "anomalies": "anomalies", "tickets": "tickets"}


async def _report(ctx: Any, days: int, shop: str | None, carrier: str | None) -> dict[str, Any]:
    """Build the report off the event loop (it reads the store)."""
    report = await ctx.offload(build_report, ctx.store, ctx.clock, days, ctx.timezone, shop, carrier)
    return report_json(report)


@router.get(
    "/reports",
    summary="All reports",
    description="`pickup` (24-hour pickup rate: picked up by the deadline ÷ deadlines passed in the window, per "
    "shop and carrier), `intercepts` (success rate, latency from refund to the carrier's answer in seconds), "
    "`anomalies` (opened in the window, by rule, with their states now and the compensation at stake in fen), "
    "`tickets` (opened and closed per day; per rule: opened, closed, gone overdue, overdue now, p50/p90 seconds "
    "to close, outcomes).",
    responses=errors(401, 422),
)
async def all_reports(ctx: Ctx, days: Days = 7, shop: Shop = None, carrier: Carrier = None) -> dict[str, Any]:
    """Return every report of the window."""
    return await _report(ctx, days, shop, carrier)


@router.get(
    "/reports/{name}",
    summary="One report",
    description="`pickup-rate`, `intercepts`, `anomalies` or `tickets`: one section of `GET /reports`, with its "
    "window.",
    responses=errors(401, 404, 422),
)
async def one_report(
    ctx: Ctx, name: Name, days: Days = 7, shop: Shop = None, carrier: Carrier = None
) -> dict[str, Any]:
    """Return one report of the window."""
    section = SECTIONS.get(name)
    if section is None:
        raise ApiError(404, "not_found", f"no report {name!r} (known: {', '.join(SECTIONS)})", field="name", value=name)
    data = await _report(ctx, days, shop, carrier)
    return {"window": data["window"], "filters": data["filters"], section: data[section]}
