"""GET /api/v1/carriers: each carrier's health, quota used today, last success, and unknown codes seen.

The same figures as the console's 快递公司 page (:mod:`monitor.console.ops`), read in one
transaction: health from ``carrier_health`` (:mod:`monitor.polling.health`), today's usage from
``carrier_usage`` against the daily quota (the configured ``[polling.carriers.<code>]``, else
the adapter's own limit), parcels still watched, and the codes no mapping knew (``unknown_code``).
"""

from __future__ import annotations

import weakref
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from monitor.api.context import ApiContext, Ctx
from monitor.api.principal import allowed
from monitor.api.schemas import errors
from monitor.logging import mask_phone_numbers
from monitor.people.roles import Permission
from monitor.polling.pacing import quota_day
from monitor.store.ops import carrier_standings, unknown_codes, watched_counts
from monitor.store.store import Store

router = APIRouter(tags=["carriers"])


class CarrierOut(BaseModel):
    """One carrier's standing today."""

    code: str = Field(examples=["sf"])
    configured: bool = Field(description="An adapter of this code is loaded (else: only seen in the store).")
    state: str = Field(description="up | failing | down | unconfigured (no adapter: never polled)", examples=["up"])
    failing_since: datetime | None = Field(description="Since when it fails (None while up).")
    last_error: str = Field(description="The last error of a failed round or call (kept after recovery).")
    last_success_at: datetime | None = Field(description="The last poll round or call that went through (±1 min).")
    quota_day: str = Field(description="The local day the quota counts against.", examples=["2026-11-11"])
    used_today: int = Field(description="Requests counted against today's quota.")
    daily_quota: int | None = Field(description="Requests allowed per local day; None: no daily limit.")
    watched: int = Field(description="Parcels not yet delivered or returned (counted at most once a minute).")


class UnknownCodeOut(BaseModel):
    """A carrier status code no mapping knows: its events are kept with no status, never guessed."""

    carrier: str
    code: str
    text_sample: str = Field(description="The carrier's text of the latest one (phone numbers masked, ≤ 80 chars).")
    first_seen: datetime
    last_seen: datetime
    count: int = Field(description="New events seen with this code (a carrier's repeats of one scan count once).")


class CarriersOut(BaseModel):
    """Every carrier, and the unknown codes seen (most recently seen first, at most 200)."""

    carriers: list[CarrierOut]
    unknown_codes: list[UnknownCodeOut]


def daily_quota(ctx: ApiContext, code: str) -> int | None:
    """Return a carrier's daily quota as the poller applies it: the configured one, else the adapter's."""
    configured = ctx.config.polling.quotas.get(code) if ctx.config is not None else None
    if configured is not None and configured.requests_per_day:
        return configured.requests_per_day
    adapter = ctx.adapters.get(code)
    limits = getattr(adapter, "limits", None)
    extra: dict[str, Any] = getattr(limits, "extra", None) or {}
    value = extra.get("requests_per_day")
    return int(value) if value else None


#: The parcels watched per carrier, per store: (counted at, counts), counted again after :data:`WATCHED_FOR`.
_WATCHED: weakref.WeakKeyDictionary[Store, tuple[datetime, dict[str, int]]] = weakref.WeakKeyDictionary()
WATCHED_FOR = timedelta(minutes=1)


async def overview(ctx: ApiContext) -> CarriersOut:
    """Read every carrier's standing and the unknown codes, off the event loop.

    Health, usage and codes are read fresh; the count of watched parcels (a read that grows
    with the parcels) is kept for :data:`WATCHED_FOR` of wall time.
    """
    day = quota_day(ctx.clock.now(), ctx.timezone)  # type: ignore[arg-type]
    now = ctx.wall_now()
    kept = _WATCHED.get(ctx.store)
    if kept is None or now - kept[0] >= WATCHED_FOR or now < kept[0]:
        kept = (now, await ctx.read(lambda views: watched_counts(views.conn)))
        _WATCHED[ctx.store] = kept
    watched = kept[1]
    standings, codes = await ctx.read(
        lambda views: (carrier_standings(views.conn, sorted(ctx.adapters), day, watched), unknown_codes(views.conn))
    )
    carriers = [
        CarrierOut(code=s.code, configured=s.configured, state=s.state, failing_since=s.failing_since,
                   last_error=mask_phone_numbers(s.last_error), last_success_at=s.last_success_at, quota_day=day,
                   used_today=s.used_today, daily_quota=daily_quota(ctx, s.code), watched=s.watched)
        for s in standings
    ]  # fmt: skip
    unknown = [
        UnknownCodeOut(carrier=c.carrier, code=c.code, text_sample=c.text_sample, first_seen=c.first_seen,
                       last_seen=c.last_seen, count=c.count)
        for c in codes
    ]  # fmt: skip
    return CarriersOut(carriers=carriers, unknown_codes=unknown)


@router.get(
    "/carriers",
    summary="Carrier health, quota and unknown codes",
    description=(
        "Per carrier: `state` (`up`, `failing`: a round failed, polled less; `down`: three in a row, or rejected "
        "credentials, ops staff alerted once) with `failing_since` and `last_error`; `last_success_at` (kept "
        "fresh to the minute); `used_today` of `daily_quota` on the local `quota_day`; `watched` parcels. "
        "`unknown_codes`: status codes no mapping knew, with a sample of the carrier's text — their events are "
        "kept with no status (never guessed); add them to the carrier's code table."
    ),
    response_model=CarriersOut,
    responses=errors(401, 403),
    dependencies=[allowed(Permission.READ)],
)
async def list_carriers(ctx: Ctx) -> CarriersOut:
    """Return every carrier's standing and the unknown codes seen."""
    return await overview(ctx)
