"""KPIs looking ahead — the 24-hour pickup-rate forecast (``forecast``) and its alert (``watch``) —
and the window the console's 指标 reads (``window``: ended days once per rollup, today once a minute).

The figures looking back — reports, the daily rollup — are :mod:`monitor.reports` and
:mod:`monitor.maintenance`; the SQL of both is in :mod:`monitor.store`.
"""
