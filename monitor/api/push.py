"""POST /api/v1/carriers/{carrier}/push: a carrier's subscription callback, in its own format.

No bearer token (carriers have none), but never open: an adapter says how its pushes are
authenticated, and a push route with no way configured is off (404, logged as ``push.disabled``).

- ``push_signed`` (bool): ``parse_push`` checks the carrier's own signature (Kuaidi100: a salt
  is set, ``sign = MD5(param + salt)``).
- ``push_token`` (str or None): a secret the callback URL carries as ``?token=``, compared here
  in constant time before the body is read.

Both may be on; then both are checked. The answer is the adapter's own acknowledgement,
because carriers retry until they read the reply they expect.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from carriers.adapter import SupportsPush
from carriers.errors import CarrierAuthError, CarrierResponseError
from monitor.api.context import Ctx, text_path
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


def push_auth(adapter: object) -> tuple[bool, str | None]:
    """Return whether the adapter checks a signature, and the callback URL's token if one is set."""
    token = getattr(adapter, "push_token", None)
    return bool(getattr(adapter, "push_signed", False)), token if isinstance(token, str) and token else None


@router.post(
    "/carriers/{carrier}/push",
    summary="Carrier push callback (signed by the carrier)",
    description=(
        "Give this URL to the carrier as its callback, e.g. for Kuaidi100 "
        "`https://<your host>/api/v1/carriers/kuaidi100/push` as `callback_url`. **No bearer token**, but "
        "never open: the carrier's signature (Kuaidi100: `sign = MD5(param + salt)`, upper-case hex, when "
        "`salt_env` is set) and/or a secret `token` in the callback URL (Kuaidi100: `push_token_env`; the "
        "adapter adds it to the URL it subscribes with). A carrier with neither configured has its push "
        "route off: 404 `push_disabled`. Events are stored and rules run before the answer, which is the "
        'carrier\'s own acknowledgement (Kuaidi100: `{"result": true, "returnCode": "200", "message": "成功"}`; '
        '`{"ok": true}` for an adapter without one). A bad signature or token is 401, an unreadable push 400, '
        "all in the carrier's failure format when it has one."
    ),
    responses={
        200: {
            "description": "The carrier's acknowledgement.",
            "content": {"application/json": {"example": ACK_EXAMPLE}},
        }
    }
    | errors(400, 401, 404, 413, 422, 501),
    openapi_extra={"requestBody": BODY},
)
async def carrier_push(
    carrier: Annotated[str, text_path("Carrier code, e.g. `kuaidi100`.", max_length=32)],
    request: Request,
    ctx: Ctx,
    token: Annotated[
        str | None, Query(max_length=256, description="The push token, when the carrier's push route has one.")
    ] = None,
) -> JSONResponse:
    """Let the adapter read the push, ingest its events, and acknowledge as the carrier expects."""
    adapter = ctx.adapters.get(carrier)
    if adapter is None:  # the configured carriers are not listed: nobody outside needs to learn them
        raise ApiError(404, "unknown_carrier", "no push route for this carrier", field="carrier")
    if not isinstance(adapter, SupportsPush):
        raise ApiError(501, "push_not_supported", f"carrier {carrier!r} does not take push callbacks", field="carrier")
    signed, expected = push_auth(adapter)
    if not signed and expected is None:
        log.warning("push.disabled", carrier=carrier, reason="no signature check and no push token configured")
        return _refuse(adapter, 404, "push_disabled", "push callbacks are off for this carrier")
    if expected is not None and not hmac.compare_digest((token or "").encode(), expected.encode()):
        log.warning("push.refused", carrier=carrier, error="bad_token")
        return _refuse(adapter, 401, "bad_token", "the callback URL's token does not match")
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
