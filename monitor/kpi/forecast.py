"""The 24-hour pickup-rate forecast: each shop's rolling 30-day rate for each of the next 7 days.

The platform scores ``picked up by the deadline ÷ deadlines passed`` over the last 30 days
(:mod:`monitor.kpi.reports`). The rate at the end of day X covers the deadlines of days X-29 … X,
so most of it is known today:

- the days already past (``kpi_daily``, or live for the days not rolled up yet) — the oldest
  of them leave the window one a day, which alone can move the rate;
- today's deadlines that passed, and the parcels due later whose fate is partly known: picked
  up already (sure to be in time) or still **pending** (undecided);
- the parcels not shipped yet: the **expected volume** of day X is the mean of the pickups
  due on the same weekday over the last 4 weeks, less what is already known to fall due that day.

Each day gets a range: ``low`` with every pending parcel late and the unknown volume at the
worst weekday share of the 4 weeks, ``point`` with both at the shop's on-time share of the
last 4 weeks (each day's parcels still ahead of their deadline end at that share, the ones
picked up early counting toward it), ``high`` with every pending parcel in time and the best share, each at the
volume (least or most of the 4 weeks) that moves it furthest. ``needed`` is how many of the
parcels pending now must be picked up in time for the point to reach the target on that day
(the others late; None when even all of them would not do). Everything after fetching is
pure, so the arithmetic can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from monitor.clock import Clock
from monitor.config import KpiSettings
from monitor.kpi.reports import day_bounds, fmt_rate, render_table
from monitor.store.forecast import DayCounts, open_forecast
from monitor.store.store import Store

#: The platform's window, in local days.
WINDOW_DAYS = 30
#: Days ahead the forecast covers.
HORIZON_DAYS = 7
#: Weeks of history for the expected volume and the on-time share.
HISTORY_WEEKS = 4
#: The target when none is given: the default of ``[kpi] pickup_rate_target``.
DEFAULT_TARGET = KpiSettings().pickup_rate_target
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class ForecastDay:
    """The projected 30-day rate at the end of one local day."""

    day: date
    low: float | None
    point: float | None
    high: float | None
    #: Deadlines in the window that are known now: passed, picked up early, or pending.
    known: int
    #: Of them, pending now (undecided).
    pending: int
    #: Pickups expected to fall due in the window that nobody has shipped yet (point volume).
    expected: float
    #: Pending parcels that must be picked up in time for the point to reach the target (None: cannot).
    needed: int | None


@dataclass(frozen=True, slots=True)
class ShopForecast:
    """One shop's forecast against its target."""

    shop: str
    target: float
    #: The 30-day rate now (deadlines passed by now), as ``report --days 30`` shows it.
    current: float | None
    #: The shop's on-time share over the last 4 weeks, the point's guess for undecided parcels.
    share: float | None
    #: Parcels waiting for pickup now whose deadline falls within the horizon.
    pending: int
    days: tuple[ForecastDay, ...]

    @property
    def below(self) -> ForecastDay | None:
        """Return the first day whose point is below target, or None."""
        return next((d for d in self.days if d.point is not None and d.point < self.target - _EPS), None)


@dataclass(frozen=True, slots=True)
class Forecast:
    """Every shop's forecast as of one moment."""

    as_of: datetime
    tz: tzinfo
    today: date
    shops: tuple[ShopForecast, ...]


