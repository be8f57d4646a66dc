"""Learn route norms by SQL aggregation over the parcels delivered in a rolling window.

The window's delivered parcels are first copied to a temporary table with their route as a
number and their times as seconds, so the samples sort on numbers, not text. Every sample
is then one row of a second temporary table built by one statement: per delivered parcel,
shipped → first scan, first scan → first transit scan, out for delivery → delivered,
shipped → delivered, and every gap after a transit scan until the next scan (``LAG`` over
the parcel's events). Quantiles are then taken per group, one statement per level
(route, region class, carrier): ``percentile_cont`` on PostgreSQL; on SQLite, which has
none, the same linear interpolation between the two ranks around ``1 + q·(n−1)``, picked
with ``ROW_NUMBER``/``COUNT`` over one shared window (one sort per level). Nothing loops over
parcels in Python: the rows that come back are one per group.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, insert, text

from monitor.norms.model import PHASES, RN
from monitor.norms.settings import NormSettings
from monitor.store.store import Store, UnitOfWork
from monitor.store.types import UTCDateTime

log = structlog.get_logger("monitor.norms")

QS = (0.5, 0.9, 0.95, 0.99)
#: The keys each level groups by; the others are stored as "".
LEVEL_KEYS = {
    "route": ("carrier", "origin_province", "dest_province"),
    "region": ("carrier", "region_class"),
    "carrier": ("carrier",),
}
ALL_KEYS = ("carrier", "origin_province", "dest_province", "region_class")
_TIME = UTCDateTime()
#: PostgreSQL: how long one learning statement may run (the daemon's connections allow 30 s).
LEARN_TIMEOUT = "10min"


@dataclass(frozen=True, slots=True)
class LearnResult:
    """What one learning run wrote."""

    parcels: int
    samples: int
    norms: int
    seconds: float


PHASE_IDS = {phase: i for i, phase in enumerate(PHASES)}


def _interpolated(row: Any) -> list[float]:
    """Return percentile_cont's values from the two ranks around each position (SQLite's rows)."""
    n = row.n
    found = []
    for i, q in enumerate(QS):
        lo, hi = getattr(row, f"lo{i}"), getattr(row, f"hi{i}")
        pos = (n - 1) * q
        frac = pos - int(pos)
        found.append(float(lo) if hi is None else float(lo) + frac * (float(hi) - float(lo)))
    return found


def _epoch(dialect: str, column: str) -> str:
    """Return ``column`` (a stored time) as seconds, a number cheap to subtract and to sort."""
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})"
    return f"(julianday({column}) * 86400.0)"


def _routes_sql() -> str:
    """One row per route of the parcels delivered in the window, numbered: samples carry the number, not the text."""
    return """
SELECT ROW_NUMBER() OVER (ORDER BY carrier, origin_province, dest_province, region_class) AS rid, *
FROM (SELECT DISTINCT carrier, COALESCE(origin_province, '') AS origin_province,
             COALESCE(destination_province, '') AS dest_province, region_class
      FROM parcel WHERE status = 'delivered' AND delivered_at >= :since AND delivered_at <= :until) AS routes"""


def _parcels_sql(dialect: str) -> str:
    """The delivered parcels of the window with their route number and times as seconds."""
    return f"""
SELECT f.id, r.rid, {_epoch(dialect, "f.shipped_at")} AS shipped, {_epoch(dialect, "f.picked_up_at")} AS picked,
       {_epoch(dialect, "f.delivered_at")} AS delivered
FROM parcel f JOIN norm_route r ON r.carrier = f.carrier AND r.origin_province = COALESCE(f.origin_province, '')
     AND r.dest_province = COALESCE(f.destination_province, '') AND r.region_class = f.region_class
