"""指标 (KPIs): the figures a shop is judged by, per local day, as charts with their numbers and a CSV each.

Past days come from the daily rollup (``kpi_daily``: the daemon writes the last three days at
00:10 and when it starts), never from a scan of the parcels; only today's partial day is
counted live from the tables, once a minute for every view (:mod:`monitor.kpi.window`, kept
fresh by the daemon's ``kpi_today`` job while the page is looked at) — so a view filters and
draws, and costs about the same with a thousand parcels or a million. The days are local
days of the configured ``timezone``.

Every chart is built by one pure function of :func:`chart_builders` from the same fetched
:class:`KpiData`: its series (embedded in the page as JSON, drawn by ``static/kpis.js`` with
the ECharts shipped in the package), and its rows, shown as the table under the chart and
served as ``/kpis.csv?chart=<name>`` (UTF-8 with a BOM, so Excel reads the Chinese). A new
chart (a pickup-rate forecast, say) is one more builder in that list.
"""

from __future__ import annotations

import csv
import io
import json
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from monitor.config import KpiSettings
from monitor.console.catalog import translator
from monitor.console.pages import _ctx, _lang, _render, _session, _to_login
from monitor.kpi.reports import fmt_rate, fmt_seconds, fmt_yuan
from monitor.kpi.window import WINDOW, Ended, Today
from monitor.rules.ruleset import RULE_IDS
from monitor.store.durations import Durations
from monitor.store.kpi import KpiSlice, KpiStore
from monitor.tickets.book import TITLES

router = APIRouter(include_in_schema=False)

#: Days shown unless ``days`` asks otherwise, and the range it may ask for.
DAYS, MIN_DAYS, MAX_DAYS = 30, 7, 90
DAY_CHOICES = (7, 14, 30, 60, 90)
#: The rule whose anomalies make the stall rate.
STALL_RULE = "stalled"
MAX_TEXT = 64

#: How a column's values are shown (table) and written (CSV): a ratio as a percentage, seconds, fen as yuan.
Kind = Literal["day", "text", "count", "percent", "seconds", "yuan"]
CSV_UNITS = {"percent": " (%)", "seconds": " (s)", "yuan": " (¥)"}


# -- what is asked ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KpiFilters:
    """The page's question: the last ``days`` local days (today included), optionally one shop and/or carrier."""

    days: int = DAYS
    shop: str | None = None
    carrier: str | None = None

    def query(self, **more: str) -> str:
        """Return these filters as a query string (for links to the CSV files)."""
        pairs = [("days", str(self.days)), ("shop", self.shop), ("carrier", self.carrier), *more.items()]
        return urlencode([(k, v) for k, v in pairs if v])


def parse_filters(params: Mapping[str, str]) -> KpiFilters:
    """Read ``days``, ``shop`` and ``carrier`` from a query string.

    Raises:
        ValueError: naming the field and the value refused.
    """
    raw = params.get("days") or str(DAYS)
    if not (raw.isascii() and raw.isdigit() and len(raw) < 4) or not MIN_DAYS <= int(raw) <= MAX_DAYS:
        raise ValueError(f"days: expected a whole number from {MIN_DAYS} to {MAX_DAYS}, got {raw[:20]!r}")
    found: dict[str, str | None] = {}
    for name in ("shop", "carrier"):
        value = (params.get(name) or "").strip()
        if len(value) > MAX_TEXT or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"{name}: expected at most {MAX_TEXT} printable characters, got {value[:70]!r}")
        found[name] = value or None
    return KpiFilters(int(raw), found["shop"], found["carrier"])


# -- what the store says ---------------------------------------------------------------------