# -- the arithmetic ----------------------------------------------------------------------


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def project_shop(
    shop: str, days: Mapping[date, DayCounts], today: date, target: float, horizon: int = HORIZON_DAYS
) -> ShopForecast:
    """Project one shop's 30-day rate for each of the ``horizon`` days after ``today``.

    ``days`` holds what is known of each local day (missing days count nothing): past days
    final, today and the days ahead with their passed, early and pending pickups.
    """

    def at(day: date) -> DayCounts:
        return days.get(day, DayCounts())

    history = [today - timedelta(days=n) for n in range(1, HISTORY_WEEKS * 7 + 1)]
    due_h = sum(at(d).due for d in history)
    share = _ratio(sum(at(d).in_time for d in history), due_h)
    first = today - timedelta(days=WINDOW_DAYS - 1)
    current_days = [first + timedelta(days=n) for n in range(WINDOW_DAYS)]
    current = _ratio(sum(at(d).in_time for d in current_days), sum(at(d).due for d in current_days))
    out: list[ForecastDay] = []
    for k in range(1, horizon + 1):
        x = today + timedelta(days=k)
        window = [x - timedelta(days=n) for n in range(WINDOW_DAYS)]
        sure_in, sure_den, pending, pending_in = 0.0, 0.0, 0, 0.0
        expected: list[tuple[float, float, float, float, float, float]] = []  # vmin, vmean, vmax, smin, s, smax
        for d in window:
            c = at(d)
            sure_in += c.in_time + c.early
            sure_den += c.known
            pending += c.pending
            pending_in += _pending_in_time(c, share)
            if d > today:
                expected.append(_expected(d, c, days, today, share))
        point_num = sure_in + pending_in + sum(e[1] * e[4] for e in expected)
        point_den = sure_den + sum(e[1] for e in expected)
        lows, highs = [], []
        for v in (0, 2):  # the least, then the most volume of the 4 weeks
            den = sure_den + sum(e[v] for e in expected)
            lows.append(_ratio(sure_in + sum(e[v] * e[3] for e in expected), den))
            highs.append(_ratio(sure_in + pending + sum(e[v] * e[5] for e in expected), den))
        point = _ratio(point_num, point_den)
        low = min((r for r in lows if r is not None), default=None)
        high = max((r for r in highs if r is not None), default=None)
        others = sure_in + sum(e[1] * e[4] for e in expected)
        n = max(0, math.ceil(target * point_den - others - _EPS))
        needed = n if n <= pending else None
        out.append(ForecastDay(x, low, point, high, int(sure_den), pending, round(sum(e[1] for e in expected), 1),
                               needed))  # fmt: skip
    pending_now = max((d.pending for d in out), default=0)
    return ShopForecast(shop, target, current, share, pending_now, tuple(out))


def _pending_in_time(c: DayCounts, share: float | None) -> float:
    """Return how many of a day's pending parcels the point counts in time.

    The day's parcels still ahead of their deadline (picked up early or pending) are taken to
    end at the shop's share, and the early ones already count toward it: the pending get what
    is left, between none and all of them. Pending parcels are the ones not picked up *so far*,
    so the unconditional share alone would count too many of them in time.
    """
    s = share if share is not None else 1.0
    return min(float(c.pending), max(0.0, s * (c.early + c.pending) - c.early))


def _expected(
    day: date, known: DayCounts, days: Mapping[date, DayCounts], today: date, share: float | None
) -> tuple[float, float, float, float, float, float]:
    """Return the pickups still to come on ``day`` (least, mean, most) and their share (worst, point, best).

    The same weekday of the last 4 weeks gives the volume: its mean less what is known already
    (never below 0); the shares of those days give the spread around the shop's own share.
    """
    same = [today - timedelta(days=n) for n in range(1, HISTORY_WEEKS * 7 + 1)]
    same = [d for d in same if d.weekday() == day.weekday()]
    volumes = [days[d].due if d in days else 0 for d in same]
    shares = [days[d].in_time / days[d].due for d in same if d in days and days[d].due]
    if not volumes:
        return 0.0, 0.0, 0.0, 1.0, 1.0, 1.0
    mean = sum(volumes) / len(volumes)

    def more(v: float) -> float:
        return max(0.0, v - known.known)

    s = share if share is not None else 1.0
    return more(min(volumes)), more(mean), more(max(volumes)), min(shares, default=s), s, max(shares, default=s)


