"""Keep the store small without losing the numbers: roll days up into ``kpi_daily``, then purge.

Finished parcels (delivered or returned) are worth little once their day's figures are
safe: :func:`rollup_kpis` writes one row per (day, shop, carrier) to ``kpi_daily``, and
:func:`purge_finished` deletes old finished parcels with everything that refers to them —
but only parcels whose every counted day is already rolled up. Right before deleting, the
purge recounts those days from the live tables and marks their rows as the only record
left; from then on reports read those days from ``kpi_daily``, so they give the same
answer before and after a purge.

Both take the clock (never the wall clock directly) and the shops' time zone, since a
"day" is a local day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from monitor.clock import Clock
from monitor.kpi.reports import day_bounds
from monitor.store.kpi import open_kpi
from monitor.store.store import Store

log = structlog.get_logger("monitor.kpi.rollup")

#: The default of ``Settings.timezone``: Tmall and Douyin shops keep Beijing time.
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
#: Parcels deleted per transaction, so a purge never holds one huge write transaction.
PURGE_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class RollupResult:
    """What one day's rollup wrote."""

    day: date
    rows: int
    #: Rows left as they were because a purge already relied on them.
    frozen: int


@dataclass
class PurgeResult:
    """How many rows of each kind a purge deleted, and how many finished parcels it had to keep."""

    parcels: int = 0
    events: int = 0
    anomalies: int = 0
    notifications: int = 0
    actions: int = 0
    ticket_events: int = 0
    tickets: int = 0
    intercepts: int = 0
    activity: int = 0
    refunds: int = 0
    #: Finished and old enough, but counted on a day that has not ended yet: kept for now.
    kept_not_rolled_up: int = 0
    transactions: int = 0


def rollup_kpis(store: Store, clock: Clock, day: date, tz: tzinfo = DEFAULT_TZ) -> RollupResult:
    """Write ``day``'s figures to kpi_daily, one row per shop and carrier, replacing an earlier run.

    Only a day that has ended can be rolled up: its figures are a snapshot as of now, and
    a day still under way would be missing the rest of itself. Re-running a day replaces its
    rows — except rows a purge relied on, whose parcels are gone and could not be counted again.

    Raises:
        ValueError: the day has not ended yet in ``tz``.
    """
    now = clock.now()
    start, end = day_bounds(day, tz)
    if end > now:
        raise ValueError(f"{day} has not ended yet in {tz}: roll up only past days")
    with open_kpi(store) as kpi:
        slices = kpi.live(start, end, now)
        rows, frozen = kpi.replace_day(day, slices, now)
    log.info("kpi.rolled_up", day=day.isoformat(), rows=rows, frozen=frozen)
    return RollupResult(day, rows, frozen)


def purge_finished(
    store: Store, clock: Clock, older_than_days: int, tz: tzinfo = DEFAULT_TZ, *, chunk: int = PURGE_CHUNK
) -> PurgeResult:
    """Delete delivered and returned parcels unchanged for ``older_than_days``, with their rows.

    With a parcel go its tracking events, anomalies, outbox actions, notifications, tickets,
    intercepts and activity, and the refunds of its order once no parcel of the order is left.
    A parcel is kept while anything about it is unfinished (an open or acknowledged anomaly,
    a pending action or notification, an intercept in flight), and while a day it is counted
    on (shipped, pickup due, delivered, anomaly opened, intercept requested) has not ended.
    The days it is counted on are rolled up first, in the same transaction, so their kpi_daily
    rows match the live tables at the moment the parcels go — a night the rollup missed
    loses nothing; those rows are then marked, so reports read them from now on and no rollup
    rewrites them.
    ``older_than_days`` 0 keeps everything, as ``retention.finished_days = 0`` does.
    """
    result = PurgeResult()
    if older_than_days <= 0:
        return result
    now = clock.now()
    cutoff = now - timedelta(days=older_than_days)
    after_id = 0
    recounted: set[date] = set()
    while True:
        with open_kpi(store) as kpi:  # one transaction per chunk
            candidates = kpi.finished_parcels(cutoff, after_id, chunk)
            if not candidates:
                break
            after_id = candidates[-1].id
            times = kpi.counted_times([p.id for p in candidates])
            days = {p.id: counted_days(p, times[p.id], tz) for p in candidates}
            today = now.astimezone(tz).date()
            doomed, relied_on = [], set()
            for p in candidates:
                if max(days[p.id]) < today:  # every day it counts on has ended: recount them, then purge
                    doomed.append(p)
                    relied_on |= {(d, p.shop, p.carrier) for d in days[p.id]}
            result.kept_not_rolled_up += len(candidates) - len(doomed)
            if doomed:
                for day in sorted({d for d, _, _ in relied_on} - recounted):
                    start, end = day_bounds(day, tz)
                    kpi.replace_day(day, kpi.live(start, end, now), now)
                    recounted.add(day)
                counts = kpi.delete_parcels([p.id for p in doomed], {p.order_id for p in doomed})
                kpi.freeze(relied_on, now)
                for name, n in counts.items():
                    setattr(result, name, getattr(result, name) + n)
            result.transactions += 1
        log.info("retention.chunk", deleted=len(doomed), kept=len(candidates) - len(doomed), after_id=after_id)
    log.info("retention.purged", parcels=result.parcels, kept_not_rolled_up=result.kept_not_rolled_up)
    return result


def counted_days(parcel: Any, times: Iterable[datetime], tz: tzinfo) -> set[date]:
    """Return the local days a parcel counts on in the figures, as the live queries count it.

    Shipped on its shipping day, due for pickup on its deadline's day (unless held), delivered
    on its delivery day, and on the day each of its anomalies opened and intercepts were
    requested (``times``).
    """
    moments = [parcel.shipped_at, *times]
    if not parcel.held:
        moments.append(parcel.pickup_deadline)
    if parcel.delivered_at is not None:
        moments.append(parcel.delivered_at)
    return {m.astimezone(tz).date() for m in moments}
