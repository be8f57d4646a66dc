"""POST /api/v1/refunds: the signed refund webhook that drives interception in seconds.

The signature is checked over the raw bytes before anything is parsed, and the timestamp
against the injected wall clock (real time, even when the demo's business clock runs fast),
so an unsigned, altered or replayed request changes nothing.
The refund is recorded and decided in one transaction and answered in milliseconds; the
carrier's intercept call is in the outbox with it and starts right after, not awaited by the
request (platforms give up on a webhook after a few seconds; a carrier may hang for 30).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import structlog
from fastapi import APIRouter, Request

from monitor.actions.intercepts import Decision, RefundRequest
from monitor.api.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, TOLERANCE_SECONDS, verify_signature
from monitor.api.body import parse_json, parse_model
from monitor.api.context import Ctx
from monitor.api.errors import ApiError
from monitor.api.schemas import DecisionOut, RefundIn, RefundOut, errors
from monitor.store.views import read

router = APIRouter(tags=["refunds"])
log = structlog.get_logger("monitor.api.refunds")

#: Decisions that mean the carrier has answered the intercept call (for the latency histogram).
ANSWERED = frozenset({"accepted", "rejected", "pending", "failed", "succeeded"})
#: How an intercept's state reads in the answer: the carrier call follows it.
WORDS = {"requested": "intercept_requested"}

BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/RefundIn"},
            "example": {"refund_id": "RF20261112000088", "order_id": "TB20261111000088", "type": "refund_only"},
        }
    },
}
SIGNED_HEADERS = [
    {
        "name": TIMESTAMP_HEADER,
        "in": "header",
        "required": True,
        "description": f"Unix seconds when signed; refused if more than {TOLERANCE_SECONDS} s from the server's clock.",
        "schema": {"type": "string", "example": "1794364200"},
    },
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "description": '`sha256=` + hex(HMAC-SHA256(refund secret, timestamp + "." + raw body)).',
        "schema": {"type": "string", "example": "sha256=3b8f…"},
    },
]


def summary(refund: RefundRequest, decisions: list[DecisionOut]) -> str:
    """Say in one line what happened, for the person reading the ERP's log."""
    if refund.type != "refund_only":
        return f"{refund.type}: recorded; the buyer sends the goods back, nothing to intercept"
    if not decisions:
        return "no parcels for this order"
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d.decision] = counts.get(d.decision, 0) + 1
    return ", ".join(f"{decision}: {n}" for decision, n in counts.items())


@router.post(
    "/refunds",
    summary="Refund webhook (signed)",
    description=(
        "The platform or ERP reports a buyer's refund request. **Authenticated by signature, not by the "
        "bearer token**: `X-Parcel-Monitor-Timestamp` (unix seconds) and `X-Parcel-Monitor-Signature: "
        'sha256=<hex HMAC-SHA256(refund secret, timestamp + "." + raw body)>`.\n\n'
        "`refund_only`: a parcel not yet picked up is held (a ticket for the warehouse); a parcel in transit "
        "is `intercept_requested`: the carrier is called **right after** the answer (the call is durable in "
        "the outbox; follow it on `/intercepts`); a parcel whose intercept is already open from an earlier "
        "refund of the order is `joined` (no second carrier call); a delivered or returning parcel is "
        "skipped. `return_and_refund` is recorded, nothing is intercepted.\n\n"
        'An order with no parcels answers 200 with no decisions and `message: "no parcels for this order"`. '
        "A repeated `refund_id` answers the decisions as they stand now, with `repeated: true`, and does "
        "nothing new; the same `refund_id` for another order or type is a 409."
    ),
    response_model=RefundOut,
    responses=errors(400, 401, 409, 413, 422, 503),
    openapi_extra={"requestBody": BODY, "parameters": SIGNED_HEADERS},
)
async def receive_refund(request: Request, ctx: Ctx) -> RefundOut:
    """Verify, record and act on one refund request."""
    started = time.perf_counter()
    secret = ctx.settings.refund_secret
    if not secret:
        raise ApiError(
            503, "not_configured", f"the refund webhook is off: set {ctx.settings.refund_secret_env} to its secret"
        )
    raw = await request.body()
    timestamp, given = request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)
    verify_signature(secret, timestamp, given, raw, ctx.wall_now())
    data = parse_model(RefundIn, parse_json(raw))
    refund = RefundRequest(data.refund_id, data.order_id, data.type)

    def lookup() -> Any:
        with read(ctx.store) as views:
            return views.refund(refund.refund_id)

    seen = await ctx.store.offload(lookup)
    if seen is not None and (seen.order_id, seen.type) != (refund.order_id, refund.type):
        raise ApiError(
            409,
            "refund_conflict",
            f"refund {refund.refund_id!r} was received before for order {seen.order_id!r} ({seen.type})",
            field="refund_id",
            value=refund.refund_id,
        )

    def answered(final: list[Decision]) -> None:
        """Count what the carrier said, once its calls are done (after the answer went out)."""
        seconds = time.perf_counter() - started
        for label in [d.decision for d in final] or ["none"]:
            ctx.metrics.refunds.labels(label).inc()
        for d in final:
            if d.decision in ANSWERED:
                ctx.metrics.intercept_latency.observe(seconds)

    outcome = await ctx.monitor.refund(refund, wait=False, on_answer=answered if seen is None else None)
    decisions = [DecisionOut(**asdict(d) | {"decision": WORDS.get(d.decision, d.decision)}) for d in outcome]
    log.info(
        "refund.received",
        refund_id=refund.refund_id,
        order_id=refund.order_id,
        type=refund.type,
        repeated=seen is not None,
        decisions=[d.decision for d in decisions],
    )
    return RefundOut(
        refund_id=refund.refund_id,
        order_id=refund.order_id,
        type=refund.type,
        repeated=seen is not None,
        decisions=decisions,
        message=summary(refund, decisions),
    )
