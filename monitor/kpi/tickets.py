"""Ticket KPIs: opened and closed per day, time to close (median, p90) and outcomes per rule, overdue.

The figures are counted like every other KPI (``monitor.store.kpi``): a ticket counts as
opened on the local day it opened, as closed (with its time to close and its outcome —
``cancelled`` for a cancelled one) on the day it closed, as gone overdue on the day its
deadline passed while it was still being worked. So the same per-day figures come from the
live tables or from ``kpi_daily.ticket_figures`` once a purge removed the parcels behind them.
``overdue_now`` is the one figure of the moment: tickets being worked past their deadline now.
Everything here after fetching is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from monitor.store.durations import Durations
from monitor.store.kpi import KpiStore, add_ticket_figures, no_ticket_figures


@dataclass(frozen=True, slots=True)
class TicketDay:
    """One local day: tickets opened and closed."""

    day: date
    opened: int
    closed: int


@dataclass(frozen=True, slots=True)
class TicketRuleFigures:
    """One rule's tickets over the window."""

    rule: str
    opened: int
    closed: int
    went_overdue: int
    overdue_now: int
    median_close_seconds: float | None
    p90_close_seconds: float | None
    outcomes: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class TicketKpis:
    """The ticket section of a report."""

    days: tuple[TicketDay, ...]
    rules: tuple[TicketRuleFigures, ...]
    total: TicketRuleFigures


def collect(
    kpi: KpiStore, first: date, last: date, tz: tzinfo, now: datetime, purged: set[date],
    daily: Mapping[date, Sequence[dict[str, dict[str, Any]]]], shop: str | None = None, carrier: str | None = None,
) -> TicketKpis:  # fmt: skip
    """Count the window's tickets day by day: purged days from their ``daily`` rows, the others live."""
    per_day: list[tuple[date, dict[str, dict[str, Any]]]] = []
    day = first
    while day <= last:
        figures: dict[str, dict[str, Any]] = {}
        if day in purged:
            for rows in daily.get(day, ()):
                add_ticket_figures(figures, rows)
        else:
            start = datetime.combine(day, time(), tzinfo=tz)
            for by_rule in kpi.ticket_figures(start, start + timedelta(days=1), now, shop, carrier).values():
                add_ticket_figures(figures, by_rule)
        per_day.append((day, figures))
        day += timedelta(days=1)
    return summarize(per_day, kpi.overdue_tickets(now, shop, carrier))


def summarize(per_day: Sequence[tuple[date, dict[str, dict[str, Any]]]], overdue_now: Mapping[str, int]) -> TicketKpis:
    """Add up per-day figures (by rule) into the report's rows, rules sorted by name."""
    by_rule: dict[str, dict[str, Any]] = {}
    days = []
    for day, figures in per_day:
        add_ticket_figures(by_rule, figures)
        days.append(TicketDay(day, sum(f["opened"] for f in figures.values()),
                              sum(f["closed"] for f in figures.values())))  # fmt: skip
    for rule in overdue_now:
        by_rule.setdefault(rule, no_ticket_figures())
    rules = tuple(_figures(rule, by_rule[rule], overdue_now.get(rule, 0)) for rule in sorted(by_rule))
    total = no_ticket_figures()
    for f in by_rule.values():
        add_ticket_figures({"": total}, {"": f})
    return TicketKpis(tuple(days), rules, _figures("total", total, sum(overdue_now.values())))


def _figures(rule: str, f: Mapping[str, Any], overdue_now: int) -> TicketRuleFigures:
    seconds: Durations = f["close_seconds"]  # exact while few, a histogram past that (within 2 %)
    return TicketRuleFigures(rule, f["opened"], f["closed"], f["went_overdue"], overdue_now, seconds.percentile(50),
                             seconds.percentile(90), dict(sorted(f["outcomes"].items())))  # fmt: skip


def as_json(t: TicketKpis) -> dict[str, Any]:
    """Return the section as plain JSON data (times to close in seconds)."""

    def rule(f: TicketRuleFigures) -> dict[str, Any]:
        return {
            "opened": f.opened, "closed": f.closed, "went_overdue": f.went_overdue, "overdue_now": f.overdue_now,
            "close_seconds": {"p50": f.median_close_seconds, "p90": f.p90_close_seconds}, "outcomes": dict(f.outcomes),
        }  # fmt: skip

    return {
        "days": [{"day": d.day.isoformat(), "opened": d.opened, "closed": d.closed} for d in t.days],
        "rows": [{"rule": f.rule} | rule(f) for f in t.rules],
        "total": rule(t.total),
    }
