"""The daemon's HTTP API: ``create_app(ctx)`` builds it, the daemon serves it with uvicorn.

It runs on the same asyncio loop as the scheduler, so every handler is ``async def`` and
calls the Monitor directly, with no second copy of the state. Database work never runs on
that loop: handlers hand it to the store's threads (``await ctx.read(...)``,
``await ctx.offload(...)``), so a slow or locked database stalls only the requests that need
it, ``/healthz`` never waits on it, and an outage answers ``503 database_unavailable``.
Routers are small modules, one per resource; this module only assembles them, top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from monitor import console
from monitor.api import (
    anomalies,
    carriers,
    docs,
    errors,
    health,
    intercepts,
    parcels,
    push,
    refunds,
    reports,
    routes,
    shipments,
    tickets,
)
from monitor.api.context import ApiContext
from monitor.api.middleware import AccessLog, BodyLimit, CatchAll, RouteTemplates
from monitor.api.principal import current_principal
from monitor.api.schemas import CommentIn, RefundIn, ResolveIn, ShipmentBatchIn, ShipmentIn, TicketBulkIn, TicketPatchIn

__all__ = ["API_PREFIX", "ApiContext", "create_app"]

API_PREFIX = "/api/v1"
#: Routers under /api/v1 that need ``Authorization: Bearer <token>``.
AUTHENTICATED: tuple[APIRouter, ...] = (
    shipments.router,
    parcels.router,
    anomalies.router,
    tickets.router,
    intercepts.router,
    reports.router,
    carriers.router,
    routes.router,
)
#: Routers under /api/v1 that authenticate each request by a signature over its body instead.
SIGNED: tuple[APIRouter, ...] = (refunds.router, push.router)
#: Request bodies read by hand (to sign or to name a batch index) but documented like any other.
BODY_SCHEMAS = (ShipmentIn, ShipmentBatchIn, RefundIn, ResolveIn, TicketPatchIn, CommentIn, TicketBulkIn)

TAGS: list[dict[str, Any]] = [
    {"name": "shipments", "description": "Tell the monitor what you shipped."},
    {"name": "refunds", "description": "The signed refund webhook: refund-only requests intercept parcels at once."},
    {"name": "carriers", "description": "Carrier health, quota, unknown codes; push callbacks signed by the carrier."},
    {"name": "parcels", "description": "Parcels with their carrier timeline and everything the monitor did."},
    {"name": "routes", "description": "Each route's normal pace, learned from delivered parcels (slow_for_route)."},
    {"name": "anomalies", "description": "What the rules found; acknowledge and resolve."},
    {"name": "tickets", "description": "Internal tickets for ops staff and the warehouse."},
    {"name": "intercepts", "description": "Parcels stopped (or held, or skipped) because of a refund-only request."},
    {"name": "reports", "description": "24-hour pickup rate, intercepts and anomalies over the last N days."},
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics; no token."},
]

DESCRIPTION = """\
Watch every shipped parcel, catch pickup misses, stalls and carrier exceptions, and intercept
parcels on refund-only requests.

**Authentication.** Every `/api/v1` route needs `Authorization: Bearer <token>` (the value of
`PARCEL_MONITOR_API_TOKEN`), except two that are signed instead: the refund webhook
(`X-Parcel-Monitor-Timestamp` + `X-Parcel-Monitor-Signature`, HMAC-SHA256 over the raw body) and
carrier push callbacks (the carrier's own signature).

**Errors.** Every error answers one shape:
`{"error": {"code": "invalid_field", "field": "shipments[3].shipped_at", "value": "…", "message": "…"}}`.
`code` is stable; `field` names the bad part of the request, with the index in a batch.

**Lists** are newest first. Pass a page's `next_cursor` as `cursor` for the next page; `limit` ≤ 500.

**Times** are ISO 8601; send them with an offset (`+08:00`), they come back in UTC. **Money** is in yuan.
No buyer names, phone numbers or addresses are stored or returned.
"""


def _version() -> str:
    try:
        return version("parcel-monitor")
    except PackageNotFoundError:
        return "0+unknown"


def _openapi_with_bodies(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Return ``app.openapi`` extended with the schemas of the bodies routes read by hand."""
    build_default = app.openapi

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_default()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in BODY_SCHEMAS:
                document = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(document.pop("$defs", {}))
                components[model.__name__] = document
            _one_error_shape(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def _one_error_shape(schema: dict[str, Any]) -> None:
    """Document FastAPI's automatic 422 answers with our error shape, which is what they send."""
    ours = {"$ref": "#/components/schemas/ErrorBody"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422", {})
            content = answer.get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                content["schema"] = ours
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def _templates(app: FastAPI) -> list[str]:
    """Return the path template of every route, for the access log and metrics labels."""
    paths = [API_PREFIX + route.path for router in (*AUTHENTICATED, *SIGNED) for route in router.routes]
    paths += [route.path for route in health.router.routes] + console.paths()
    return paths + [path for route in app.routes if isinstance(path := getattr(route, "path", None), str)]


def create_app(ctx: ApiContext) -> FastAPI:
    """Build the API on ``ctx``: routers, auth, one error shape, the body cap and access logging."""
    app = FastAPI(
        title="parcel-monitor API",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        openapi_url="/openapi.json",
        docs_url=None,  # served offline by monitor/api/docs.py
        redoc_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)
    for router in AUTHENTICATED:
        app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(current_principal)])
    for router in SIGNED:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    docs.install(app, openapi_url="/openapi.json")
    console.install(app)  # the ops console's pages at /, its assets at /console/static (monitor/console)
    # Added last = outermost: the access log sees (and counts) the 413s of the body cap and the 500s.
    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit, limit=ctx.settings.max_body_bytes)
    app.add_middleware(AccessLog, metrics=ctx.metrics, templates=RouteTemplates(_templates(app)))
    app.openapi = _openapi_with_bodies(app)  # type: ignore[method-assign]
    return app
