"""Reports over the last N days: the 24-hour pickup rate, intercepts, and anomalies by rule.

The 24-hour pickup rate is Tmall's 新灯塔 logistics figure (seeds in the design notes)::

    24小时揽收及时率 = 近N天揽收时间早于或等于24小时（特殊情形下为特殊时间）的订单
                      / 近N天应揽收订单量

Read literally: the denominator is the parcels that fell *due* for pickup in the window —
their pickup deadline (shipped_at + 24 h, or the shipment's own presale/custom deadline,
``parcel.pickup_deadline``) lies in the window and has passed — leaving out held parcels
(refund-only before pickup: nothing was to be picked up). The numerator is those among them
whose first carrier scan came at or before that deadline. A parcel whose deadline is still
ahead is undecided and counts nowhere yet: counting early pickups before their deadline
passes would inflate the most recent day, since the parcels not yet scanned would be left
out while the ones already scanned were counted. Because a parcel is due on the day of its
deadline, a past day's figure is final once the day ends, so it can be rolled up.

Figures come from two sources that answer the same question (:mod:`monitor.store.kpi`):
``kpi_daily`` for the days some of whose parcels were purged — the live tables no longer
know those days whole — and the live tables for every other day. A day merely rolled up is
still read live: its intercepts and anomalies keep moving after the nightly rollup (an
intercept requested yesterday succeeds tomorrow), and the live tables say so. The purge
refreshes a day's rows just before it deletes, so the answer is the same before and after.
Everything after fetching is pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from io import StringIO
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.clock import Clock
from monitor.kpi import tickets as ticket_kpis
from monitor.rules.ruleset import RULE_IDS
from monitor.store.durations import Durations
from monitor.store.kpi import KpiSlice, open_kpi
from monitor.store.store import Store


@dataclass(frozen=True, slots=True)
class Window:
    """The local days a report covers: ``days`` days up to and including today, until now."""

    days: int
    first: date
    last: date
    start: datetime
    end: datetime
    tz: tzinfo


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """Return the start and end of a local day, as aware datetimes."""
    return datetime.combine(day, time(), tzinfo=tz), datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)


def window(now: datetime, days: int, tz: tzinfo) -> Window:
    """Return the window of the last ``days`` local days, today included."""
    if days < 1:
        raise ValueError(f"days: expected a whole number ≥ 1, got {days!r}")
    last = now.astimezone(tz).date()
    first = last - timedelta(days=days - 1)
    return Window(days, first, last, day_bounds(first, tz)[0], now, tz)


def live_spans(w: Window, from_kpi: set[date]) -> list[tuple[datetime, datetime]]:
    """Return the spans of consecutive days the live tables must answer (those not read from kpi_daily)."""
    spans: list[tuple[datetime, datetime]] = []
    day = w.first
    while day <= w.last:
        if day not in from_kpi:
            start, end = day_bounds(day, w.tz)
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        day += timedelta(days=1)
    return spans


# -- figures ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PickupFigures:
    """Shipments and the 24-hour pickup rate."""

    shipped: int = 0
    due: int = 0
    in_time: int = 0

    @property
    def late(self) -> int:
        """Parcels due whose first scan came after the deadline, or never."""
        return self.due - self.in_time

    @property
    def rate(self) -> float | None:
        """Return in time / due, or None when nothing fell due."""
        return self.in_time / self.due if self.due else None


@dataclass(frozen=True, slots=True)
class PickupRow:
    """The pickup figures of one shop and carrier."""

    shop: str
    carrier: str
    figures: PickupFigures


@dataclass(frozen=True, slots=True)
class InterceptFigures:
    """Refund-only intercepts: how many, how many worked, how fast the carrier answered."""

    requested: int = 0
    succeeded: int = 0
    failed: int = 0
    held: int = 0
    skipped: int = 0
    #: Exact while few; from kpi_daily's histogram past that (percentiles then within 2 %).
    latencies: Durations = field(default_factory=Durations)

    @property
    def in_progress(self) -> int:
        """Intercepts still waiting for the carrier's answer or the parcel's return."""
        return self.requested - self.succeeded - self.failed

    @property
    def success_rate(self) -> float | None:
        """Return succeeded / (succeeded + failed), or None when none has finished."""
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None

    def latency(self, pct: float) -> float | None:
        """Return a percentile of the seconds from refund request to the carrier's answer."""
        return self.latencies.percentile(pct)