@dataclass(frozen=True)
class KpiData:
    """The window's figures: one slice per (day, shop, carrier); ended days from kpi_daily, today live.

    The sums per day and per (shop, carrier) are made once, on first use, for every chart.
    """

    filters: KpiFilters
    days: tuple[date, ...]
    now: datetime
    rows: tuple[tuple[date, KpiSlice], ...]
    #: Every shop and carrier with a rolled-up row in the window (the filters' choices).
    shops: tuple[str, ...]
    carriers: tuple[str, ...]

    @property
    def today(self) -> date:
        """The last day of the window: still under way, counted live."""
        return self.days[-1]

    @cached_property
    def by_day(self) -> dict[date, KpiSlice]:
        """Each day's figures added up over the shops and carriers shown."""
        found: dict[date, KpiSlice] = {}
        for day, s in self.rows:
            found.setdefault(day, KpiSlice("", "")).add(s)
        return found

    @cached_property
    def by_key(self) -> dict[tuple[str, str], dict[date, KpiSlice]]:
        """The figures per (shop, carrier), then per day (read only: a day's one slice is not copied)."""
        found: dict[tuple[str, str], dict[date, KpiSlice]] = {}
        for day, s in self.rows:
            days = found.setdefault((s.shop, s.carrier), {})
            if day in days:  # not from kpi_daily (one row per day, shop and carrier), but cheap to allow
                merged = KpiSlice(s.shop, s.carrier)
                merged.add(days[day])
                merged.add(s)
                s = merged
            days[day] = s
        return found


def assemble(f: KpiFilters, ended: Ended, today: Today) -> KpiData:
    """The window ``f`` asks for from the shared rows: ended days and today's count, filtered to its shop and carrier.

    The rows are every shop's and carrier's (:mod:`monitor.kpi.window` reads them once for all
    views), so the filters' choices are every shop and carrier the window knows.
    """
    first = today.day - timedelta(days=f.days - 1)

    def shown(s: KpiSlice) -> bool:
        return (f.shop is None or s.shop == f.shop) and (f.carrier is None or s.carrier == f.carrier)

    window = [(day, s) for day, s in ended.rows if first <= day < today.day]
    keys = {(s.shop, s.carrier) for _, s in window} | {(s.shop, s.carrier) for s in today.slices}
    rows = [(day, s) for day, s in window if shown(s)] + [(today.day, s) for s in today.slices if shown(s)]
    days = tuple(first + timedelta(days=n) for n in range(f.days))
    return KpiData(f, days, today.at, tuple(rows), tuple(sorted({k[0] for k in keys})),
                   tuple(sorted({k[1] for k in keys})))  # fmt: skip


# -- the charts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a chart's table and CSV."""

    label: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Series:
    """One line or bar series, a value per day of the window (None: nothing to show that day)."""

    name: str
    values: tuple[float | None, ...]
    kind: Literal["line", "bar"] = "line"
    #: Which y axis of the chart (its ``axes``) the values are measured on.
    axis: int = 0
    stack: str | None = None
    #: A target, drawn dashed.
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart with the rows of its table: the same figures, drawn and written out."""

    name: str
    title: str
    note: str
    #: The unit of each y axis: ``percent`` (0–100), ``count``, ``seconds``, ``hours``, ``yuan``.
    axes: tuple[str, ...]
    series: tuple[Series, ...]
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True)
class Labels:
    """What the builders need besides the figures: the language and the targets."""

    t: Callable[..., str]
    lang: str
    targets: KpiSettings

    def rule(self, rule: str) -> str:
        """Return a rule's name as ops staff know it (its code in English)."""
        return TITLES.get(rule, rule) if self.lang == "zh" else rule


ChartBuilder = Callable[[KpiData, Labels], Chart]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio * 100, 2)


def _rules(slices: Mapping[date, KpiSlice]) -> list[str]:
    """Return the rules with anomalies in the window, in the ruleset's order."""
    order = {rule: i for i, rule in enumerate(RULE_IDS)}
    found = {rule for s in slices.values() for rule in s.anomalies}
    return sorted(found, key=lambda rule: (order.get(rule, len(order)), rule))


