"""Learn route norms by SQL aggregation over the parcels delivered in a rolling window.

The window's routes are numbered in a small temporary table, so samples carry a number, not the
text. Every sample (route number, phase number, seconds) is one row of a second temporary table,
built by one statement reading the scans in ``ix_event_parcel_time`` order: per parcel, shipped →
first scan, first scan → first transit scan, out for delivery → delivered and shipped → delivered;
per transit scan, the gap to the next scan. On SQLite a streaming ``GROUP BY`` per parcel and an
index seek per transit scan; on PostgreSQL one pass over all scans with ``LEAD`` and whole-parcel
``MIN`` windows, merged with the window's parcels by id (:func:`_pg_samples_sql`). Quantiles are
then taken per group at three levels (route, region class, carrier) without sorting the samples:
a histogram of 60-second buckets per (route, phase) — a hash aggregate on PostgreSQL, a keyed
upsert on SQLite — locates the two ranks around ``1 + q·(n−1)``; only the samples of those
buckets are ranked, and the two values interpolated as ``percentile_cont`` does
(:func:`_ranked_quantiles`; the same doubles it returned). Nothing loops over parcels in Python:
the rows that come back are one per group.
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
#: PostgreSQL: sort and hash memory while learning (the default 4 MB spilled the per-parcel sort to disk).
LEARN_WORK_MEM = "256MB"
#: SQLite: the temporary tables' page cache while learning (KiB; the default 2 MiB spills every page to a file).
SQLITE_TEMP_CACHE_KIB = 256 * 1024


@dataclass(frozen=True, slots=True)
class LearnResult:
    """What one learning run wrote."""

    parcels: int
    samples: int
    norms: int
    seconds: float


PHASE_IDS = {phase: i for i, phase in enumerate(PHASES)}


def _interpolated(row: Any) -> list[float]:
    """Return percentile_cont's values from the two ranks around each position (:func:`_ranked_quantiles`' rows).

    The same double arithmetic as PostgreSQL's percentile_cont: lo + (pos − ⌊pos⌋)·(hi − lo), pos = q·(n−1).
    """
    n = int(row.n)  # PostgreSQL's SUM is a numeric
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


def _window(dialect: str, scans: str) -> str:
    """The window's delivered parcels ``f`` with their route number ``r`` and ``scans`` joined: FROM … WHERE."""
    # SQLite: ``+`` keeps the delivered_at index out, so parcels are read in id order and each one's scans come
    # straight from ix_event_parcel_time in parcel order (the GROUP BY streams, nothing is sorted).
    plus = "+" if dialect == "sqlite" else ""
    return f"""parcel f CROSS JOIN norm_route r {scans}
WHERE r.carrier = f.carrier AND r.origin_province = COALESCE(f.origin_province, '')
      AND r.dest_province = COALESCE(f.destination_province, '') AND r.region_class = f.region_class
      AND f.status = 'delivered' AND {plus}f.delivered_at >= :since AND {plus}f.delivered_at <= :until"""


def _samples_sql(dialect: str) -> str:
    """Every sample (route number, phase number, seconds) of the window's parcels, by the backend's best plan."""
    return _pg_samples_sql() if dialect == "postgresql" else _sqlite_samples_sql()


def _per_parcel_sql(times: str, firsts: str) -> str:
    """SQLite's four per-parcel samples: each ``times`` row (rid, its times, ``firsts``) crossed with its phases."""
    p = PHASE_IDS
    phases = " UNION ALL ".join(
        f"SELECT {p[x]} AS phase" for x in ("ship_to_pickup", "pickup_to_first_transit", "ofd_to_delivered", "total")
    )
    e = {c: _epoch("sqlite", c) for c in ("f.shipped_at", "f.picked_up_at", "f.delivered_at")}
    return f"""
SELECT x.rid, ph.phase, CASE ph.phase WHEN {p["ship_to_pickup"]} THEN x.picked - x.shipped
                                      WHEN {p["pickup_to_first_transit"]} THEN x.first_transit - x.picked
                                      WHEN {p["ofd_to_delivered"]} THEN x.delivered - x.first_ofd
                                      ELSE x.delivered - x.shipped END AS s
FROM (
    SELECT r.rid, {e["f.shipped_at"]} AS shipped, {e["f.picked_up_at"]} AS picked,
           {e["f.delivered_at"]} AS delivered, {firsts}
    FROM {times}
) x CROSS JOIN ({phases}) ph"""