@dataclass(frozen=True, slots=True)
class InterceptRow:
    """The intercept figures of one carrier."""

    carrier: str
    figures: InterceptFigures


@dataclass(frozen=True, slots=True)
class AnomalyFigures:
    """Anomalies opened, by where they stand now, and the compensation the platform would charge."""

    opened: int = 0
    open: int = 0
    acknowledged: int = 0
    resolved: int = 0
    compensation_fen: int = 0


@dataclass(frozen=True, slots=True)
class AnomalyRow:
    """The anomalies of one rule."""

    rule: str
    figures: AnomalyFigures


@dataclass(frozen=True, slots=True)
class Report:
    """The three reports over one window, optionally for one shop or carrier."""

    window: Window
    shop: str | None
    carrier: str | None
    #: Days read from kpi_daily because some of their parcels were purged.
    kpi_days: int
    pickup: tuple[PickupRow, ...]
    pickup_total: PickupFigures
    intercepts: tuple[InterceptRow, ...]
    intercepts_total: InterceptFigures
    anomalies: tuple[AnomalyRow, ...]
    anomalies_total: AnomalyFigures
    #: Tickets opened/closed per day, time to close and outcomes per rule, overdue (``monitor.kpi.tickets``).
    tickets: ticket_kpis.TicketKpis | None = None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Return the nearest-rank percentile: an observed value, easy to check by hand.

    Our own five lines on purpose: ``statistics.quantiles`` interpolates (p50 of 10, 20, 30, 40 is
    25, a latency nobody measured) and numpy (``method="inverted_cdf"``, the same figures) is a large
    dependency for this. ``pct * n / 100`` is exact for a whole ``pct``; ``pct / 100 * n`` is not
    (p7 of 100 values was the 8th).
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct * len(ordered) / 100))
    return ordered[rank - 1]