def pickup_chart(data: KpiData, labels: Labels) -> Chart:
    """The 24-hour pickup rate (picked up by the deadline ÷ due) per day, per shop and carrier, with the targets."""
    t = labels.t
    by_key = data.by_key
    keys = sorted(k for k, days in by_key.items() if any(s.pickup_due or s.shipped for s in days.values()))
    series = []
    for key in keys:
        days = by_key[key]
        values = tuple(_pct(_ratio(days[d].picked_up_in_time, days[d].pickup_due)) if d in days else None
                       for d in data.days)  # fmt: skip
        series.append(Series(f"{key[0] or '—'} · {key[1]}", values))
    shops = sorted({shop for shop, _ in keys} or ({data.filters.shop} if data.filters.shop else set()))
    targets = {shop: labels.targets.pickup_target(shop) for shop in shops}
    if len(set(targets.values())) <= 1:
        value = next(iter(targets.values()), labels.targets.pickup_rate_target)
        lines = [(t("target"), value)]
    else:
        lines = [(f"{t('target')} · {shop}", value) for shop, value in targets.items()]
    for name, value in lines:
        series.append(Series(name, tuple(_pct(value) for _ in data.days), dashed=True))
    rows = tuple(
        (d, key[0], key[1], s.shipped, s.pickup_due, s.picked_up_in_time, _ratio(s.picked_up_in_time, s.pickup_due),
         labels.targets.pickup_target(key[0]))
        for d in data.days for key in keys if (s := by_key[key].get(d)) is not None and (s.pickup_due or s.shipped)
    )  # fmt: skip
    columns = (Column(t("day"), "day"), Column(t("shop"), "text"), Column(t("carrier"), "text"),
               Column(t("shipped"), "count"), Column(t("pickup_due"), "count"), Column(t("in_time"), "count"),
               Column(t("pickup_rate"), "percent"), Column(t("target"), "percent"))  # fmt: skip
    return Chart("pickup", t("chart_pickup"), t("note_pickup"), ("percent",), tuple(series), columns, rows)


def stall_chart(data: KpiData, labels: Labels) -> Chart:
    """Stalls per parcel shipped: ``stalled`` anomalies opened on a day ÷ parcels shipped that day."""
    t = labels.t
    by_day = data.by_day
    stalled = {d: s.anomalies.get(STALL_RULE, {}).get("opened", 0) for d, s in by_day.items()}
    rate = tuple(_pct(_ratio(stalled[d], by_day[d].shipped)) if d in by_day else None for d in data.days)
    count = tuple(float(stalled[d]) if d in by_day else None for d in data.days)
    series = (Series(t("stall_rate"), rate), Series(t("stalled"), count, "bar", axis=1))
    rows = tuple((d, s.shipped, stalled[d], _ratio(stalled[d], s.shipped)) for d, s in sorted(by_day.items())
                 if s.shipped or stalled[d])  # fmt: skip
    columns = (Column(t("day"), "day"), Column(t("shipped"), "count"), Column(t("stalled"), "count"),
               Column(t("stall_rate"), "percent"))  # fmt: skip
    return Chart("stall", t("chart_stall"), t("note_stall"), ("percent", "count"), series, columns, rows)


def anomalies_chart(data: KpiData, labels: Labels) -> Chart:
    """Anomalies opened per day, by rule (stacked)."""
    t = labels.t
    by_day = data.by_day
    rules = _rules(by_day)

    def opened(d: date, rule: str) -> int:
        s = by_day.get(d)
        return s.anomalies.get(rule, {}).get("opened", 0) if s is not None else 0

    series = tuple(Series(labels.rule(rule), tuple(float(opened(d, rule)) for d in data.days), "bar", stack="rules")
                   for rule in rules)  # fmt: skip
    rows = tuple((d, *(opened(d, r) for r in rules), sum(opened(d, r) for r in rules)) for d in data.days
                 if any(opened(d, r) for r in rules))  # fmt: skip
    columns = (Column(t("day"), "day"), *(Column(labels.rule(r), "count") for r in rules), Column(t("total"), "count"))
    return Chart("anomalies", t("chart_anomalies"), t("note_anomalies"), ("count",), series, columns, rows)