def _sqlite_samples_sql() -> str:
    """SQLite: every sample of the window's parcels, two passes over their scans in parcel order.

    Per parcel, one row (a ``GROUP BY`` over its scans read in parcel order: it streams, nothing is sorted)
    with its times and its first transit and first out-for-delivery scan, crossed with the four phases it
    gives. Per transit scan, the gap to the next scan: an index seek in ix_event_parcel_time each. On SQLite
    this costs half of a ``LAG`` window over every scan (a window copies each partition's rows to a
    temporary table first; 1.7 s against 3.4 s for 1.2 M scans). A transit scan that is the parcel's last
    gives a NULL sample: the readers skip them (a filter here would make SQLite run the seek twice).
    """
    e = {c: _epoch("sqlite", c) for c in ("e.time", "n.time")}
    firsts = f"""MIN(CASE WHEN e.status = 'in_transit' THEN {e["e.time"]} END) AS first_transit,
           MIN(CASE WHEN e.status = 'out_for_delivery' THEN {e["e.time"]} END) AS first_ofd"""
    scans = "LEFT JOIN tracking_event e ON e.parcel_id = f.id AND e.status IN ('in_transit', 'out_for_delivery')"
    return f"""{_per_parcel_sql(_window("sqlite", scans) + " GROUP BY f.id, r.rid", firsts)}
UNION ALL
SELECT r.rid, {PHASE_IDS["transit_gap"]}, (
    SELECT {e["n.time"]} FROM tracking_event n
    WHERE n.parcel_id = e.parcel_id AND n.status IS NOT NULL AND n.status != 'pending'
          AND (n.time, n.id) > (e.time, e.id)
    ORDER BY n.time, n.id LIMIT 1
) - {e["e.time"]}
FROM {_window("sqlite", "CROSS JOIN tracking_event e")} AND e.parcel_id = f.id AND e.status = 'in_transit'"""


def _pg_samples_sql() -> str:
    """PostgreSQL: every sample of the window's parcels from one pass over the scans, in bulk, not per parcel.

    A nested loop into each parcel's scans plus a seek per transit scan for the next one cost 50 s at 1 M
    parcels (the planner takes the four-key route join for a few rows). Here the scans are read once, in
    ix_event_parcel_time's own order (no sort): a ``LEAD`` gives each scan the next one, two whole-parcel
    ``MIN`` windows the first transit and out-for-delivery scans. Only each parcel's first scan and its
    transit scans are kept and merged with the window's parcels by id (a ``LEFT JOIN``: a parcel without
    scans still gives its shipped → pickup and total); each row then gives its phases: the per-parcel four
    on the first scan, the gap on a transit scan. Every value is the exact interval made a double, as
    ``percentile_cont`` sorted before (27 s against 37 s at 1 M, load 9; a second pass for the firsts was
    the difference).
    """
    p = PHASE_IDS

    def seconds(later: str, earlier: str) -> str:
        return f"CAST(EXTRACT(EPOCH FROM {later} - {earlier}) AS DOUBLE PRECISION)"

    scans = """LEFT JOIN (
    SELECT parcel_id, status, time, LEAD(time) OVER w AS next_time, ROW_NUMBER() OVER w AS k,
           MIN(CASE WHEN status = 'in_transit' THEN time END) OVER (PARTITION BY parcel_id) AS first_transit,
           MIN(CASE WHEN status = 'out_for_delivery' THEN time END) OVER (PARTITION BY parcel_id) AS first_ofd
    FROM tracking_event WHERE status IS NOT NULL AND status != 'pending'
    WINDOW w AS (PARTITION BY parcel_id ORDER BY time, id)
) g ON g.parcel_id = f.id AND (g.k = 1 OR g.status = 'in_transit')"""
    phases = ", ".join(f"({i})" for i in sorted(p.values()))
    scans += f"""
JOIN (VALUES {phases}) AS ph (phase)
  ON CASE WHEN ph.phase = {p["transit_gap"]} THEN g.status = 'in_transit' ELSE g.k = 1 OR g.k IS NULL END"""
    return f"""
SELECT r.rid, ph.phase, CASE ph.phase WHEN {p["ship_to_pickup"]} THEN {seconds("f.picked_up_at", "f.shipped_at")}
    WHEN {p["pickup_to_first_transit"]} THEN {seconds("g.first_transit", "f.picked_up_at")}
    WHEN {p["ofd_to_delivered"]} THEN {seconds("f.delivered_at", "g.first_ofd")}
    WHEN {p["total"]} THEN {seconds("f.delivered_at", "f.shipped_at")}
    ELSE {seconds("g.next_time", "g.time")} END AS s
FROM {_window("postgresql", scans)}"""


