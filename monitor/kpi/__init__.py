"""KPIs looking ahead: the 24-hour pickup-rate forecast (``forecast``) and its alert (``watch``).

The figures looking back — reports, the daily rollup — are :mod:`monitor.reports` and
:mod:`monitor.maintenance`; the SQL of both is in :mod:`monitor.store`.
"""