def intercepts_chart(data: KpiData, labels: Labels) -> Chart:
    """Intercepts per day of the refund request: seconds to the carrier's answer (p50, p99), success rate."""
    t = labels.t
    by_day = data.by_day

    def figures(d: date) -> tuple[float | None, float | None, float | None]:
        s = by_day.get(d)
        if s is None:
            return None, None, None
        success = _ratio(s.intercepts_succeeded, s.intercepts_succeeded + s.intercepts_failed)
        return s.intercept_latencies.percentile(50), s.intercept_latencies.percentile(99), success

    p50, p99, success = zip(*(figures(d) for d in data.days), strict=True)
    series = (Series("p50", p50, "bar"), Series("p99", p99, "bar"),
              Series(t("success_rate"), tuple(_pct(v) for v in success), axis=1))  # fmt: skip
    rows = tuple(
        (d, s.intercepts_requested, s.intercepts_succeeded, s.intercepts_failed, figures(d)[2], *figures(d)[:2])
        for d, s in sorted(by_day.items()) if s.intercepts_requested or s.intercept_latencies
    )  # fmt: skip
    columns = (Column(t("day"), "day"), Column(t("requested"), "count"), Column(t("succeeded"), "count"),
               Column(t("failed"), "count"), Column(t("success_rate"), "percent"),
               Column(t("latency_p50"), "seconds"), Column(t("latency_p99"), "seconds"))  # fmt: skip
    return Chart("intercepts", t("chart_intercepts"), t("note_intercepts"), ("seconds", "percent"), series, columns,
                 rows)  # fmt: skip


def stake_chart(data: KpiData, labels: Labels) -> Chart:
    """Money at stake: the compensation the platform would charge for the anomalies opened each day, by rule."""
    t = labels.t
    by_day = data.by_day
    rules = [r for r in _rules(by_day) if any(s.anomalies.get(r, {}).get("compensation_fen") for s in by_day.values())]

    def fen(d: date, rule: str) -> int:
        s = by_day.get(d)
        return int(s.anomalies.get(rule, {}).get("compensation_fen", 0)) if s is not None else 0

    series = tuple(Series(labels.rule(r), tuple(fen(d, r) / 100 for d in data.days), "bar", stack="stake")
                   for r in rules)  # fmt: skip
    rows = tuple((d, *(fen(d, r) for r in rules), sum(fen(d, r) for r in rules)) for d in data.days
                 if any(fen(d, r) for r in rules))  # fmt: skip
    columns = (Column(t("day"), "day"), *(Column(labels.rule(r), "yuan") for r in rules), Column(t("total"), "yuan"))
    return Chart("stake", t("chart_stake"), t("note_stake"), ("yuan",), series, columns, rows)


def tickets_chart(data: KpiData, labels: Labels) -> Chart:
    """Tickets per day: opened, closed, and the time from opening to closing of those closed (p50, p90)."""
    t = labels.t
    by_day = data.by_day

    def figures(d: date) -> tuple[int, int, Durations]:
        s = by_day.get(d)
        rules = s.tickets.values() if s is not None else ()
        seconds = Durations()  # the day's rules merged: exact while few, else their histograms added up
        for f in rules:
            seconds.merge(f["close_seconds"])
        return sum(f.get("opened", 0) for f in rules), sum(f.get("closed", 0) for f in rules), seconds

    def hours(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 3600, 2)

    per_day = {d: figures(d) for d in data.days}
    series = (
        Series("p50", tuple(hours(per_day[d][2].percentile(50)) for d in data.days)),
        Series("p90", tuple(hours(per_day[d][2].percentile(90)) for d in data.days)),
        Series(t("closed"), tuple(float(per_day[d][1]) for d in data.days), "bar", axis=1),
    )
    rows = tuple((d, o, c, secs.percentile(50), secs.percentile(90)) for d, (o, c, secs) in per_day.items() if o or c)
    columns = (Column(t("day"), "day"), Column(t("opened_n"), "count"), Column(t("closed"), "count"),
               Column(t("close_p50"), "seconds"), Column(t("close_p90"), "seconds"))  # fmt: skip
    return Chart("tickets", t("chart_tickets"), t("note_tickets"), ("hours", "count"), series, columns, rows)


