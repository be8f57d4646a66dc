"""POST /api/v1/shipments: start watching parcels, one or a batch, all or nothing.

Every item is validated (``Shipment.parse``, then the carrier and column lengths) before
anything is stored, so a batch with one bad item stores none and the error names the item.
Posting a shipment again is harmless: carrier + tracking number identify it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from monitor.api.body import parse_json, type_name
from monitor.api.context import ApiContext, Ctx
from monitor.api.errors import ApiError
from monitor.api.principal import allowed
from monitor.api.schemas import ShipmentIn, ShipmentsReceived, errors
from monitor.errors import ShipmentError
from monitor.intake.shipments import Shipment
from monitor.people.roles import Permission
from monitor.store.models import Parcel

router = APIRouter(tags=["shipments"])

MAX_BATCH = 10_000
FIELDS = tuple(ShipmentIn.model_fields)
#: Text fields bounded by their column, checked here so PostgreSQL never refuses a row mid-batch.
MAX_LENGTH = {name: Parcel.__table__.c[name].type.length for name in ("order_id", "carrier", "tracking_no", "shop")}

EXAMPLES = {
    "one": {
        "summary": "One shipment",
        "value": {
            "order_id": "TB20261111000098",
            "carrier": "kuaidi100",
            "tracking_no": "ZT7800000000003",
            "shipped_at": "2026-11-11T09:30:00+08:00",
            "shop": "旗舰店",
            "destination_province": "河南",
            "amount": "162.10",
        },
    },
    "batch": {
        "summary": "A batch (up to 10,000)",
        "value": {
            "shipments": [
                {
                    "order_id": "TB20261111000098",
                    "carrier": "kuaidi100",
                    "tracking_no": "ZT7800000000003",
                    "shipped_at": "2026-11-11T09:30:00+08:00",
                },
                {
                    "order_id": "TB20261111000099",
                    "carrier": "sf",
                    "tracking_no": "SF1400000000099",
                    "shipped_at": "2026-11-11T10:05:00+08:00",
                    "presale": True,
                    "amount": 89,
                },
            ]
        },
    },
}
BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/ShipmentIn"},
                    {"$ref": "#/components/schemas/ShipmentBatchIn"},
                ]
            },
            "examples": EXAMPLES,
        }
    },
}


def unpack(body: Any) -> tuple[list[Any], str]:
    """Return the items of a body and the prefix their field names get (``shipments[3].``)."""
    if not isinstance(body, dict):
        raise ApiError(
            422,
            "invalid_field",
            f'expected a JSON object (one shipment, or {{"shipments": [...]}}), got {type_name(body)}',
            field="body",
            value=body,
        )
    if "shipments" not in body:
        return [body], ""
    extra = sorted(set(body) - {"shipments"})
    if extra:
        raise ApiError(
            422, "unknown_field", f"a batch has only 'shipments'; unknown field {extra[0]!r}", field=extra[0]
        )
    items = body["shipments"]
    if not isinstance(items, list):
        raise ApiError(
            422, "invalid_field", f"expected an array of shipments, got {type_name(items)}", field="shipments"
        )
    if len(items) > MAX_BATCH:
        raise ApiError(
            422, "invalid_field", f"at most {MAX_BATCH} shipments a request, got {len(items)}", field="shipments"
        )
    return items, "shipments"


def parse_item(item: Any, where: str, carriers: list[str]) -> Shipment:
    """Validate one shipment; ``where`` is its place in the body (``shipments[3]`` or empty)."""
    prefix = f"{where}." if where else ""
    if not isinstance(item, dict):
        raise ApiError(
            422,
            "invalid_field",
            f"expected a shipment object, got {type_name(item)}",
            field=where or "body",
            value=item,
        )
    for key in item:
        if key not in FIELDS:
            raise ApiError(422, "unknown_field", f"unknown field {key!r}", field=f"{prefix}{key}", allowed=list(FIELDS))
    try:
        shipment = Shipment.parse(item)
    except ShipmentError as err:
        code = "missing_field" if item.get(err.field) in (None, "") else "invalid_field"
        message = str(err).removeprefix(f"{err.field}: ")
        echoed = {"value": item[err.field]} if err.field in item else {}
        raise ApiError(422, code, message, field=f"{prefix}{err.field}", **echoed) from None
    for name, limit in MAX_LENGTH.items():
        text = getattr(shipment, name)
        if limit is not None and len(text) > limit:
            raise ApiError(
                422, "invalid_field", f"at most {limit} characters, got {len(text)}", field=f"{prefix}{name}"
            )
    if shipment.carrier not in carriers:
        raise ApiError(
            422,
            "invalid_field",
            f"no adapter is configured for carrier {shipment.carrier!r}",
            field=f"{prefix}carrier",
            value=shipment.carrier,
            allowed=carriers,
        )
    return shipment


def parse_shipments(body: Any, ctx: ApiContext) -> list[Shipment]:
    """Validate every item of a body before anything is stored."""
    items, batch = unpack(body)
    carriers = sorted(ctx.adapters)
    return [parse_item(item, f"{batch}[{i}]" if batch else "", carriers) for i, item in enumerate(items)]


@router.post(
    "/shipments",
    dependencies=[allowed(Permission.SHIPMENTS)],
    summary="Add shipments to watch",
    description=(
        'Send one shipment object, or `{"shipments": [...]}` with up to 10,000. Times are ISO 8601 '
        "**with an offset** (`+08:00`); `amount` is the order amount in yuan, as text or a number. "
        "All items are validated first: one bad item stores nothing, and the error names it "
        "(`shipments[3].shipped_at`). Idempotent on carrier + tracking number: a shipment sent again is "
        "counted in `existing` and left unchanged. Answers 201 when at least one shipment was new, else 200."
    ),
    response_model=ShipmentsReceived,
    status_code=201,
    responses={200: {"model": ShipmentsReceived, "description": "Every shipment was known already."}}
    | errors(400, 401, 403, 413, 422),
    openapi_extra={"requestBody": BODY},
)
async def add_shipments(request: Request, response: Response, ctx: Ctx) -> ShipmentsReceived:
    """Validate all, store all, and say how many were new."""
    shipments = parse_shipments(parse_json(await request.body()), ctx)
    created = await ctx.offload(ctx.monitor.add_shipments, shipments) if shipments else 0
    if created:  # who sent them: one activity line per batch, stamped with the caller (monitor.people.audit)
        line = {"at": ctx.clock.now(), "event": "shipments_received", "parcel_id": None,
                "data": {"received": len(shipments), "created": created}}  # fmt: skip
        await ctx.store.transact(lambda uow: uow.record([line]))
    response.status_code = 201 if created else 200
    return ShipmentsReceived(received=len(shipments), created=created, existing=len(shipments) - created)
