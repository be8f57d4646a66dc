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
from monitor.kpi.forecast import build_forecast, forecast_json
from monitor.kpi.reports import build_report, report_json

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
    "/reports/pickup-forecast",
    summary="Pickup-rate forecast",
    description="Each shop's rolling 30-day 24-hour pickup rate projected for each of the next 7 local days: "
    "`low`/`point`/`high` (pending parcels all late / at the shop's on-time share of the last 4 weeks / all in "
    "time, and the same weekday's volume of the last 4 weeks, least to most), against the shop's target "
    "(`[kpi] pickup_rate_target`); `needed` is how many of the parcels pending now must be picked up in time to "
    "keep the point at target (null: not enough are pending). `below_day`: the first day below target.",
    responses=errors(401, 422),
)
async def pickup_forecast(ctx: Ctx, shop: Shop = None) -> dict[str, Any]:
    """Return the week ahead (defined before ``/reports/{name}``, which would take the path)."""
    forecast = await ctx.offload(build_forecast, ctx.store, ctx.clock, ctx.timezone, ctx.kpi.pickup_target, shop)
    return forecast_json(forecast)


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