def chart_builders() -> list[ChartBuilder]:
    """Return the page's charts in the order shown: add a builder here to add a chart, its table and its CSV."""
    return [pickup_chart, stall_chart, anomalies_chart, intercepts_chart, stake_chart, tickets_chart]


def build_charts(data: KpiData, labels: Labels) -> list[Chart]:
    """Build every chart of the page from the same figures."""
    return [build(data, labels) for build in chart_builders()]


# -- showing and writing the figures ---------------------------------------------------------


def cell(value: Any, kind: Kind) -> str:
    """Show one value of a table the way people read it (98.5%, 3m05s, ¥12.00)."""
    if value is None or value == "":
        return "—"
    if kind == "day":
        return value.isoformat() if isinstance(value, date) else str(value)
    if kind == "percent":
        return fmt_rate(value)
    if kind == "seconds":
        return fmt_seconds(value)
    if kind == "yuan":
        return fmt_yuan(value)
    return str(value)


def table_body(chart: Chart, today: date, empty: str, today_title: str) -> Markup:
    """Return the rows of a chart's table as HTML, every value escaped.

    Made here rather than by a template loop: the pickup table alone has a row per day, shop and
    carrier (450 of them for 30 days of 3 shops and 5 carriers), and Jinja's per-cell overhead
    was most of the page's time.
    """
    numeric = [c.kind not in ("day", "text") for c in chart.columns]
    if not chart.rows:
        return Markup('<tr class="empty"><td colspan="{}">{}</td></tr>').format(len(chart.columns), empty)
    lines = []
    for row in chart.rows:
        cells = "".join(
            f'<td class="num">{escape(cell(v, c.kind))}</td>' if num else f"<td>{escape(cell(v, c.kind))}</td>"
            for v, c, num in zip(row, chart.columns, numeric, strict=True)
        )
        opening = f'<tr class="today" title="{escape(today_title)}">' if row[0] == today else "<tr>"
        lines.append(f"{opening}{cells}</tr>")
    return Markup("\n".join(lines))


def csv_cell(value: Any, kind: Kind) -> str:
    """Write one value for a spreadsheet: plain numbers (percent 0–100, seconds, yuan), text safe from formulas."""
    if value is None:
        return ""
    if kind == "day":
        return value.isoformat() if isinstance(value, date) else str(value)
    if kind == "percent":
        return f"{value * 100:.2f}"
    if kind == "seconds":
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if kind == "yuan":
        return f"{value / 100:.2f}"
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text  # Excel would run it as a formula


def csv_text(chart: Chart) -> str:
    """Return a chart's table as CSV: a header row (units in brackets), then its rows; a BOM first for Excel."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.label + CSV_UNITS.get(c.kind, "") for c in chart.columns])
    for row in chart.rows:
        writer.writerow([csv_cell(v, c.kind) for v, c in zip(row, chart.columns, strict=True)])
    return "\ufeff" + out.getvalue()


def payload(data: KpiData, charts: list[Chart], labels: Labels) -> Markup:
    """Return the charts' series as JSON for kpis.js, safe inside a ``<script type="application/json">``."""
    doc = {
        "days": [d.isoformat() for d in data.days],
        "units": {unit: labels.t(f"unit_{unit}") for unit in ("percent", "count", "seconds", "hours", "yuan")},
        "charts": [
            {"name": c.name, "axes": list(c.axes),
             "series": [{"name": s.name, "data": list(s.values), "kind": s.kind, "axis": s.axis, "stack": s.stack,
                         "dashed": s.dashed} for s in c.series]}
            for c in charts
        ],
    }  # fmt: skip
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    # a shop named "</script>" must not end the element: JSON allows these escapes, HTML sees no tag
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


# -- the routes ------------------------------------------------------------------------------


