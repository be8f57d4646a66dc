"""POST /api/v1/carriers/{carrier}/push: a carrier's subscription callback, in its own format.

The adapter reads and authenticates the request (``parse_push``: Kuaidi100 checks
MD5(param + salt)), so this route needs no bearer token. The answer is the adapter's own
acknowledgement, because carriers retry until they read the reply they expect.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from carriers.adapter import SupportsPush
from carriers.errors import CarrierAuthError, CarrierResponseError
from monitor.api.context import Ctx
from monitor.api.errors import ApiError
from monitor.api.schemas import errors

router = APIRouter(tags=["carriers"])
log = structlog.get_logger("monitor.api.push")

DEFAULT_ACK: dict[str, Any] = {"ok": True}
BODY = {
    "required": True,
    "description": "The carrier's own callback format, e.g. Kuaidi100's form `param=<json>&sign=<MD5(param + salt)>`.",
    "content": {
        "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": True}},
        "application/json": {"schema": {"type": "object", "additionalProperties": True}},
    },
}
ACK_EXAMPLE = {"result": True, "returnCode": "200", "message": "成功"}


def ack_function(adapter: object) -> Callable[..., Any] | None:
    """Return the adapter's acknowledgement (its ``push_ack`` method), or None to answer ``{"ok": true}``."""
    method = getattr(adapter, "push_ack", None)
    return method if callable(method) else None


def _accepts_failure(function: Callable[..., Any]) -> bool:
    """Tell whether ``push_ack`` can write a failure (``push_ack(ok=False, message=...)``)."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return "ok" in params and "message" in params


def _refuse(adapter: object, status: int, code: str, message: str) -> JSONResponse:
    """Answer a refused push in the carrier's failure format if it has one, else ours."""
    function = ack_function(adapter)
    if function is not None and _accepts_failure(function):
        return JSONResponse(function(ok=False, message=message), status_code=status)
    return JSONResponse(ApiError(status, code, message).body(), status_code=status)


@router.post(
    "/carriers/{carrier}/push",
    summary="Carrier push callback (signed by the carrier)",
    description=(
        "Give this URL to the carrier as its callback, e.g. for Kuaidi100 "
        "`https://<your host>/api/v1/carriers/kuaidi100/push` as `callback_url`. **No bearer token**: the "
        "adapter authenticates the push its own way (Kuaidi100: `sign = MD5(param + salt)`, upper-case hex). "
        "Events are stored and rules run before the answer, which is the carrier's own acknowledgement "
        '(Kuaidi100: `{"result": true, "returnCode": "200", "message": "成功"}`; `{"ok": true}` for an '
        "adapter without one). A bad signature is 401, an unreadable push 400, both in the carrier's failure "
        "format when it has one."
    ),
    responses={
        200: {
            "description": "The carrier's acknowledgement.",
            "content": {"application/json": {"example": ACK_EXAMPLE}},
        }
    }
    | errors(400, 401, 404, 413, 501),
    openapi_extra={"requestBody": BODY},
)
async def carrier_push(carrier: str, request: Request, ctx: Ctx) -> JSONResponse:
    """Let the adapter read the push, ingest its events, and acknowledge as the carrier expects."""
    adapter = ctx.adapters.get(carrier)
    if adapter is None:
        raise ApiError(
            404,
            "unknown_carrier",
            f"no adapter is configured for carrier {carrier!r}",
            field="carrier",
            value=carrier,
            allowed=sorted(ctx.adapters),
        )
    if not isinstance(adapter, SupportsPush):
        raise ApiError(501, "push_not_supported", f"carrier {carrier!r} does not take push callbacks", field="carrier")
    body = await request.body()
    try:
        results = adapter.parse_push(body, dict(request.headers))
    except CarrierAuthError as err:
        log.warning("push.refused", carrier=carrier, error=type(err).__name__)
        return _refuse(adapter, 401, "bad_signature", str(err))
    except CarrierResponseError as err:
        log.warning("push.unreadable", carrier=carrier, error=type(err).__name__)
        return _refuse(adapter, 400, "unreadable_push", str(err))
    events = [ev for r in results for ev in r.events]
    outcome = await ctx.monitor.ingest(events)
    ctx.metrics.events_ingested.labels(carrier).inc(len(events))
    problems = [r.problem for r in results if r.problem]
    log.info(
        "push.received",
        carrier=carrier,
        results=len(results),
        events=len(events),
        unknown_parcel=outcome.unknown_parcel,
        changed=len(outcome.changes),
        problems=problems,
    )
    function = ack_function(adapter)
    return JSONResponse(function() if function is not None else DEFAULT_ACK)