def summarize(
    w: Window, slices: Iterable[KpiSlice], shop: str | None = None, carrier: str | None = None, kpi_days: int = 0
) -> Report:
    """Add up slices (from kpi_daily and live alike) into the three reports."""
    by_shop_carrier: dict[tuple[str, str], KpiSlice] = {}
    by_carrier: dict[str, KpiSlice] = {}
    total = KpiSlice("", "")
    for s in slices:
        by_shop_carrier.setdefault((s.shop, s.carrier), KpiSlice(s.shop, s.carrier)).add(s)
        by_carrier.setdefault(s.carrier, KpiSlice("", s.carrier)).add(s)
        total.add(s)
    pickup = tuple(
        PickupRow(s.shop, s.carrier, _pickup(s))
        for key, s in sorted(by_shop_carrier.items())
        if s.shipped or s.pickup_due
    )
    intercepts = tuple(
        InterceptRow(code, _intercepts(s))
        for code, s in sorted(by_carrier.items())
        if s.intercepts_requested or s.intercepts_held or s.intercepts_skipped
    )
    order = {rule: i for i, rule in enumerate(RULE_IDS)}
    anomalies = tuple(
        AnomalyRow(rule, _anomalies(figures))
        for rule, figures in sorted(total.anomalies.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    )
    anomaly_total = AnomalyFigures(
        *(sum(getattr(r.figures, name) for r in anomalies) for name in AnomalyFigures.__dataclass_fields__)
    )
    return Report(
        w, shop, carrier, kpi_days, pickup, _pickup(total), intercepts, _intercepts(total), anomalies,
        anomaly_total,
    )  # fmt: skip


def _pickup(s: KpiSlice) -> PickupFigures:
    return PickupFigures(s.shipped, s.pickup_due, s.picked_up_in_time)


def _intercepts(s: KpiSlice) -> InterceptFigures:
    return InterceptFigures(
        s.intercepts_requested, s.intercepts_succeeded, s.intercepts_failed, s.intercepts_held, s.intercepts_skipped,
        s.intercept_latencies.copy(),
    )  # fmt: skip


def _anomalies(figures: dict[str, int]) -> AnomalyFigures:
    return AnomalyFigures(
        figures.get("opened", 0), figures.get("open", 0), figures.get("acknowledged", 0), figures.get("resolved", 0),
        figures.get("compensation_fen", 0),
    )  # fmt: skip


def build_report(
    store: Store, clock: Clock, days: int, tz: tzinfo, shop: str | None = None, carrier: str | None = None
) -> Report:
    """Fetch the figures of the last ``days`` days — purged days from kpi_daily, the rest live — and sum them."""
    now = clock.now()
    w = window(now, days, tz)
    with open_kpi(store) as kpi:
        purged = kpi.purged_days(w.first, w.last)
        daily = [(day, s) for day, s in kpi.daily(w.first, w.last, shop, carrier) if day in purged]
        slices = [s for _, s in daily]
        for start, end in live_spans(w, purged):
            slices.extend(kpi.live(start, end, now, shop, carrier))
        by_day: dict[date, list[dict[str, Any]]] = {}
        for day, s in daily:
            by_day.setdefault(day, []).append(s.tickets)
        tickets = ticket_kpis.collect(kpi, w.first, w.last, tz, now, purged, by_day, shop, carrier)
    return replace(summarize(w, slices, shop, carrier, len(purged)), tickets=tickets)


# -- output -------------------------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """Lay out rows under headers in aligned columns, two spaces apart, as plain text (no colour).

    rich measures the cells (a CJK character takes two columns); cells are Text, never markup, so a
    shop named ``[旗舰店]`` prints as written. ``align`` has one letter per column, ``l`` or ``r``; by
    default numbers go right and text left.
    """
    if align is None:
        sample = rows[0] if rows else headers
        align = "".join("r" if isinstance(c, int | float) else "l" for c in sample)
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False)
    for header, side in zip(headers, align, strict=True):
        table.add_column(Text(str(header)), justify="right" if side == "r" else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text("" if c is None else str(c)) for c in row))
    out = StringIO()
    Console(file=out, width=100_000, color_system=None, force_terminal=False, legacy_windows=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def fmt_rate(rate: float | None) -> str:
    """Show a ratio as a percentage with one decimal."""
    return "—" if rate is None else f"{rate * 100:.1f}%"


def fmt_seconds(seconds: float | None) -> str:
    """Show a duration the way people say it: 45s, 12m05s, 3h02m, 2d04h."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_yuan(fen: int) -> str:
    """Show an amount in fen as yuan."""
    return f"¥{fen / 100:,.2f}"


def render_report(report: Report) -> str:
    """Render the three reports as aligned tables for the terminal."""
    w = report.window
    scope = "".join(
        f" · {name} {value}" for name, value in (("shop", report.shop), ("carrier", report.carrier)) if value
    )
    kpi = f", {report.kpi_days} of them from the daily KPI table" if report.kpi_days else ""
    lines = [f"Last {w.days} day(s): {w.first} – {w.last} ({w.tz}){kpi}{scope}", ""]

    lines.append("24-hour pickup rate (24小时揽收及时率: picked up by the deadline / due for pickup)")
    total = report.pickup_total
    rows: list[list[Any]] = [
        [r.shop or "—", r.carrier, r.figures.shipped, r.figures.due, r.figures.in_time, r.figures.late,
         fmt_rate(r.figures.rate)]
        for r in report.pickup
    ]  # fmt: skip
    rows.append(["total", "", total.shipped, total.due, total.in_time, total.late, fmt_rate(total.rate)])
    headers = ["shop", "carrier", "shipped", "due", "in time", "late", "rate"]
    lines += [render_table(headers, rows, "llrrrrr"), ""]

    lines.append("Intercepts (refund-only; latency from the refund request to the carrier's answer)")
    rows = [_intercept_cells(r.carrier, r.figures) for r in report.intercepts]
    rows.append(_intercept_cells("total", report.intercepts_total))
    headers = ["carrier", "requested", "succeeded", "failed", "in progress", "success", "p50", "p90", "max", "held",
               "skipped"]  # fmt: skip
    lines += [render_table(headers, rows, "lrrrrrrrrrr"), ""]

    lines.append("Anomalies opened, by rule")
    rows = [_anomaly_cells(r.rule, r.figures) for r in report.anomalies]
    rows.append(_anomaly_cells("total", report.anomalies_total))
    headers = ["rule", "opened", "open", "acknowledged", "resolved", "compensation at stake"]
    lines.append(render_table(headers, rows, "lrrrrr"))
    if report.tickets is not None:
        lines += ["", *_ticket_lines(report.tickets)]
    return "\n".join(lines)


def _ticket_lines(t: ticket_kpis.TicketKpis) -> list[str]:
    """Render the ticket section: per rule, then per day."""
    lines = ["Tickets, by rule (time to close: opened → done/cancelled; overdue now: past the deadline, still worked)"]
    rows = [_ticket_cells(f) for f in (*t.rules, t.total)]
    headers = ["rule", "opened", "closed", "went overdue", "overdue now", "p50 to close", "p90 to close", "outcomes"]
    lines += [render_table(headers, rows, "lrrrrrrl"), "", "Tickets per day"]
    days = [[d.day.isoformat(), d.opened, d.closed] for d in t.days]
    lines.append(render_table(["day", "opened", "closed"], days, "lrr"))
    return lines


def _ticket_cells(f: ticket_kpis.TicketRuleFigures) -> list[Any]:
    outcomes = " ".join(f"{k} {v}" for k, v in f.outcomes.items()) or "—"
    return [f.rule, f.opened, f.closed, f.went_overdue, f.overdue_now, fmt_seconds(f.median_close_seconds),
            fmt_seconds(f.p90_close_seconds), outcomes]  # fmt: skip


def _intercept_cells(carrier: str, f: InterceptFigures) -> list[Any]:
    return [
        carrier, f.requested, f.succeeded, f.failed, f.in_progress, fmt_rate(f.success_rate),
        fmt_seconds(f.latency(50)), fmt_seconds(f.latency(90)), fmt_seconds(f.latency(100)), f.held, f.skipped,
    ]  # fmt: skip


def _anomaly_cells(rule: str, f: AnomalyFigures) -> list[Any]:
    return [rule, f.opened, f.open, f.acknowledged, f.resolved, fmt_yuan(f.compensation_fen)]


def report_json(report: Report) -> dict[str, Any]:
    """Return the report as plain JSON data (rates as ratios, latencies in seconds, money in fen)."""
    w = report.window

    def pickup(f: PickupFigures) -> dict[str, Any]:
        rate = None if f.rate is None else round(f.rate, 4)
        return {"shipped": f.shipped, "due": f.due, "in_time": f.in_time, "late": f.late, "rate": rate}

    def intercepts(f: InterceptFigures) -> dict[str, Any]:
        rate = None if f.success_rate is None else round(f.success_rate, 4)
        latency = {"p50": f.latency(50), "p90": f.latency(90), "max": f.latency(100)}
        return {
            "requested": f.requested, "succeeded": f.succeeded, "failed": f.failed, "in_progress": f.in_progress,
            "held": f.held, "skipped": f.skipped, "success_rate": rate, "latency_seconds": latency,
        }  # fmt: skip

    def anomalies(f: AnomalyFigures) -> dict[str, Any]:
        return {
            "opened": f.opened, "open": f.open, "acknowledged": f.acknowledged, "resolved": f.resolved,
            "compensation_fen": f.compensation_fen,
        }  # fmt: skip

    return {
        "window": {
            "days": w.days,
            "first": w.first.isoformat(),
            "last": w.last.isoformat(),
            "until": w.end.isoformat(),
            "timezone": str(w.tz),
            "kpi_days": report.kpi_days,
        },
        "filters": {"shop": report.shop, "carrier": report.carrier},
        "pickup": {
            "rows": [{"shop": r.shop, "carrier": r.carrier} | pickup(r.figures) for r in report.pickup],
            "total": pickup(report.pickup_total),
        },
        "intercepts": {
            "rows": [{"carrier": r.carrier} | intercepts(r.figures) for r in report.intercepts],
            "total": intercepts(report.intercepts_total),
        },
        "anomalies": {
            "rows": [{"rule": r.rule} | anomalies(r.figures) for r in report.anomalies],
            "total": anomalies(report.anomalies_total),
        },
        "tickets": ticket_kpis.as_json(report.tickets) if report.tickets is not None else None,
    }