#: What each level groups the samples by: a number per group, from the route numbers.
LEVEL_GROUP = {
    "route": "rid",
    "region": "DENSE_RANK() OVER (ORDER BY carrier, region_class)",
    "carrier": "DENSE_RANK() OVER (ORDER BY carrier)",
}


#: The exact quantiles go through a histogram of buckets this wide (seconds); see :func:`_ranked_quantiles`.
BUCKET_SECONDS = 60
LEVELS = tuple(LEVEL_KEYS)
RANK_TEMP = ("norm_group", "norm_hist_key", "norm_hist", "norm_cum", "norm_want", "norm_want_bucket", "norm_pick")


def _histogram_sql(dialect: str) -> list[str]:
    """Statements filling ``norm_hist`` (rid, phase, bucket b, n): how many samples each bucket holds.

    PostgreSQL: a ``GROUP BY`` (a hash aggregate). SQLite's ``GROUP BY`` sorts all 7 M samples (7.3 s CPU at
    1 M parcels); counting them into a rowid table keyed by (rid, phase, b) packed in one integer — an upsert
    each into a few thousand rows that stay cached — takes half that; the key is unpacked afterwards.
    """
    bucket = f"CAST(s / {BUCKET_SECONDS} AS INTEGER)"
    if dialect == "postgresql":
        return [
            f"CREATE TEMPORARY TABLE norm_hist AS SELECT rid, phase, {bucket} AS b, COUNT(*) AS n FROM norm_sample "
            "WHERE s IS NOT NULL GROUP BY 1, 2, 3"
        ]
    # key = (rid·8 + phase)·2³² + b, unique for |b| < 2³¹ (b counts minutes: any real duration); phase < 8
    group = "((k + 2147483648) >> 32)"
    return [
        "CREATE TEMPORARY TABLE norm_hist_key (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
        f"INSERT INTO norm_hist_key SELECT ((rid * 8 + phase) << 32) + {bucket}, 1 FROM norm_sample "
        "WHERE s IS NOT NULL ON CONFLICT (k) DO UPDATE SET n = n + 1",
        # declared INTEGER like the GROUP BY's columns, or the wanted-bucket lookup below loses its index
        f"CREATE TEMPORARY TABLE norm_hist AS SELECT CAST({group} >> 3 AS INTEGER) AS rid, "
        f"CAST({group} & 7 AS INTEGER) AS phase, CAST(k - ({group} << 32) AS INTEGER) AS b, n FROM norm_hist_key",
    ]


