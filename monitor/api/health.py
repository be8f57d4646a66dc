"""/healthz, /readyz and /metrics: for the load balancer, the orchestrator and Prometheus.

Outside /api/v1 and without a token, as probes expect; they reveal counts, never parcels.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from monitor.api.context import Ctx
from monitor.api.schemas import HealthOut

router = APIRouter(tags=["operations"])
#: Longest /readyz waits for ``SELECT 1`` before it calls the database unavailable.
READY_TIMEOUT_SECONDS = 5.0


@router.get(
    "/healthz",
    summary="Liveness",
    description="200 while the process answers; it never touches the database, so a restart never hinges on it.",
    response_model=HealthOut,
)
async def healthz() -> HealthOut:
    """Say the process is alive."""
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    description="200 when the daemon has started and the database answers `SELECT 1`; else 503 with the reason.",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Not ready; `reason` says why."}},
)
async def readyz(ctx: Ctx) -> JSONResponse:
    """Say whether this replica should get traffic."""
    if not ctx.ready():
        return _unready("the daemon is starting or stopping")
    try:
        await asyncio.wait_for(ctx.read(lambda views: views.ping()), READY_TIMEOUT_SECONDS)
    except (SQLAlchemyError, TimeoutError) as err:
        return _unready(f"the database does not answer ({type(err).__name__})")
    return JSONResponse(HealthOut(status="ok").model_dump())


def _unready(reason: str) -> JSONResponse:
    return JSONResponse(HealthOut(status="unavailable", reason=reason).model_dump(), status_code=503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Prometheus text format: counters of polls, carrier calls, events, refunds and HTTP requests, "
    "the intercept latency, and counts read from the store at each scrape.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"example": 'parcel_monitor_parcels{status="in_transit"} 42.0'}}}},
)
async def metrics(ctx: Ctx) -> Response:
    """Render the metrics registry."""
    payload, content_type = await ctx.offload(ctx.metrics.render)  # the scrape counts rows in the store
    return Response(payload, media_type=content_type)
