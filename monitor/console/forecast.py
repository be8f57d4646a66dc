"""预测 (forecast): each shop's rolling 30-day 24-hour pickup rate for the next 7 days, as a chart and a table.

The figures are :func:`monitor.kpi.forecast.build_forecast`'s — the same as
``parcel-monitor report --forecast`` and ``GET /api/v1/reports/pickup-forecast`` — against each
shop's target (``[kpi] pickup_rate_target`` or the shop's own). The chart (``static/forecast.js``,
the ECharts shipped in the package) draws the range as a band, the point as a line and the
target as a dashed line; the table under it holds the same numbers, so the page says everything
without JavaScript. Any signed-in role may read it.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from monitor.console.catalog import translator
from monitor.console.pages import _ctx, _lang, _render, _session, _to_login
from monitor.kpi.forecast import Forecast, build_forecast, forecast_json
from monitor.kpi.reports import fmt_rate

router = APIRouter(include_in_schema=False)
MAX_TEXT = 64


def _shop(request: Request) -> str | None:
    """Read the ``shop`` filter.

    Raises:
        ValueError: naming the field and the value refused.
    """
    value = (request.query_params.get("shop") or "").strip()
    if len(value) > MAX_TEXT or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"shop: expected at most {MAX_TEXT} printable characters, got {value[:70]!r}")
    return value or None


def payload(forecast: Forecast, lang: str) -> Markup:
    """Return the figures the chart draws, as JSON safe inside a ``<script>`` element (percentages)."""
    t = translator(lang)

    def pct(value: float | None) -> float | None:
        return None if value is None else round(value * 100, 2)

    data = forecast_json(forecast)
    shops = [
        {"shop": s["shop"], "days": [d["day"] for d in s["days"]], "low": [pct(d["low"]) for d in s["days"]],
         "point": [pct(d["point"]) for d in s["days"]], "high": [pct(d["high"]) for d in s["days"]],
         "target": pct(s["target"])}
        for s in data["shops"]
    ]  # fmt: skip
    labels = {name: t(f"forecast_{name}") for name in ("low", "point", "high", "target", "range")}
    text = json.dumps({"shops": shops, "labels": labels}, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@router.get("/forecast")
async def forecast_page(request: Request) -> Response:
    """预测: per shop, the projected 30-day pickup rate of each of the next 7 days against its target."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    try:
        shop = _shop(request)
    except ValueError as err:
        return _render(request, "message.html", 400, session, message=str(err))
    ctx = _ctx(request)
    forecast = await ctx.offload(build_forecast, ctx.store, ctx.clock, ctx.timezone, ctx.kpi.pickup_target, shop)
    return _render(request, "forecast.html", session=session, forecast=forecast, shop=shop or "", rate=fmt_rate,
                   payload=payload(forecast, _lang(request)))  # fmt: skip