# -- fetching ----------------------------------------------------------------------------


def build_forecast(
    store: Store, clock: Clock, tz: tzinfo, target: Callable[[str], float] | float = DEFAULT_TARGET,
    shop: str | None = None, horizon: int = HORIZON_DAYS,
) -> Forecast:  # fmt: skip
    """Read what each day holds — rolled-up days from kpi_daily, the rest live — and project every shop."""
    now = clock.now()
    today = now.astimezone(tz).date()
    first = today - timedelta(days=max(WINDOW_DAYS, HISTORY_WEEKS * 7 + 1))
    last = today + timedelta(days=horizon)
    with open_forecast(store) as fs:
        rolled = fs.last_rolled_up(today)
        live_from = max(first, rolled + timedelta(days=1)) if rolled is not None else first
        figures = fs.rolled_up(first, live_from - timedelta(days=1), shop) if live_from > first else {}
        n_days = (last - live_from).days + 1
        bounds = [(live_from + timedelta(days=i), day_bounds(live_from + timedelta(days=i), tz)[0])
                  for i in range(n_days)]  # fmt: skip
        figures |= fs.live(bounds, day_bounds(last, tz)[1], now, shop)
    by_shop: dict[str, dict[date, DayCounts]] = {}
    for (name, day), counts in figures.items():
        by_shop.setdefault(name, {})[day] = counts
    target_of = target if callable(target) else (lambda _shop, value=target: value)
    shops = tuple(project_shop(name, by_shop[name], today, target_of(name), horizon) for name in sorted(by_shop))
    return Forecast(now, tz, today, shops)


# -- output ------------------------------------------------------------------------------


def _pct(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 4)


def forecast_json(forecast: Forecast) -> dict[str, Any]:
    """Return the forecast as plain JSON data (rates as ratios)."""
    return {
        "as_of": forecast.as_of.isoformat(),
        "timezone": str(forecast.tz),
        "today": forecast.today.isoformat(),
        "window_days": WINDOW_DAYS,
        "shops": [
            {
                "shop": s.shop,
                "target": s.target,
                "current": _pct(s.current),
                "on_time_share": _pct(s.share),
                "pending": s.pending,
                "below_day": s.below.day.isoformat() if s.below else None,
                "days": [
                    {"day": d.day.isoformat(), "low": _pct(d.low), "point": _pct(d.point), "high": _pct(d.high),
                     "known": d.known, "pending": d.pending, "expected": d.expected, "needed": d.needed}
                    for d in s.days
                ],
            }
            for s in forecast.shops
        ],
    }  # fmt: skip


def render_forecast(forecast: Forecast) -> str:
    """Render each shop's forecast as an aligned table for the terminal."""
    lines = [f"24-hour pickup rate forecast (rolling {WINDOW_DAYS} days) as of "
             f"{forecast.as_of.astimezone(forecast.tz):%Y-%m-%d %H:%M} ({forecast.tz})"]  # fmt: skip
    if not forecast.shops:
        lines.append("No pickups due in the window: nothing to forecast.")
    for s in forecast.shops:
        below = s.below
        verdict = f"below target on {below.day}" if below else "above target all week"
        lines += ["", f"{s.shop or '—'}: now {fmt_rate(s.current)}, target {fmt_rate(s.target)}, "
                  f"on-time share {fmt_rate(s.share)}, {s.pending} pending — {verdict}"]  # fmt: skip
        rows = [
            [d.day.isoformat(), fmt_rate(d.low), fmt_rate(d.point), fmt_rate(d.high), d.known, d.pending,
             f"{d.expected:g}", "—" if d.needed is None else d.needed]
            for d in s.days
        ]  # fmt: skip
        headers = ["day", "low", "point", "high", "known", "pending", "expected", "needed"]
        lines.append(render_table(headers, rows, "lrrrrrrr"))
    return "\n".join(lines)
