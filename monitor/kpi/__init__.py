"""The figures a shop is judged by, looking back and ahead — one room for every KPI.

* ``reports``: the 24-hour pickup rate and the other figures over a span of days (the
  ``report`` command and ``/api/v1/reports``), from the rollup and today's live count.
* ``rollup``: each ended day into ``kpi_daily`` (nightly), and the purge of finished parcels
  that keeps the numbers by rolling their days up first.
* ``tickets``: the tickets' own figures (opened, closed, time to close, outcomes, overdue).
* ``window``: what the console's 指标 reads (ended days once per rollup, today once a minute).
* ``forecast`` and ``watch``: the 30-day pickup rate projected a week ahead, and its alert.

Their SQL is in :mod:`monitor.store.kpi` (live counts and the rollup table),
:mod:`monitor.store.durations` (times kept as histograms) and :mod:`monitor.store.forecast`.
"""