WHERE f.status = 'delivered' AND f.delivered_at >= :since AND f.delivered_at <= :until"""


def _samples_sql(dialect: str) -> str:
    """Every sample (route number, phase number, seconds) of the window's parcels, from them and their scans."""
    p = PHASE_IDS
    return f"""
WITH ev AS (
    SELECT e.parcel_id, {_epoch(dialect, "e.time")} AS t, e.status,
           LAG(e.status) OVER w AS prev_status, LAG({_epoch(dialect, "e.time")}) OVER w AS prev_t
    FROM norm_parcel f JOIN tracking_event e ON e.parcel_id = f.id
    WHERE e.status IS NOT NULL AND e.status != 'pending'
    WINDOW w AS (PARTITION BY e.parcel_id ORDER BY e.time, e.id)
),
firsts AS (
    SELECT parcel_id, MIN(CASE WHEN status = 'in_transit' THEN t END) AS first_transit,
           MIN(CASE WHEN status = 'out_for_delivery' THEN t END) AS first_ofd
    FROM ev GROUP BY parcel_id
)
SELECT rid, {p["ship_to_pickup"]} AS phase, picked - shipped AS s FROM norm_parcel WHERE picked IS NOT NULL
UNION ALL
SELECT f.rid, {p["pickup_to_first_transit"]}, x.first_transit - f.picked
    FROM firsts x JOIN norm_parcel f ON f.id = x.parcel_id WHERE x.first_transit IS NOT NULL AND f.picked IS NOT NULL
UNION ALL
SELECT f.rid, {p["transit_gap"]}, ev.t - ev.prev_t FROM ev JOIN norm_parcel f ON f.id = ev.parcel_id
    WHERE ev.prev_status = 'in_transit'
UNION ALL
SELECT f.rid, {p["ofd_to_delivered"]}, f.delivered - x.first_ofd
    FROM firsts x JOIN norm_parcel f ON f.id = x.parcel_id WHERE x.first_ofd IS NOT NULL
UNION ALL
SELECT rid, {p["total"]}, delivered - shipped FROM norm_parcel
"""


#: What each level groups the samples by: a number per group, from the route numbers.
LEVEL_GROUP = {
    "route": "rid",
    "region": "DENSE_RANK() OVER (ORDER BY carrier, region_class)",
    "carrier": "DENSE_RANK() OVER (ORDER BY carrier)",
}


def _quantiles_sql(dialect: str, level: str) -> str:
    """Return, per group of ``level`` and phase: its keys, n and the quantiles (SQLite: the ranks around each)."""
    keys = ", ".join(f"g.{k}" for k in LEVEL_KEYS[level])
    groups = f"""groups AS (
    SELECT rid, {LEVEL_GROUP[level]} AS gid, carrier, origin_province, dest_province, region_class FROM norm_route
    {"WHERE origin_province != '' AND dest_province != ''" if level == "route" else ""}
), keyed AS (SELECT DISTINCT gid, {", ".join(LEVEL_KEYS[level])} FROM groups)"""
    if dialect == "postgresql":
        qs = ", ".join(str(q) for q in QS)
        return f"""
WITH {groups}
SELECT {keys}, x.phase, x.n, x.qs FROM (
    SELECT gr.gid, s.phase, COUNT(*) AS n, percentile_cont(ARRAY[{qs}]) WITHIN GROUP (ORDER BY s.s) AS qs
    FROM norm_sample s JOIN groups gr ON gr.rid = s.rid GROUP BY gr.gid, s.phase
) x JOIN keyed g ON g.gid = x.gid"""
    # One sort per level: rank and count share the window, and only the rows at the ranks wanted are grouped.
    ranks = " OR ".join(f"rn IN (1 + CAST((n - 1) * {q} AS INTEGER), 2 + CAST((n - 1) * {q} AS INTEGER))" for q in QS)
    picks = []
    for i, q in enumerate(QS):
        rank = f"CAST((n - 1) * {q} AS INTEGER)"
        picks.append(f"MAX(CASE WHEN rn = 1 + {rank} THEN s END) AS lo{i}")
        picks.append(f"MAX(CASE WHEN rn = 2 + {rank} THEN s END) AS hi{i}")
    return f"""
WITH {groups}, ranked AS (
    SELECT gr.gid, s.phase, s.s,
           ROW_NUMBER() OVER w AS rn,
           COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n
    FROM norm_sample s JOIN groups gr ON gr.rid = s.rid
    WINDOW w AS (PARTITION BY gr.gid, s.phase ORDER BY s.s)
)
SELECT {keys}, x.* FROM (
    SELECT gid, phase, n, {", ".join(picks)} FROM ranked WHERE {ranks} GROUP BY gid, phase, n
) x JOIN keyed g ON g.gid = x.gid"""