async def _figures(request: Request) -> tuple[KpiData, Labels, list[Chart]] | str:
    """Fetch the window the request asks for and build its charts, or say why its filters were refused.

    The charts are built off the event loop too: at volume (a day's thousands of latencies and
    times to close, sorted for their quantiles) that is tens of milliseconds of CPU.
    """
    try:
        filters = parse_filters(request.query_params)
    except ValueError as err:
        return str(err)
    ctx = _ctx(request)
    now = ctx.clock.now()
    lang = _lang(request)
    store, dialect, tz = ctx.store, ctx.store.dialect, ctx.timezone
    day = now.astimezone(tz).date()
    first, last = day - timedelta(days=filters.days - 1), day - timedelta(days=1)
    version = await ctx.read(lambda views: KpiStore(views.conn, dialect).daily_version(first))
    today = WINDOW.fresh_today(store, now, tz)
    key = (filters, lang, day)
    if today is not None and (hit := _FIGURES.get(store, key, (version, today.at))) is not None:
        return hit
    if today is None:  # the daemon's kpi_today job keeps it fresh while the page is looked at; else count here
        today = await ctx.read(lambda views: WINDOW.count_today(store, views.conn, dialect, now, tz))
    ended = WINDOW.ended(store, first, last, version)
    if ended is None:  # the rollup wrote a day (nightly), or this window was not read yet
        ended = await ctx.read(lambda views: WINDOW.read_ended(store, views.conn, dialect, first, last, version))
    data = assemble(filters, ended, today)
    labels = Labels(translator(lang), lang, ctx.kpi)
    found = data, labels, await ctx.offload(build_charts, data, labels)
    _FIGURES.put(store, key, (version, today.at), found)
    return found


class FigureCache:
    """Each question's charts, kept while its figures are the same (rollup version, time of today's count).

    The figures come from :data:`~monitor.kpi.window.WINDOW`, which decides how old today may
    be; this keeps the charts built from them, so the views of a team's wall screen within a
    minute build nothing.
    """

    SIZE = 64

    def __init__(self) -> None:
        # per store, held weakly: a store that is gone takes its charts along
        self._entries: weakref.WeakKeyDictionary[object, dict[Any, tuple[Any, Any]]] = weakref.WeakKeyDictionary()

    def get(self, store: object, key: Any, version: Any) -> Any | None:
        """Return what was stored for ``key`` from the same figures, else None."""
        entry = self._entries.get(store, {}).get(key)
        return entry[1] if entry is not None and entry[0] == version else None

    def put(self, store: object, key: Any, version: Any, value: Any) -> None:
        """Keep ``value``, dropping the oldest entry beyond ``SIZE`` (filters are few: days, shop, carrier)."""
        entries = self._entries.setdefault(store, {})
        entries.pop(key, None)
        entries[key] = (version, value)
        while len(entries) > self.SIZE:
            entries.pop(next(iter(entries)))


_FIGURES = FigureCache()


@router.get("/kpis")
async def kpis_page(request: Request) -> Response:
    """指标: every chart of :func:`chart_builders` over the window, each with its table and a CSV link."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    found = await _figures(request)
    if isinstance(found, str):
        return _render(request, "message.html", 400, session, message=found)
    data, labels, charts = found
    t = labels.t
    bodies = {c.name: table_body(c, data.today, t("no_figures"), t("today_live")) for c in charts}
    return _render(request, "kpis.html", session=session, data=data, charts=charts, bodies=bodies,
                   payload=payload(data, charts, labels), day_choices=DAY_CHOICES)  # fmt: skip


@router.get("/kpis.csv")
async def kpis_csv(request: Request) -> Response:
    """One chart's table as a CSV file (``chart=<name>``, the page's filters)."""
    session = await _session(request)
    if session is None:
        return _to_login(request)
    found = await _figures(request)
    if isinstance(found, str):
        return Response(found + "\n", status_code=400, media_type="text/plain; charset=utf-8")
    data, _labels, charts = found
    name = request.query_params.get("chart", "")
    chart = next((c for c in charts if c.name == name), None)
    if chart is None:
        known = ", ".join(c.name for c in charts)
        message = f"chart: expected one of {known}, got {name[:40]!r}\n"
        return Response(message, status_code=404, media_type="text/plain; charset=utf-8")
    filename = f"kpi-{chart.name}-{data.days[0].isoformat()}-{data.today.isoformat()}.csv"
    return Response(csv_text(chart).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip
