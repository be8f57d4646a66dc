"""The console's 拦截 (intercepts) and 快递公司 (carriers) pages: where refunds and carriers stand.

Both only read, so every role sees them. 拦截 lists every refund-only intercept, failed ones
first (someone must act on those), then newest first, with the seconds from the refund to the
carrier's answer — the figure the product exists to keep small. 快递公司 shows each carrier's
health, today's quota, its last success and the status codes no mapping knew, from the same
read as ``GET /api/v1/carriers``. The queries are in :mod:`monitor.store.ops`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from monitor.api.carriers import overview
from monitor.console.catalog import translator
from monitor.console.pages import PAGE, _ctx, _lang, _render, _session, _to_login
from monitor.logging import mask_phone_numbers
from monitor.store.ops import INTERCEPT_STATES, BadCursor, intercept_counts, intercept_page

router = APIRouter(include_in_schema=False)
#: The filters of the 拦截 page, each at most 64 characters (the widest of the columns they match).
FILTERS = ("state", "carrier", "shop")


def _filters(request: Request) -> dict[str, str | None]:
    query = request.query_params
    return {key: (query.get(key) or "").strip()[:64] or None for key in FILTERS}


@router.get("/intercepts")
async def intercepts_page(request: Request) -> Response:
    """Every refund-only intercept and where it stands: failed first, then newest; counts per state on top."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    t = translator(_lang(request))
    filters = _filters(request)
    cursor = (request.query_params.get("cursor") or "").strip() or None
    if filters["state"] is not None and filters["state"] not in INTERCEPT_STATES:
        why = f"state: {filters['state']!r} ({', '.join(INTERCEPT_STATES)})"
        return _render(request, "message.html", 400, session, message=t("refused", why=why))

    def work(views: Any) -> dict[str, Any]:
        page = intercept_page(views.conn, **filters, limit=PAGE, cursor=cursor)
        counts = intercept_counts(views.conn, carrier=filters["carrier"], shop=filters["shop"])
        return {"page": page, "counts": counts}

    try:
        data = await _ctx(request).read(work)
    except BadCursor as err:
        return _render(request, "message.html", 400, session, message=t("refused", why=str(err)))
    kept = {k: v for k, v in filters.items() if v is not None}
    next_url = None
    if data["page"].next_cursor is not None:
        next_url = "/intercepts?" + urlencode(kept | {"cursor": data["page"].next_cursor})
    return _render(request, "intercepts.html", session=session, rows=data["page"].rows, counts=data["counts"],
                   filters=filters, states=INTERCEPT_STATES, next_url=next_url, first_page=cursor is None,
                   first_url="/intercepts?" + urlencode(kept), mask=mask_phone_numbers,
                   total=sum(data["counts"].values()))  # fmt: skip


@router.get("/carriers")
async def carriers_page(request: Request) -> Response:
    """Each carrier's health (up / failing / down, since when), quota used today, last success, unknown codes."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    data = await overview(_ctx(request))
    return _render(request, "carriers.html", session=session, carriers=data.carriers, codes=data.unknown_codes)
