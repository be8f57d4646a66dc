"""The KPI window as views read it: ended days parsed once per rollup, today counted once a minute for all.

A view of 指标 used to read 29 days of ``kpi_daily`` JSON and count today from the parcel table
every time its one-minute figure cache had aged, under the viewer's request: ~0.2 s at 200,000
parcels, most of a second at 1,000,000 (``benchmarks/b10_console.py``). Neither depends on who
asks, so neither is done per view any more:

* **Ended days** change only when the rollup rewrites one (nightly, or a purge): their rows are
  parsed once per *rollup version* (:meth:`~monitor.store.kpi.KpiStore.daily_version`, one
  index read) for every shop and carrier, and views filter them in memory.
* **Today** is one live count for every shop and carrier (:meth:`KpiStore.live`), kept
  :attr:`KpiWindow.FRESH`. The daemon's ``kpi_today`` job recounts it in the background while
  someone has looked at the page lately (:attr:`KpiWindow.WANTED`), so views find it fresh; a
  view that finds it older (no daemon job: tests, a job that failed) counts it itself, so the
  page never shows today more than ``FRESH`` old.

One :class:`KpiWindow` serves every store of the process (held weakly by the store object), so
the API's views and the daemon's job share it.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection

from monitor.kpi.reports import day_bounds
from monitor.store.kpi import KpiSlice, KpiStore
from monitor.store.store import Store
from monitor.store.views import read


@dataclass(frozen=True, slots=True)
class Today:
    """Today's live figures for every shop and carrier, as counted at ``at`` (read only: views share them)."""

    day: date
    at: datetime
    slices: tuple[KpiSlice, ...]


@dataclass(frozen=True, slots=True)
class Ended:
    """The rolled-up rows of ``[first, last]`` for every shop and carrier, at one rollup version."""

    version: tuple[Any, ...]
    rows: tuple[tuple[date, KpiSlice], ...]


class KpiWindow:
    """Today's count and the ended days' rows per store, shared by every view and the daemon's refresh."""

    #: How old today's figures may be when a view shows them.
    FRESH = timedelta(seconds=60)
    #: How long after the last view the daemon keeps today's count fresh (nobody looking: no counting).
    WANTED = timedelta(minutes=10)
    #: Windows kept per store (the page offers five lengths).
    SIZE = 8

    def __init__(self) -> None:
        # weak: a store that is gone takes its figures along (a new one at the same address must not find them)
        self._today: weakref.WeakKeyDictionary[object, Today] = weakref.WeakKeyDictionary()
        self._ended: weakref.WeakKeyDictionary[object, dict[tuple[date, date], Ended]] = weakref.WeakKeyDictionary()
        self._viewed: weakref.WeakKeyDictionary[object, datetime] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # views and the job run on the store's threads

    # -- today ---------------------------------------------------------------------------------

    def fresh_today(self, store: object, now: datetime, tz: tzinfo) -> Today | None:
        """Return today's figures if counted less than ``FRESH`` before ``now`` (and note a view)."""
        with self._lock:
            self._viewed[store] = now
            found = self._today.get(store)
        if found is None or found.day != now.astimezone(tz).date() or not found.at <= now < found.at + self.FRESH:
            return None
        return found

    def count_today(self, store: object, conn: Connection, dialect: str, now: datetime, tz: tzinfo) -> Today:
        """Count today's figures live (every shop and carrier) and keep them for the next views."""
        day = now.astimezone(tz).date()
        start, end = day_bounds(day, tz)
        found = Today(day, now, tuple(KpiStore(conn, dialect).live(start, end, now)))
        with self._lock:
            current = self._today.get(store)
            if current is None or (current.day, current.at) <= (found.day, found.at):
                self._today[store] = found
        return found

    def recount(self, store: Store, now: datetime, tz: tzinfo) -> Today:
        """Count today in a read transaction of its own: what the daemon's ``kpi_today`` job runs."""
        with read(store) as views:
            return self.count_today(store, views.conn, store.dialect, now, tz)

    def wanted(self, store: object, now: datetime) -> bool:
        """Tell whether someone viewed the page within ``WANTED``, and today's count will age before the next run."""
        with self._lock:
            viewed = self._viewed.get(store)
            today = self._today.get(store)
        if viewed is None or not viewed <= now < viewed + self.WANTED:
            return False
        return today is None or now >= today.at + self.FRESH / 2

    # -- ended days ----------------------------------------------------------------------------

    def ended(self, store: object, first: date, last: date, version: tuple[Any, ...]) -> Ended | None:
        """Return the parsed rows of ``[first, last]`` if the rollup has not changed since they were read."""
        with self._lock:
            found = self._ended.get(store, {}).get((first, last))
        return found if found is not None and found.version == version else None

    def read_ended(
        self, store: object, conn: Connection, dialect: str, first: date, last: date, version: tuple[Any, ...]
    ) -> Ended:
        """Parse the rolled-up rows of ``[first, last]`` (every shop and carrier) and keep them at ``version``."""
        found = Ended(version, tuple(KpiStore(conn, dialect).daily(first, last)))
        with self._lock:
            mine = self._ended.setdefault(store, {})
            mine.pop((first, last), None)
            mine[(first, last)] = found
            while len(mine) > self.SIZE:
                del mine[next(iter(mine))]
        return found


#: The process's one window cache: the console's views and the daemon's ``kpi_today`` job.
WINDOW = KpiWindow()
