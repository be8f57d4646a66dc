"""/api/v1/anomalies: what the rules found, and the two things a person does about it.

Acknowledging says "someone is on it" (open → acknowledged; again is harmless). Resolving
closes it by hand; the rules also resolve anomalies themselves when the condition clears.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from monitor.api.body import parse_json, parse_model
from monitor.api.context import ApiContext, Ctx, Cursor, Limit, RowId, cursor_id, text_query
from monitor.api.errors import ApiError
from monitor.api.principal import allowed
from monitor.api.schemas import AnomalyFilter, AnomalyOut, Page, ResolveIn, RuleId, errors
from monitor.people.roles import Permission

router = APIRouter(tags=["anomalies"])

RESOLVE_BODY = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/ResolveIn"},
            "example": {"resolution": "reshipped"},
        }
    },
}


async def _load(ctx: ApiContext, anomaly_id: int) -> AnomalyOut:
    """Return one anomaly, or 404."""
    row = await ctx.read(lambda views: views.anomaly(anomaly_id))
    if row is None:
        raise ApiError(404, "not_found", f"no anomaly {anomaly_id}", field="anomaly_id", value=anomaly_id)
    return AnomalyOut.of(row)


def _not_resolved(anomaly: AnomalyOut) -> None:
    """Refuse (409) to change an anomaly that is closed."""
    if anomaly.state == "resolved":
        when = anomaly.resolved_at.isoformat() if anomaly.resolved_at else "before"
        raise ApiError(
            409,
            "already_resolved",
            f"anomaly {anomaly.id} was resolved ({anomaly.resolution}) at {when}",
            field="anomaly_id",
            value=anomaly.id,
        )


@router.get(
    "/anomalies",
    summary="List anomalies",
    description="Newest first. `state=active` gives open and acknowledged ones. Page with `cursor`.",
    response_model=Page[AnomalyOut],
    responses=errors(401, 422),
)
async def list_anomalies(
    ctx: Ctx,
    limit: Limit = 100,
    cursor: Cursor = None,
    state: Annotated[AnomalyFilter | None, Query(description="open | acknowledged | resolved | active")] = None,
    rule: Annotated[RuleId | None, Query(description="Rule id.")] = None,
    carrier: Annotated[str | None, text_query("Carrier code.")] = None,
    shop: Annotated[str | None, text_query("Shop name.")] = None,
) -> Page[AnomalyOut]:
    """Return one page of anomalies."""
    before = cursor_id(cursor)
    page = await ctx.read(
        lambda views: views.anomalies(
            state=state, rule=rule.value if rule else None, carrier=carrier, shop=shop, limit=limit, before=before
        )
    )
    return Page[AnomalyOut].of([AnomalyOut.of(r) for r in page.rows], page.next_cursor)


@router.get(
    "/anomalies/{anomaly_id}",
    summary="One anomaly",
    response_model=AnomalyOut,
    responses=errors(401, 404, 422),
)
async def get_anomaly(anomaly_id: RowId, ctx: Ctx) -> AnomalyOut:
    """Return one anomaly with its parcel's keys."""
    return await _load(ctx, anomaly_id)


@router.post(
    "/anomalies/{anomaly_id}/acknowledge",
    dependencies=[allowed(Permission.ANOMALIES)],
    summary="Acknowledge an anomaly",
    description="Open → acknowledged. Acknowledging an acknowledged anomaly changes nothing; a resolved one is 409.",
    response_model=AnomalyOut,
    responses=errors(401, 403, 404, 409, 422),
)
async def acknowledge(anomaly_id: RowId, ctx: Ctx) -> AnomalyOut:
    """Mark an anomaly as seen by a person."""
    _not_resolved(await _load(ctx, anomaly_id))
    await ctx.offload(ctx.monitor.acknowledge, anomaly_id)
    return await _load(ctx, anomaly_id)


@router.post(
    "/anomalies/{anomaly_id}/resolve",
    dependencies=[allowed(Permission.ANOMALIES)],
    summary="Resolve an anomaly by hand",
    description='Body optional: `{"resolution": "reshipped"}` (up to 32 characters; default `manual`). '
    "A resolved anomaly is 409.",
    response_model=AnomalyOut,
    responses=errors(400, 401, 403, 404, 409, 422),
    openapi_extra={"requestBody": RESOLVE_BODY},
)
async def resolve(anomaly_id: RowId, request: Request, ctx: Ctx) -> AnomalyOut:
    """Close an anomaly, recording how."""
    raw = await request.body()
    body = parse_model(ResolveIn, parse_json(raw)) if raw.strip() else ResolveIn()
    _not_resolved(await _load(ctx, anomaly_id))
    if not await ctx.offload(ctx.monitor.resolve, anomaly_id, body.resolution):
        _not_resolved(await _load(ctx, anomaly_id))  # resolved meanwhile, by a rule or another person
    return await _load(ctx, anomaly_id)
