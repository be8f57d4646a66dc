"""GET /api/v1/routes: the route norms learned from delivered parcels (``monitor.norms``).

Without provinces: every learned norm (route, region class and carrier levels), as
``parcel-monitor routes show`` prints them. With ``from`` and ``to``: the norm each phase
uses on that route after the fallback chain (route → region class → carrier → preset).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from monitor.api.context import Ctx, text_query
from monitor.api.errors import ApiError
from monitor.api.principal import allowed
from monitor.api.schemas import errors
from monitor.norms.model import Norm
from monitor.norms.show import select_norms
from monitor.people.roles import Permission

router = APIRouter(tags=["routes"])


class NormOut(BaseModel):
    """How long one phase takes at one level of the chain."""

    level: str = Field(description="route | region | carrier | preset (the thresholds' fixed line).")
    carrier: str = Field(examples=["sf"])
    origin_province: str | None = Field(examples=["浙江"])
    dest_province: str | None = Field(examples=["四川"])
    region_class: str | None = Field(examples=["cross_province"])
    phase: str = Field(description="ship_to_pickup | pickup_to_first_transit | transit_gap | ofd_to_delivered | total")
    p50_hours: float
    p90_hours: float
    p95_hours: float
    p99_hours: float
    samples: int = Field(description="Delivered parcels (or transit gaps) behind it; 0 for the preset.")
    learned_at: datetime | None
    window_days: int

    @classmethod
    def of(cls, n: Norm) -> NormOut:
        """Build from a norm (seconds → hours)."""
        return cls(
            level=n.level, carrier=n.carrier, origin_province=n.origin_province or None,
            dest_province=n.dest_province or None, region_class=n.region_class or None, phase=n.phase,
            p50_hours=round(n.p50 / 3600, 3), p90_hours=round(n.p90 / 3600, 3), p95_hours=round(n.p95 / 3600, 3),
            p99_hours=round(n.p99 / 3600, 3), samples=n.samples, learned_at=n.learned_at, window_days=n.window_days,
        )  # fmt: skip


class RoutesOut(BaseModel):
    """The norms asked for, and what the rule waits for."""

    quantile: str = Field(description="The quantile slow_for_route waits for (`[norms] quantile`).", examples=["p95"])
    min_samples: int = Field(description="Fewer samples than this: the chain falls back a level.")
    norms: list[NormOut]


@router.get(
    "/routes",
    summary="Learned route norms",
    description=(
        "Each route's normal pace, learned nightly from parcels delivered in the last `window_days`: p50/p90/p95/p99 "
        "hours per phase and the sample count. Give `from` and `to` (provinces, e.g. 浙江 and 四川) for the norm each "
        "phase uses on that route after the fallback chain."
    ),
    response_model=RoutesOut,
    responses=errors(401, 403, 422),
    dependencies=[allowed(Permission.READ)],
)
async def list_routes(
    ctx: Ctx,
    carrier: Annotated[str | None, text_query("Only this carrier code.", ["sf"])] = None,
    origin: Annotated[str | None, Query(alias="from", description="Origin province.", max_length=16)] = None,
    dest: Annotated[str | None, Query(alias="to", description="Destination province.", max_length=16)] = None,
) -> RoutesOut:
    """Return the learned norms, or the chain's pick per phase for one route."""
    book = ctx.monitor.norms
    try:
        norms = select_norms(book, ctx.monitor.engine.rules, carrier, origin, dest)
    except ValueError as err:
        name = "from" if "--from" in str(err) else "to"
        message = str(err).replace("--from", "from").replace("--to", "to")
        raise ApiError(422, "invalid_field", message, field=name, value=origin if name == "from" else dest) from None
    s = book.settings
    return RoutesOut(quantile=s.quantile, min_samples=s.min_samples, norms=[NormOut.of(n) for n in norms])