def learn(store: Store, now: datetime, settings: NormSettings | None = None) -> LearnResult:
    """Replace the ``route_norm`` table with norms learned from parcels delivered in the window before ``now``."""
    settings = settings or NormSettings()
    started = time.perf_counter()
    with store.begin() as uow:
        result = learn_in(uow, now, settings)
    result = LearnResult(result.parcels, result.samples, result.norms, round(time.perf_counter() - started, 3))
    log.info("norms.learned", parcels=result.parcels, samples=result.samples, norms=result.norms,
             seconds=result.seconds, window_days=settings.window_days)  # fmt: skip
    return result


def learn_in(uow: UnitOfWork, now: datetime, settings: NormSettings) -> LearnResult:
    """Learn in the caller's transaction (see :func:`learn`)."""
    dialect, conn = uow.dialect, uow.conn
    since = now - timedelta(days=settings.window_days)
    params = {"since": since, "until": now}
    bind = {k: _bind(uow, v) for k, v in params.items()}
    if dialect == "postgresql":  # a nightly batch, not a request: bounded, but by minutes
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{LEARN_TIMEOUT}'")
    temp = ("norm_route", "norm_parcel", "norm_sample")
    for name in temp:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    conn.execute(text(f"CREATE TEMPORARY TABLE norm_route AS {_routes_sql()}"), bind)
    conn.exec_driver_sql(
        "CREATE INDEX norm_route_keys ON norm_route (carrier, origin_province, dest_province, region_class)"
    )
    conn.execute(text(f"CREATE TEMPORARY TABLE norm_parcel AS {_parcels_sql(dialect)}"), bind)
    conn.exec_driver_sql("CREATE UNIQUE INDEX norm_parcel_id ON norm_parcel (id)")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE norm_sample AS {_samples_sql(dialect)}")
    if dialect == "postgresql":
        conn.exec_driver_sql("ANALYZE norm_sample")
    samples = conn.execute(text("SELECT COUNT(*) FROM norm_sample")).scalar_one()
    parcels = conn.execute(text("SELECT COUNT(*) FROM norm_parcel")).scalar_one()
    rows: list[dict[str, Any]] = []
    for level, keys in LEVEL_KEYS.items():
        for r in conn.execute(text(_quantiles_sql(dialect, level))):
            values = list(r.qs) if dialect == "postgresql" else _interpolated(r)
            row = dict.fromkeys(ALL_KEYS, "") | {k: getattr(r, k) for k in keys}
            rows.append(
                row | {"level": level, "phase": PHASES[r.phase], "samples": r.n, "learned_at": now,
                       "window_days": settings.window_days}
                | dict(zip(("p50", "p90", "p95", "p99"), (max(float(v), 0.0) for v in values), strict=True))
            )  # fmt: skip
    for name in temp:
        conn.exec_driver_sql(f"DROP TABLE {name}")
    conn.execute(delete(RN))
    if rows:
        conn.execute(insert(RN), rows)
    return LearnResult(parcels, samples, len(rows), 0.0)


def _bind(uow: UnitOfWork, moment: datetime) -> Any:
    """Bind a time as the column type stores it (SQLite compares the fixed-width text)."""
    return _TIME.process_bind_param(moment, uow.conn.dialect)