def _ranked_quantiles(conn: Any, dialect: str) -> list[Any]:
    """Return, per (level, group, phase): level, keys, n and the samples at the ranks around each quantile.

    Both backends sort every row of a window, a ``GROUP BY`` or an ordered-set aggregate (SQLite ≈ 1–2 µs a
    row; PostgreSQL's ``percentile_cont`` sorted 7 M samples twice per level, 3 × 11–15 s at 1 M parcels).
    The ranks are found exactly with no sort of the samples: a histogram of 60-second buckets per (route,
    phase) — one ``GROUP BY`` (a hash aggregate on PostgreSQL); the region and carrier levels sum it — gives
    each wanted rank's bucket and its rank inside it; only the samples of those buckets (a few per cent)
    are then ranked. Same ranks, same interpolation (:func:`_interpolated`): ``percentile_cont``'s values.
    """
    # the rank arithmetic in doubles, as percentile_cont's floor(q·(n−1)) (PostgreSQL's SUM is a numeric)
    floor = "FLOOR" if dialect == "postgresql" else ""
    ranks = " UNION ALL ".join(
        f"SELECT {2 * i + hi} AS j, CAST({q} AS DOUBLE PRECISION) AS q, {hi} AS hi"
        for i, q in enumerate(QS)
        for hi in (0, 1)
    )
    statements = [
        # every route in each level's groups, with the group's keys ("" where the level does not group by one)
        f"""CREATE TEMPORARY TABLE norm_group AS
SELECT 0 AS level, rid, rid AS gid, carrier, origin_province, dest_province, region_class FROM norm_route
    WHERE origin_province != '' AND dest_province != ''
UNION ALL SELECT 1, rid, {LEVEL_GROUP["region"]}, carrier, '', '', region_class FROM norm_route
UNION ALL SELECT 2, rid, {LEVEL_GROUP["carrier"]}, carrier, '', '', '' FROM norm_route""",
        "CREATE INDEX norm_group_rid ON norm_group (rid)",
        *_histogram_sql(dialect),
        """CREATE TEMPORARY TABLE norm_cum AS
SELECT level, gid, phase, b, n, SUM(n) OVER (PARTITION BY level, gid, phase ORDER BY b) AS cum,
       SUM(n) OVER (PARTITION BY level, gid, phase) AS total
FROM (SELECT g.level, g.gid, h.phase, h.b, SUM(h.n) AS n FROM norm_hist h JOIN norm_group g ON g.rid = h.rid
      GROUP BY g.level, g.gid, h.phase, h.b) AS x""",
        "CREATE INDEX norm_cum_rank ON norm_cum (level, gid, phase, cum)",
        # each wanted rank (1 + ⌊q·(n−1)⌋ and the one after it): its bucket and its rank inside the bucket
        f"""CREATE TEMPORARY TABLE norm_want AS
SELECT k.level, k.gid, k.phase, k.j, c.b, k.rank - (c.cum - c.n) AS rn
FROM (SELECT t.level, t.gid, t.phase, t.total, r.j,
             1 + CAST({floor}((CAST(t.total AS DOUBLE PRECISION) - 1) * r.q) AS INTEGER) + r.hi AS rank
      FROM (SELECT DISTINCT level, gid, phase, total FROM norm_cum) AS t CROSS JOIN ({ranks}) AS r) AS k
JOIN norm_cum c ON c.level = k.level AND c.gid = k.gid AND c.phase = k.phase AND c.cum >= k.rank
     AND c.cum - c.n < k.rank
WHERE k.rank <= k.total""",
        """CREATE TEMPORARY TABLE norm_want_bucket AS
SELECT DISTINCT g.rid, w.phase, w.b FROM norm_want w JOIN norm_group g ON g.level = w.level AND g.gid = w.gid""",
        "CREATE UNIQUE INDEX norm_want_bucket_key ON norm_want_bucket (rid, phase, b)",
        # one pass over the samples (a lookup each, no sort) keeps those of the wanted buckets
        f"""CREATE TEMPORARY TABLE norm_pick AS
SELECT s.rid, s.phase, w.b, s.s FROM norm_sample s CROSS JOIN norm_want_bucket w
WHERE w.rid = s.rid AND w.phase = s.phase AND w.b = CAST(s.s / {BUCKET_SECONDS} AS INTEGER)""",
    ]
    for sql in statements:
        conn.exec_driver_sql(sql)
        if dialect == "postgresql" and sql.startswith("CREATE TEMPORARY TABLE"):  # unanalyzed: a nested loop
            conn.exec_driver_sql(f"ANALYZE {sql.split()[3]}")  # over norm_cum for each wanted rank
    picks = ", ".join(
        f"MAX(CASE WHEN w.j = {2 * i + hi} THEN r.s END) AS {'hi' if hi else 'lo'}{i}"
        for i in range(len(QS))
        for hi in (0, 1)
    )
    cols = ", ".join(f"x.{'hi' if hi else 'lo'}{i}" for i in range(len(QS)) for hi in (0, 1))
    return list(
        conn.exec_driver_sql(f"""
WITH ranked AS (
    SELECT g.level, g.gid, p.phase, p.b, p.s,
           ROW_NUMBER() OVER (PARTITION BY g.level, g.gid, p.phase, p.b ORDER BY p.s) AS rn
    FROM norm_pick p JOIN norm_group g ON g.rid = p.rid
), picked AS (
    SELECT w.level, w.gid, w.phase, {picks}
    FROM norm_want w JOIN ranked r ON r.level = w.level AND r.gid = w.gid AND r.phase = w.phase AND r.b = w.b
         AND r.rn = w.rn
    GROUP BY w.level, w.gid, w.phase
)
SELECT x.level, k.carrier, k.origin_province, k.dest_province, k.region_class, x.phase, t.total AS n, {cols}
FROM picked x
JOIN (SELECT DISTINCT level, gid, phase, total FROM norm_cum) t ON t.level = x.level AND t.gid = x.gid
     AND t.phase = x.phase
JOIN (SELECT DISTINCT level, gid, carrier, origin_province, dest_province, region_class FROM norm_group) k
     ON k.level = x.level AND k.gid = x.gid
ORDER BY x.level, x.gid, x.phase""")
    )


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
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{LEARN_WORK_MEM}'")
    else:
        cache = conn.exec_driver_sql("PRAGMA temp.cache_size").scalar_one()
        conn.exec_driver_sql(f"PRAGMA temp.cache_size = -{SQLITE_TEMP_CACHE_KIB}")
    temp = ("norm_route", "norm_sample", *RANK_TEMP)
    for name in temp:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    conn.execute(text(f"CREATE TEMPORARY TABLE norm_route AS {_routes_sql()}"), bind)
    conn.exec_driver_sql(
        "CREATE UNIQUE INDEX norm_route_keys ON norm_route (carrier, origin_province, dest_province, region_class)"
    )
    if dialect == "postgresql":  # unanalyzed, it looks like 4 routes: nested loops over every parcel's scans
        conn.exec_driver_sql("ANALYZE norm_route")
    conn.execute(text(f"CREATE TEMPORARY TABLE norm_sample AS {_samples_sql(dialect)}"), bind)
    if dialect == "postgresql":
        conn.exec_driver_sql("ANALYZE norm_sample")
    rows: list[dict[str, Any]] = []
    found = _ranked_quantiles(conn, dialect)
    # counted from the histogram's few thousand rows, not the samples: every parcel has one total (shipped_at
    # is required, delivered_at in the window), and the histogram holds every sample that is not NULL
    total = PHASE_IDS["total"]
    counted = f"SELECT SUM(n), SUM(CASE WHEN phase = {total} THEN n ELSE 0 END) FROM norm_hist"
    samples, parcels = (int(v or 0) for v in conn.exec_driver_sql(counted).one())
    for r in found:
        level, values = LEVELS[r.level], _interpolated(r)
        row = dict.fromkeys(ALL_KEYS, "") | {k: getattr(r, k) for k in LEVEL_KEYS[level]}
        rows.append(
            row | {"level": level, "phase": PHASES[r.phase], "samples": int(r.n), "learned_at": now,
                   "window_days": settings.window_days}
            | dict(zip(("p50", "p90", "p95", "p99"), (max(float(v), 0.0) for v in values), strict=True))
        )  # fmt: skip
    for name in temp:  # (norm_hist_key is SQLite's only)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    if dialect != "postgresql":
        conn.exec_driver_sql(f"PRAGMA temp.cache_size = {int(cache)}")
    conn.execute(delete(RN))
    if rows:
        conn.execute(insert(RN), rows)
    return LearnResult(parcels, samples, len(rows), 0.0)


def _bind(uow: UnitOfWork, moment: datetime) -> Any:
    """Bind a time as the column type stores it (SQLite compares the fixed-width text)."""
    return _TIME.process_bind_param(moment, uow.conn.dialect)
